"""The training scenarios, as one table of data, and how to apply them.

A scenario names what is frozen (with `layer.trainable`), whether the frozen backbone
runs in inference mode, and which schedule or optimizer it needs. Everything that
differs between scenarios lives in `SCENARIOS`: the trainer reads these fields and
never tests a scenario's name.
"""

import dataclasses
from typing import NamedTuple

from mtl_keras.errors import InputError
from mtl_keras.model.bert_layers import EMBEDDING_LAYERS, POOLER, transformer_layer

# Parts of a model that a scenario can freeze; a single head is the part `head:<task>`.
PARTS = ("backbone", "embeddings", "lower", "heads")
HEAD_PART = "head:"


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    freeze: tuple = ()  # parts of PARTS frozen for the whole run
    frozen_head: int | None = None  # index (in the run's task list) of a head kept frozen
    inference_backbone: bool = False  # backbone without dropout (it is frozen throughout)
    trains: bool = True  # False: evaluate and save only (the untrained baseline)
    gradual: bool = False  # heads first, then transformer layers top-down, then embeddings
    layer_decay: bool = False  # layer-wise learning-rate decay (LayerwiseLR)
    lora: bool = False  # keras-hub LoRA on attention query/value; rest of backbone frozen
    # Defaults chosen on validation by the study's `sweep` grid (RESULTS.md); RunConfig's
    # `learning_rate` and `head_lr_multiplier` override them.
    learning_rate: float = 1e-4  # the encoder's peak step size
    head_lr_multiplier: float = 100.0  # random heads take 100x the pretrained encoder's step

    @property
    def min_tasks(self):
        return 1 if self.frozen_head is None else self.frozen_head + 1


class Stage(NamedTuple):
    """Epochs [first_epoch, end_epoch) trained with `frozen` parts and lower layers frozen."""

    first_epoch: int
    end_epoch: int
    frozen: tuple
    lower_frozen_layers: int


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("full", "fine-tune everything"),
        Scenario("frozen_all", "nothing trains: pretrained encoder + random heads, the baseline",
                 freeze=("backbone", "heads"), inference_backbone=True, trains=False),
        Scenario("frozen_backbone", "train the heads on fixed pretrained embeddings (linear probe)",
                 freeze=("backbone",), inference_backbone=True, learning_rate=3e-2,
                 head_lr_multiplier=1.0),
        Scenario("frozen_head_a", "freeze the first task's head, train backbone + other heads",
                 frozen_head=0),
        Scenario("frozen_head_b", "freeze the second task's head, train backbone + other heads",
                 frozen_head=1),
        Scenario("frozen_lower", "freeze embeddings and the lower k transformer layers",
                 freeze=("embeddings", "lower")),
        Scenario("gradual_unfreeze", "heads first, then one more layer top-down every N epochs",
                 gradual=True),
        Scenario("llrd", "layer-wise learning-rate decay: lower layers take smaller steps",
                 layer_decay=True),
        Scenario("lora", "low-rank adapters on attention query/value; backbone weights frozen",
                 lora=True, learning_rate=5e-4, head_lr_multiplier=20.0),
    )
}  # fmt: skip


def get_scenario(name, tasks=()):
    """The scenario called `name`, checked against the tasks it will train."""
    if name not in SCENARIOS:
        raise InputError(f"unknown scenario {name!r}; choose from: {', '.join(SCENARIOS)}.")
    scenario = SCENARIOS[name]
    if scenario.frozen_head is not None and len(tasks) < scenario.min_tasks:
        raise InputError(
            f"scenario {name!r} needs at least {scenario.min_tasks} tasks (it freezes head "
            f"{scenario.frozen_head + 1}), got {len(tasks)}: pass e.g. --tasks topic,sentiment."
        )
    check_pair_tasks(scenario, tasks)
    return scenario


def check_pair_tasks(scenario, tasks):
    """A pair task has no head and trains only the encoder: refuse scenarios where it can't."""
    pairs = [t.name for t in tasks if not t.spec.has_head]
    if not pairs:
        return
    if scenario.frozen_head is not None and tasks[scenario.frozen_head].name in pairs:
        raise InputError(
            f"scenario {scenario.name!r} freezes the head of task {pairs[0]!r}, which has "
            "none (it trains the encoder): list a task with a head in that place."
        )
    if "backbone" in scenario.freeze and scenario.trains:
        raise InputError(
            f"task {pairs[0]!r} trains the encoder, which scenario {scenario.name!r} "
            "freezes: choose full, frozen_head_a/b, frozen_lower, gradual_unfreeze, llrd or lora."
        )


def frozen_parts(scenario, tasks):
    """The parts a scenario freezes for these tasks; a head is named by its task."""
    head = () if scenario.frozen_head is None else (HEAD_PART + tasks[scenario.frozen_head].name,)
    return (*scenario.freeze, *head)


def part_layers(model, part, lower_frozen_layers=0):
    """The layers that make up one part (see PARTS, or `head:<task>`) of a MultiTaskModel."""
    backbone = model.backbone
    if part == "backbone":  # the whole encoder: pooling too (attention pooling learns)
        return [backbone, model.pooling]
    if part == "embeddings":
        return [backbone.get_layer(name) for name in EMBEDDING_LAYERS]
    if part == "lower":
        return [backbone.get_layer(transformer_layer(i)) for i in range(lower_frozen_layers)]
    if part == "heads":
        return [layer for name in model.head_denses for layer in model.head_layers(name)]
    if part.startswith(HEAD_PART):
        return model.head_layers(part.removeprefix(HEAD_PART))
    raise InputError(f"unknown part {part!r}; choose from: {', '.join(PARTS)}, head:<task>.")


def set_frozen(model, parts, lower_frozen_layers=0):
    """Make `parts` non-trainable and everything else trainable (the pooler stays frozen).

    Recompile afterwards: Keras reads `trainable` when it compiles the train step.
    """
    backbone = model.backbone
    backbone.unfreeze()
    for layer in model.layers:
        if layer is not backbone and layer.weights:
            layer.trainable = True
    backbone.get_layer(POOLER).trainable = False
    for part in parts:
        for layer in part_layers(model, part, lower_frozen_layers):
            layer.trainable = False


def gradual_stages(num_layers, epochs, every):
    """The stages of gradual unfreezing.

    Stage 0 trains the heads only; each later stage unfreezes the next transformer layer
    from the top, and the last one the embeddings too.
    """
    if every < 1:
        raise InputError(f"--unfreeze-every must be >= 1 epoch, got {every}.")
    firsts = [stage * every for stage in range(num_layers + 2) if stage * every < epochs]
    ends = [*firsts[1:], epochs]
    return [
        Stage(
            first,
            end,
            ("embeddings", "lower") if stage <= num_layers else (),
            max(num_layers - stage, 0),
        )
        for stage, (first, end) in enumerate(zip(firsts, ends, strict=True))
    ]


def training_stages(scenario, tasks, num_layers, epochs, lower_frozen_layers, unfreeze_every):
    """The stages a scenario trains in (none for a scenario that does not train)."""
    if not scenario.trains:
        return []
    if scenario.gradual:
        return gradual_stages(num_layers, epochs, unfreeze_every)
    if "lower" in scenario.freeze and not 0 <= lower_frozen_layers <= num_layers:
        raise InputError(f"--frozen-layers must be in 0..{num_layers}, got {lower_frozen_layers}.")
    return [Stage(0, epochs, frozen_parts(scenario, tasks), lower_frozen_layers)]


def optimizer_parts(scenario, tasks):
    """What is frozen while the optimizer is built: nothing for gradual unfreezing.

    The optimizer is built over everything any stage trains, so that its state (and
    step count) carries through the recompiles of gradual unfreezing; a model is saved
    with this trainable set too, so a reload lines the optimizer state up again.
    """
    return () if scenario.gradual else frozen_parts(scenario, tasks)
