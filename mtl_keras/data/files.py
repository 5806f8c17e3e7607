"""A user's own labelled files: read into columns, every row checked, split, as `tf.data`.

Formats: .csv, .tsv (a header line), .jsonl (one JSON object per line) and .conll (one
token per line, its tag in the last whitespace-separated column, a blank line between
sentences, `-DOCSTART-` lines skipped). The columns say the task's kind, as in
sentence-transformers: `text,label` (sentence), `tokens,tags` (token),
`sentence1,sentence2,score` (pair), `text,labels` (multi_label),
`sentence1,sentence2,label` (pair_classification) and `anchor,positive` (contrastive,
optionally with hard negatives: `negative`, or `negative_1` ... `negative_n`).
Every problem is one `InputError` naming the file and the line, raised while reading,
before any model loads. A file is read by pyarrow (`data.columns`); the row reader here
is the reference it is held to, and names the line of a bad row.
"""

import csv
import functools
import glob
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf

from mtl_keras.data import columns
from mtl_keras.data.columns import Columns, Fallback
from mtl_keras.data.splits import SPLITS
from mtl_keras.encoding.inputs import jsonl_rows
from mtl_keras.errors import InputError
from mtl_keras.tasks.kinds import KINDS

FORMATS = (".csv", ".tsv", ".jsonl", ".conll")
SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "dev"), "test": ("test",)}


def split_files(path):
    """{split: file or glob of shards} for a file or a glob (train only), or a folder of
    train/validation|dev/test files, or of shards of them (`train-00000.csv`, ...)."""
    if is_pattern(path):
        shard_files(path)  # checked now: it matches files of one format
        return {"train": str(path)}
    path = Path(path)
    if path.is_file():
        check_format(path)
        return {"train": path}
    if not path.is_dir():
        raise InputError(f"'{path}' does not exist: give a data file or a folder of them.")
    found = {}
    for split, stems in SPLIT_NAMES.items():
        for stem, ext in ((stem, ext) for stem in stems for ext in FORMATS):
            if (path / f"{stem}{ext}").is_file():
                found.setdefault(split, path / f"{stem}{ext}")
            elif glob.glob(str(path / f"{glob.escape(stem)}-*{ext}")):
                found.setdefault(split, str(path / f"{glob.escape(stem)}-*{ext}"))
    if "train" not in found:
        names = ", ".join(f"train{ext}" for ext in FORMATS)
        raise InputError(f"folder '{path}' has no training file: add one of {names} "
                         "(or shards train-00000.csv, ...).")  # fmt: skip
    return found


def is_pattern(path):
    """A glob of shards (a file whose name holds `*`, `?` or `[` is a file)."""
    return glob.has_magic(str(path)) and not Path(path).exists()


def shard_files(pattern):
    """The files a glob matches, in name order, all of one format."""
    files = sorted(Path(p) for p in glob.glob(str(pattern)) if Path(p).is_file())
    if not files:
        raise InputError(f"'{pattern}' matches no file: give a file, a folder or a glob "
                         "that matches shards (e.g. data/train-*.csv).")  # fmt: skip
    for file in files:
        check_format(file)
    if len({file.suffix.lower() for file in files}) > 1:
        raise InputError(f"'{pattern}' matches files of several formats: give one format.")
    return files


def check_format(path):
    if path.suffix.lower() not in FORMATS:
        raise InputError(f"'{path}' must end in one of {', '.join(FORMATS)}.")


def read_rows(path):
    """[(line number, {column: value})] of a file; CoNLL rows are {"tokens", "tags"}."""
    path = Path(path)
    check_format(path)
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8-sig")  # a byte-order mark is fine
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise InputError(f"'{path}' line {line} is not UTF-8 text: save it as UTF-8.") from None
    suffix = path.suffix.lower()
    if suffix == ".conll":
        rows = conll_rows(path, content)
    elif suffix == ".jsonl":
        rows = jsonl_rows(path, content)
    else:
        rows = table_rows(path, content, "\t" if suffix == ".tsv" else ",")
    if not rows:
        raise InputError(f"'{path}' has no examples (empty, or a header line only).")
    return rows


def table_rows(path, content, delimiter):
    """CSV or TSV with a header line; quoted CSV fields may hold newlines."""
    # TSV has no quoting (a field may start with a quote mark); CSV quotes as usual.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.DictReader(io.StringIO(content, newline=""), delimiter=delimiter, quoting=quoting)
    rows = []
    for row in reader:
        if None in row or None in row.values():
            raise InputError(f"'{path}' line {reader.line_num} does not have one value per column.")
        rows.append((reader.line_num, row))
    return rows


def conll_rows(path, content):
    """Sentences of a CoNLL file, numbered by their first line."""
    rows, tokens, tags, first = [], [], [], None
    for number, line in enumerate([*content.splitlines(), ""], start=1):
        fields = line.split()
        if fields and fields[0] == "-DOCSTART-":
            continue
        if not fields:
            if tokens:
                rows.append((first, {"tokens": tokens, "tags": tags}))
            tokens, tags = [], []
            continue
        if len(fields) < 2:
            raise InputError(f"'{path}' line {number} has one column: write 'token tag'.")
        first = number if not tokens else first
        tokens.append(fields[0])
        tags.append(fields[-1])
    return rows


def detect_kind(path, columns, kind=None):
    """The kind a file's columns ask for (or `kind`, when forced), checked."""
    if kind is not None:
        if kind not in KINDS:
            raise InputError(f"unknown task kind {kind!r}; choose from: {', '.join(KINDS)}.")
        missing = [c for c in KINDS[kind].columns if c not in columns]
        if missing:
            raise InputError(
                f"'{path}' has no {missing[0]!r} column, which a {kind} task needs "
                f"(its columns: {', '.join(columns)}); map one with columns=."
            )
        return kind
    for name, spec in KINDS.items():
        if set(spec.columns) <= set(columns):
            return name
    layouts = "; ".join(",".join(spec.columns) for spec in KINDS.values())
    raise InputError(
        f"'{path}' has columns {', '.join(columns) or 'none'}, which name no task kind: "
        f"use {layouts} (or map yours with columns=)."
    )


def read_columns(path, kind=None, columns=None):
    """`Columns` of a file (see `data.columns`): read by pyarrow and checked a column at a
    time; a file pyarrow cannot read as the row reader would, or with a bad value, is read
    row by row, which raises the one-line error naming the line. `columns` maps the kind's
    names to the file's."""
    if is_pattern(path):
        return read_shards(path, kind, columns)
    path = Path(path)
    check_format(path)
    if not path.is_file():
        raise InputError(f"'{path}' does not exist: give a data file or a folder of them.")
    rename = {theirs: ours for ours, theirs in (columns or {}).items()}
    try:
        table = arrow_columns(path, kind, rename)
    except (Fallback, pa.ArrowException):
        table = row_columns(path, kind, rename)
    # pyarrow's allocator keeps what parsing used (some 300 MB for a 140 MB file).
    pa.default_memory_pool().release_unused()
    return table


def read_shards(pattern, kind=None, columns=None):
    """The shards a glob matches, read one after another (each checked as a file is) into
    one `Columns`: memory grows with the columns, about 1.2x the files' size."""
    tables = [read_columns(file, kind, columns) for file in shard_files(pattern)]
    kinds = sorted({table.kind for table in tables})
    if len(kinds) > 1:
        raise InputError(f"the shards of '{pattern}' are of different kinds "
                         f"({', '.join(kinds)}): give one layout.")  # fmt: skip
    data = {}
    for name in tables[0].data:
        data[name] = pa.chunked_array([c for t in tables for c in chunks(t.data[name])])
        if pa.types.is_list(data[name].type):  # list columns are rebuilt from one array
            data[name] = data[name].combine_chunks()
    total = sum(len(table) for table in tables)
    return Columns(str(pattern), kinds[0], data, np.arange(total))


def chunks(column):
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]


def arrow_columns(path, kind, rename):
    suffix = path.suffix.lower()
    if suffix == ".conll":  # sentences span lines: read by the row reader, kept as columns
        raise Fallback()
    table = columns.read_table(path, suffix)
    if table.num_rows == 0:
        raise Fallback()
    table = table.rename_columns([rename.get(c, c) for c in table.column_names])
    try:  # any problem is the row reader's to name, with its line
        kind = detect_kind(path, columns.present_columns(table), kind)
        KINDS[kind].parse(columns.first_row(table), f"'{path}' line 2")
        data = columns.checked(table, KINDS[kind])
    except InputError:
        raise Fallback() from None
    return Columns(str(path), kind, data, np.arange(table.num_rows))


def row_columns(path, kind, rename):
    """The reference reader: every row parsed by the kind, errors naming the line."""
    rows = [(n, {rename.get(c, c): v for c, v in row.items()}) for n, row in read_rows(path)]
    kind = detect_kind(path, list(rows[0][1]), kind)  # the first row's columns say the kind
    for _, row in rows:  # every row has the kind's columns (JSONL rows may not)
        detect_kind(path, list(row), kind)
    examples = [KINDS[kind].parse(row, f"'{path}' line {n}") for n, row in rows]
    data = columns.columns_of_rows(KINDS[kind], examples)
    return Columns(str(path), kind, data, np.arange(len(rows)))


def line_of(table, position):
    """(file, line) where row `position` of `table` (a `Columns`) starts."""
    row = int(table.rows[position])
    for file in shard_files(table.path) if is_pattern(table.path) else [table.path]:
        rows = read_rows(file)
        if row < len(rows):
            return file, rows[row][0]
        row -= len(rows)
    raise IndexError(position)


def file_splits(files, kind=None, columns=None):
    """(kind, {split: Columns}, {split: how it was made}).

    The files given are used as they are. A missing validation split is carved from
    train (the 1 in 10 of texts whose hash says validation, as the packaged datasets are
    split); a single file is split 80/10/10 by the same hash.
    """
    stamps = tuple((split, str(p), tuple(f.stat().st_mtime_ns for f in shard_files(p)))
                   if is_pattern(p) else (split, str(p), Path(p).stat().st_mtime_ns)
                   for split, p in files.items())  # fmt: skip
    return _splits(stamps, kind, tuple(sorted((columns or {}).items())))


@functools.lru_cache(maxsize=16)
def _splits(stamps, kind, mapping):
    files = {split: path for split, path, _ in stamps}
    read = {split: read_columns(path, kind, dict(mapping)) for split, path in files.items()}
    kinds = {table.kind for table in read.values()}
    if len(kinds) > 1:
        raise InputError(f"the files {', '.join(map(str, files.values()))} are of different "
                         f"kinds ({', '.join(sorted(kinds))}): give one layout.")  # fmt: skip
    kind = kinds.pop()
    splits = {split: read.get(split) for split in SPLITS}
    made = {split: str(path) for split, path in files.items()}
    carve = [s for s in ("validation", "test") if s not in files]
    if carve:
        train = splits["train"]
        place = columns.hash_splits(KINDS[kind].key_column(train.data))
        for split in carve:
            splits[split] = train.take(np.flatnonzero(place == split))
        splits["train"] = train.take(np.flatnonzero(~np.isin(place, carve)))
        for split in carve:
            made[split] = f"1 in 10 of {files['train']} by text hash"
        made["train"] = f"{files['train']} less the carved splits"
    empty = splits["train"].take([])
    return kind, {split: empty if table is None else table for split, table in splits.items()}, made


def as_dataset(kind, table, labels):
    """A `tf.data.Dataset` of examples with label ids (the packaged datasets' features),
    sliced from whole-column tensors (no Python object per example)."""
    return tf.data.Dataset.from_tensor_slices(example_tensors(KINDS[kind], table, labels))


def text_tensor(column, rows=1 << 20):
    """A string column as a tf.string tensor, cut from its bytes `rows` at a time (no Python
    string per row; at most one piece's copies besides the result)."""
    pieces = []
    for start in range(0, len(column), rows):
        data, starts, lengths = columns.string_tensor_parts(column.slice(start, rows))
        pieces.append(tf.strings.substr(tf.constant(data), starts, lengths))
    if len(pieces) == 1:
        return pieces[0]
    return tf.concat(pieces, 0) if pieces else tf.zeros([0], tf.string)


def example_tensors(spec, table, labels):
    """{field: tensor of every example} of a `Columns` (see `Kind.signature`)."""
    tensors = {}
    for name, field, of_type in zip(spec.columns, spec.fields, spec.column_types, strict=True):
        column = table.data[name]
        if of_type == "text":
            tensors[field] = text_tensor(column)
        elif of_type == "score":
            tensors[field] = tf.constant(column.to_numpy(zero_copy_only=False), tf.float32)
        elif of_type == "label":
            tensors[field] = tf.constant(columns.label_ids(column, labels))
        elif of_type == "labels":
            ids = columns.label_ids(pc.list_flatten(column), labels)
            tensors[field] = tf.constant(columns.multi_hot(column, ids, len(labels)))
        else:  # words or tags: one list per example
            flat = pc.list_flatten(column)
            values = (text_tensor(flat) if of_type == "words"
                      else tf.constant(columns.label_ids(flat, labels)))  # fmt: skip
            splits = columns.list_offsets(column).to_numpy().astype(np.int64)
            tensors[field] = tf.RaggedTensor.from_row_splits(values, splits)
    tensors.update(spec.extra_tensors(table.data, text_tensor))
    return tensors
