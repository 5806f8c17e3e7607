"""A user's file as columns: read by pyarrow, checked a column at a time.

pyarrow's CSV and JSON readers parse in C++ on every core straight into Arrow columns
(one buffer of text per column, no Python object per row): a million-row CSV in about a
second, where the row reader took about a minute and a gigabyte of dicts. The checks are
then vectorised (`pyarrow.compute`). The row reader (`files.read_rows` and each kind's
`parse`) stays the reference: when pyarrow cannot read a file exactly as it would, or a
check finds a bad value, `Fallback` sends the file to the row reader, which reads it and
raises the one-line error naming the line (or accepts what pyarrow was stricter about).
A good file is read once; tests/columns_test.py holds the two readers to the same result.
"""

import csv
import dataclasses
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

from mtl_keras.data.progress import RowProgress
from mtl_keras.data.splits import split_of

# What Python's str.strip() and str.split() treat as whitespace (`str.isspace`, as code
# point ranges; a test holds them to it), as an RE2 class: the checks must call a text
# empty exactly when the row reader does.
SPACE_RANGES = ((0x09, 0x0D), (0x1C, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
                (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F),
                (0x3000, 0x3000))  # fmt: skip
SPACE = "[" + "".join(f"\\x{{{low:x}}}-\\x{{{high:x}}}" for low, high in SPACE_RANGES) + "]"
# Line breaks Python's `splitlines` honours besides \n (the JSONL row reader splits on them).
ODD_BREAKS = (b"\r", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", "\x85".encode(),
              "\u2028".encode(), "\u2029".encode())  # fmt: skip


class Fallback(Exception):
    """This file goes to the row reader (it decides: an error naming the line, or rows)."""


@dataclasses.dataclass
class Columns:
    """A file's examples as Arrow columns, named by the kind's columns, normalised as the
    kind's `parse` returns them (labels stripped, scores as floats, word lists split).

    `rows` is each example's position among the file's rows (an error names its line).
    """

    path: str
    kind: str
    data: dict
    rows: np.ndarray

    def __len__(self):
        return len(self.rows)

    def take(self, index):
        index = np.asarray(index, dtype=np.int64)
        data = {name: column.take(pa.array(index)) for name, column in self.data.items()}
        return Columns(self.path, self.kind, data, self.rows[index])

    def pylist(self, name):
        return self.data[name].to_pylist()


def read_table(path, suffix):
    """The file as a pa.Table of its own columns; `Fallback` where pyarrow would read it
    otherwise than the row reader."""
    try:
        if suffix == ".jsonl":
            return jsonl_table(path)
        return table_of_csv(path, "\t" if suffix == ".tsv" else ",")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        raise Fallback() from None


def table_of_csv(path, delimiter):
    with open(path, "rb") as handle:
        head = handle.read(1 << 20).decode("utf-8-sig", "ignore")
    # The header row, as Python's csv reads it, so that every column is read as text
    # (pyarrow's type inference would turn "007" into 7).
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    names = next(csv.reader(io.StringIO(head, newline=""), delimiter=delimiter, quoting=quoting),
                 None)  # fmt: skip
    if not names or len(set(names)) != len(names):
        raise Fallback()
    parse = pa_csv.ParseOptions(delimiter=delimiter, quote_char=delimiter != "\t" and '"',
                                newlines_in_values=delimiter != "\t")  # fmt: skip
    convert = pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in names}, null_values=[],
        strings_can_be_null=False, quoted_strings_can_be_null=False,
    )  # fmt: skip
    source = pa.input_stream(path)
    reader = pa_csv.open_csv(source, read_options=pa_csv.ReadOptions(block_size=BLOCK),
                             parse_options=parse, convert_options=convert)  # fmt: skip
    table = read_batches(reader, source, path)
    if table.column_names != names:
        raise Fallback()
    return table


BLOCK = 16 << 20  # bytes parsed at a time (a progress report at most per block)


def read_batches(reader, source, path):
    """A streaming reader's batches as one table, reporting progress (`RowProgress`)."""
    size = max(Path(path).stat().st_size, 1)
    progress, batches, rows = RowProgress(f"reading {Path(path).name}"), [], 0
    for batch in reader:
        batches.append(batch)
        rows += batch.num_rows
        progress.update(rows, source.tell() / size)
    progress.done(rows)
    return pa.Table.from_batches(batches, schema=reader.schema)


def jsonl_table(path):
    raw = open(path, "rb").read()
    if any(odd in raw for odd in ODD_BREAKS):
        raise Fallback()
    lines = sum(1 for line in raw.split(b"\n") if line.strip())
    source = pa.BufferReader(raw)
    reader = pa_json.open_json(source, read_options=pa_json.ReadOptions(block_size=BLOCK))
    table = read_batches(reader, source, path)
    if table.num_rows != lines:  # two objects on a line, or one over several
        raise Fallback()
    return table


def first_row(table):
    """A row with a value in every column the file has anywhere (a kind's `parse` sees the
    columns it would refuse, e.g. a JSONL key only some rows have)."""
    row = {}
    for name in table.column_names:
        column = table.column(name)
        if column.null_count < len(column):
            first = 0 if not column.null_count else pc.index(pc.is_valid(column), True).as_py()
            row[name] = column[first].as_py()
    return row


def present_columns(table):
    """The columns of the table's first row (what the row reader reads the kind from)."""
    return [name for name in table.column_names if table.column(name)[0].is_valid]


def checked(table, kind_spec):
    """{column: normalised pa.Array} of the kind's columns (and its `extra_columns`, texts),
    each checked; `Fallback` on the first column that has a bad value."""
    data, extra = {}, kind_spec.extra_columns(table.column_names, "")
    typed = [*zip(kind_spec.columns, kind_spec.column_types, strict=True),
             *((theirs, "text") for theirs in extra.values())]  # fmt: skip
    for name, of_type in typed:
        column = table.column(name)
        if of_type in ("labels", "words", "tags"):  # lists are rebuilt from one array
            column = column.combine_chunks()
        if column.null_count:
            raise Fallback()
        data[name] = CHECKS[of_type](column)
    if "words" in kind_spec.column_types and "tags" in kind_spec.column_types:
        words, tags = (data[n] for n, t in zip(kind_spec.columns, kind_spec.column_types,
                                               strict=True) if t in ("words", "tags"))  # fmt: skip
        if not pc.all(pc.equal(pc.list_value_length(words), pc.list_value_length(tags))).as_py():
            raise Fallback()
    for ours, theirs in extra.items():  # in order, under our names
        data[ours] = data.pop(theirs)
    return data


def blank(strings):
    """True where a string is empty or whitespace only (as Python's `str.strip` sees it)."""
    return pc.match_substring_regex(strings, f"^{SPACE}*$")


def strip(strings):
    return pc.replace_substring_regex(strings, f"^{SPACE}+|{SPACE}+$", "")


def is_text(column):
    return pa.types.is_string(column.type) or pa.types.is_large_string(column.type)


def text_column(column):
    if not is_text(column) or pc.any(blank(column)).as_py():
        raise Fallback()
    return column.cast(pa.string())


def label_column(column):
    """A label: a string (stripped), or a whole number in JSON."""
    if pa.types.is_integer(column.type):
        return column.cast(pa.string())
    column = text_column(column)
    return strip(column)


def score_column(column):
    """A finite number: a JSON number, or text pyarrow reads as one (other text Python's
    `float` may still read: the row reader decides)."""
    if not (is_text(column) or pa.types.is_integer(column.type)
            or pa.types.is_floating(column.type)):  # fmt: skip
        raise Fallback()
    scores = column.cast(pa.float64())
    if not pc.all(pc.is_finite(scores)).as_py():
        raise Fallback()
    return scores


def label_list_column(column):
    """Labels: `a|b|c` in CSV (empty parts dropped), a JSON list (of strings or numbers)."""
    if is_text(column):
        parts = pc.split_pattern(column, "|")
        values = pc.list_flatten(parts)
        keep = pc.invert(blank(values))
        return rebuild(parts, pc.filter(values, keep), keep, strip)
    if not pa.types.is_list(column.type) or column.type.value_type == pa.null():
        if pa.types.is_list(column.type) and not pc.max(pc.list_value_length(column)).as_py():
            return column.cast(pa.list_(pa.string()))  # every list empty
        raise Fallback()
    values = pc.list_flatten(column)
    if values.null_count:
        raise Fallback()
    labels = label_column(values)
    return pa.ListArray.from_arrays(list_offsets(column), labels)


def word_list_column(column):
    """Words (or tags): whitespace-separated in CSV, a JSON list of non-blank strings;
    never empty."""
    if is_text(column):
        parts = pc.split_pattern_regex(column, f"{SPACE}+")
        values = pc.list_flatten(parts)
        keep = pc.not_equal(values, "")
        words = rebuild(parts, pc.filter(values, keep), keep)
    elif pa.types.is_list(column.type) and is_text(pc.list_flatten(column)):
        values = pc.list_flatten(column)
        if values.null_count or pc.any(blank(values)).as_py():
            raise Fallback()
        words = pa.ListArray.from_arrays(list_offsets(column), values.cast(pa.string()))
    else:
        raise Fallback()
    if not pc.all(pc.greater(pc.list_value_length(words), 0)).as_py():
        raise Fallback()
    return words


def list_offsets(lists):
    """Offsets of a list array (from its lengths: sliced arrays carry shifted offsets)."""
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    return pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))


def rebuild(parts, values, keep, normalise=None):
    """Lists of `values` (the kept items of `parts` flattened), one list per row."""
    parent = pc.list_parent_indices(parts).to_numpy()[keep.to_numpy(zero_copy_only=False)]
    counts = np.bincount(parent, minlength=len(parts))
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, normalise(values) if normalise else values)


CHECKS = {"text": text_column, "label": label_column, "score": score_column,
          "labels": label_list_column, "words": word_list_column,
          "tags": word_list_column}  # fmt: skip


def columns_of_rows(kind_spec, examples):
    """{column: pa.Array} of the row reader's parsed examples, as `checked` gives them
    (the columns `parse` returns: the kind's, then its extra ones, which are texts)."""
    types = dict(zip(kind_spec.columns, kind_spec.column_types, strict=True))
    return {name: pa.array([example[name] for example in examples],
                           type=COLUMN_TYPES[types.get(name, "text")])
            for name in examples[0]}  # fmt: skip


COLUMN_TYPES = {"text": pa.string(), "label": pa.string(), "score": pa.float64(),
                "labels": pa.list_(pa.string()), "words": pa.list_(pa.string()),
                "tags": pa.list_(pa.string())}  # fmt: skip


def hash_splits(keys, chunk=1 << 16):
    """Each key's split (`splits.split_of`) for a column of keys, a slice at a time (a
    Python string per row only for the slice being hashed)."""
    place, progress = np.empty(len(keys), dtype=object), RowProgress("splitting by text hash")
    for start in range(0, len(keys), chunk):
        part = keys.slice(start, chunk).to_pylist()
        place[start : start + len(part)] = [split_of(key) for key in part]
        progress.update(start + len(part), (start + len(part)) / len(keys))
    progress.done(len(keys))
    return place


def string_tensor_parts(column):
    """(bytes of every string, start of each, length of each) of a string column: what
    `tf.strings.substr` cuts a text tensor from, with no Python string per row."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    _, offsets, data = column.buffers()
    width = np.int64 if pa.types.is_large_string(column.type) else np.int32
    offsets = np.frombuffer(offsets, width)[column.offset : column.offset + len(column) + 1]
    if data is None or not len(column):
        return b"", np.zeros(len(column), np.int64), np.zeros(len(column), np.int64)
    first = int(offsets[0])  # a slice's strings start inside its parent's buffer
    used = data.slice(first, int(offsets[-1]) - first).to_pybytes()
    return used, (offsets[:-1] - first).astype(np.int64), np.diff(offsets).astype(np.int64)


def label_ids(column, labels):
    """A label column as int64 ids of `labels` (-1 where a label is not among them)."""
    ids = pc.index_in(column, value_set=pa.array(list(labels), pa.string()))
    return pc.fill_null(ids, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def multi_hot(lists, ids, width):
    """A list column as a float32 [examples, width] matrix of 0 and 1, given the id of
    each item of its lists, flattened."""
    hot = np.zeros((len(lists), width), np.float32)
    hot[pc.list_parent_indices(lists).to_numpy(), ids] = 1.0
    return hot


def unknown_label(column, labels):
    """(row, label) of the first value of a label or list column not in `labels`, or None."""
    flat = pc.list_flatten(column) if pa.types.is_list(column.type) else column
    ids = label_ids(flat, labels)
    bad = np.flatnonzero(ids < 0)
    if not len(bad):
        return None
    row = bad[0]
    if pa.types.is_list(column.type):
        row = pc.list_parent_indices(column).to_numpy()[bad[0]]
    return int(row), flat[int(bad[0])].as_py()


def names(column):
    """The distinct names of a label or list column (a kind's `label_set` orders them)."""
    flat = pc.list_flatten(column) if pa.types.is_list(column.type) else column
    return pc.unique(flat).to_pylist()
