"""`ExportedPredictor` and `ExportedEncoder`: an ONNX or OpenVINO export folder, served from
raw strings without TensorFlow. They return what `Predictor` and `SentenceEncoder` return
for the `model.keras` the folder was exported from."""

import json
import re
from pathlib import Path

import numpy as np

from mtl_keras.encoding.inputs import as_sentence_list, finish_embeddings
from mtl_keras.errors import InputError
from mtl_keras.runtime.decoding import DECODERS
from mtl_keras.runtime.engines import open_engine
from mtl_keras.runtime.tokenizer import (
    FEATURES,
    TOKENIZER_FILE,
    load_tokenizer,
    text_features,
    word_features,
)

EXPORT_FILE = "export.json"  # what an export folder holds: format, tasks, length, quality
EMBEDDING = "embedding"  # the model's sentence-embedding output (`MultiTaskModel`'s too)
WORD = re.compile(r"\S+")  # token tasks label whitespace-separated words, as `Predictor`


def is_export(folder):
    """Whether `folder` is an ONNX or OpenVINO export this runtime reads."""
    return (Path(folder) / EXPORT_FILE).is_file()


def read_export(folder):
    """The folder's export.json, or a one-line error naming what is wrong."""
    path = Path(folder) / EXPORT_FILE
    if not path.is_file():
        raise InputError(
            f"'{folder}' is not an ONNX or OpenVINO export folder (no {EXPORT_FILE}); "
            "a model.keras loads where TensorFlow is installed."
        )
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise InputError(f"'{path}' is not valid JSON: export the model again.") from None


class ExportedRuntime:
    """The parts both runtimes share: the engine, the tokenizer, length-sorted batches."""

    def __init__(self, folder, max_length=None, batch_size=32, threads=None, precision=None):
        self.info = read_export(folder)
        self.max_length = max_length or self.info["max_length"]
        if not 2 <= self.max_length <= self.info["max_positions"]:
            raise InputError(f"max_length must be 2 to {self.info['max_positions']}, "
                             f"got {self.max_length}.")  # fmt: skip
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}.")
        self.batch_size = batch_size
        self.tokenizer = load_tokenizer(Path(folder) / TOKENIZER_FILE, self.max_length)
        precision = precision or self.info.get("precision", "f32")
        self.engine = open_engine(folder, self.info["format"], precision, threads)

    def batches(self, features, batch_size=None):
        """(rows, batch inputs) in order of decreasing length, each cut to its longest."""
        lengths, size = features["padding_mask"].sum(axis=1), batch_size or self.batch_size
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(order), size):
            index = order[start : start + size]
            longest = max(int(lengths[index].max()), 1)
            yield index, {f: features[f][index, :longest] for f in FEATURES}


class ExportedEncoder(ExportedRuntime):
    """`encode(texts)`: the model's sentence embedding of each text, as `SentenceEncoder`."""

    @classmethod
    def from_path(cls, folder, max_length=None, **options):
        return cls(folder, max_length, **options)

    def encode(self, sentences, batch_size=None, normalize=True, dimensions=None):
        texts = as_sentence_list(sentences)
        out = np.zeros((len(texts), self.info["embedding_dim"]), np.float32)
        if texts:
            for index, x in self.batches(text_features(self.tokenizer, texts), batch_size):
                out[index] = self.engine(x)[EMBEDDING]
        return finish_embeddings(out, normalize, dimensions)


class ExportedPredictor(ExportedEncoder):
    """`predict(texts)`: per text each task's label and probabilities, or a token task's
    word tags and entity spans with character offsets, with the model's label names (and
    `encode`, on the same engine)."""

    @classmethod
    def from_path(cls, folder, max_length=None, batch_size=32, **options):
        return cls(folder, max_length, batch_size, **options)

    def predict(self, texts, embeddings=False, progress=False):
        """One dict per text, in input order: {"text", <task>: {...}, ["embedding"]}.
        `progress` is taken for `Predictor.predict`'s signature; no bar is drawn here."""
        texts = as_sentence_list(texts)
        if not texts:
            return []
        tasks = self.info["tasks"]
        words = [[(m.group(), m.start(), m.end()) for m in WORD.finditer(t)] for t in texts]
        if any(task["reads_sequence"] for task in tasks):
            features, counts = word_features(
                self.tokenizer, [[w for w, _, _ in ws] for ws in words]
            )
        else:
            features, counts = text_features(self.tokenizer, texts), [[]] * len(texts)
            features["first_piece"] = np.zeros_like(features["token_ids"])
        results = [None] * len(texts)
        for index, x in self.batches(features):
            out = self.engine(x)
            for row, i in enumerate(index):
                first = features["first_piece"][i, : x["token_ids"].shape[1]]
                result = {"text": texts[i]}
                for task in tasks:
                    decode = DECODERS[task["decoder"]]
                    result[task["name"]] = decode(
                        task["labels"], out[task["name"]][row], text=texts[i], words=words[i],
                        pieces_per_word=counts[i], first_piece=first,
                    )  # fmt: skip
                if embeddings:
                    result[EMBEDDING] = out[EMBEDDING][row].tolist()
                results[i] = result
        return results
