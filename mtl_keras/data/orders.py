"""Orders of the training stream fixed by a seed, the same for every iterator made of it.

`shuffle(seed)` and `sample_from_datasets(seed)` draw a new order for each new iterator,
so which batches a run saw depended on how often Keras (or a resumed run) had iterated
the stream before, and data-parallel processes could not be held to one process's
batches. These orders are stateless functions of the seed and the pass number.
"""

import numpy as np
import tensorflow as tf


def reshuffled_passes(dataset, size, seed):
    """`dataset` (in memory) repeated forever, each pass in its own order (`pass_orders`)."""
    whole = dataset.batch(size).get_single_element()  # every example, one tensor per field
    return pass_orders(size, seed).map(lambda index: gather(whole, index))


def pass_orders(size, seed):
    """The indices 0..size-1 forever, each pass in its own order, fixed by `seed` and the
    pass number (a stateless permutation of the indices)."""

    def one_pass(number):
        key = tf.stack([tf.constant(seed, tf.int64), number])
        order = tf.data.Dataset.range(size)
        return order.map(lambda i: tf.random.experimental.index_shuffle(i, key, size - 1))

    return tf.data.Dataset.counter().flat_map(one_pass)


def gather(whole, index):
    """The examples at `index` (one or a vector) of `whole` (one tensor per field)."""
    return tf.nest.map_structure(lambda field: tf.gather(field, index), whole)


def task_draws(weights, seed):
    """Endless task indices drawn with probabilities `weights`, the same for every iterator."""
    edges = tf.constant(np.cumsum(weights)[:-1], tf.float64)
    last = len(weights) - 1

    def draw(value):  # `Dataset.random` gives uniform whole numbers in [0, 2**32)
        uniform = tf.cast(value % 2**32, tf.float64) / 2.0**32
        return tf.minimum(tf.searchsorted(edges, uniform[None], side="right")[0], last)

    return tf.data.Dataset.random(seed=seed).map(lambda v: tf.cast(draw(v), tf.int64))
