"""The token kind: a tag for every word, learned on its first word piece."""

import pyarrow.compute as pc
import tensorflow as tf

from mtl_keras.encoding.preprocessing import align_word_tags, clean_text
from mtl_keras.errors import InputError
from mtl_keras.evaluation.metrics import (
    EntityF1,
)
from mtl_keras.tasks.kind import Kind, text_value


class TokenClassification(Kind):
    """A tag per word (BIO entities), from the token vectors: the first word piece of a
    word carries its tag; other pieces, [CLS], [SEP] and padding get weight 0."""

    name = "token"
    decoder = "word_tags"
    text_fields = ("tokens",)
    columns = ("tokens", "tags")
    column_types = ("words", "tags")
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

    def key_column(self, data):
        return pc.binary_join(data["tokens"], " ")

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

    def gold(self, task, example):
        return {"tags": [task.labels[int(tag)] for tag in example["ner"]]}

    def label_set(self, names):
        """ "O" first (the tag of [CLS], [SEP] and padding, under weight 0), then by name."""
        return ("O", *sorted(set(names) - {"O"}))

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
