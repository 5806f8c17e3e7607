"""Kinds that label a text (or a pair of texts) with one class, or with several."""

import keras
import tensorflow as tf

from mtl_keras.errors import InputError
from mtl_keras.evaluation.metrics import (
    LogitF1,
    MacroF1,
)
from mtl_keras.tasks.kind import (
    Kind,
    label_value,
    ones_for,
    pair_inputs,
    pair_key_column,
    text_value,
)


class SentenceClassification(Kind):
    """One label per text, from the pooled embedding: topic, sentiment, a user's classes."""

    name = "sentence"
    columns = ("text", "label")  # a user's file
    fields = ("text", "label")

    def parse(self, row, where):
        """A file's row ({column: value}) as an example with the label's name."""
        return {"text": text_value(row["text"], "text", where),
                "label": label_value(row["label"], "label", where)}  # fmt: skip

    def metrics(self, task):
        return [*super().metrics(task), MacroF1(task.num_classes)]

    def serve(self, task, logits, inputs, vocabulary, specials):
        """The served outputs: every label's probability and the label's name."""
        names = tf.constant(task.labels)
        return {
            f"{task.name}_probs": tf.nn.softmax(logits),
            f"{task.name}_label": tf.gather(names, tf.argmax(logits, axis=-1)),
        }


class MultiLabelClassification(Kind):
    """Any number of labels per text (none, one or several): one sigmoid per label on the
    pooled embedding, binary cross-entropy; a label applies above probability 0.5."""

    name = "multi_label"
    decoder = "label_set"
    columns = ("text", "labels")
    column_types = ("text", "labels")
    fields = ("text", "labels")
    main_metric = "micro_f1"

    def signature(self, num_classes):
        return {"text": tf.TensorSpec([], tf.string),
                "labels": tf.TensorSpec([num_classes], tf.float32)}  # fmt: skip

    def empty_target(self, task, max_length):
        return tf.zeros([task.num_classes], tf.float32), tf.zeros([], tf.float32)

    def encode(self, task, batch, tokenize, tokenizer, max_length):
        labels = tf.cast(batch["labels"], tf.float32)
        return tokenize(batch["text"]), labels, ones_for(labels)

    def loss(self, task):
        return keras.losses.BinaryCrossentropy(from_logits=True)

    def metrics(self, task):
        """Micro and macro F1 at 0.5, and the binary cross-entropy."""
        return [LogitF1("micro"), LogitF1("macro"),
                keras.metrics.BinaryCrossentropy(from_logits=True, name="xent")]  # fmt: skip

    def parse(self, row, where):
        """Labels: a JSON list, or `|`-separated in CSV/TSV; an empty list is allowed."""
        labels = row["labels"]
        if isinstance(labels, str):
            labels = [part for part in labels.split("|") if part.strip()]
        if not isinstance(labels, list):
            raise InputError(f"{where}: 'labels' must be a list (JSON) or a|b|c (CSV).")
        names = [label_value(label, "labels", where) for label in labels]
        return {"text": text_value(row["text"], "text", where), "labels": names}

    def gold(self, task, example):
        return {"labels": [n for n, on in zip(task.labels, example["labels"], strict=True) if on]}

    def serve(self, task, logits, inputs, vocabulary, specials):
        """Every label's probability, and the names of those above 0.5 ("" elsewhere)."""
        probs = tf.sigmoid(logits)
        names = tf.broadcast_to(tf.constant(task.labels), tf.shape(probs))
        return {f"{task.name}_probs": probs,
                f"{task.name}_labels": tf.where(probs > 0.5, names, "")}  # fmt: skip


class PairClassification(SentenceClassification):
    """A label for a pair of texts (paraphrase or not, NLI): a softmax head on (u, v,
    |u - v|) of the two embeddings, sentence-transformers' `SoftmaxLoss`. Its output needs
    two texts, so predictions and exports per text leave it out; its training shows in
    the embedding."""

    name = "pair_classification"
    decoder = None
    text_fields = ("sentence1", "sentence2")
    columns = ("sentence1", "sentence2", "label")
    column_types = ("text", "text", "label")
    fields = ("sentence1", "sentence2", "label")
    second_text = True
    embedding_head = False

    def signature(self, num_classes):
        text = tf.TensorSpec([], tf.string)
        return {"sentence1": text, "sentence2": text, "label": tf.TensorSpec([], tf.int64)}

    def encode(self, task, batch, tokenize, tokenizer, max_length):
        x = pair_inputs(tokenize, batch)
        return x, tf.cast(batch["label"], tf.int32), ones_for(batch["label"])

    def output(self, task, head, features):
        u, v = features["embedding"], features["pair_embedding"]
        # |u - v| as max(u - v, v - u): built-in layers only (no Lambda, which safe mode refuses).
        distance = keras.layers.Maximum(name=f"{task.name}_distance")(
            [keras.layers.Subtract()([u, v]), keras.layers.Subtract()([v, u])]
        )
        joined = keras.layers.Concatenate(name=f"{task.name}_pair")([u, v, distance])
        return head(joined)

    def key_column(self, data):
        return pair_key_column(data)

    def parse(self, row, where):
        return {"sentence1": text_value(row["sentence1"], "sentence1", where),
                "sentence2": text_value(row["sentence2"], "sentence2", where),
                "label": label_value(row["label"], "label", where)}  # fmt: skip
