"""`train(config)`: one multi-task model under one scenario on the real data, end to end.

The body of `train` is the recipe, step by step, on a `MultiTaskTrainer`: build the model,
load the data, fit the scenario's stages (resuming from a checkpoint after a crash),
evaluate, write the artefacts. Each step is a method a user can also call on its own.
"""

import dataclasses
import datetime
import time
from pathlib import Path

from mtl_keras.artifacts import ensure_writable_dir
from mtl_keras.config import RunConfig
from mtl_keras.data.loading import resolve_data_dir
from mtl_keras.encoding import presets
from mtl_keras.errors import InputError
from mtl_keras.saving import check_model_file
from mtl_keras.training.scenarios import SCENARIOS
from mtl_keras.training.setup import preset_path, writes_files
from mtl_keras.training.trainer import MultiTaskTrainer

ARTEFACTS = ("model.keras", "tokenizer/", "README.md", "metrics.json", "history.csv",
             "logs/", "curves.png")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a finished run gives back: its folder, its metrics and its model file."""

    output_dir: Path
    metrics: dict
    model_path: Path | None  # None when the run was told not to save the model


def train(config=None, **options):
    """Train, evaluate and save one run; returns a `RunResult`.

        from mtl_keras import RunConfig, train
        result = train(RunConfig(scenario="frozen_head_a", epochs=1))
        result = train(scenario="llrd", tasks="topic,sentiment", max_length=64)

    Args:
        config: a `RunConfig` (default: `RunConfig()`); `options` replace its fields.
    """
    config = dataclasses.replace(config or RunConfig(), **options)
    started = time.perf_counter()
    check_before_loading(config)
    output = resolve_output_dir(config)
    created = not output.exists()
    try:
        if writes_files(config):
            ensure_writable_dir(output, "--output-dir")
        trainer = MultiTaskTrainer(config)
        sts_before = trainer.measure_sts()
        data = trainer.load_data()
        trainer.attach_optimizer(data.steps)
        fitted = trainer.fit(data, output)
        metrics = trainer.evaluate_all(data, fitted, output)
        metrics["sts_b"] = trainer.sts_change(sts_before, trainer.measure_sts())
        metrics["wall_seconds"] = time.perf_counter() - started
        model_path = trainer.save(fitted, metrics, output)
    except BaseException:
        if created and output.is_dir() and not any(output.iterdir()):
            output.rmdir()  # a run that failed before writing anything leaves no folder
        raise
    print(format_metrics(metrics))
    if writes_files(config):
        written = [name for name in ARTEFACTS if (output / name).exists()]
        print(f"\nresults in {output}/ ({', '.join(written)})")
    return RunResult(output, metrics, model_path)


def check_before_loading(config):
    """The preset, data folder and start model a run needs, checked before anything loads."""
    numbers = presets.preset_config(preset_path(config))
    if config.max_length > numbers["max_positions"]:
        raise InputError(
            f"--max-length {config.max_length} exceeds the encoder's "
            f"{numbers['max_positions']} positions; use <= {numbers['max_positions']}."
        )
    if SCENARIOS[config.scenario].lora and config.lora_rank > numbers["hidden_dim"]:
        raise InputError(
            f"--lora-rank {config.lora_rank} exceeds the encoder's width "
            f"{numbers['hidden_dim']}; use a small rank such as 8."
        )
    resolve_data_dir(config.data_dir)  # refuses a file
    if config.init_from:
        check_model_file(config.init_from)


def resolve_output_dir(config):
    """The run's folder (default runs/<scenario>-<timestamp>); refuse a finished run's."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    output = Path(config.output_dir or f"runs/{config.scenario}-{stamp}")
    if (output / "metrics.json").is_file():
        raise InputError(f"'{output}' holds a finished run; choose another --output-dir.")
    return output


def format_metrics(metrics):
    """The per-task validation and test table a run prints at the end.

    `f1 / r`: macro-F1 (sentence), entity F1 (token) or Pearson r (pair); `loss`: the
    task's cross-entropy, or squared error for a pair task.
    """
    nan = float("nan")

    def line(task, split, m, examples):
        f1 = m.get("macro_f1", m.get("entity_f1", m.get("pearson", nan)))
        loss = m.get("xent", m.get("mse", nan))
        accuracy = m.get("accuracy", nan)
        return f"{task:10} {split:10} {accuracy:9.4f} {f1:7.4f} {loss:7.4f}  ({examples})"

    lines = [f"\n{'task':10} {'split':10} {'accuracy':>9} {'f1 / r':>7} {'loss':>7}"]
    for split in ("validation", "test"):
        for task, m in metrics[split].items():
            lines.append(line(task, split, m, f"{m['examples']} examples"))
    for task, m in metrics.get("test_confident", {}).items():
        if "accuracy" in m:
            subset = f"labelled with confidence >= {m['min_confidence']}"
            lines.append(line(task, "test", m, f"{m['examples']} examples {subset}"))
    learned = metrics.get("learned_loss_weights")
    if learned:
        weights = ", ".join(f"{task} {weight:.3g}" for task, weight in learned.items())
        lines.append(f"\nlearned loss weights (uncertainty weighting): {weights}")
    sts = metrics.get("sts_b")
    if sts:
        lines.append(
            f"\nembedding on STS-B {sts['split']} ({sts['pairs']} pairs), Spearman x 100: "
            f"{sts['before']:.2f} before training, {sts['after']:.2f} after ({sts['change']:+.2f})"
        )
    return "\n".join(lines)
