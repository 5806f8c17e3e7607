"""Task kinds: what each kind of task (sentence, token, multi-label, pairs) means, in one class.

A kind owns everything that differs between tasks of different shapes: the fields of a
raw example and how one becomes model inputs and targets, the head (or, for pairs, the
cosine of two embeddings), the loss and metrics, how predictions read back and what the
served model returns. The rest of the library asks the task's kind (`task.spec`) and
never compares kind names (a test checks that). Registered by name in `KINDS`, as
sentence-transformers registers its losses: the name is what a saved model records.
"""

import keras
import numpy as np
import tensorflow as tf

from mtl_keras.errors import InputError
from mtl_keras.metrics import (
    Correlation,
    EntityF1,
    InBatchNegativesLoss,
    LogitF1,
    MacroF1,
    entity_spans,
    in_batch_metrics,
    retrieval_metrics,
)
from mtl_keras.preprocessing import FEATURES, PAIR_FEATURES, align_word_tags, clean_text
from mtl_keras.similarity import spearman


class Kind:
    """The behaviour shared by kinds that have a dense head over the encoder."""

    name = None
    columns = ()  # the columns of a user's file of this kind
    fields = ()  # a raw example's fields (the packaged datasets' feature names)
    main_metric = "accuracy"  # what says how well the task went (studies, plots)
    loss_metric = "xent"  # the task's own loss averaged over its own examples
    has_head = True  # False: the task trains the embedding itself (no layers of its own)
    reads_sequence = False  # the head reads every token vector, not the pooled embedding
    second_text = False  # examples carry a second text (`pair_*` inputs)
    embedding_head = True  # a head on one text's embedding (trainable on cached embeddings)
    has_labels = True  # a file's label set is read from its training file
    scored = False  # targets are scores, scaled by the task's `score_range`
    # `encode` takes a batch of raw examples (see `encode`); False: one example at a time.
    batch_encode = True

    def signature(self, num_classes):
        """The `tf.TensorSpec` of each raw field (a user's file, read into `tf.data`)."""
        return {"text": tf.TensorSpec([], tf.string), "label": tf.TensorSpec([], tf.int64)}

    def empty_target(self, task, max_length):
        """(target, weight) of an example that has no label for this task: weight 0."""
        return tf.zeros([], tf.int32), tf.zeros([], tf.float32)

    def output(self, task, head, features):
        """The task's output in the functional model, from its head (dropout + dense; None
        for a kind without one) and the encoder's `features` ("embedding", "sequence",
        and with a second text "pair_embedding")."""
        return head(features["embedding"])

    def loss(self, task):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self, task):
        """Accuracy and cross-entropy; `xent` is the loss averaged over the task's own
        labelled examples (the `<task>_loss` Keras logs is over whole mixed batches)."""
        return [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="xent"),
        ]

    def key(self, example):
        """The text that places an example in a split (equal texts share one split)."""
        return example[self.fields[0]]

    def labels_of(self, example):
        """The label names one parsed example uses (a file's label set is read from these)."""
        return []

    def label_set(self, names):
        """The task's label names, in the order of the head's outputs."""
        return tuple(sorted(set(names)))

    def score_range(self, name, examples):
        """A scored kind's (lowest, highest) score in a training file; None otherwise."""
        return None

    def encode(self, task, batch, tokenize, tokenizer, max_length):
        """(inputs, targets, weights) of a batch of raw examples (each field one tensor
        with the examples along axis 0); `tokenize` maps a vector of texts to BERT inputs."""
        return tokenize(batch["text"]), tf.cast(batch["label"], tf.int32), ones_for(batch["label"])

    def split_metrics(self, task, encode, examples):
        """Metrics over a whole split (not batch by batch), or None. `encode` embeds a list
        of texts (unit vectors); `examples()` reads the split's raw examples."""
        return None


def text_value(value, column, where):
    """A non-empty string from a file's `column`, or a one-line error naming the line."""
    if not isinstance(value, str):
        raise InputError(f"{where}: {column!r} is {type(value).__name__}, not a string.")
    if not value.strip():
        raise InputError(f"{where}: {column!r} is empty.")
    return value


def label_value(value, column, where):
    """A label name: a string, or a whole number written as one (JSON)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return text_value(value, column, where).strip()


class SentenceClassification(Kind):
    """One label per text, from the pooled embedding: topic, sentiment, a user's classes."""

    name = "sentence"
    columns = ("text", "label")  # a user's file
    fields = ("text", "label")

    def parse(self, row, where):
        """A file's row ({column: value}) as an example with the label's name."""
        return {"text": text_value(row["text"], "text", where),
                "label": label_value(row["label"], "label", where)}  # fmt: skip

    def labels_of(self, example):
        return [example["label"]]

    def with_ids(self, example, index):
        return {"text": example["text"], "label": index[example["label"]]}

    def metrics(self, task):
        return [*super().metrics(task), MacroF1(task.num_classes)]

    def serve(self, task, logits, inputs, vocabulary, specials):
        """The served outputs: every label's probability and the label's name."""
        names = tf.constant(task.labels)
        return {
            f"{task.name}_probs": tf.nn.softmax(logits),
            f"{task.name}_label": tf.gather(names, tf.argmax(logits, axis=-1)),
        }

    def decode(self, task, logits, text, words, pieces_per_word, first_piece):
        """A prediction: the label and every label's probability."""
        probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
        return {
            "label": task.labels[int(np.argmax(probs))],
            "probabilities": {n: float(p) for n, p in zip(task.labels, probs, strict=True)},
        }


class TokenClassification(Kind):
    """A tag per word (BIO entities), from the token vectors: the first word piece of a
    word carries its tag; other pieces, [CLS], [SEP] and padding get weight 0."""

    name = "token"
    columns = ("tokens", "tags")
    fields = ("tokens", "ner")
    main_metric = "entity_f1"
    reads_sequence = True
    embedding_head = False
    batch_encode = False  # words and tags are ragged: aligned one sentence at a time

    def signature(self, num_classes):
        return {"tokens": tf.TensorSpec([None], tf.string), "ner": tf.TensorSpec([None], tf.int64)}

    def empty_target(self, task, max_length):
        return tf.zeros([max_length], tf.int32), tf.zeros([max_length], tf.float32)

    def output(self, task, head, features):
        return head(features["sequence"])

    def encode(self, task, example, tokenize, tokenizer, max_length):
        """(inputs, tags, weights) of one raw example (not a batch: `batch_encode`)."""
        token_ids, tags, weights = align_word_tags(
            clean_text(example["tokens"]), example["ner"], tokenizer, max_length
        )
        x = {
            "token_ids": token_ids,
            "padding_mask": token_ids != tokenizer.pad_token_id,
            "segment_ids": tf.zeros_like(token_ids),
        }
        return x, tags, weights

    def metrics(self, task):
        return [*super().metrics(task), EntityF1(task.labels)]

    def key(self, example):
        return " ".join(example["tokens"])

    def parse(self, row, where):
        """Tokens and tags: JSON lists, or whitespace-separated strings (CSV)."""
        tokens, tags = (
            value.split() if isinstance(value, str) else value
            for value in (row["tokens"], row["tags"])
        )
        for column, values in (("tokens", tokens), ("tags", tags)):
            if not isinstance(values, list) or not values:
                raise InputError(f"{where}: {column!r} must be a non-empty list of strings.")
            for value in values:
                text_value(value, column, where)
        if len(tokens) != len(tags):
            raise InputError(f"{where}: {len(tokens)} tokens but {len(tags)} tags.")
        return {"tokens": tokens, "tags": tags}

    def labels_of(self, example):
        return example["tags"]

    def label_set(self, names):
        """ "O" first (the tag of [CLS], [SEP] and padding, under weight 0), then by name."""
        return ("O", *sorted(set(names) - {"O"}))

    def with_ids(self, example, index):
        return {"tokens": example["tokens"], "ner": [index[t] for t in example["tags"]]}

    def serve(self, task, logits, inputs, vocabulary, specials):
        """The served outputs: each word piece, and its tag ("" on [CLS], [SEP], padding)."""
        ids = inputs["token_ids"]
        real = tf.reduce_all(ids[..., None] != specials, axis=-1)
        pieces = tf.gather(vocabulary, ids)
        predicted = tf.gather(tf.constant(task.labels), tf.argmax(logits, axis=-1))
        return {
            "word_pieces": tf.where(inputs["padding_mask"] > 0, pieces, ""),
            f"{task.name}_tags": tf.where(real, predicted, ""),
        }

    def decode(self, task, logits, text, words, pieces_per_word, first_piece):
        """A prediction: each word's tag (None where the model saw no piece of it) and the
        BIO entity spans with their character offsets."""
        tagged = iter(np.argmax(logits[first_piece > 0], axis=-1).tolist())
        tag_ids = [next(tagged, None) if count else None for count in pieces_per_word]
        outside = task.labels.index("O")
        spans = entity_spans([outside if t is None else t for t in tag_ids], task.labels)
        entities = [
            {"text": text[words[s][1] : words[e - 1][2]], "type": entity,
             "start": words[s][1], "end": words[e - 1][2]}
            for s, e, entity in sorted(spans)
        ]  # fmt: skip
        tags = [None if t is None else task.labels[t] for t in tag_ids]
        return {"entities": entities, "words": [w for w, _, _ in words], "tags": tags}


class PairSimilarity(Kind):
    """How similar two texts are: the cosine of their embeddings against a score scaled to
    [0, 1] (sentence-transformers' CosineSimilarityLoss). No head: it trains the encoder,
    and what it learnt shows in the embedding, not in an output per text."""

    name = "pair"
    columns = ("sentence1", "sentence2", "score")
    fields = ("sentence1", "sentence2", "score")
    main_metric = "pearson"
    loss_metric = "mse"
    has_head = False
    second_text = True
    embedding_head = False
    has_labels = False
    scored = True

    def signature(self, num_classes):
        text = tf.TensorSpec([], tf.string)
        return {"sentence1": text, "sentence2": text, "score": tf.TensorSpec([], tf.float32)}

    def score_range(self, name, examples):
        scores = [example["score"] for example in examples]
        if min(scores) == max(scores):
            raise InputError(f"task {name!r}: every training score is {scores[0]}.")
        return (min(scores), max(scores))

    def empty_target(self, task, max_length):
        return tf.zeros([1], tf.float32), tf.zeros([], tf.float32)

    def encode(self, task, batch, tokenize, tokenizer, max_length):
        x = pair_inputs(tokenize, batch)
        low, high = task.score_range
        score = (tf.cast(batch["score"], tf.float32) - low) / (high - low)
        return x, score[:, None], ones_for(score)

    def output(self, task, head, features):
        """Shape (batch, 1): the cosine of the two texts' embeddings."""
        pair = [features["embedding"], features["pair_embedding"]]
        return keras.layers.Dot(axes=1, normalize=True, name=task.name)(pair)

    def loss(self, task):
        return keras.losses.MeanSquaredError()

    def metrics(self, task):
        """The correlation of cosine and target, and the squared error."""
        return [Correlation(), keras.metrics.MeanSquaredError(name="mse")]

    def key(self, example):
        return pair_key(example)

    def split_metrics(self, task, encode, examples):
        """Spearman's rank correlation of the cosine and the score over the whole split
        (`pearson` comes from the batches), as STS evaluations report it."""
        rows = examples()
        if not rows:
            return None
        first, second = (encode([r[f].decode("utf-8") for r in rows]) for f in self.fields[:2])
        cosines = np.sum(np.asarray(first) * np.asarray(second), axis=1)
        return {"spearman": spearman(cosines, [float(r["score"]) for r in rows])}

    def parse(self, row, where):
        score = row["score"]
        try:
            score = float(score)
        except (TypeError, ValueError):
            raise InputError(f"{where}: score {score!r} is not a number.") from None
        if not np.isfinite(score):
            raise InputError(f"{where}: score {score!r} is not a finite number.")
        return {"sentence1": text_value(row["sentence1"], "sentence1", where),
                "sentence2": text_value(row["sentence2"], "sentence2", where),
                "score": score}  # fmt: skip

    def with_ids(self, example, index):
        return example


class MultiLabelClassification(Kind):
    """Any number of labels per text (none, one or several): one sigmoid per label on the
    pooled embedding, binary cross-entropy; a label applies above probability 0.5."""

    name = "multi_label"
    columns = ("text", "labels")
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

    def labels_of(self, example):
        return example["labels"]

    def with_ids(self, example, index):
        hot = [0.0] * len(index)
        for name in example["labels"]:
            hot[index[name]] = 1.0
        return {"text": example["text"], "labels": hot}

    def serve(self, task, logits, inputs, vocabulary, specials):
        """Every label's probability, and the names of those above 0.5 ("" elsewhere)."""
        probs = tf.sigmoid(logits)
        names = tf.broadcast_to(tf.constant(task.labels), tf.shape(probs))
        return {f"{task.name}_probs": probs,
                f"{task.name}_labels": tf.where(probs > 0.5, names, "")}  # fmt: skip

    def decode(self, task, logits, text, words, pieces_per_word, first_piece):
        probs = keras.ops.convert_to_numpy(keras.ops.sigmoid(logits))
        return {
            "labels": [name for name, p in zip(task.labels, probs, strict=True) if p > 0.5],
            "probabilities": {n: float(p) for n, p in zip(task.labels, probs, strict=True)},
        }


class PairClassification(SentenceClassification):
    """A label for a pair of texts (paraphrase or not, NLI): a softmax head on (u, v,
    |u - v|) of the two embeddings, sentence-transformers' `SoftmaxLoss`. Its output needs
    two texts, so predictions and exports per text leave it out; its training shows in
    the embedding."""

    name = "pair_classification"
    columns = ("sentence1", "sentence2", "label")
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

    def key(self, example):
        return pair_key(example)

    def parse(self, row, where):
        return {"sentence1": text_value(row["sentence1"], "sentence1", where),
                "sentence2": text_value(row["sentence2"], "sentence2", where),
                "label": label_value(row["label"], "label", where)}  # fmt: skip

    def with_ids(self, example, index):
        return {**example, "label": index[example["label"]]}


class Contrastive(Kind):
    """Anchor and positive texts (a question and its answer, a title and its abstract)
    pulled together, every other positive of the batch pushed away: the cosines of a
    batch's anchors and positives, scaled by 20, under sentence-transformers'
    MultipleNegativesRankingLoss. No head: it trains the embedding. Evaluated by
    retrieval: each test anchor against all of the split's positives (recall@1, MRR)."""

    name = "contrastive"
    columns = ("anchor", "positive")
    fields = ("anchor", "positive")
    has_head = False
    second_text = True
    embedding_head = False
    has_labels = False
    scale = 20.0  # sentence-transformers' default

    def signature(self, num_classes):
        text = tf.TensorSpec([], tf.string)
        return {"anchor": text, "positive": text}

    def empty_target(self, task, max_length):
        return tf.zeros([1], tf.float32), tf.zeros([], tf.float32)

    def encode(self, task, batch, tokenize, tokenizer, max_length):
        pair = {"sentence1": batch["anchor"], "sentence2": batch["positive"]}
        weights = ones_for(batch["anchor"])
        return pair_inputs(tokenize, pair), weights[:, None], weights

    def output(self, task, head, features):
        """(batch, batch): 20 x the cosine of every anchor with every positive."""
        unit = [keras.layers.UnitNormalization()(features[k])
                for k in ("embedding", "pair_embedding")]  # fmt: skip
        return keras.ops.matmul(unit[0], keras.ops.transpose(unit[1])) * self.scale

    def loss(self, task):
        return InBatchNegativesLoss()

    def metrics(self, task):
        return in_batch_metrics()

    def key(self, example):
        return example["anchor"]

    def parse(self, row, where):
        if "negative" in row:
            raise InputError(
                f"{where}: hard negatives ('negative') are not supported yet; drop the "
                "column (the batch's other positives are the negatives)."
            )
        return {"anchor": text_value(row["anchor"], "anchor", where),
                "positive": text_value(row["positive"], "positive", where)}  # fmt: skip

    def with_ids(self, example, index):
        return example

    def split_metrics(self, task, encode, examples):
        """Recall@1 and MRR of each anchor against every positive of the split."""
        rows = examples()
        anchors = [e["anchor"].decode("utf-8") for e in rows]
        positives = [e["positive"].decode("utf-8") for e in rows]
        if not anchors:
            return None
        return retrieval_metrics(encode(anchors), encode(positives))


def pair_key(example):
    """A pair's place in the splits: both texts (the same pair is never in two splits)."""
    return f"{example['sentence1']}\t{example['sentence2']}"


def ones_for(values):
    """Weight 1 for each example of a batch (`values` has the examples along axis 0)."""
    return tf.ones(tf.shape(values)[:1], tf.float32)


def pair_inputs(tokenize, batch):
    """BERT inputs of sentence1, with sentence2's as the `pair_*` inputs."""
    x = tokenize(batch["sentence1"])
    second = tokenize(batch["sentence2"])
    x.update({p: second[f] for f, p in zip(FEATURES, PAIR_FEATURES, strict=True)})
    return x


KINDS = {
    kind.name: kind
    for kind in (
        SentenceClassification(),
        TokenClassification(),
        PairSimilarity(),
        MultiLabelClassification(),
        PairClassification(),
        Contrastive(),
    )  # fmt: skip
}
