"""Hugging Face `datasets` objects as `tf.data`, through Arrow (the library stays optional).

A `datasets.Dataset` is an Arrow table (memory-mapped from its cache), and an
`IterableDataset` streams Arrow batches: both are read a column at a time into whole-split
tensors, as a user's own files are (`files.example_tensors`), never a Python object per
row. The library is not imported here: a user who passes its objects has it installed.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf

from mtl_keras.data.columns import list_offsets, multi_hot
from mtl_keras.data.files import text_tensor
from mtl_keras.errors import InputError

BATCH = 1 << 16  # rows per Arrow batch read from an IterableDataset


def is_hf_dataset(value):
    """True for a `datasets.Dataset` or `datasets.IterableDataset` (by type, no import)."""
    kind = type(value)
    return kind.__module__.split(".")[0] == "datasets" and kind.__name__ in (
        "Dataset",
        "IterableDataset",
    )


def arrow_table(dataset):
    """The rows of a Hugging Face dataset as one pa.Table (its selection and order kept)."""
    arrow = dataset.with_format("arrow")
    if type(dataset).__name__ == "IterableDataset":
        batches = list(arrow.iter(batch_size=BATCH))
        return pa.concat_tables(batches) if batches else None
    return arrow[:] if len(dataset) else None


def class_names(dataset, field):
    """The label names a `ClassLabel` feature (or a list of them) declares, or ()."""
    feature = (dataset.features or {}).get(field)
    feature = getattr(feature, "feature", feature)  # a list of labels: its item
    return tuple(getattr(feature, "names", None) or ())


def as_tf_dataset(dataset, spec, num_classes, where):
    """A Hugging Face dataset as a `tf.data.Dataset` of the kind's fields (`spec.signature`)."""
    table, signature = arrow_table(dataset), spec.signature(num_classes)
    if table is None:
        empty = {f: tf.zeros([0, *s.shape], s.dtype) for f, s in signature.items()}
        return tf.data.Dataset.from_tensor_slices(empty)
    tensors = {}
    for field, wanted in signature.items():
        if field not in table.column_names:
            raise InputError(f"{where} has no {field!r} column (its columns: "
                             f"{', '.join(table.column_names)}).")  # fmt: skip
        tensors[field] = field_tensor(table.column(field).combine_chunks(), wanted, num_classes,
                                      f"{where} column {field!r}")  # fmt: skip
    return tf.data.Dataset.from_tensor_slices(tensors)


def field_tensor(column, wanted, num_classes, where):
    """One Arrow column as the tensor of every example that `wanted` (a TensorSpec) asks."""
    try:
        if wanted.shape.rank == 1 and wanted.shape[0] is None:  # a list per example
            flat = pc.list_flatten(column)
            values = field_tensor(flat, tf.TensorSpec([], wanted.dtype), num_classes, where)
            splits = list_offsets(column).to_numpy().astype(np.int64)
            return tf.RaggedTensor.from_row_splits(values, splits)
        if wanted.shape.rank == 1:  # multi-hot: from a list of label ids
            ids = pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(np.int64)
            check_ids(ids, num_classes, where)
            return tf.constant(multi_hot(column, ids, num_classes))
        if wanted.dtype == tf.string:
            return text_tensor(column.cast(pa.string()))
        values = column.to_numpy(zero_copy_only=False).astype(wanted.dtype.as_numpy_dtype)
        if wanted.dtype.is_integer and len(values):
            check_ids(values, num_classes, where)
        return tf.constant(values)
    except InputError:
        raise
    except (pa.ArrowException, ValueError, TypeError, IndexError) as error:
        raise InputError(f"{where} is not {describe(wanted)}: {error}".split("\n")[0]) from None


def check_ids(ids, num_classes, where):
    """Label ids all name a label (an unlabelled split's -1 names none)."""
    if len(ids) and not 0 <= ids.min() <= ids.max() < num_classes:
        raise InputError(
            f"{where} holds label ids {ids.min()} to {ids.max()}, outside [0, {num_classes}): "
            "drop unlabelled rows (-1) or give all the labels."
        )


def describe(spec):
    item = "text" if spec.dtype == tf.string else spec.dtype.name
    return f"a list of {item} per example" if spec.shape.rank else f"one {item} per example"
