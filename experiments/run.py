"""Train one multi-task model under one scenario on the real data, then report and save.

    python -m experiments.run --scenario frozen_head_a
    python -m experiments.run --scenario llrd --tasks topic,sentiment,ner --epochs 3

Writes into --output-dir (default runs/<scenario>-<timestamp>): model.keras, tokenizer/,
metrics.json, history.csv, logs/ (TensorBoard) and curves.png.
"""

import argparse
import datetime
import shutil
import time
from pathlib import Path

import keras
import tensorflow as tf

from experiments.cli import run_main
from mtl_keras import presets
from mtl_keras.callbacks import (
    CHECKPOINT_DIR,
    WEIGHTS,
    DivergenceGuard,
    EpochCheckpoint,
    read_progress,
)
from mtl_keras.data.loading import resolve_data_dir
from mtl_keras.data.pipeline import SAMPLING, evaluation_stream, training_stream
from mtl_keras.encoder import traced_inference
from mtl_keras.errors import InputError, TrainingDiverged
from mtl_keras.model import (
    EMBEDDING,
    backbone_of,
    build_model,
    check_loss_weights,
    compile_model,
    heads_model,
)
from mtl_keras.preprocessing import check_max_length, make_preprocessor
from mtl_keras.saving import TOKENIZER_DIR, load_model, save_tokenizer
from mtl_keras.scenarios import SCENARIOS, get_scenario, set_frozen, training_stages
from mtl_keras.tasks import DEFAULT_TASKS, TASKS, resolve_tasks
from mtl_keras.training import (
    make_optimizer,
    param_counts,
    plot_curves,
    save_model,
    write_history_csv,
    write_json,
)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="full", help=f"one of: {', '.join(SCENARIOS)}")
    p.add_argument(
        "--tasks", default=",".join(DEFAULT_TASKS), help=f"comma-separated: {', '.join(TASKS)}"
    )
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--max-length", type=int, default=128, help="word pieces per text, [CLS]/[SEP] included"
    )
    p.add_argument(
        "--learning-rate", type=float, help="default: the scenario's own (see scenarios.py)"
    )
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--dropout", type=float, default=0.1, help="before each head")
    p.add_argument("--max-train-examples", type=int, help="per task (default: all)")
    p.add_argument("--max-eval-examples", type=int, help="per task and split (default: all)")
    p.add_argument("--sampling", default="proportional", choices=SAMPLING)
    p.add_argument("--temperature", type=float, default=2.0, help="for --sampling temperature")
    p.add_argument("--loss-weights", default="", help="e.g. topic=1,sentiment=0.5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output-dir", help="default: runs/<scenario>-<timestamp>")
    p.add_argument(
        "--preset",
        help="local keras-hub preset or Hugging Face BERT folder (default: all-MiniLM-L6-v2)",
    )
    p.add_argument(
        "--data-dir",
        help="prepared datasets (default: $MTL_KERAS_DATA_DIR or <TFDS dir>/mtl_keras)",
    )
    p.add_argument("--distribution", choices=["none", "mirrored"], default="none")
    p.add_argument(
        "--logical-cpus",
        type=int,
        default=0,
        help="split the CPU into N logical devices (for mirrored)",
    )
    p.add_argument("--verbose", default="auto", help="Keras fit verbosity: auto, 0, 1 or 2")
    p.add_argument("--init-from", help="a model.keras whose same-named layers start this run")
    p.add_argument("--no-save-model", action="store_true", help="skip model.keras (studies)")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="run the frozen backbone every step instead of caching its embeddings",
    )
    g = p.add_argument_group("scenario knobs")
    g.add_argument(
        "--frozen-layers", type=int, default=3, help="frozen_lower: lower k transformer layers"
    )
    g.add_argument(
        "--unfreeze-every", type=int, default=1, help="gradual_unfreeze: epochs per stage"
    )
    g.add_argument(
        "--layer-decay", type=float, default=0.8, help="llrd: factor per layer going down"
    )
    g.add_argument("--head-lr-multiplier", type=float, default=1.0, help="llrd: heads' factor")
    g.add_argument("--lora-rank", type=int, default=8, help="lora: rank of the adapters")
    args = p.parse_args(argv)
    args.verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
    for name in ("epochs", "batch_size", "max_train_examples", "max_eval_examples", "lora_rank"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be >= 1, got {value}.")
    return args


def parse_loss_weights(text, tasks):
    weights = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"--loss-weights item {item!r} is not task=number.") from None
    check_loss_weights(weights, tasks)  # before any weights or data are loaded
    return weights


def configure_devices(logical_cpus):
    if logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus
        )


class EpochTimer(keras.callbacks.Callback):
    """Seconds per epoch, kept across the fits of a staged run."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def evaluation_data(tasks, split, preprocessor, args, replicas, only=None, embed=None):
    return evaluation_stream(
        tasks, split, preprocessor, args.batch_size, args.max_length, args.data_dir,
        args.max_eval_examples, only, replicas, embed,
    )  # fmt: skip


def evaluate(model, tasks, split, preprocessor, args, replicas):
    """Per-task metrics on one split, each task on its own examples only."""
    results = {}
    for task in tasks:
        data, size = evaluation_data(tasks, split, preprocessor, args, replicas, only=task.name)
        if not size:
            results[task.name] = {"examples": 0}
            continue
        logs = model.evaluate(data, return_dict=True, verbose=0)
        prefix = f"{task.name}_"
        results[task.name] = {"examples": size} | {
            k[len(prefix) :]: float(v) for k, v in logs.items() if k.startswith(prefix)
        }
    return results


def print_table(metrics, tasks):
    print(f"\n{'task':10} {'split':10} {'accuracy':>9} {'f1':>7} {'xent':>7}")
    for split in ("validation", "test"):
        for task in tasks:
            m = metrics[split][task.name]
            nan = float("nan")
            f1 = m.get("macro_f1", m.get("entity_f1", nan))
            print(
                f"{task.name:10} {split:10} {m.get('accuracy', nan):9.4f} {f1:7.4f} "
                f"{m.get('xent', nan):7.4f}  ({m['examples']} examples)"
            )


def init_from(model, path):
    """Copy weights from a saved model into the layers of `model` with the same name."""
    source = {layer.name: layer for layer in load_model(path, compile=False).layers}
    copied = []
    for layer in model.layers:
        match = source.get(layer.name)
        if layer.weights and match is not None:
            shapes = [tuple(w.shape) for w in layer.weights]
            if shapes != [tuple(w.shape) for w in match.weights]:
                raise InputError(
                    f"layer {layer.name!r} in {path} has other shapes; cannot start from it."
                )
            layer.set_weights(match.get_weights())
            copied.append(layer.name)
    return copied


def main(argv=None):
    args = parse_args(argv)
    tasks = resolve_tasks(args.tasks)
    scenario = get_scenario(args.scenario, tasks)
    loss_weights = parse_loss_weights(args.loss_weights, tasks)
    configure_devices(args.logical_cpus)
    learning_rate = args.learning_rate or scenario.learning_rate
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    output = Path(args.output_dir or f"runs/{scenario.name}-{stamp}")
    if (output / "metrics.json").is_file():
        raise InputError(f"'{output}' holds a finished run; choose another --output-dir.")
    args.data_dir = resolve_data_dir(args.data_dir)
    started = time.perf_counter()

    # Weights, tokenizer and data: all local.
    preset = args.preset or presets.default_preset_dir()
    tokenizer = presets.load_tokenizer(preset)
    pretrained = presets.load_backbone(preset)
    check_max_length(args.max_length, pretrained)
    preprocessor = make_preprocessor(tokenizer, args.max_length)
    mirrored = args.distribution == "mirrored"
    strategy = tf.distribute.MirroredStrategy() if mirrored else tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync

    # The model under the scenario. The seed fixes the heads' initial weights, so runs
    # of different scenarios with the same seed start from identical weights.
    num_layers = pretrained.num_layers
    stages = training_stages(
        scenario, num_layers, args.epochs, args.frozen_layers, args.unfreeze_every
    )
    with strategy.scope():
        keras.utils.set_random_seed(args.seed)
        model = build_model(pretrained, tasks, args.dropout, scenario.inference_backbone)
        if args.init_from:
            copied = ", ".join(init_from(model, args.init_from))
            print(f"initialised from {args.init_from}: {copied}")
        if scenario.lora:
            backbone_of(model).enable_lora(args.lora_rank)
        optimizer = make_optimizer(
            scenario,
            learning_rate,
            num_layers,
            args.layer_decay,
            args.head_lr_multiplier,
            args.weight_decay,
        )
        # Build the optimizer over everything any stage trains, so that its state (and
        # step count) carries through the recompiles of gradual unfreezing.
        first_freeze = () if scenario.gradual else scenario.freeze
        set_frozen(model, tasks, first_freeze, args.frozen_layers)
        optimizer.build(model.trainable_variables)
        compile_model(model, tasks, optimizer, loss_weights)

    # A frozen backbone in inference mode gives every example the same embedding in every
    # epoch: compute it once and train the heads on the cache (sentence heads only).
    cache = (
        scenario.inference_backbone
        and stages
        and not mirrored
        and not args.no_cache
        and all(task.kind == "sentence" for task in tasks)
    )
    embed, fit_model = None, model
    if cache:
        embed = traced_inference(keras.Model(model.input, model.get_layer(EMBEDDING).output))
        fit_model = heads_model(model, tasks)
        compile_model(fit_model, tasks, optimizer, loss_weights)
    data_started = time.perf_counter()
    train, steps, sizes = training_stream(
        tasks,
        preprocessor,
        args.batch_size,
        args.max_length,
        args.sampling,
        args.temperature,
        args.max_train_examples,
        args.seed,
        args.data_dir,
        embed,
    )
    validation, _ = evaluation_data(tasks, "validation", preprocessor, args, replicas, embed=embed)
    data_seconds = time.perf_counter() - data_started
    print(f"scenario {scenario.name}: {scenario.summary}")
    print(f"training examples per task: {sizes}; {steps} steps of {args.batch_size} per epoch")
    if cache:
        print(f"frozen backbone: the heads train on embeddings computed once ({data_seconds:.0f}s)")

    # Resume after a crash: the checkpoint holds weights, optimizer state and history.
    checkpoint_dir = output / CHECKPOINT_DIR
    progress = read_progress(checkpoint_dir)
    history, timer, guard = [], EpochTimer(), DivergenceGuard()
    start_epoch = 0
    if progress:
        with strategy.scope():  # the model is compiled, so the optimizer state loads too
            model.load_weights(checkpoint_dir / WEIGHTS)
        history, timer.times = progress["history"], progress["epoch_seconds"]
        start_epoch = progress["epoch"] + 1
        print(f"resuming from the checkpoint after epoch {start_epoch} in {checkpoint_dir}")

    def record(epoch, logs):
        history.append({"epoch": epoch, **{k: float(v) for k, v in logs.items()}})

    callbacks = [
        timer,
        guard,
        keras.callbacks.LambdaCallback(on_epoch_end=record),
        EpochCheckpoint(
            checkpoint_dir,
            guard,
            lambda e, logs: {"history": history, "epoch_seconds": timer.times},
            target=model,
        ),
        keras.callbacks.TensorBoard(log_dir=str(output / "logs")),
    ]
    stage_log = []
    for first, end, frozen, lower in stages:
        with strategy.scope():
            set_frozen(model, tasks, frozen, lower)
            compile_model(model, tasks, optimizer, loss_weights)
            if fit_model is not model:
                compile_model(fit_model, tasks, optimizer, loss_weights)
        counts = param_counts(model)
        stage_log.append(
            {
                "epochs": [first, end],
                "frozen": list(frozen),
                "lower_frozen_layers": lower,
                "trainable_params": counts["trainable"],
            }
        )
        if end <= start_epoch:
            continue  # finished before the interruption
        if len(stages) > 1:
            print(
                f"stage: epochs {first + 1}-{end}, frozen {list(frozen)} (lower {lower}), "
                f"{counts['trainable']:,} trainable parameters"
            )
        fit_model.fit(
            train,
            validation_data=validation,
            initial_epoch=max(first, start_epoch),
            epochs=end,
            steps_per_epoch=steps,
            callbacks=callbacks,
            verbose=args.verbose,
            shuffle=False,
        )
        if guard.diverged_at:
            epoch, batch = guard.diverged_at
            kept = f"the last good epoch is in {checkpoint_dir}" if history else "no epoch finished"
            raise TrainingDiverged(
                f"training diverged (loss not finite) at epoch {epoch}, batch {batch}; {kept}; "
                "lower --learning-rate and rerun (a rerun resumes from that checkpoint)."
            )

    metrics = {
        "scenario": scenario.name,
        "tasks": [t.name for t in tasks],
        "validation": evaluate(model, tasks, "validation", preprocessor, args, replicas),
        "test": evaluate(model, tasks, "test", preprocessor, args, replicas),
        "params": param_counts(model),
        "stages": stage_log,
        "train_examples": sizes,
        "epoch_seconds": timer.times,
        "embedding_cache": bool(cache),
        "data_seconds": data_seconds,  # reading, tokenizing (and with the cache, embedding)
        "optimizer_iterations": int(optimizer.iterations.numpy()),
        "replicas": replicas,
        "wall_seconds": time.perf_counter() - started,
        "config": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "learning_rate": learning_rate,
            "preset": str(preset),
            "output_dir": str(output),
        },
    }
    # Save with the trainable set the optimizer was built for (for gradual unfreezing:
    # the schedule's end state), so a reload lines the optimizer state up again.
    with strategy.scope():
        set_frozen(model, tasks, first_freeze, args.frozen_layers)
        compile_model(model, tasks, optimizer, loss_weights)
    if not args.no_save_model:
        save_model(model, output / "model.keras")
        save_tokenizer(tokenizer, output / TOKENIZER_DIR)
    write_history_csv(output / "history.csv", history)
    if history:
        plot_curves(output / "curves.png", history, tasks)
    write_json(output / "metrics.json", metrics)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the run is complete
    print_table(metrics, tasks)
    artefacts = "model.keras, tokenizer/, metrics.json, history.csv, logs/, curves.png"
    print(f"\nresults in {output}/ ({artefacts})")
    return metrics


if __name__ == "__main__":
    run_main(main)
