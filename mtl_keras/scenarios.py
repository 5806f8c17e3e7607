"""Task 3: the training scenarios, as one table of data, and how to apply them.

A scenario names what is frozen (with `layer.trainable`), whether the frozen backbone
runs in inference mode, and which schedule or optimizer it needs. Everything that
differs between scenarios lives in `SCENARIOS`; the runner has no per-scenario branches.
"""

import dataclasses

from mtl_keras.errors import InputError
from mtl_keras.layerwise_lr import EMBEDDING_LAYERS
from mtl_keras.model import backbone_of

# Parts of a model that a scenario can freeze.
PARTS = ("backbone", "embeddings", "lower", "heads", "head_a", "head_b")


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    freeze: tuple = ()  # parts of PARTS frozen for the whole run
    inference_backbone: bool = False  # backbone without dropout (it is frozen throughout)
    trains: bool = True  # False: evaluate and save only (the untrained baseline)
    min_tasks: int = 1
    gradual: bool = False  # heads first, then transformer layers top-down, then embeddings
    layer_decay: bool = False  # layer-wise learning-rate decay (LayerwiseLR)
    lora: bool = False  # keras-hub LoRA on attention query/value; rest of backbone frozen
    learning_rate: float = 5e-5  # default step size; `--learning-rate` overrides


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("full", "fine-tune everything"),
        Scenario("frozen_all", "nothing trains: pretrained encoder + random heads, the baseline",
                 freeze=("backbone", "heads"), inference_backbone=True, trains=False),
        Scenario("frozen_backbone", "train the heads on fixed pretrained embeddings (linear probe)",
                 freeze=("backbone",), inference_backbone=True, learning_rate=1e-3),
        Scenario("frozen_head_a", "freeze the first task's head, train backbone + other heads",
                 freeze=("head_a",)),
        Scenario("frozen_head_b", "freeze the second task's head, train backbone + other heads",
                 freeze=("head_b",), min_tasks=2),
        Scenario("frozen_lower", "freeze embeddings and the lower k transformer layers",
                 freeze=("embeddings", "lower")),
        Scenario("gradual_unfreeze", "heads first, then one more layer top-down every N epochs",
                 gradual=True),
        Scenario("llrd", "layer-wise learning-rate decay: lower layers take smaller steps",
                 layer_decay=True, learning_rate=1e-4),
        Scenario("lora", "low-rank adapters on attention query/value; backbone weights frozen",
                 lora=True, learning_rate=5e-4),
    )
}  # fmt: skip


def get_scenario(name, tasks=()):
    """The scenario called `name`, checked against the tasks it will train."""
    if name not in SCENARIOS:
        raise InputError(f"unknown scenario {name!r}; choose from: {', '.join(SCENARIOS)}.")
    scenario = SCENARIOS[name]
    if len(tasks) < scenario.min_tasks:
        raise InputError(
            f"scenario {name!r} needs at least {scenario.min_tasks} tasks "
            f"(it freezes head b), got {len(tasks)}: pass e.g. --tasks topic,sentiment."
        )
    return scenario


def head_layers(model, task):
    """The layers of one task's head: named `<task>` or `<task>_...`."""
    return [
        layer
        for layer in model.layers
        if layer.name == task.name or layer.name.startswith(f"{task.name}_")
    ]


def part_layers(model, tasks, part, lower_layers=0):
    """The layers that make up one part (see PARTS) of a model from `build_model`."""
    backbone = backbone_of(model)
    if part == "backbone":
        return [backbone]
    if part == "embeddings":
        return [backbone.get_layer(name) for name in EMBEDDING_LAYERS]
    if part == "lower":
        return [backbone.get_layer(f"transformer_layer_{i}") for i in range(lower_layers)]
    if part == "heads":
        return [layer for task in tasks for layer in head_layers(model, task)]
    index = {"head_a": 0, "head_b": 1}[part]
    return head_layers(model, tasks[index])


def set_frozen(model, tasks, parts, lower_layers=0):
    """Make `parts` non-trainable and everything else trainable (the pooler stays frozen).

    Recompile afterwards: Keras reads `trainable` when it compiles the train step.
    """
    backbone = backbone_of(model)
    backbone.trainable = True
    # A functional model does not pass `trainable` on to its layers; each layer does to
    # its own sublayers. With LoRA, keras-hub has decided what trains in the backbone.
    inner = [] if backbone.lora_rank else backbone.layers
    for layer in [*inner, *model.layers]:
        if layer is not backbone and layer.weights:
            layer.trainable = True
    backbone.get_layer("pooled_dense").trainable = False
    for part in parts:
        if part not in PARTS:
            raise InputError(f"unknown part {part!r}; choose from: {', '.join(PARTS)}.")
        for layer in part_layers(model, tasks, part, lower_layers):
            layer.trainable = False


def gradual_stages(num_layers, epochs, every):
    """[(first_epoch, last_epoch_exclusive, frozen_parts_and_layers)] for gradual unfreezing.

    Stage 0 trains the heads only; each later stage unfreezes the next transformer layer
    from the top, and the last one the embeddings too.
    """
    if every < 1:
        raise InputError(f"--unfreeze-every must be >= 1 epoch, got {every}.")
    stages = []
    for stage in range(num_layers + 2):
        first = stage * every
        if first >= epochs:
            break
        frozen_layers = num_layers - stage  # lower layers still frozen
        parts = ("embeddings", "lower") if stage <= num_layers else ()
        stages.append([first, epochs, parts, max(frozen_layers, 0)])
    for current, following in zip(stages, stages[1:], strict=False):
        current[1] = following[0]
    return [tuple(s) for s in stages]


def training_stages(scenario, num_layers, epochs, lower_layers, unfreeze_every):
    """The stages a scenario trains in: (first_epoch, end_epoch, frozen parts, lower k)."""
    if not scenario.trains:
        return []
    if scenario.gradual:
        return gradual_stages(num_layers, epochs, unfreeze_every)
    if "lower" in scenario.freeze and not 0 <= lower_layers <= num_layers:
        raise InputError(f"--frozen-layers must be in 0..{num_layers}, got {lower_layers}.")
    return [(0, epochs, scenario.freeze, lower_layers)]
