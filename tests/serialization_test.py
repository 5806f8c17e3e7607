"""Config round trip of every custom layer, model, optimizer and metric.

Like keras-hub's `run_serialization_test`: rebuild from the config, then compare the whole
serialized config as JSON, so a forgotten argument (like `inference_mode` once) fails.
"""

import json

import keras
import numpy as np
import pytest

from mtl_keras import EntityF1, LayerwiseLR, MacroF1, MeanPooling, MultiTaskModel
from mtl_keras.data.sources import NER_TAGS
from mtl_keras.evaluation.metrics import Correlation
from mtl_keras.model.backbone import TunableBertBackbone
from mtl_keras.saving import load_model
from mtl_keras.tasks import resolve_tasks
from tests.conftest import make_tiny_backbone, tiny_inputs


def run_serialization_test(obj):
    """Serialize, rebuild, serialize again: the two JSON configs must be identical."""
    original = keras.saving.serialize_keras_object(obj)
    clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(original)))
    assert type(clone) is type(obj)
    again = keras.saving.serialize_keras_object(clone)
    assert json.dumps(again, sort_keys=True) == json.dumps(original, sort_keys=True)
    return clone


def tunable_backbone():
    backbone = TunableBertBackbone.from_backbone(make_tiny_backbone())
    backbone.inference_mode = True
    backbone.get_layer("transformer_layer_0").trainable = False
    return backbone


def test_mean_pooling():
    clone = run_serialization_test(MeanPooling(normalize=True, name="pool"))
    assert clone.normalize


def test_tunable_backbone_keeps_freezing_inference_mode_and_lora():
    backbone = tunable_backbone()
    backbone.enable_lora(2)
    clone = run_serialization_test(backbone)
    assert clone.inference_mode and clone.lora_rank == 2
    assert "transformer_layer_0" in clone.frozen_layers()


def test_multitask_model_keeps_tasks_dropout_and_frozen_heads():
    model = MultiTaskModel(
        tunable_backbone(), resolve_tasks("topic,ner"), dropout=0.25, frozen_heads=["ner"]
    )
    clone = run_serialization_test(model)
    assert [t.name for t in clone.tasks] == ["topic", "ner"] and clone.dropout == 0.25
    assert clone.tasks[1].labels == tuple(NER_TAGS) and clone.frozen_heads() == ["ner"]
    assert clone.backbone.inference_mode


@pytest.mark.parametrize("pooling", ["cls", "attention"])
def test_multitask_model_keeps_pooling_and_pair_tasks(pooling):
    model = MultiTaskModel(tunable_backbone(), resolve_tasks("similarity,topic"), pooling=pooling)
    clone = run_serialization_test(model)
    assert clone.pooling_mode == pooling and type(clone.pooling) is type(model.pooling)
    assert [t.kind for t in clone.tasks] == ["pair", "sentence"]
    assert "pair_token_ids" in clone.input


def test_layerwise_lr():
    inner = keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.05)
    clone = run_serialization_test(LayerwiseLR(inner, {"^transformer_layer_0/": 0.5, ".*": 2.0}))
    assert clone.multipliers == {"^transformer_layer_0/": 0.5, ".*": 2.0}
    assert clone.inner_optimizer.weight_decay == pytest.approx(0.05)


@pytest.mark.parametrize(
    "metric",
    [MacroF1(3, name="f1"), EntityF1(NER_TAGS), Correlation()],
    ids=["MacroF1", "EntityF1", "Correlation"],
)
def test_metrics(metric):
    run_serialization_test(metric)


def test_reloaded_frozen_backbone_model_keeps_inference_mode(tmp_path):
    model = MultiTaskModel(tunable_backbone(), resolve_tasks("topic"))
    model.save(tmp_path / "model.keras")
    reloaded = load_model(tmp_path / "model.keras")
    assert reloaded.backbone.inference_mode
    embed = reloaded.embedding_model()
    first, second = (np.asarray(embed(tiny_inputs(), training=True)) for _ in range(2))
    np.testing.assert_array_equal(first, second)  # no dropout even in training mode
