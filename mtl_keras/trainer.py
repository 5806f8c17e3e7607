"""`train(config)`: one multi-task model under one scenario on the real data, end to end.

The body of `train` is the recipe, step by step: build the model, load the data, fit
the scenario's stages (resuming from a checkpoint after a crash), evaluate, write the
artefacts. Every step is a function here that a user can also call on its own.
"""

import dataclasses
import datetime
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mtl_keras import presets
from mtl_keras.artifacts import ensure_writable_dir, save_model, write_history_csv, write_json
from mtl_keras.backbone import TunableBertBackbone
from mtl_keras.callbacks import (
    CHECKPOINT_DIR,
    DivergenceGuard,
    EpochCheckpoint,
    EpochTimer,
    ValidationScore,
    read_progress,
    seed_states,
)
from mtl_keras.config import RunConfig
from mtl_keras.data.loading import get_builder, resolve_data_dir
from mtl_keras.data.pipeline import evaluation_stream, training_stream
from mtl_keras.encoder import SentenceEncoder, traced_inference
from mtl_keras.errors import InputError, TrainingDiverged
from mtl_keras.metrics import entity_f1_by_type
from mtl_keras.model import MultiTaskModel, compile_model, per_task_logs
from mtl_keras.optimizers import make_optimizer
from mtl_keras.plots import plot_curves
from mtl_keras.preprocessing import make_preprocessor
from mtl_keras.saving import TOKENIZER_DIR, check_model_file, copy_weights_from, save_tokenizer
from mtl_keras.scenarios import (
    SCENARIOS,
    get_scenario,
    optimizer_parts,
    set_frozen,
    training_stages,
)
from mtl_keras.similarity import sts_pairs, sts_spearman
from mtl_keras.tasks import resolve_tasks, split_sizes

ARTEFACTS = ("model.keras", "tokenizer/", "metrics.json", "history.csv", "logs/", "curves.png")


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a finished run gives back: its folder, its metrics and its model file."""

    output_dir: Path
    metrics: dict
    model_path: Path | None  # None when the run was told not to save the model


@dataclasses.dataclass
class Run:
    """Everything `build` makes for a run; the later steps read it."""

    config: RunConfig
    scenario: object
    tasks: list
    preset: Path
    tokenizer: object
    preprocessor: object
    strategy: object
    model: MultiTaskModel
    optimizer: keras.optimizers.Optimizer | None  # made by `attach_optimizer`
    stages: list
    fit_model: keras.Model = None  # what `fit` trains: the model, or its heads on a cache
    embed: object = None  # the frozen-backbone embedding function when caching
    eval_data: dict = dataclasses.field(default_factory=dict)  # built once per split
    sts_pairs: tuple = None  # the STS-B test pairs, read once
    sts_encoder: SentenceEncoder = None  # the model's embedding, traced once


@dataclasses.dataclass
class RunData:
    train: tf.data.Dataset
    steps: int
    sizes: dict
    validation: tf.data.Dataset | None
    seconds: float  # reading, tokenizing (and with the cache, embedding)


@dataclasses.dataclass
class Fitted:
    history: list
    epoch_seconds: list
    stages: list  # one dict per stage: epochs, frozen parts, trainable parameters
    best_epoch: int | None = None  # early stopping restored this epoch's weights


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
        ensure_writable_dir(output, "--output-dir")
        run = build(config)
        sts_before = measure_sts(run)
        data = load_data(run)
        attach_optimizer(run, data.steps)
        fitted = fit_stages(run, data, output)
        metrics = evaluate_run(run, data, fitted, output)
        metrics["sts_b"] = sts_change(run, sts_before, measure_sts(run))
        metrics["wall_seconds"] = time.perf_counter() - started
        model_path = write_artifacts(run, fitted, metrics, output)
    except BaseException:
        if created and output.is_dir() and not any(output.iterdir()):
            output.rmdir()  # a run that failed before writing anything leaves no folder
        raise
    print(format_metrics(metrics))
    print(f"\nresults in {output}/ ({', '.join(ARTEFACTS)})")
    return RunResult(output, metrics, model_path)


def preset_path(config):
    """The run's weights folder: `config.preset`, else the packaged all-MiniLM-L6-v2."""
    return Path(config.preset) if config.preset else presets.default_preset_dir()


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


def configure_devices(logical_cpus):
    """Split the CPU into logical devices, so MirroredStrategy has replicas to mirror."""
    if logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus
            )
        except RuntimeError:  # TensorFlow fixes its devices once it has started
            if len(tf.config.list_logical_devices("CPU")) != logical_cpus:
                raise InputError(
                    "--logical-cpus can only be set before TensorFlow starts: "
                    "run it in a fresh process."
                ) from None


def build(config):
    """Step 1: local weights and tokenizer, the model under the scenario."""
    tasks = resolve_tasks(config.tasks)
    scenario = get_scenario(config.scenario, tasks)
    configure_devices(config.logical_cpus)
    preset = preset_path(config)
    tokenizer = presets.load_tokenizer(preset)
    pretrained = presets.load_backbone(preset)  # its length was checked before loading
    mirrored = config.distribution == "mirrored"
    strategy = tf.distribute.MirroredStrategy() if mirrored else tf.distribute.get_strategy()
    stages = training_stages(
        scenario,
        tasks,
        pretrained.num_layers,
        config.epochs,
        config.frozen_layers,
        config.unfreeze_every,
    )
    with strategy.scope():
        model = new_model(config, scenario, tasks, pretrained)
    run = Run(
        config,
        scenario,
        tasks,
        preset,
        tokenizer,
        make_preprocessor(tokenizer, config.max_length),
        strategy,
        model,
        None,  # the optimizer: made once the data says how many steps the run has
        stages,
    )
    run.fit_model, run.embed = model, None
    if uses_embedding_cache(run):
        # A frozen backbone in inference mode gives every example the same embedding in
        # every epoch: compute it once and train the heads on the cache.
        run.embed = traced_inference(model.embedding_model())
        run.fit_model = model.heads_model()
    return run


def attach_optimizer(run, steps_per_epoch):
    """Step 2b: the optimizer, its schedule spanning the run's steps; compile with it.

    It is built over everything the scenario ever trains (see `optimizer_parts`), so
    its state and step count carry through the stages of gradual unfreezing, and its
    schedule runs once over the whole run.
    """
    config, model = run.config, run.model
    with run.strategy.scope():
        run.optimizer = make_optimizer(
            run.scenario,
            learning_rate=config.learning_rate_or_default,
            num_layers=model.backbone.num_layers,
            layer_decay=config.layer_decay,
            head_multiplier=config.head_lr_multiplier_or_default,
            weight_decay=config.weight_decay,
            total_steps=steps_per_epoch * config.epochs,
            schedule=config.schedule,
            warmup_ratio=config.warmup_ratio,
            accumulation_steps=config.gradient_accumulation_steps,
        )
        set_frozen(model, optimizer_parts(run.scenario, run.tasks), config.frozen_layers)
        run.optimizer.build(model.trainable_variables)
    recompile(run)


def new_model(config, scenario, tasks, pretrained):
    """The multi-task model; the seed fixes the heads, so all scenarios start equal."""
    keras.utils.set_random_seed(config.seed)
    backbone = TunableBertBackbone.from_backbone(pretrained)
    backbone.inference_mode = scenario.inference_backbone
    model = MultiTaskModel(backbone, tasks, config.dropout, config.pooling,
                           max_length=config.max_length)  # fmt: skip
    if config.init_from:
        copied = copy_weights_from(model, config.init_from)
        print(f"initialised from {config.init_from}: {', '.join(copied)}")
    if scenario.lora:
        model.backbone.enable_lora(config.lora_rank)
    return model


def uses_embedding_cache(run):
    """Heads train on cached embeddings: a frozen inference backbone, sentence heads only."""
    return bool(
        run.config.cache_embeddings
        and run.scenario.inference_backbone
        and run.stages
        and run.config.distribution == "none"
        and all(t.spec.embedding_head for t in run.tasks)
    )


def recompile(run, frozen=None, lower_frozen_layers=None):
    """Set the trainable parts (when given), then compile what `fit` trains.

    Keras reads `trainable` when it compiles the train step, so every change of the
    frozen set is followed by a recompile with the same (already built) optimizer.
    """
    with run.strategy.scope():
        if frozen is not None:
            set_frozen(run.model, frozen, lower_frozen_layers)
        compile_model(run.model, run.optimizer, run.config.loss_weights)
        if run.fit_model is not run.model:
            compile_model(run.fit_model, run.optimizer, run.config.loss_weights, run.tasks)


def load_data(run):
    """Step 2: the mixed training stream and the validation batches."""
    config, started = run.config, time.perf_counter()
    data_dir = resolve_data_dir(config.data_dir)
    train_stream, steps, sizes = training_stream(
        run.tasks,
        run.preprocessor,
        batch_size=config.batch_size,
        max_length=config.max_length,
        sampling=config.sampling,
        temperature=config.temperature,
        max_examples={t.name: config.train_cap(t.name) for t in run.tasks},
        seed=config.seed,
        data_dir=data_dir,
        embed=run.embed,
        length_buckets=config.length_buckets,
    )
    validation, _ = evaluation_data(run, "validation", embed=run.embed)
    data = RunData(train_stream, steps, sizes, validation, time.perf_counter() - started)
    print(f"scenario {run.scenario.name}: {run.scenario.summary}")
    for name, splits in own_data(run).items():
        made = "; ".join(f"{s} {d['examples']} ({d['from']})" for s, d in splits.items())
        print(f"task {name}: {made}")
    print(f"training examples per task: {sizes}; {steps} steps of {config.batch_size} per epoch")
    if run.embed is not None:
        print(f"frozen backbone: the heads train on embeddings computed once ({data.seconds:.0f}s)")
    return data


def evaluation_data(run, split, embed=None):
    """(batches, {task: examples}) of a split: read, tokenized and sorted once per run."""
    key = (split, embed is not None)
    if key not in run.eval_data:
        run.eval_data[key] = evaluation_stream(
            run.tasks,
            split,
            run.preprocessor,
            batch_size=run.config.batch_size,
            max_length=run.config.max_length,
            data_dir=resolve_data_dir(run.config.data_dir),
            max_examples=run.config.max_eval_examples,
            replicas=run.strategy.num_replicas_in_sync,
            embed=embed,
        )
    return run.eval_data[key]


def fit_stages(run, data, output):
    """Step 3: `fit` each stage, resuming after the last checkpointed epoch if any."""
    checkpoint_dir = output / CHECKPOINT_DIR
    history, timer, start_epoch = resume(run, checkpoint_dir)
    guard = DivergenceGuard()
    stopper = None
    if run.config.patience is not None:
        stopper = keras.callbacks.EarlyStopping(
            ValidationScore.MONITOR, patience=run.config.patience, mode="max",
            restore_best_weights=True, verbose=1 if run.config.verbose else 0,
        )  # fmt: skip
    callbacks = run_callbacks(run, output, history, timer, guard, stopper)
    stage_log = []
    for stage in run.stages:
        recompile(run, stage.frozen, stage.lower_frozen_layers)
        trainable = param_counts(run.model)["trainable"]
        stage_log.append(
            {
                "epochs": [stage.first_epoch, stage.end_epoch],
                "frozen": list(stage.frozen),
                "lower_frozen_layers": stage.lower_frozen_layers,
                "trainable_params": trainable,
            }
        )
        if stage.end_epoch <= start_epoch:
            continue  # finished before the interruption
        if len(run.stages) > 1:
            print(
                f"stage: epochs {stage.first_epoch + 1}-{stage.end_epoch}, frozen "
                f"{list(stage.frozen)} (lower {stage.lower_frozen_layers}), "
                f"{trainable:,} trainable parameters"
            )
        first = max(stage.first_epoch, start_epoch)
        run.fit_model.fit(
            # Each `fit` reads the stream from its start; a resumed stage skips the batches
            # its finished epochs used, so every epoch sees the batches it would have seen.
            data.train.skip((first - stage.first_epoch) * data.steps),
            validation_data=data.validation,
            initial_epoch=first,
            epochs=stage.end_epoch,
            steps_per_epoch=data.steps,
            callbacks=callbacks,
            verbose=run.config.fit_verbose,
            shuffle=False,
        )
        check_divergence(guard, history, checkpoint_dir)
    best = stopper.best_epoch if stopper is not None and stopper.best_weights else None
    return Fitted(history, timer.times, stage_log, best)


def run_callbacks(run, output, history, timer, guard, stopper=None):
    """Timing, divergence stop, the validation score, history, [early stopping],
    checkpoint, TensorBoard: in this order, as each reads what the ones before wrote."""
    names = [task.name for task in run.tasks]
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: history.append(
            {"epoch": epoch, **{k: float(v) for k, v in per_task_logs(logs, names).items()}}
        )
    )
    checkpoint = EpochCheckpoint(
        output / CHECKPOINT_DIR,
        guard,
        lambda epoch, logs: {"history": history, "epoch_seconds": timer.times},
        target=run.model,
    )
    score = ValidationScore(run.tasks, per_task_logs)
    stopping = [] if stopper is None else [stopper]
    tensorboard = keras.callbacks.TensorBoard(log_dir=str(output / "logs"))
    return [timer, guard, score, record, *stopping, checkpoint, tensorboard]


def resume(run, checkpoint_dir):
    """(history, timer, first epoch to run): from the checkpoint of a crashed run, if any.

    Weights, optimizer state (moments, step count, so the schedule goes on) and dropout
    random states come back as they were after the last finished epoch; with the skipped
    batches in `fit_stages`, the rest of the run is the uninterrupted run's.
    """
    progress = read_progress(checkpoint_dir)
    if not progress:
        return [], EpochTimer(), 0
    recompile(run)  # compiled, so the optimizer state loads too
    with run.strategy.scope():
        run.model.load_weights(progress["weights"])
        states = progress.get("seed_states", ())  # absent in checkpoints of older versions
        for variable, value in zip(seed_states(run.model), states, strict=bool(states)):
            variable.assign(value)  # what `save_weights` leaves out
    start_epoch = progress["epoch"] + 1
    print(f"resuming from the checkpoint after epoch {start_epoch} in {checkpoint_dir}")
    return progress["history"], EpochTimer(progress["epoch_seconds"]), start_epoch


def check_divergence(guard, history, checkpoint_dir):
    if guard.diverged_at:
        epoch, batch = guard.diverged_at
        kept = f"the last good epoch is in {checkpoint_dir}" if history else "no epoch finished"
        raise TrainingDiverged(
            f"training diverged (loss not finite) at epoch {epoch}, batch {batch}; {kept}; "
            "lower --learning-rate and rerun (a rerun resumes from that checkpoint)."
        )


def evaluate(run, split):
    """Per-task metrics on one split, in one pass over all of its examples.

    Each head's metrics are weighted by its own labels, so an example of another task
    counts for nothing there; `xent` is the head's mean loss over its own examples.
    """
    data, sizes = evaluation_data(run, split)
    if data is None:
        return {name: {"examples": n} for name, n in sizes.items()}
    return evaluated(run, data, sizes)


def evaluated(run, data, sizes):
    """{task in `sizes`: metrics} of `model.evaluate` over `data`.

    The logs are named for every output of the model, whichever tasks `data` holds.
    """
    logs = run.model.evaluate(data, return_dict=True, verbose=0)
    return task_metrics(per_task_logs(logs, [t.name for t in run.tasks]), sizes)


def task_split_stream(run, split, task, where=None):
    """(batches, {task: examples}) of one task's examples of `split` (a `where` subset)."""
    return evaluation_stream(
        run.tasks, split, run.preprocessor, batch_size=run.config.batch_size,
        max_length=run.config.max_length, data_dir=resolve_data_dir(run.config.data_dir),
        max_examples=run.config.max_eval_examples, only=task.name, where=where,
    )  # fmt: skip


def task_metrics(logs, sizes, prefix=""):
    """{task: {"examples", metric: value}} from `<prefix><task>_<metric>` logs.

    The per-task `_loss` is left out: Keras averages it over whole mixed batches.
    """
    results = {}
    for name, examples in sizes.items():
        start = f"{prefix}{name}_"
        metrics = {k[len(start) :]: float(v) for k, v in logs.items() if k.startswith(start)}
        metrics.pop("loss", None)
        results[name] = {"examples": examples, **(metrics if examples else {})}
    return results


def measure_sts(run):
    """STS-B test Spearman x 100 of the run's embedding as it is now (None if turned off)."""
    if not run.config.measure_sts:
        return None
    if run.sts_pairs is None:
        run.sts_pairs = sts_pairs("test", resolve_data_dir(run.config.data_dir))
    return sts_spearman(run_encode(run), run.sts_pairs)


def run_encode(run):
    """The run's embedding of a list of texts (L2-normalised), as the model is now.

    The encoder is traced once: it reads the variables, so later calls see training.
    """
    if run.sts_encoder is None:
        run.sts_encoder = SentenceEncoder.from_model(
            run.model, run.tokenizer, run.config.max_length
        )
    return lambda texts: run.sts_encoder.encode(texts, batch_size=run.config.batch_size)


def with_split_metrics(run, split, metrics):
    """`metrics` ({task: {...}}) with each task's metrics over the whole split added: what
    a kind measures beyond batches (`Kind.split_metrics`: retrieval for contrastive)."""
    data_dir, cap = resolve_data_dir(run.config.data_dir), run.config.max_eval_examples
    for task in run.tasks:

        def examples(task=task):
            return list(task.examples(split, data_dir).take(cap or -1).as_numpy_iterator())

        found = task.spec.split_metrics(task, run_encode(run), examples)
        if found:
            metrics[task.name].update(found)
    return metrics


def sts_change(run, before, after):
    """The forgetting measure: the embedding's STS-B figure before and after training."""
    if before is None:
        return None
    return {"split": "test", "pairs": len(run.sts_pairs[2]), "max_length": run.config.max_length,
            "before": before, "after": after, "change": after - before}  # fmt: skip


def validation_metrics(run, fitted):
    """The final validation metrics: those `fit` measured for the final weights, else anew.

    The final weights are the last epoch's, or with early stopping the best epoch's;
    `fit` measured the validation split right after that epoch, so evaluating it again
    would only repeat that pass.
    """
    final = run.config.epochs - 1 if fitted.best_epoch is None else fitted.best_epoch
    row = next((r for r in reversed(fitted.history) if r["epoch"] == final), {})
    _, sizes = evaluation_data(run, "validation", embed=run.embed)
    loss = {task.name: task.loss_metric for task in run.tasks}
    measured = all(f"val_{n}_{loss[n]}" in row for n, size in sizes.items() if size)
    if not row or not measured or not any(sizes.values()):
        return evaluate(run, "validation")
    return task_metrics(row, sizes, prefix="val_")


def entity_types_f1(run, split):
    """{token task: {entity type: F1}} on a split (the micro F1 is in `evaluate`'s)."""
    out = {}
    for task in (t for t in run.tasks if t.spec.reads_sequence):
        data, _ = task_split_stream(run, split, task)
        if data is None:
            continue
        true, pred, weight = [], [], []
        for x, y, w in data:  # rows padded to a batch's longest: keep them row by row
            logits = run.model(x, training=False)[task.name]
            true += list(np.asarray(y[task.name]))
            pred += list(np.argmax(logits, axis=-1))
            weight += list(np.asarray(w[task.name]))
        out[task.name] = entity_f1_by_type(true, pred, weight, task.labels)
    return out


# Crowd annotators' agreement on a tweet's label: accuracy on the tweets at or above it
# shows how much label noise caps the accuracy on all of them.
CONFIDENT = 0.8


def confident_metrics(run, split):
    """{task: metrics} on the examples of `split` labelled with confidence >= CONFIDENT,
    for each task whose dataset records annotator confidence (tweet sentiment)."""
    data_dir, out = resolve_data_dir(run.config.data_dir), {}
    for task in (t for t in run.tasks if t.dataset is not None):  # a packaged dataset
        if "confidence" not in get_builder(task.dataset, data_dir).info.features:
            continue
        data, sizes = task_split_stream(
            run, split, task, where=lambda example: example["confidence"] >= CONFIDENT
        )
        metrics = {"min_confidence": CONFIDENT, "examples": sizes[task.name]}
        if data is not None:
            metrics.update(evaluated(run, data, sizes)[task.name])
        out[task.name] = metrics
    return out


def own_data(run):
    """{task: {split: {"examples", "from"}}} for the tasks read from a user's files."""
    return {t.name: split_sizes(t) for t in run.tasks if t.files is not None}


def param_counts(model):
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    total = int(sum(np.prod(v.shape) for v in model.weights))
    return {"trainable": trainable, "total": total, "non_trainable": total - trainable}


def evaluate_run(run, data, fitted, output):
    """Step 4: validation and test metrics, with what the run was and what it cost."""
    return {
        "scenario": run.scenario.name,
        "tasks": [t.name for t in run.tasks],
        "validation": validation_metrics(run, fitted),
        "test": with_split_metrics(run, "test", evaluate(run, "test")),
        "test_entity_f1_by_type": entity_types_f1(run, "test"),
        "test_confident": confident_metrics(run, "test"),
        "params": param_counts(run.model),
        "stages": fitted.stages,
        "best_epoch": fitted.best_epoch,  # with --patience: the epoch whose weights were kept
        "train_examples": data.sizes,
        "own_data": own_data(run),  # a user's task: its split sizes and how each was made
        "epoch_seconds": fitted.epoch_seconds,
        "embedding_cache": run.embed is not None,
        "data_seconds": data.seconds,
        "optimizer_iterations": int(run.optimizer.iterations.numpy()),
        "replicas": run.strategy.num_replicas_in_sync,
        "config": {
            **run.config.to_dict(),
            "learning_rate": run.config.learning_rate_or_default,
            "head_lr_multiplier": run.config.head_lr_multiplier_or_default,
            "preset": str(run.preset),
            "output_dir": str(output),
        },
    }


def write_artifacts(run, fitted, metrics, output):
    """Step 5: model, tokenizer, history, curves, metrics; the checkpoint goes.

    The model is saved with the trainable set its optimizer was built for (for gradual
    unfreezing, the last stage's), so a reload lines the optimizer state up again.
    """
    check_finite(run.model, metrics)
    recompile(run, optimizer_parts(run.scenario, run.tasks), run.config.frozen_layers)
    model_path = None
    if run.config.save_model:
        model_path = save_model(run.model, output / "model.keras")
        save_tokenizer(run.tokenizer, output / TOKENIZER_DIR)
    write_history_csv(output / "history.csv", fitted.history)
    if fitted.history:
        plot_curves(output / "curves.png", fitted.history, run.tasks)
    write_json(output / "metrics.json", metrics)
    shutil.rmtree(output / CHECKPOINT_DIR, ignore_errors=True)  # the run is complete
    return model_path


def check_finite(model, metrics):
    """Refuse to call a run finished when a weight or a final metric is not finite."""
    broken = [v.path for v in model.weights if not np.isfinite(np.asarray(v)).all()]
    nan = [f"{split}/{task}/{name}" for split in ("validation", "test")
           for task, values in metrics[split].items()
           for name, value in values.items() if not np.isfinite(value)]  # fmt: skip
    if broken or nan:
        what = f"weight {broken[0]}" if broken else f"metric {nan[0]}"
        raise TrainingDiverged(
            f"training produced a non-finite {what}; nothing was saved: lower "
            "--learning-rate (or --head-lr-multiplier) and rerun."
        )


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
    sts = metrics.get("sts_b")
    if sts:
        lines.append(
            f"\nembedding on STS-B {sts['split']} ({sts['pairs']} pairs), Spearman x 100: "
            f"{sts['before']:.2f} before training, {sts['after']:.2f} after ({sts['change']:+.2f})"
        )
    return "\n".join(lines)
