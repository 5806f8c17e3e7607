"""The fine-tuned encoder exported for sentence-transformers and keras-hub, and int8 serving."""

import json

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load_file

from experiments import export
from mtl_keras import SentenceEncoder
from mtl_keras.errors import InputError
from mtl_keras.export.portable import export_keras_hub, export_sentence_transformers
from mtl_keras.export.serving import QUANTIZATIONS, quantized_copy
from mtl_keras.model.backbone import TunableBertBackbone
from mtl_keras.saving import load_model, load_tokenizer
from tests.conftest import cosines, make_tiny_backbone, make_tiny_tokenizer

SENTENCES = ["the quick fox jumps", "stocks fell , market fell !", "a", "", "Café São Paulo"]


def min_cosine(a, b):
    return float(np.min(cosines(a, b)))


@pytest.fixture(scope="module")
def fine_tuned(tiny_run):
    model = load_model(tiny_run / "model.keras", compile=False)
    tokenizer = load_tokenizer(tiny_run / "tokenizer")
    return model, SentenceEncoder(model.backbone, tokenizer, 16).encode(SENTENCES)


@pytest.mark.parametrize("fmt", ["sentence-transformers", "keras-hub"])
def test_export_reloads_as_the_fine_tuned_encoder(tiny_run, tiny_preset, fine_tuned, tmp_path, fmt):
    out = tmp_path / "encoder"
    argv = ["--format", fmt, "--model", str(tiny_run / "model.keras"), "--output", str(out),
            "--max-length", "16"]  # fmt: skip
    export.main(argv)
    reloaded = SentenceEncoder.from_preset(out, 16).encode(SENTENCES)
    assert min_cosine(reloaded, fine_tuned[1]) >= 0.9999
    untrained = SentenceEncoder.from_preset(tiny_preset, 16).encode(SENTENCES)
    # The check above is about the fine-tuned weights: they moved far more than the export.
    moved, kept = (np.abs(e - fine_tuned[1]).max() for e in (untrained, reloaded))
    assert moved > 100 * kept, (moved, kept)
    if fmt == "keras-hub":  # keras-hub's own sentence embedder, with its preprocessor
        assert type(keras_hub.models.BertBackbone.from_preset(str(out))).__name__ == "BertBackbone"
        embedder = keras_hub.models.TextEmbedder.from_preset(str(out))
        assert type(embedder).__name__ == "BertTextEmbedder"
        assert min_cosine(embedder.encode_text(SENTENCES, verbose=0), fine_tuned[1]) >= 0.9999
    with pytest.raises(InputError, match="--overwrite"):
        export.main(argv)
    export.main([*argv, "--overwrite"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_sentence_transformers_folder_layout(fine_tuned, tmp_path):
    model = fine_tuned[0]
    out = export_sentence_transformers(model.backbone, make_tiny_tokenizer(), tmp_path / "st",
                                       max_length=16)  # fmt: skip
    modules = json.loads((out / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    pooling = json.loads((out / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    assert pooling["word_embedding_dimension"] == 16
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "bert" and config["num_hidden_layers"] == 2
    tensors = load_file(str(out / "model.safetensors"))
    assert tensors["encoder.layer.1.attention.self.query.weight"].shape == (16, 16)
    assert tensors["embeddings.word_embeddings.weight"].shape == (config["vocab_size"], 16)
    assert tensors["encoder.layer.0.intermediate.dense.weight"].shape == (32, 16)  # [out, in]
    assert (out / "vocab.txt").read_text().split("\n")[:3] == ["[PAD]", "[UNK]", "[CLS]"]


def test_sentence_transformers_pooling_follows_the_model(fine_tuned, tmp_path):
    backbone = fine_tuned[0].backbone
    out = export_sentence_transformers(backbone, make_tiny_tokenizer(), tmp_path / "cls",
                                       max_length=16, pooling="cls")  # fmt: skip
    pooling = json.loads((out / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_cls_token"] and not pooling["pooling_mode_mean_tokens"]
    for write in (export_sentence_transformers, export_keras_hub):
        with pytest.raises(InputError, match="no 'attention' pooling.*--format tf-serving"):
            write(backbone, make_tiny_tokenizer(), tmp_path / "attention", pooling="attention")
        assert not (tmp_path / "attention").exists()


@pytest.mark.parametrize("pooling", ["cls", "max"])
def test_keras_hub_text_embedder_pools_as_the_model_does(fine_tuned, tmp_path, pooling):
    """keras-hub's embedder with the model's pooling gives the model's embedding."""
    from mtl_keras.encoding.pooling import make_pooling
    from mtl_keras.encoding.preprocessing import FEATURES

    backbone = fine_tuned[0].backbone
    out = export_keras_hub(backbone, make_tiny_tokenizer(), tmp_path / pooling, max_length=16,
                           pooling=pooling)  # fmt: skip
    inputs = {feature: backbone.input[feature] for feature in FEATURES}
    pooled = make_pooling(pooling)(backbone(inputs)["sequence_output"], inputs["padding_mask"])
    model = keras.Model(inputs, pooled)
    ours = SentenceEncoder(backbone, make_tiny_tokenizer(), 16, model).encode(SENTENCES)
    theirs = keras_hub.models.TextEmbedder.from_preset(str(out)).encode_text(SENTENCES, verbose=0)
    assert min_cosine(theirs, ours) >= 0.9999


def test_lora_adapters_are_merged_into_the_export(tmp_path):
    keras.utils.set_random_seed(4)
    backbone = TunableBertBackbone.from_backbone(make_tiny_backbone())
    base = SentenceEncoder(backbone, make_tiny_tokenizer(), 16).encode(SENTENCES)
    backbone.enable_lora(2)
    for variable in backbone.weights:
        if "lora_kernel_b" in variable.path:  # as if training had moved the adapters
            variable.assign(np.random.default_rng(0).normal(size=variable.shape) * 0.5)
    adapted = SentenceEncoder(backbone, make_tiny_tokenizer(), 16).encode(SENTENCES)
    for write in (export_sentence_transformers, export_keras_hub):
        out = write(backbone, make_tiny_tokenizer(), tmp_path / write.__name__)
        reloaded = SentenceEncoder.from_preset(out, 16).encode(SENTENCES)
        assert min_cosine(reloaded, adapted) >= 0.9999
        moved, kept = (np.abs(e - adapted).max() for e in (base, reloaded))
        assert moved > 100 * kept, (moved, kept)  # the adapters' effect is in the export


@pytest.mark.parametrize("mode", list(QUANTIZATIONS))
def test_int8_serving_export(tiny_run, tiny_export, tmp_path, mode):
    model = str(tiny_run / "model.keras")
    export.main(["--model", model, "--output", str(tmp_path / "q" / "1"), "--max-length", "16",
                 "--quantize", mode])  # fmt: skip
    text = tf.constant(SENTENCES)
    float32, int8 = (
        tf.saved_model.load(str(folder)) for folder in (tiny_export, tmp_path / "q" / "1")
    )
    stored = {v.dtype: 0 for v in int8.variables}
    for v in int8.variables:
        stored[v.dtype] += v.shape.num_elements()
    assert stored[tf.int8] > 3 * stored[tf.float32], stored  # the weights are int8
    float32, int8 = (m.signatures["serving_default"](text=text) for m in (float32, int8))
    assert min_cosine(float32["embedding"].numpy(), int8["embedding"].numpy()) >= 0.99
    assert int8["topic_probs"].shape == (len(SENTENCES), 5) and "ner_tags" in int8
    for task in ("topic", "sentiment"):  # the heads read the int8 encoder's embedding
        gap = np.abs(int8[f"{task}_probs"].numpy() - float32[f"{task}_probs"].numpy()).max()
        assert gap < 0.02, (task, gap)
        assert (int8[f"{task}_label"].numpy() == float32[f"{task}_label"].numpy()).all()
    layers = [layer for layer in quantized_copy(load_model(model), mode)._flatten_layers()
              if getattr(layer, "quantization_mode", None) == "int8"]  # fmt: skip
    float_inputs = [
        layer.inputs_quantizer is None for layer in layers if hasattr(layer, "inputs_quantizer")
    ]
    assert float_inputs and set(float_inputs) == {mode == "int8-weights"}
    with pytest.raises(InputError, match="tf-serving, onnx or openvino, not"):
        export.main(["--format", "keras-hub", "--quantize", mode, "--model", model,
                     "--output", str(tmp_path / "k")])  # fmt: skip


def test_an_unknown_quantization_is_named_with_the_choices(tiny_run):
    with pytest.raises(InputError, match="unknown quantization 'int4'; choose one of int8, int8-w"):
        quantized_copy(load_model(tiny_run / "model.keras", compile=False), "int4")
