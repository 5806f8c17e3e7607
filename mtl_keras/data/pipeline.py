"""The multi-task `tf.data` stream: every example carries a label and a weight for every head.

The datasets are disjoint (a tweet has no topic label), so each example gets weight 0 for
the heads it has no label for; plain `model.fit` with one loss per output then trains each
head only on its own examples. NER tags are word-level: the first word piece of a word
carries the tag, other pieces, [CLS], [SEP] and padding get weight 0.
"""

import numpy as np
import tensorflow as tf

from mtl_keras.data.loading import load
from mtl_keras.errors import InputError
from mtl_keras.preprocessing import FEATURES, clean_text, trim_padding

SAMPLING = ("proportional", "round_robin", "temperature")


def align_word_tags(words, tags, tokenizer, max_length):
    """Word pieces of `words` with [CLS]/[SEP], their tags and 0/1 weights, padded.

    Returns (token_ids, tags, weights), each of shape [max_length]; only the first piece
    of each word has weight 1. Words beyond `max_length - 2` pieces are cut.
    """
    pieces = tokenizer(words)
    if not isinstance(pieces, tf.RaggedTensor):  # eager calls return Python lists
        pieces = tf.ragged.constant(pieces, dtype=tf.int32, ragged_rank=1)
    counts = pieces.row_lengths()
    flat = tf.cast(pieces.flat_values, tf.int32)[: max_length - 2]
    piece_tags = tf.repeat(tf.cast(tags, tf.int32), counts)[: max_length - 2]
    first = tf.cast(tf.ragged.range(counts).flat_values == 0, tf.float32)[: max_length - 2]
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    token_ids = tf.concat([[cls], flat, [sep]], axis=0)
    piece_tags = tf.concat([[0], piece_tags, [0]], axis=0)
    weights = tf.concat([[0.0], first, [0.0]], axis=0)
    padding = [[0, max_length - tf.shape(token_ids)[0]]]
    return (
        tf.pad(token_ids, padding, constant_values=pad),
        tf.pad(piece_tags, padding),
        tf.pad(weights, padding),
    )


def _empty_targets(tasks, max_length):
    """Label 0 with weight 0 for every head (shape [] for sentence, [L] for token heads)."""
    shape = {"sentence": [], "token": [max_length]}
    y = {t.name: tf.zeros(shape[t.kind], tf.int32) for t in tasks}
    w = {t.name: tf.zeros(shape[t.kind], tf.float32) for t in tasks}
    return y, w


def encode_examples(dataset, task, tasks, preprocessor, max_length):
    """Map a TFDS split of `task` to (features, labels, weights) for all `tasks`' heads."""
    tokenizer = preprocessor.tokenizer

    def sentence_example(example):
        x = preprocessor(example["text"])
        y, w = _empty_targets(tasks, max_length)
        y[task.name] = tf.cast(example["label"], tf.int32)
        w[task.name] = tf.constant(1.0)
        return x, y, w

    def token_example(example):
        token_ids, tags, weights = align_word_tags(
            clean_text(example["tokens"]), example["ner"], tokenizer, max_length
        )
        x = {
            "token_ids": token_ids,
            "padding_mask": token_ids != tokenizer.pad_token_id,
            "segment_ids": tf.zeros_like(token_ids),
        }
        y, w = _empty_targets(tasks, max_length)
        y[task.name], w[task.name] = tags, weights
        return x, y, w

    def cast(x, y, w):
        return {f: tf.cast(x[f], tf.int32) for f in FEATURES}, y, w

    encode = sentence_example if task.kind == "sentence" else token_example
    return dataset.map(encode, num_parallel_calls=tf.data.AUTOTUNE).map(cast)


def sampling_weights(sizes, strategy="proportional", temperature=2.0):
    """Probability of drawing the next example from each task.

    proportional: by size (big tasks dominate); round_robin: equal; temperature:
    size^(1/T), between the two (T=1 is proportional, large T tends to equal).
    """
    if strategy not in SAMPLING:
        raise InputError(f"unknown sampling {strategy!r}; choose from: {', '.join(SAMPLING)}.")
    sizes = np.asarray(sizes, dtype=np.float64)
    if strategy == "round_robin":
        raw = np.ones_like(sizes)
    elif strategy == "temperature":
        if temperature <= 0:
            raise InputError(f"temperature must be > 0, got {temperature}.")
        raw = sizes ** (1.0 / temperature)
    else:
        raw = sizes
    weights = raw / raw.sum()
    if not np.isfinite(weights).all():
        raise InputError(
            f"sampling weights are not finite ({strategy}, temperature {temperature})."
        )
    return weights


def trim_batch(x, y, w):
    """Cut a batch (inputs and token-level targets) to its longest sentence."""
    x = trim_padding(x)
    length = tf.shape(x["token_ids"])[1]
    cut = {k: (v[:, :length] if v.shape.rank == 2 else v) for k, v in y.items()}
    cut_w = {k: (v[:, :length] if v.shape.rank == 2 else v) for k, v in w.items()}
    return x, cut, cut_w


def materialize(dataset, chunk=4096):
    """Read a finite dataset once into memory and serve it from tensors.

    Tokenization then happens once per run instead of once per epoch (our largest split,
    30k tweets at 128 word pieces, is under 100 MB), and the order is fixed.
    """
    parts = list(dataset.batch(chunk).as_numpy_iterator())
    if not parts:
        return dataset.take(0), 0
    joined = tf.nest.map_structure(lambda *xs: np.concatenate(xs), *parts)
    return tf.data.Dataset.from_tensor_slices(joined), sum(len(p[0]["token_ids"]) for p in parts)


def task_split(task, tasks, split, preprocessor, max_length, data_dir=None, max_examples=None,
               embed=None):  # fmt: skip
    """One task's split, encoded for all heads (unbatched, in memory), and its size.

    With `embed` (a function of a batch of BERT inputs), each example's inputs are
    replaced by their embedding, computed once here (see `embedding_cache`).
    """
    dataset = load(task.dataset, split, data_dir)
    if max_examples:
        dataset = dataset.take(max_examples)
    dataset, size = materialize(encode_examples(dataset, task, tasks, preprocessor, max_length))
    if embed is not None and size:
        dataset = embedding_cache(dataset, embed)
    return dataset, size


def embedding_cache(dataset, embed, batch_size=64):
    """(inputs, y, w) examples -> (embed(inputs), y, w), computed once, kept in memory.

    For a frozen backbone in inference mode the pooled embedding of an example never
    changes, so the heads can train on it directly: no backbone pass per epoch.
    """
    vectors, targets = [], []
    for x, y, w in dataset.batch(batch_size):
        vectors.append(np.asarray(embed(trim_padding(x))))
        targets.append(tf.nest.map_structure(np.asarray, (y, w)))
    y, w = tf.nest.map_structure(lambda *parts: np.concatenate(parts), *targets)
    return tf.data.Dataset.from_tensor_slices((np.concatenate(vectors), y, w))


def training_stream(
    tasks,
    preprocessor,
    batch_size=32,
    max_length=128,
    sampling="proportional",
    temperature=2.0,
    max_examples=None,
    seed=0,
    data_dir=None,
    embed=None,
):
    """Mixed multi-task training batches; returns (dataset, steps_per_epoch, sizes).

    One epoch draws as many examples as the (capped) training sets hold together, from
    each task with `sampling_weights`; the order is fixed by `seed`. With `embed`, the
    batches hold cached embeddings instead of BERT inputs (see `embedding_cache`).
    """
    parts, sizes = [], []
    for index, task in enumerate(tasks):
        encoded, size = task_split(
            task, tasks, "train", preprocessor, max_length, data_dir, max_examples, embed
        )
        if size == 0:
            raise InputError(f"task {task.name!r} has no training examples.")
        parts.append(encoded.shuffle(size, seed=seed + index).repeat())
        sizes.append(size)
    weights = sampling_weights(sizes, sampling, temperature)
    if batch_size > sum(sizes):  # one batch of copies would only fill memory
        print(f"notice: batch size {batch_size} capped at the {sum(sizes)} training examples")
        batch_size = sum(sizes)
    if sampling == "round_robin":
        choice = tf.data.Dataset.range(len(tasks)).repeat()
        mixed = tf.data.Dataset.choose_from_datasets(parts, choice)
    else:
        mixed = tf.data.Dataset.sample_from_datasets(parts, weights.tolist(), seed=seed)
    steps = max(1, sum(sizes) // batch_size)
    stream = mixed.batch(batch_size, drop_remainder=True)
    if embed is None:
        stream = stream.map(trim_batch, num_parallel_calls=tf.data.AUTOTUNE)
    stream = stream.prefetch(tf.data.AUTOTUNE)
    return stream, steps, dict(zip([t.name for t in tasks], sizes, strict=True))


def pad_batch_to_multiple(multiple):
    """A batch map that pads with zero-weight copies of row 0 up to a multiple of `multiple`.

    Keras' `evaluate` under `MirroredStrategy` fails on a batch that does not split evenly
    across replicas; zero-weight rows change no weighted metric.
    """

    def pad(x, y, w):
        size = tf.shape(x["token_ids"])[0]
        extra = (multiple - size % multiple) % multiple

        def grow(value, zero=False):
            filler = tf.repeat(value[:1], extra, axis=0)
            return tf.concat([value, tf.zeros_like(filler) if zero else filler], axis=0)

        x = {k: grow(v) for k, v in x.items()}
        y = {k: grow(v) for k, v in y.items()}
        w = {k: grow(v, zero=True) for k, v in w.items()}
        return x, y, w

    return pad


def evaluation_stream(tasks, split, preprocessor, batch_size=32, max_length=128, data_dir=None,
                      max_examples=None, only=None, replicas=1, embed=None):  # fmt: skip
    """Every example of `split` for each task in turn (or only task `only`), batched.

    Returns (dataset, number of examples); the dataset is None when there are none.
    With `replicas` > 1, batches are padded to split evenly (see pad_batch_to_multiple).
    """
    dataset, total = None, 0
    for task in tasks:
        if only is not None and task.name != only:
            continue
        encoded, size = task_split(
            task, tasks, split, preprocessor, max_length, data_dir, max_examples, embed
        )
        dataset = encoded if dataset is None else dataset.concatenate(encoded)
        total += size
    if not total:
        return None, 0
    batches = dataset.batch(batch_size)
    if embed is None:
        batches = batches.map(trim_batch, num_parallel_calls=tf.data.AUTOTUNE)
    if replicas > 1:
        batches = batches.map(pad_batch_to_multiple(replicas))
    return batches.prefetch(tf.data.AUTOTUNE), total
