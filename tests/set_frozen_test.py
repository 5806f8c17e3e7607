"""The trainable set of every scenario, without training (tiny BERT, no `fit`)."""

import keras
import pytest

from mtl_keras.errors import InputError
from mtl_keras.model.bert_layers import EMBEDDING_LAYERS, POOLER, transformer_layers
from mtl_keras.model.multitask import MultiTaskModel
from mtl_keras.tasks import Task, resolve_tasks
from mtl_keras.training.scenarios import SCENARIOS, Stage, set_frozen, training_stages
from tests.conftest import make_tiny_backbone

TASKS = resolve_tasks("topic,sentiment")
BACKBONE = {*EMBEDDING_LAYERS, *transformer_layers(2)}
# What trains in the first (for gradual unfreezing: the only) stage of each scenario.
EXPECTED = {
    "full": {*BACKBONE, "topic", "sentiment"},
    "frozen_all": set(),
    "frozen_backbone": {"topic", "sentiment"},
    "frozen_head_a": {*BACKBONE, "sentiment"},
    "frozen_head_b": {*BACKBONE, "topic"},
    "frozen_lower": {"transformer_layer_1", "topic", "sentiment"},  # --frozen-layers 1
    "gradual_unfreeze": {"topic", "sentiment"},
    "llrd": {*BACKBONE, "topic", "sentiment"},
    "lora": {"transformer_layer_0", "transformer_layer_1", "topic", "sentiment"},
}


def trainable_groups(model):
    return {variable.path.split("/")[0] for variable in model.trainable_variables}


def first_stage(scenario):
    stages = training_stages(
        scenario, TASKS, num_layers=2, epochs=3, lower_frozen_layers=1, unfreeze_every=1
    )
    return stages[0] if stages else Stage(0, 0, ("backbone", "heads"), 0)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_trainable_set_of_each_scenario(name):
    scenario = SCENARIOS[name]
    model = MultiTaskModel(make_tiny_backbone(), TASKS)
    if scenario.lora:
        model.backbone.enable_lora(2)
    stage = first_stage(scenario)
    set_frozen(model, stage.frozen, stage.lower_frozen_layers)
    assert trainable_groups(model) == EXPECTED[name]
    assert POOLER not in trainable_groups(model)
    if scenario.lora:  # only the adapters and the query/value biases in the backbone
        backbone = {v.path for v in model.trainable_variables if v.path.startswith("transformer")}
        assert all("lora" in p or p.endswith("/bias") for p in backbone), backbone
    # The frozen set survives a config round trip (what `.keras` save and reload do).
    clone = MultiTaskModel.from_config(model.get_config())
    assert [v.path for v in clone.trainable_variables] == [
        v.path for v in model.trainable_variables
    ]


def test_frozen_head_is_named_by_its_task_and_only_that_head_freezes():
    topic = TASKS[0]
    fine = Task("topic_fine", topic.dataset, "sentence", topic.labels)
    stage = training_stages(SCENARIOS["frozen_head_a"], [topic, fine], 2, 1, 0, 1)[0]
    assert stage.frozen == ("head:topic",)
    model = MultiTaskModel(make_tiny_backbone(), [topic, fine])
    set_frozen(model, stage.frozen)
    assert {"topic_fine"} <= trainable_groups(model) and "topic" not in trainable_groups(model)


def test_unknown_head_and_part_are_one_line_errors():
    model = MultiTaskModel(make_tiny_backbone(), TASKS)
    with pytest.raises(InputError, match="no head 'ner'; its heads: topic, sentiment"):
        set_frozen(model, ["head:ner"])
    with pytest.raises(InputError, match="unknown part 'head_a'"):
        set_frozen(model, ["head_a"])


def test_gradual_stages_unfreeze_top_down():
    model = MultiTaskModel(make_tiny_backbone(), TASKS)
    stages = training_stages(SCENARIOS["gradual_unfreeze"], TASKS, 2, 4, 0, 1)
    seen = []
    for stage in stages:
        set_frozen(model, stage.frozen, stage.lower_frozen_layers)
        seen.append(trainable_groups(model) - {"topic", "sentiment"})
    assert seen == [set(), {"transformer_layer_1"}, set(transformer_layers(2)), BACKBONE]
    keras.backend.clear_session()
