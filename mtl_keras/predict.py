"""Label new text with a trained `MultiTaskModel`: labels, probabilities and entity spans."""

import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mtl_keras.backends import batch_length
from mtl_keras.data.loading import without_autotuning
from mtl_keras.encoding.encoder import traced_inference
from mtl_keras.encoding.inputs import as_sentence_list
from mtl_keras.encoding.preprocessing import (
    FEATURES,
    align_word_tags,
    clean_text,
    make_preprocessor,
)
from mtl_keras.errors import InputError
from mtl_keras.model.multitask import EMBEDDING, MultiTaskModel
from mtl_keras.runtime.predictor import ExportedPredictor, is_export
from mtl_keras.saving import TOKENIZER_DIR, load_model, load_tokenizer

WORD = re.compile(r"\S+")  # NER labels words; WNUT-16's words are whitespace-separated


class Predictor:
    """Run a trained model on raw text, batched and sorted by length like `encode`.

    For each text: per sentence task the label and every label's probability; per token
    task (NER) the tag of each whitespace-separated word and the entity spans (with
    character offsets). Words past `max_length` word pieces are not tagged (tag None).

    Args:
        model: a `MultiTaskModel` (e.g. `mtl_keras.saving.load_model(path)`).
        tokenizer: the tokenizer it was trained with (saved beside it by `train`).
        max_length: word pieces per text, [CLS]/[SEP] included (default: the length
            the model was trained at).
        batch_size: texts per forward pass.
    """

    def __init__(self, model, tokenizer, max_length=None, batch_size=32):
        if not isinstance(model, MultiTaskModel):
            raise InputError(f"Predictor needs a MultiTaskModel, got {type(model).__name__}.")
        max_length = model.serving_length(max_length)
        if max_length > model.backbone.max_sequence_length:
            limit = model.backbone.max_sequence_length
            raise InputError(f"max_length={max_length} exceeds the model's {limit} positions.")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}.")
        self.tasks = model.text_tasks
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.batch_size = max_length, batch_size
        self.preprocessor = make_preprocessor(tokenizer, max_length)
        self.labels_words = any(task.spec.reads_sequence for task in self.tasks)
        self._forward = traced_inference(model.inference_model())

    @classmethod
    def from_path(cls, model_path, tokenizer_dir=None, max_length=None, batch_size=32):
        """Load a `model.keras` and the `tokenizer/` folder a run wrote beside it, or an ONNX
        or OpenVINO export folder (`runtime.ExportedPredictor`: the same rows, no TensorFlow
        in the forward pass)."""
        if is_export(model_path):
            return ExportedPredictor.from_path(model_path, max_length, batch_size)
        model = load_model(model_path, compile=False)
        tokenizer = load_tokenizer(tokenizer_dir or Path(model_path).parent / TOKENIZER_DIR)
        return cls(model, tokenizer, max_length, batch_size)

    def predict(self, texts, embeddings=False, progress=False):
        """One dict per text, in input order: {"text", <task>: {...}, ["embedding"]}."""
        texts = as_sentence_list(texts)
        if not texts:
            return []
        words = [[(m.group(), m.start(), m.end()) for m in WORD.finditer(t)] for t in texts]
        features, pieces_per_word = self._features(texts, words)
        lengths = features["padding_mask"].sum(axis=1)
        order = np.argsort(-lengths, kind="stable")
        results = [None] * len(texts)
        bar = keras.utils.Progbar(len(texts), unit_name="text") if progress else None
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            longest = batch_length(lengths[index], self.max_length)
            out = self._forward({f: features[f][index, :longest] for f in FEATURES})
            for row, i in enumerate(index):
                first = features["first_piece"][i, :longest]
                results[i] = self._decode(texts[i], words[i], pieces_per_word[i], out, row, first)
                if embeddings:
                    results[i][EMBEDDING] = out[EMBEDDING][row].tolist()
            if bar is not None:
                bar.add(len(index))
        return results

    def _features(self, texts, words):
        """BERT inputs (numpy, padded to max_length) and word-piece counts per word.

        With a token head, texts are tokenized word by word (as NER trained), so each
        word's first piece is known; otherwise with the preprocessor, as sentence heads
        trained. Both give the same pieces: WordPiece splits on whitespace anyway.
        """
        if not self.labels_words:
            x = self.preprocessor(tf.constant(texts))
            x = {f: np.asarray(x[f]).astype("int32") for f in FEATURES}
            return {**x, "first_piece": np.zeros_like(x["token_ids"])}, [[]] * len(texts)
        ragged = tf.ragged.constant(
            [[w for w, _, _ in ws] for ws in words], dtype=tf.string, ragged_rank=1
        )
        pieces = self.tokenizer(clean_text(ragged.flat_values))  # eager: lists, else ragged
        counts = np.array(
            [len(p) for p in pieces] if isinstance(pieces, list) else pieces.row_lengths().numpy(),
            dtype=np.int64,
        )
        pieces_per_word = np.split(counts, np.cumsum([len(ws) for ws in words])[:-1])

        def encode(text_words):
            tags = tf.zeros(tf.shape(text_words), tf.int32)
            ids, _, first = align_word_tags(
                clean_text(text_words), tags, self.tokenizer, self.max_length
            )
            return ids, first

        dataset = tf.data.Dataset.from_tensor_slices(ragged).map(encode).batch(4096)
        dataset = without_autotuning(dataset)
        batches = list(dataset.as_numpy_iterator())
        ids, first = (np.concatenate([batch[i] for batch in batches]) for i in (0, 1))
        pad = self.tokenizer.pad_token_id
        return {
            "token_ids": ids.astype("int32"),
            "padding_mask": (ids != pad).astype("int32"),
            "segment_ids": np.zeros_like(ids, "int32"),
            "first_piece": first.astype("int32"),
        }, pieces_per_word

    def _decode(self, text, words, pieces_per_word, out, row, first_piece):
        result = {"text": text}
        for task in self.tasks:
            logits = out[task.name][row]
            result[task.name] = task.spec.decode(
                task, logits, text, words, pieces_per_word, first_piece
            )
        return result
