"""The multi-task `tf.data` stream: every example carries a label and a weight for every head.

The datasets are disjoint (a tweet has no topic label), so each example gets weight 0 for
the heads it has no label for; plain `model.fit` with one loss per output then trains each
head only on its own examples. NER tags are word-level: the first word piece of a word
carries the tag, other pieces, [CLS], [SEP] and padding get weight 0.
"""

import weakref

import numpy as np
import tensorflow as tf

from mtl_keras.backends import batch_length
from mtl_keras.data.loading import without_autotuning
from mtl_keras.data.orders import gather, pass_orders, reshuffled_passes, task_draws
from mtl_keras.encoding.preprocessing import (
    FEATURES,
    NEGATIVE_FEATURES,
    PAIR_FEATURES,
    trim_padding,
)
from mtl_keras.errors import InputError
from mtl_keras.tasks.registry import negatives_per_example

SAMPLING = ("proportional", "round_robin", "temperature")


def _empty_targets(tasks, max_length):
    """Target 0 with weight 0 for every task (each kind's shape: see `Kind.empty_target`)."""
    empty = {t.name: t.spec.empty_target(t, max_length) for t in tasks}
    return {n: y for n, (y, _) in empty.items()}, {n: w for n, (_, w) in empty.items()}


def has_pairs(tasks):
    return any(task.spec.second_text for task in tasks)


_TRACED = weakref.WeakKeyDictionary()


def traced(preprocessor):
    """`preprocessor` as one `tf.function` of a vector of texts, traced once per preprocessor.

    Called eagerly, its graph and kernels are built once and reused for every split a run
    reads. A `Dataset.map` that tokenizes builds them anew for every iterator: keras-hub's
    word-splitting regular expressions alone took about 0.4 s to compile each time, and a
    run reads six or more splits.
    """
    if preprocessor not in _TRACED:
        signature = [tf.TensorSpec([None], tf.string)]
        owner = weakref.ref(preprocessor)  # the cache must not keep its key alive
        _TRACED[preprocessor] = tf.function(lambda text: owner()(text), input_signature=signature)
    return _TRACED[preprocessor]


def encode_batch(batch, task, tasks, preprocessor, max_length):
    """A batch of `task`'s raw examples -> (features, labels, weights) for all `tasks`' heads,
    called eagerly (see `traced`)."""
    tokenize = traced(preprocessor)
    x, target, weight = task.spec.encode(task, batch, tokenize, preprocessor.tokenizer, max_length)
    size = tf.shape(weight)[0]
    empty = tokenize(tf.constant([""])) if has_pairs(tasks) else None
    return for_all_heads(task, tasks, max_length, (x, target, weight), empty, size)


def encode_examples(dataset, task, tasks, preprocessor, max_length):
    """`dataset` mapped one example at a time, for a kind that cannot take a batch
    (`Kind.batch_encode` False: word tags are aligned sentence by sentence)."""
    empty = traced(preprocessor)(tf.constant([""])) if has_pairs(tasks) else None

    def encode(example):
        one = task.spec.encode(task, example, None, preprocessor.tokenizer, max_length)
        return for_all_heads(task, tasks, max_length, one, empty)

    return dataset.map(encode, num_parallel_calls=tf.data.AUTOTUNE)


def for_all_heads(task, tasks, max_length, encoded, empty, size=None):
    """`task`'s (inputs, target, weight) -> (features, labels, weights) for every head:
    target 0 with weight 0 for the other tasks' heads.

    With a pair task among `tasks`, every example also carries `pair_*` inputs: the
    second text of a pair, or `empty` (the inputs of an empty text, [CLS][SEP]: a finite
    embedding whose cosine gets weight 0) for the examples of the other tasks. With hard
    negatives, every example carries k `negative_*` texts the same way. `size`: the
    batch size of a batch, None for a single example.
    """
    x, target, weight = encoded

    def rows(value):  # one copy per example of a batch
        return value if size is None else tf.repeat(value[None], size, axis=0)

    y, w = _empty_targets(tasks, max_length)
    y, w = ({n: rows(v) for n, v in d.items()} for d in (y, w))
    y[task.name], w[task.name] = target, weight
    negatives = negatives_per_example(tasks)
    if empty is not None:
        for f, p, n in zip(FEATURES, PAIR_FEATURES, NEGATIVE_FEATURES, strict=True):
            x.setdefault(p, rows(empty[f][0]))
            if negatives:
                x.setdefault(n, rows(tf.tile(empty[f][:1], [negatives, 1])))
    names = FEATURES + (PAIR_FEATURES if empty is not None else ())
    names += NEGATIVE_FEATURES if negatives else ()
    return {f: tf.cast(x[f], tf.int32) for f in names}, y, w


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


def batch_trimmer(tasks):
    """A batch map that cuts the inputs, and the targets and weights of the tasks that
    label every token, to the batch's longest sentence."""
    per_token = {task.name for task in tasks if task.spec.reads_sequence}

    def trim_batch(x, y, w):
        x = trim_padding(x)
        length = tf.shape(x["token_ids"])[1]
        cut = {k: (v[:, :length] if k in per_token else v) for k, v in y.items()}
        cut_w = {k: (v[:, :length] if k in per_token else v) for k, v in w.items()}
        return x, cut, cut_w

    return trim_batch


def split_arrays(task, tasks, split, preprocessor, max_length, data_dir=None,
                 max_examples=None, where=None):  # fmt: skip
    """One task's split, encoded for all heads, read once into numpy (x, y, w).

    Tokenization then happens once per run instead of once per epoch (our largest split,
    30k tweets at 128 word pieces, is under 100 MB). None when the split is empty.
    `where` (a function of a raw example to a bool tensor) keeps a subset.
    """
    dataset = task.examples(split, data_dir)
    if where is not None:
        dataset = dataset.filter(where)
    if max_examples:
        dataset = dataset.take(max_examples)
    if task.spec.batch_encode:
        parts = [
            tf.nest.map_structure(
                np.asarray, encode_batch(b, task, tasks, preprocessor, max_length)
            )
            for b in dataset.batch(4096)
        ]
    else:
        encoded = encode_examples(dataset, task, tasks, preprocessor, max_length)
        parts = list(encoded.batch(4096).as_numpy_iterator())
    return join_arrays(parts) if parts else None


def join_arrays(parts):
    return tf.nest.map_structure(lambda *xs: np.concatenate(xs), *parts)


def array_size(arrays):
    return 0 if arrays is None else len(arrays[0]["token_ids"])


def task_split(task, tasks, split, preprocessor, max_length, data_dir=None, max_examples=None,
               embed=None):  # fmt: skip
    """One task's split as an in-memory dataset of single examples, and its size.

    The dataset is None when the split is empty. With `embed` (a function of a batch of
    BERT inputs), each example's inputs are replaced by their embedding, computed once
    here (see `embedding_cache`).
    """
    arrays = split_arrays(task, tasks, split, preprocessor, max_length, data_dir, max_examples)
    if arrays is None:
        return None, 0
    if embed is not None:
        return embedding_cache(arrays, embed), array_size(arrays)
    return tf.data.Dataset.from_tensor_slices(arrays), array_size(arrays)


def embedding_cache(arrays, embed, batch_size=64):
    """(inputs, y, w) arrays -> dataset of (embed(inputs), y, w), computed once, in memory.

    For a frozen backbone in inference mode the pooled embedding of an example never
    changes, so the heads can train on it directly: no backbone pass per epoch. Examples
    are embedded longest first, each batch cut to its longest (as `encode` does), and
    the embeddings are put back in the examples' order.
    """
    x, y, w = arrays
    lengths = x["padding_mask"].sum(axis=1)
    order = np.argsort(-lengths, kind="stable")
    vectors = [None] * len(order)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        longest = batch_length(lengths[index], x["token_ids"].shape[1])
        batch = {f: x[f][index, :longest] for f in FEATURES}
        for i, vector in zip(index, embed(batch), strict=True):
            vectors[i] = vector
    return tf.data.Dataset.from_tensor_slices((np.stack(vectors), y, w))


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
    length_buckets=True,
):
    """Mixed multi-task training batches; returns (dataset, steps_per_epoch, sizes).

    `max_examples` caps each task's training set: one number for all, or {task: cap}; a
    task capped at 0 is left out of the stream (held: its size is 0).
    One epoch draws as many examples as the (capped) training sets hold together, from
    each task with `sampling_weights`; the order is fixed by `seed`. With
    `length_buckets`, the shuffled mixed stream is grouped into batches of similar length
    (see `bucket_boundaries`), so each batch, cut to its longest sentence, carries little
    padding; the mix of tasks and the shuffling are kept. With `embed`, the batches hold
    cached embeddings instead of BERT inputs (see `embedding_cache`).
    """
    trained = training_parts(tasks, preprocessor, max_length, max_examples, seed, data_dir, embed)
    parts, sizes = [part for part, _ in trained.values()], [size for _, size in trained.values()]
    weights = sampling_weights(sizes, sampling, temperature)
    if batch_size > sum(sizes):  # one batch of copies would only fill memory
        print(f"notice: batch size {batch_size} capped at the {sum(sizes)} training examples")
        batch_size = sum(sizes)
    if sampling == "round_robin":
        choice = tf.data.Dataset.range(len(parts)).repeat()
    else:
        choice = task_draws(weights, seed)
    mixed = tf.data.Dataset.choose_from_datasets(parts, choice)
    steps = max(1, sum(sizes) // batch_size)
    if embed is None and length_buckets:
        boundaries = bucket_boundaries(max_length, pairs=has_pairs(tasks))
        stream = mixed.bucket_by_sequence_length(
            lambda x, y, w: length_key(x, max_length),
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            drop_remainder=True,
        )
    else:
        stream = mixed.batch(batch_size, drop_remainder=True)
    if embed is None:
        stream = stream.map(batch_trimmer(tasks), num_parallel_calls=tf.data.AUTOTUNE)
    stream = without_autotuning(stream.prefetch(tf.data.AUTOTUNE))
    return stream, steps, {t.name: trained.get(t.name, (None, 0))[1] for t in tasks}


def training_parts(tasks, preprocessor, max_length, max_examples, seed, data_dir, embed):
    """{task: (its training examples reshuffled each pass, how many)} of the tasks that
    train; a task capped at 0 is held (left out)."""
    parts = {}
    for index, task in enumerate(tasks):
        cap = max_examples.get(task.name) if isinstance(max_examples, dict) else max_examples
        if cap == 0:
            continue
        if embed is None and task.spec.batch_encode and tokenizes_in_stream(task, cap, data_dir):
            part, size = tokenized_stream(task, tasks, preprocessor, max_length, data_dir, cap,
                                          seed + index)  # fmt: skip
        else:
            encoded, size = task_split(
                task, tasks, "train", preprocessor, max_length, data_dir, cap, embed
            )
            part = reshuffled_passes(encoded, size, seed + index) if size else None
        if size == 0:
            raise InputError(f"task {task.name!r} has no training examples.")
        parts[task.name] = (part, size)
    if not parts:
        raise InputError("every task is held at 0 training examples: nothing would train.")
    return parts


ENCODE_BATCH = 256  # examples tokenized per call in the stream
# Training sets above this many examples are tokenized in the stream, smaller ones once up
# front. Each new iterator of the stream (each `fit`) builds the tokenizer's kernels again,
# 0.6 s a task; up front, 80,000 tweets took 3.6 s and 61 MB at 64 word pieces (AMD EPYC,
# 2 cores): a million would take 45 s and 770 MB before the first step.
STREAM_ABOVE = 100_000


def tokenizes_in_stream(task, cap, data_dir):
    """Whether `task`'s training examples are tokenized in the stream (a big training set)."""
    size = task.size("train", data_dir)
    size = size if cap is None or size < 0 else min(size, cap)
    return size < 0 or size > STREAM_ABOVE  # < 0: not known without reading it all


def tokenized_stream(task, tasks, preprocessor, max_length, data_dir, cap, seed):
    """(a task's training examples, tokenized as the stream draws them, how many).

    Only the raw examples are held (about the file's size); each pass draws them in its
    own order (`pass_orders`) and batches of them are tokenized inside `tf.data`: a big
    file trains at once, never holding a tokenized copy. The examples come out as from
    tokenizing the whole split first, in the same order."""
    whole = task.example_tensors("train", data_dir)
    size = len(next(iter(whole.values())))
    if cap is not None and cap < size:
        whole, size = {field: value[:cap] for field, value in whole.items()}, cap
    if size == 0:
        return None, 0

    def encode(batch):
        return encode_batch(batch, task, tasks, preprocessor, max_length)

    raw = pass_orders(size, seed).batch(ENCODE_BATCH).map(lambda i: gather(whole, i))
    return raw.map(encode, num_parallel_calls=tf.data.AUTOTUNE).unbatch(), size


def bucket_boundaries(max_length, width=16, pairs=False):
    """Length buckets [1, 17), [17, 33), ...: a batch only holds lengths from one bucket.

    Narrow enough that a batch wastes at most `width` pieces per row, wide enough that
    buckets fill quickly (tweets and news sentences spread over 10-60 pieces). With
    `pairs`, the same buckets again above `max_length` hold the pairs (see `length_key`).
    """
    single = list(range(width + 1, max_length + 1, width))
    if not pairs:
        return single
    offset = max_length + 1
    return [*single, offset, *(b + offset for b in single)]


def length_key(x, max_length):
    """Word pieces of the text (per example, or per row of a batch); the order in which
    training buckets and evaluation batches are formed.

    A pair example (a second text longer than [CLS][SEP]) counts `max_length + 1` more,
    so pairs and single texts fall into batches of their own: a batch of single texts
    then runs the second encoder pass over [CLS][SEP] alone, not over padding to the
    longest second text.
    """
    length = tf.reduce_sum(tf.cast(x["padding_mask"], tf.int32), axis=-1)
    if "pair_padding_mask" in x:
        second = tf.reduce_sum(tf.cast(x["pair_padding_mask"], tf.int32), axis=-1)
        length += tf.cast(second > 2, tf.int32) * (max_length + 1)
    return length


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
                      max_examples=None, only=None, replicas=1, embed=None,
                      where=None):  # fmt: skip
    """Every example of `split` for each task (or only task `only`), longest first, batched.

    Sorted by length like `SentenceEncoder.encode`: each batch is cut to its longest
    sentence, so similar lengths together waste the least padding; the weighted metrics
    do not depend on the order. Returns (dataset, {task name: examples}); the dataset is
    None when there are no examples. With `replicas` > 1, batches are padded to split
    evenly (see pad_batch_to_multiple). `where` keeps a subset (see `split_arrays`).
    """
    parts, sizes = [], {}
    for task in tasks:
        if only is not None and task.name != only:
            continue
        arrays = split_arrays(
            task, tasks, split, preprocessor, max_length, data_dir, max_examples, where
        )
        sizes[task.name] = array_size(arrays)
        parts += [] if arrays is None else [arrays]
    if not parts:
        return None, sizes
    joined = join_arrays(parts)
    order = np.argsort(-np.asarray(length_key(joined[0], max_length)), kind="stable")
    joined = tf.nest.map_structure(lambda a: a[order], joined)
    if embed is not None:
        dataset = embedding_cache(joined, embed)
    else:
        dataset = tf.data.Dataset.from_tensor_slices(joined)
    batches = dataset.batch(batch_size)
    if embed is None:
        batches = batches.map(batch_trimmer(tasks), num_parallel_calls=tf.data.AUTOTUNE)
    if replicas > 1:
        batches = batches.map(pad_batch_to_multiple(replicas))
    return without_autotuning(batches.prefetch(tf.data.AUTOTUNE)), sizes
