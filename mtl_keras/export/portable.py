"""Take the fine-tuned encoder where users already work: sentence-transformers, keras-hub.

`export_sentence_transformers` writes a Hugging Face BERT folder (config.json,
model.safetensors under BERT's parameter names, the tokenizer files) plus the module
files sentence-transformers reads (modules.json, the pooling config, Normalize), so
`SentenceTransformer(folder)` in torch loads it; keras-hub's own converter (and so
`SentenceEncoder.from_preset`) reads the same folder. `export_keras_hub` writes a
keras-hub preset that loads as keras-hub's own `BertTextEmbedder`. The first is written
by hand because keras-hub converts Hugging Face BERT checkpoints into Keras but has no
exporter back for BERT; the names below are the inverse of keras-hub's `convert_bert.py`.
"""

import json
import tempfile
from pathlib import Path

import keras_hub
import numpy as np

from mtl_keras.artifacts import atomic_write, check_replaceable, write_card
from mtl_keras.errors import InputError
from mtl_keras.model.bert_layers import EMBEDDING_LAYERS, POOLER, transformer_layer

OUR_BACKBONE_KEYS = ("frozen_layers", "lora_rank", "inference_mode")


def plain_backbone(backbone):
    """A keras-hub `BertBackbone` with `backbone`'s effective weights (LoRA merged).

    Keras saves a LoRA layer's kernel with its adapters merged in, so a save/load of
    the weights moves the effective kernels into a backbone without adapters.
    """
    config = {k: v for k, v in backbone.get_config().items() if k not in OUR_BACKBONE_KEYS}
    plain = keras_hub.models.BertBackbone.from_config(config)
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/backbone.weights.h5"
        backbone.save_weights(path)
        plain.load_weights(path)
    return plain


def bert_state_dict(backbone):
    """{Hugging Face BertModel parameter name: float32 array} for a plain BertBackbone."""
    hidden = backbone.hidden_dim
    tensors = {
        "embeddings.word_embeddings.weight": backbone.get_layer(EMBEDDING_LAYERS[0]).embeddings,
        "embeddings.position_embeddings.weight": backbone.get_layer(
            EMBEDDING_LAYERS[1]
        ).position_embeddings,
        "embeddings.token_type_embeddings.weight": backbone.get_layer(
            EMBEDDING_LAYERS[2]
        ).embeddings,
    }
    _layer_norm(tensors, "embeddings.LayerNorm", backbone.get_layer(EMBEDDING_LAYERS[3]))
    for i in range(backbone.num_layers):
        block, prefix = backbone.get_layer(transformer_layer(i)), f"encoder.layer.{i}"
        attention = block._self_attention_layer
        for name in ("query", "key", "value"):
            dense = getattr(attention, f"{name}_dense")
            square = np.reshape(np.asarray(dense.kernel), (hidden, hidden))
            tensors[f"{prefix}.attention.self.{name}.weight"] = square.T
            tensors[f"{prefix}.attention.self.{name}.bias"] = np.reshape(dense.bias, (hidden,))
        output = np.reshape(np.asarray(attention.output_dense.kernel), (hidden, hidden))
        tensors[f"{prefix}.attention.output.dense.weight"] = output.T
        tensors[f"{prefix}.attention.output.dense.bias"] = attention.output_dense.bias
        _layer_norm(tensors, f"{prefix}.attention.output.LayerNorm",
                    block._self_attention_layer_norm)  # fmt: skip
        _dense(tensors, f"{prefix}.intermediate.dense", block._feedforward_intermediate_dense)
        _dense(tensors, f"{prefix}.output.dense", block._feedforward_output_dense)
        _layer_norm(tensors, f"{prefix}.output.LayerNorm", block._feedforward_layer_norm)
    _dense(tensors, "pooler.dense", backbone.get_layer(POOLER))
    return {k: np.ascontiguousarray(np.asarray(v), dtype=np.float32) for k, v in tensors.items()}


def _dense(tensors, prefix, layer):
    tensors[f"{prefix}.weight"] = np.asarray(layer.kernel).T
    tensors[f"{prefix}.bias"] = layer.bias


def _layer_norm(tensors, prefix, layer):
    tensors[f"{prefix}.weight"] = layer.gamma
    tensors[f"{prefix}.bias"] = layer.beta


def hf_config(backbone):
    """Hugging Face `BertConfig` values for a keras-hub `BertBackbone`."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": backbone.vocabulary_size,
        "hidden_size": backbone.hidden_dim,
        "num_hidden_layers": backbone.num_layers,
        "num_attention_heads": backbone.num_heads,
        "intermediate_size": backbone.intermediate_dim,
        # keras-hub's BERT uses the tanh approximation of GELU; say so, so torch computes
        # exactly what the fine-tuned Keras model computed.
        "hidden_act": "gelu_new",
        "hidden_dropout_prob": backbone.dropout,
        "attention_probs_dropout_prob": backbone.dropout,
        "max_position_embeddings": backbone.max_sequence_length,
        "type_vocab_size": backbone.num_segments,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
    }


def tokenizer_files(tokenizer, max_length):
    """{file name: text} of a Hugging Face BERT tokenizer (WordPiece vocabulary + config)."""
    specials = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                "cls_token": "[CLS]", "mask_token": "[MASK]"}  # fmt: skip
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": bool(tokenizer.lowercase),
              "strip_accents": bool(tokenizer.strip_accents), "tokenize_chinese_chars": True,
              "model_max_length": max_length, **specials}  # fmt: skip
    return {
        "vocab.txt": "\n".join(tokenizer.get_vocabulary()) + "\n",
        "tokenizer_config.json": json.dumps(config, indent=2),
        "special_tokens_map.json": json.dumps(specials, indent=2),
    }


# Our pooling modes -> sentence-transformers' Pooling flags.
ST_POOLING = {"mean": "mean_tokens", "cls": "cls_token", "max": "max_tokens"}


def sentence_transformers_files(width, max_length, pooling="mean", normalize=True):
    """{relative path: text} of sentence-transformers' module files."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})  # fmt: skip
    modes = ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")
    chosen = ST_POOLING[pooling]
    pooling_config = {"word_embedding_dimension": width,
                      **{f"pooling_mode_{m}": m == chosen for m in modes}}  # fmt: skip
    files = {
        "modules.json": json.dumps(modules, indent=2),
        "sentence_bert_config.json": json.dumps(
            {"max_seq_length": max_length, "do_lower_case": False}
        ),  # fmt: skip
        "1_Pooling/config.json": json.dumps(pooling_config, indent=2),
    }
    if normalize:
        files["2_Normalize/.keep"] = ""  # sentence-transformers' Normalize has no config
    return files


def export_sentence_transformers(backbone, tokenizer, output, *, max_length=128,
                                 normalize=True, pooling="mean", overwrite=False,
                                 card=None):  # fmt: skip
    """Write `backbone` + pooling (+ L2 when `normalize`) for sentence-transformers.

    `pooling` is the model's (`MultiTaskModel.pooling_mode`): mean, cls or max, which
    sentence-transformers' Pooling module has; it has no learned attention pooling.
    `card`: the model card (README.md). Returns the folder; it is written beside and renamed
    into place, like every export.
    """
    from safetensors.numpy import save_file

    if pooling not in ST_POOLING:
        raise InputError(
            f"sentence-transformers has no {pooling!r} pooling (it has "
            f"{', '.join(ST_POOLING)}): export this model with --format tf-serving."
        )
    output = check_replaceable(output, overwrite)
    plain = plain_backbone(backbone)
    files = {
        "config.json": json.dumps(hf_config(plain), indent=2),
        **tokenizer_files(tokenizer, max_length),
        **sentence_transformers_files(plain.hidden_dim, max_length, pooling, normalize),
    }

    def write(folder):
        save_file(bert_state_dict(plain), f"{folder}/model.safetensors", metadata={"format": "pt"})
        for name, text in files.items():
            (Path(folder) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(folder) / name).write_text(text, encoding="utf-8")
        write_card(folder, card)

    return atomic_write(output, write, directory=True)


def export_keras_hub(backbone, tokenizer, output, *, max_length=128, pooling="mean",
                     overwrite=False, card=None):  # fmt: skip
    """Write a keras-hub preset of the sentence encoder; returns its path.

    `keras_hub.models.TextEmbedder.from_preset(folder)` loads it as a `BertTextEmbedder`
    (the plain `BertBackbone`, `pooling`, L2 normalisation and its preprocessor at
    `max_length`): `encode_text` gives our embedding. `BertBackbone.from_preset(folder)`
    loads the bare encoder. `card`: the model card (README.md).
    """
    if pooling not in ST_POOLING:  # keras-hub's embedder pools as sentence-transformers does
        raise InputError(
            f"keras-hub's TextEmbedder has no {pooling!r} pooling (it has "
            f"{', '.join(ST_POOLING)}): export this model with --format tf-serving."
        )
    output = check_replaceable(output, overwrite)
    models = keras_hub.models
    preprocessor = models.BertTextEmbedderPreprocessor(tokenizer, sequence_length=max_length)
    embedder = models.BertTextEmbedder(plain_backbone(backbone), preprocessor,
                                       pooling_mode=pooling, normalize=True)  # fmt: skip

    def write(folder):
        embedder.save_to_preset(folder)
        write_card(folder, card)

    return atomic_write(output, write, directory=True)
