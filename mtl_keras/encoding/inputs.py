"""Checks on the sentences users pass in, shared by every public entry point."""

import csv
import io
import json
from pathlib import Path

import numpy as np

from mtl_keras.errors import InputError, InputTypeError


def as_sentence_list(sentences):
    """Return `sentences` as a list of str, or raise naming the first bad item.

    A bare string is one sentence. An empty string is a valid (empty) sentence.
    """
    if isinstance(sentences, str):
        return [sentences]
    if isinstance(sentences, np.ndarray):
        sentences = sentences.tolist()
    if not isinstance(sentences, list | tuple):
        raise InputTypeError(
            f"sentences must be a str or a list of str, got {type(sentences).__name__}."
        )
    for index, sentence in enumerate(sentences):
        if not isinstance(sentence, str):
            raise InputTypeError(
                f"sentences[{index}] is {type(sentence).__name__}, expected str: "
                "pass text only (decode bytes, drop None)."
            )
    return [drop_invalid_unicode(sentence) for sentence in sentences]


def drop_invalid_unicode(text):
    """`text` without lone surrogates (what Python makes of undecodable bytes).

    They cannot be encoded as UTF-8 for TensorFlow; like the control characters and U+FFFD
    that BERT's cleaning drops, they are dropped (`clean_text` does the same to invalid
    UTF-8 inside a graph, e.g. in the serving export).
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "ignore").decode("utf-8")


def read_texts(path, column="text"):
    """The texts in a file: .txt (one per line), .csv (a `column`) or .jsonl (its key).

    Raises a one-line `InputError` naming the file, and the line where a row is bad.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".csv", ".jsonl"):
        raise InputError(f"input file '{path}' must end in .txt, .csv or .jsonl.")
    try:
        content = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"input file '{path}' does not exist.") from None
    except (IsADirectoryError, PermissionError) as error:
        raise InputError(f"input file '{path}' cannot be read ({error.strerror}).") from None
    except UnicodeDecodeError as error:
        line = content_line(error.object, error.start)
        raise InputError(f"input file '{path}' line {line} is not UTF-8 text.") from None
    if suffix == ".txt":
        return content.splitlines()
    if suffix == ".csv":
        return _csv_texts(path, content, column)
    return _jsonl_texts(path, content, column)


def content_line(data, offset):
    return data[:offset].count(b"\n") + 1


def _csv_texts(path, content, column):
    reader = csv.DictReader(io.StringIO(content, newline=""))
    if column not in (reader.fieldnames or []):
        raise InputError(f"input file '{path}' has no {column!r} column in its header line.")
    texts = []
    for row in reader:
        if row[column] is None:
            raise InputError(f"input file '{path}' line {reader.line_num} has no {column!r} value.")
        texts.append(row[column])
    return texts


def _jsonl_texts(path, content, key):
    texts = []
    for number, item in jsonl_rows(path, content, "input file "):
        if not isinstance(item.get(key), str):
            raise InputError(f"input file '{path}' line {number} has no string {key!r} field.")
        texts.append(item[key])
    return texts


def jsonl_rows(path, content, what=""):
    """[(line number, object)] of a JSONL text; errors name `what` (e.g. "input file ")."""
    rows = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{what}'{path}' line {number} is not JSON.") from None
        if not isinstance(row, dict):
            raise InputError(f"{what}'{path}' line {number} is not a JSON object.")
        rows.append((number, row))
    return rows


def finish_embeddings(vectors, normalize=True, dimensions=None):
    """Embeddings (n, width) cut to their first `dimensions` (Matryoshka-style: a smaller,
    cheaper vector), then L2-normalised when `normalize`. Cut before normalising, so the
    shorter vectors are unit vectors too."""
    if dimensions is not None:
        width = vectors.shape[1]
        if isinstance(dimensions, bool) or not isinstance(dimensions, int | np.integer):
            raise InputTypeError(f"dimensions must be an int, got {type(dimensions).__name__}.")
        if not 1 <= dimensions <= width:
            raise InputError(f"dimensions must be in [1, {width}] (the embedding's width), "
                             f"got {dimensions}.")  # fmt: skip
        vectors = np.ascontiguousarray(vectors[:, :dimensions])
    if normalize:
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors
