"""`Kind`: what a kind of task means, in one class, and the helpers kinds share.

A kind owns everything that differs between tasks of different shapes: the fields of a
raw example and how one becomes model inputs and targets, the head (or, for pairs, the
cosine of two embeddings), the loss and metrics, how predictions read back and what the
served model returns. The rest of the library asks the task's kind (`task.spec`) and
never compares kind names (a test checks that).
"""

import keras
import numpy as np
import pyarrow.compute as pc
import tensorflow as tf

from mtl_keras.encoding.preprocessing import FEATURES, PAIR_FEATURES
from mtl_keras.errors import InputError
from mtl_keras.runtime.decoding import DECODERS


class Kind:
    """The behaviour shared by kinds that have a dense head over the encoder."""

    name = None
    columns = ()  # the columns of a user's file of this kind
    # What each column holds (`data.columns.CHECKS`): text, label, labels (a list of
    # label names), score, words (a list of words) or tags (a label per word).
    column_types = ("text", "label")
    fields = ()  # a raw example's fields (the packaged datasets' feature names)
    main_metric = "accuracy"  # what says how well the task went (studies, plots)
    loss_metric = "xent"  # the task's own loss averaged over its own examples
    has_head = True  # False: the task trains the embedding itself (no layers of its own)
    reads_sequence = False  # the head reads every token vector, not the pooled embedding
    second_text = False  # examples carry a second text (`pair_*` inputs)
    embedding_head = True  # a head on one text's embedding (trainable on cached embeddings)
    has_labels = True  # a file's label set is read from its training file
    scored = False  # targets are scores, scaled by the task's `score_range`
    # Trainable at several embedding widths (`model.matryoshka`): its output reads the
    # embeddings only, so it can be taken again over their first k values.
    matryoshka = False
    # `encode` takes a batch of raw examples (see `encode`); False: one example at a time.
    batch_encode = True
    # How one text's output reads back (`runtime.decoding.DECODERS`; an export records it);
    # None: no output per text (the kind reads two texts).
    decoder = "one_label"
    text_fields = ("text",)  # the fields that hold texts (a token kind's: lists of words)

    def signature(self, num_classes):
        """The `tf.TensorSpec` of each raw field (a user's file, read into `tf.data`)."""
        return {"text": tf.TensorSpec([], tf.string), "label": tf.TensorSpec([], tf.int64)}

    def empty_target(self, task, max_length):
        """(target, weight) of an example that has no label for this task: weight 0 (the
        target's shape is the one `encode` gives)."""
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

    def extra_columns(self, names, where):
        """{our name: the file's column} of optional columns a file of this kind has
        (a contrastive file's hard negatives); checked as texts."""
        return {}

    def extra_tensors(self, data, text_tensor):
        """Tensors of every example from the `extra_columns` ({name: pyarrow column})."""
        return {}

    def key_column(self, data):
        """The texts that place a file's rows in the splits (equal texts share one split),
        from its columns ({column: pyarrow array}, see `data.columns`)."""
        return data[self.columns[0]]

    def label_set(self, names):
        """The task's label names, in the order of the head's outputs."""
        return tuple(sorted(set(names)))

    def score_range(self, name, data):
        """A scored kind's (lowest, highest) score in a training file's columns; None
        otherwise."""
        return None

    def encode(self, task, batch, tokenize, tokenizer, max_length):
        """(inputs, targets, weights) of a batch of raw examples (each field one tensor
        with the examples along axis 0); `tokenize` maps a vector of texts to BERT inputs."""
        return tokenize(batch["text"]), tf.cast(batch["label"], tf.int32), ones_for(batch["label"])

    def decode(self, task, logits, text, words, pieces_per_word, first_piece):
        """A prediction for one text from its logits (`runtime.decoding`): what `Predictor`
        and the exported models' runtime return."""
        decode = DECODERS[self.decoder]
        return decode(task.labels, np.asarray(logits), text=text, words=words,
                      pieces_per_word=pieces_per_word, first_piece=first_piece)  # fmt: skip

    def gold(self, task, example):
        """A raw example's labels as `decode` writes a prediction (for agreement checks)."""
        return {"label": task.labels[int(example["label"])]}

    def texts(self, example):
        """The texts of a raw example (numpy, as `as_numpy_iterator` gives it)."""
        return [as_text(example[field]) for field in self.text_fields]

    def split_metrics(self, task, encode, examples):
        """Metrics over a whole split (not batch by batch), or None. `encode` embeds a list
        of texts (unit vectors); `examples()` reads the split's raw examples."""
        return None


def as_text(value):
    """A text from a numpy field: bytes decoded, a list of words joined by spaces."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    return " ".join(as_text(word) for word in value)


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


def pair_key_column(data):
    """A pair's place in the splits: both texts (the same pair is never in two splits)."""
    return pc.binary_join_element_wise(data["sentence1"], data["sentence2"], "\t")


def ones_for(values):
    """Weight 1 for each example of a batch (`values` has the examples along axis 0)."""
    return tf.ones(tf.shape(values)[:1], tf.float32)


def pair_inputs(tokenize, batch):
    """BERT inputs of sentence1, with sentence2's as the `pair_*` inputs."""
    x = tokenize(batch["sentence1"])
    second = tokenize(batch["sentence2"])
    x.update({p: second[f] for f, p in zip(FEATURES, PAIR_FEATURES, strict=True)})
    return x
