"""`train(config)`: one multi-task model under one scenario on the real data, end to end.

The body of `train` is the recipe, step by step, on a `MultiTaskTrainer`: build the model,
load the data, fit the scenario's stages (resuming from a checkpoint after a crash),
evaluate, write the artefacts. Each step is a method a user can also call on its own.
"""

import dataclasses
import datetime
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mtl_keras import distributed, presets
from mtl_keras.artifacts import ensure_writable_dir, save_model, write_history_csv, write_json
from mtl_keras.backbone import TunableBertBackbone
from mtl_keras.callbacks import (
    CHECKPOINT_DIR,
    DivergenceGuard,
    EpochCheckpoint,
    EpochTimer,
    RunEarlyStopping,
    ValidationScore,
    read_progress,
    seed_states,
    weights_file,
)
from mtl_keras.config import RunConfig
from mtl_keras.data.loading import resolve_data_dir
from mtl_keras.data.pipeline import evaluation_stream, training_stream
from mtl_keras.encoder import SentenceEncoder, traced_inference
from mtl_keras.errors import InputError, TrainingDiverged
from mtl_keras.metrics import entity_f1_by_type
from mtl_keras.model import MultiTaskModel, compile_model, per_task_logs
from mtl_keras.optimizers import make_optimizer
from mtl_keras.plots import plot_curves
from mtl_keras.preprocessing import make_preprocessor
from mtl_keras.provenance import code_commit, machine_cpu
from mtl_keras.saving import TOKENIZER_DIR, check_model_file, copy_weights_from, save_tokenizer
from mtl_keras.scenarios import (
    HEAD_PART,
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


def writes_files(config):
    """Whether this process writes the run's files: always, except under data parallelism,
    where process 0 alone does (the others train and evaluate alike)."""
    return config.distribution != "data_parallel" or distributed.cluster_from_env().is_chief


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


def new_model(config, scenario, tasks, pretrained):
    """The multi-task model; the seed fixes the heads, so all scenarios start equal."""
    keras.utils.set_random_seed(config.seed)
    backbone = TunableBertBackbone.from_backbone(pretrained)
    backbone.inference_mode = scenario.inference_backbone
    model = MultiTaskModel(backbone, tasks, config.dropout, config.pooling,
                           max_length=config.max_length,
                           loss_weighting=config.loss_weighting)  # fmt: skip
    if config.init_from:
        copied = copy_weights_from(model, config.init_from)
        print(f"initialised from {config.init_from}: {', '.join(copied)}")
    if scenario.lora:
        model.backbone.enable_lora(config.lora_rank)
    return model


def check_divergence(guard, history, checkpoint_dir):
    if guard.diverged_at:
        epoch, batch = guard.diverged_at
        kept = f"the last good epoch is in {checkpoint_dir}" if history else "no epoch finished"
        raise TrainingDiverged(
            f"training diverged (loss not finite) at epoch {epoch}, batch {batch}; {kept}; "
            "lower --learning-rate and rerun (a rerun resumes from that checkpoint)."
        )


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


# Crowd annotators' agreement on a tweet's label: accuracy on the tweets at or above it
# shows how much label noise caps the accuracy on all of them.
CONFIDENT = 0.8


def param_counts(model):
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    total = int(sum(np.prod(v.shape) for v in model.weights))
    return {"trainable": trainable, "total": total, "non_trainable": total - trainable}


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


def start_distribution(config):
    """(cluster, strategy): the data-parallel cluster this process joined (None without
    one), and the `tf.distribute` strategy (MirroredStrategy, or TensorFlow's default)."""
    cluster = None
    if config.distribution == "data_parallel":
        cluster = distributed.start(config.cluster_timeout)
        if config.batch_size % cluster.num_processes:
            raise InputError(
                f"--batch-size {config.batch_size} must split evenly over the "
                f"{cluster.num_processes} processes (it is the global batch)."
            )
    configure_devices(config.logical_cpus)
    if config.distribution != "mirrored":
        return cluster, tf.distribute.get_strategy()
    if keras.backend.backend() != "tensorflow":
        raise InputError(
            "--distribution mirrored is TensorFlow's: unset KERAS_BACKEND, or use "
            "--distribution data_parallel on JAX."
        )
    return cluster, tf.distribute.MirroredStrategy()


class MultiTaskTrainer:
    """One training run of a `RunConfig`: built when made, then `load_data`,
    `attach_optimizer`, `fit`, `evaluate_all` and `save` (the steps `train` takes in
    order; each can be called on its own, e.g. by a benchmark that times one of them).

        trainer = MultiTaskTrainer(RunConfig(tasks="topic", epochs=1))
        data = trainer.load_data()
        trainer.attach_optimizer(data.steps)
        fitted = trainer.fit(data, Path("runs/mine"))
        print(trainer.evaluate("test"))
    """

    def __init__(self, config):
        """Build the run: local weights and tokenizer, the model under the scenario."""
        self.config = config
        # Before anything runs on JAX: joining the cluster must come first.
        self.cluster, self.strategy = start_distribution(config)
        self.tasks = resolve_tasks(config.tasks)
        self.scenario = get_scenario(config.scenario, self.tasks)
        self.preset = preset_path(config)
        self.tokenizer = presets.load_tokenizer(self.preset)
        # Loaded on this process alone: its random initial values (overwritten by the
        # weights) differ from process to process. Its length was checked before loading.
        with distributed.local_only():
            pretrained = presets.load_backbone(self.preset)
        # Evaluation batches are padded to split evenly over these (zero-weight rows).
        self.replicas = (
            self.cluster.num_processes if self.cluster else self.strategy.num_replicas_in_sync
        )
        # A held task (capped at 0 examples) keeps its head frozen in every stage: it is
        # measured after training on the others (sequential training), not trained.
        self.held = tuple(
            HEAD_PART + t.name
            for t in self.tasks
            if t.name in config.held_tasks and t.spec.has_head
        )
        self.stages = [
            stage._replace(frozen=(*stage.frozen, *self.held))
            for stage in training_stages(
                self.scenario,
                self.tasks,
                pretrained.num_layers,
                config.epochs,
                config.frozen_layers,
                config.unfreeze_every,
            )
        ]
        with self.strategy.scope():
            self.model = new_model(config, self.scenario, self.tasks, pretrained)
        self.preprocessor = make_preprocessor(self.tokenizer, config.max_length)
        self.optimizer = None  # made by `attach_optimizer`, once the data gives the steps
        self.eval_data = {}  # (split, cached) -> batches: read, tokenized, sorted once
        self.sts_pairs = None  # the STS-B test pairs, read once
        self.sts_encoder = None  # the model's embedding, traced once
        self.forward = None  # the model's inference pass (all text heads), traced once
        # What `fit` trains: the model, or with a frozen backbone in inference mode (every
        # example's embedding is the same in every epoch) its heads on embeddings computed
        # once by `embed`.
        self.fit_model, self.embed = self.model, None
        if self.uses_embedding_cache():
            self.embed = traced_inference(self.model.embedding_model())
            self.fit_model = self.model.heads_model()

    def attach_optimizer(self, steps_per_epoch):
        """The optimizer, its schedule spanning the run's steps; compile with it.

        It is built over everything the scenario ever trains (see `optimizer_parts`), so
        its state and step count carry through the stages of gradual unfreezing, and its
        schedule runs once over the whole self.
        """
        config, model = self.config, self.model
        with self.strategy.scope():
            self.optimizer = make_optimizer(
                self.scenario,
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
            set_frozen(
                model,
                (*optimizer_parts(self.scenario, self.tasks), *self.held),
                config.frozen_layers,
            )
            self.optimizer.build(model.trainable_variables)
        self.recompile()

    def uses_embedding_cache(self):
        """Heads train on cached embeddings: a frozen inference backbone, sentence heads only."""
        return bool(
            self.config.cache_embeddings
            and self.scenario.inference_backbone
            and self.stages
            and self.config.distribution == "none"
            and all(t.spec.embedding_head for t in self.tasks)
        )

    def recompile(self, frozen=None, lower_frozen_layers=None):
        """Set the trainable parts (when given), then compile what `fit` trains.

        Keras reads `trainable` when it compiles the train step, so every change of the
        frozen set is followed by a recompile with the same (already built) optimizer.
        """
        with self.strategy.scope():
            if frozen is not None:
                set_frozen(self.model, frozen, lower_frozen_layers)
            compile_model(self.model, self.optimizer, self.config.loss_weights)
            if self.fit_model is not self.model:
                compile_model(self.fit_model, self.optimizer, self.config.loss_weights, self.tasks)

    def load_data(self):
        """The mixed training stream and the validation batches."""
        config, started = self.config, time.perf_counter()
        data_dir = resolve_data_dir(config.data_dir)
        train_stream, steps, sizes = training_stream(
            self.tasks,
            self.preprocessor,
            batch_size=config.batch_size,
            max_length=config.max_length,
            sampling=config.sampling,
            temperature=config.temperature,
            max_examples={t.name: config.train_cap(t.name) for t in self.tasks},
            seed=config.seed,
            data_dir=data_dir,
            embed=self.embed,
            length_buckets=config.length_buckets,
        )
        train_stream = distributed.shard(train_stream, self.cluster)
        validation, _ = self.evaluation_data("validation", embed=self.embed)
        data = RunData(train_stream, steps, sizes, validation, time.perf_counter() - started)
        print(f"scenario {self.scenario.name}: {self.scenario.summary}")
        for name, splits in self.own_data().items():
            made = "; ".join(f"{s} {d['examples']} ({d['from']})" for s, d in splits.items())
            print(f"task {name}: {made}")
        print(
            f"training examples per task: {sizes}; {steps} steps of {config.batch_size} per epoch"
        )
        if self.embed is not None:
            seconds = f"{data.seconds:.0f}s"
            print(f"frozen backbone: the heads train on embeddings computed once ({seconds})")
        return data

    def evaluation_data(self, split, embed=None):
        """(batches, {task: examples}) of a split: read, tokenized and sorted once per self."""
        key = (split, embed is not None)
        if key not in self.eval_data:
            data, sizes = evaluation_stream(
                self.tasks,
                split,
                self.preprocessor,
                batch_size=self.config.batch_size,
                max_length=self.config.max_length,
                data_dir=resolve_data_dir(self.config.data_dir),
                max_examples=self.config.max_eval_examples,
                replicas=self.replicas,
                embed=embed,
            )
            self.eval_data[key] = (self.shard(data), sizes)
        return self.eval_data[key]

    def shard(self, data):
        """This process's rows of each batch under data parallelism, else all of them."""
        return None if data is None else distributed.shard(data, self.cluster)

    def fit(self, data, output):
        """`fit` each stage, resuming after the last checkpointed epoch if any."""
        checkpoint_dir = output / CHECKPOINT_DIR
        stopper = None
        if self.config.patience is not None:
            stopper = RunEarlyStopping(ValidationScore.MONITOR, self.config.patience,
                                       verbose=1 if self.config.verbose else 0)  # fmt: skip
        history, timer, start_epoch = self.resume(checkpoint_dir, stopper)
        guard = DivergenceGuard()
        callbacks = self.callbacks(output, history, timer, guard, stopper)
        stage_log = []
        for stage in self.stages:
            if stopper is not None and stopper.stopped:
                break  # early stopping ends the run, whatever stages were left
            self.recompile(stage.frozen, stage.lower_frozen_layers)
            trainable = param_counts(self.model)["trainable"]
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
            if len(self.stages) > 1:
                print(
                    f"stage: epochs {stage.first_epoch + 1}-{stage.end_epoch}, frozen "
                    f"{list(stage.frozen)} (lower {stage.lower_frozen_layers}), "
                    f"{trainable:,} trainable parameters"
                )
            first = max(stage.first_epoch, start_epoch)
            self.fit_model.fit(
                # Each `fit` reads the stream from its start; a resumed stage skips the batches
                # its finished epochs used, so every epoch sees the batches it would have seen.
                data.train.skip((first - stage.first_epoch) * data.steps),
                validation_data=data.validation,
                initial_epoch=first,
                epochs=stage.end_epoch,
                steps_per_epoch=data.steps,
                callbacks=callbacks,
                verbose=self.config.fit_verbose,
                shuffle=False,
            )
            check_divergence(guard, history, checkpoint_dir)
        best = None
        if stopper is not None:
            stopper.set_model(self.fit_model)
            stopper.finish()  # the best epoch's weights, once every stage is done
            best = stopper.best_epoch if stopper.best_weights else None
        return Fitted(history, timer.times, stage_log, best)

    def callbacks(self, output, history, timer, guard, stopper=None):
        """Timing, divergence stop, the validation score, history, [early stopping],
        checkpoint, TensorBoard: in this order, as each reads what the ones before wrote."""
        names = [task.name for task in self.tasks]
        record = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: history.append(
                {"epoch": epoch, **{k: float(v) for k, v in per_task_logs(logs, names).items()}}
            )
        )
        score = ValidationScore(self.tasks, per_task_logs)
        stopping = [] if stopper is None else [stopper]
        if not writes_files(self.config):
            return [timer, guard, score, record, *stopping]

        def progress(epoch, logs):
            early = {} if stopper is None else {"stopping": stopper.state()}
            return {"history": history, "epoch_seconds": timer.times, **early}

        checkpoint = EpochCheckpoint(output / CHECKPOINT_DIR, guard, progress, target=self.model)
        tensorboard = keras.callbacks.TensorBoard(log_dir=str(output / "logs"))
        return [timer, guard, score, record, *stopping, checkpoint, tensorboard]

    def resume(self, checkpoint_dir, stopper=None):
        """(history, timer, first epoch to run): from the checkpoint of a crashed run, if any.

        Weights, optimizer state (moments, step count, so the schedule goes on), dropout
        random states and early stopping's count and best weights come back as they were
        after the last finished epoch; with the skipped batches in `fit`, the rest of the
        run is the uninterrupted run's.
        """
        progress = read_progress(checkpoint_dir)
        if not progress:
            return [], EpochTimer(), 0
        self.recompile()  # compiled, so the optimizer state loads too
        with self.strategy.scope():
            stopping = progress.get("stopping")  # absent in checkpoints of older versions
            if stopper is not None and stopping:
                best = None
                if stopping["best"] is not None:  # the best epoch's weights, kept for it
                    self.model.load_weights(checkpoint_dir / weights_file(stopping["best_epoch"]))
                    best = self.fit_model.get_weights()
                stopper.load_state(stopping, best)
            self.model.load_weights(progress["weights"])
            states = progress.get("seed_states", ())  # absent in checkpoints of older versions
            for variable, value in zip(seed_states(self.model), states, strict=bool(states)):
                variable.assign(value)  # what `save_weights` leaves out
        start_epoch = progress["epoch"] + 1
        print(f"resuming from the checkpoint after epoch {start_epoch} in {checkpoint_dir}")
        return progress["history"], EpochTimer(progress["epoch_seconds"]), start_epoch

    def evaluate(self, split):
        """Per-task metrics on one split, in one pass over all of its examples.

        Each head's metrics are weighted by its own labels, so an example of another task
        counts for nothing there; `xent` is the head's mean loss over its own examples.
        """
        data, sizes = self.evaluation_data(split)
        if data is None:
            return {name: {"examples": n} for name, n in sizes.items()}
        return self.evaluated(data, sizes)

    def evaluated(self, data, sizes):
        """{task in `sizes`: metrics} of `model.evaluate` over `data`.

        The logs are named for every output of the model, whichever tasks `data` holds.
        """
        logs = self.model.evaluate(data, return_dict=True, verbose=0)
        return task_metrics(per_task_logs(logs, [t.name for t in self.tasks]), sizes)

    def task_split_stream(self, split, task, where=None, whole=False):
        """(batches, {task: examples}) of one task's examples of `split` (a `where` subset).

        Under data parallelism each process gets its rows of each batch (for `evaluate`);
        with `whole`, every process gets every row (for `inference`).
        """
        data, sizes = evaluation_stream(
            self.tasks, split, self.preprocessor, batch_size=self.config.batch_size,
            max_length=self.config.max_length, data_dir=resolve_data_dir(self.config.data_dir),
            max_examples=self.config.max_eval_examples, only=task.name, where=where,
            replicas=1 if whole else self.replicas,
        )  # fmt: skip
        return (data if whole else self.shard(data)), sizes

    def inference(self, x):
        """{"embedding", <text task>: logits} (numpy) of a batch, as the model is now; under
        data parallelism every process passes the same batch."""
        if self.forward is None:
            self.forward = traced_inference(self.model.inference_model())
        return self.forward(x)

    def measure_sts(self):
        """STS-B test Spearman x 100 of the run's embedding as it is now (None if turned off)."""
        if not self.config.measure_sts:
            return None
        if self.sts_pairs is None:
            self.sts_pairs = sts_pairs("test", resolve_data_dir(self.config.data_dir))
        return sts_spearman(self.encode(), self.sts_pairs)

    def encode(self):
        """The run's embedding of a list of texts (L2-normalised), as the model is now.

        The encoder is made on the first call (a run whose tasks never embed texts makes
        none) and traced once: it reads the variables, so later calls see training.
        """

        def encode(texts):
            if self.sts_encoder is None:
                self.sts_encoder = SentenceEncoder.from_model(
                    self.model, self.tokenizer, self.config.max_length
                )
            return self.sts_encoder.encode(texts, batch_size=self.config.batch_size)

        return encode

    def with_split_metrics(self, split, metrics):
        """`metrics` ({task: {...}}) with each task's metrics over the whole split added: what
        a kind measures beyond batches (`Kind.split_metrics`: retrieval for contrastive)."""
        data_dir, cap = resolve_data_dir(self.config.data_dir), self.config.max_eval_examples
        for task in self.tasks:

            def examples(task=task):
                return list(task.examples(split, data_dir).take(cap or -1).as_numpy_iterator())

            found = task.spec.split_metrics(task, self.encode(), examples)
            if found:
                metrics[task.name].update(found)
        return metrics

    def sts_change(self, before, after):
        """The forgetting measure: the embedding's STS-B figure before and after training."""
        if before is None:
            return None
        return {"split": "test", "pairs": len(self.sts_pairs[2]),
                "max_length": self.config.max_length, "before": before, "after": after,
                "change": after - before}  # fmt: skip

    def validation_metrics(self, fitted):
        """The final validation metrics: those `fit` measured for the final weights, else anew.

        The final weights are the last epoch's, or with early stopping the best epoch's;
        `fit` measured the validation split right after that epoch, so evaluating it again
        would only repeat that pass.
        """
        final = self.config.epochs - 1 if fitted.best_epoch is None else fitted.best_epoch
        row = next((r for r in reversed(fitted.history) if r["epoch"] == final), {})
        _, sizes = self.evaluation_data("validation", embed=self.embed)
        loss = {task.name: task.loss_metric for task in self.tasks}
        measured = all(f"val_{n}_{loss[n]}" in row for n, size in sizes.items() if size)
        if not row or not measured or not any(sizes.values()):
            return self.evaluate("validation")
        return task_metrics(row, sizes, prefix="val_")

    def entity_types_f1(self, split):
        """{token task: {entity type: F1}} on a split (the micro F1 is in `evaluate`'s)."""
        out = {}
        for task in (t for t in self.tasks if t.spec.reads_sequence):
            data, _ = self.task_split_stream(split, task, whole=True)
            if data is None:
                continue
            true, pred, weight = [], [], []
            for x, y, w in data:  # rows padded to a batch's longest: keep them row by row
                logits = self.inference(x)[task.name]
                true += list(np.asarray(y[task.name]))
                pred += list(np.argmax(logits, axis=-1))
                weight += list(np.asarray(w[task.name]))
            out[task.name] = entity_f1_by_type(true, pred, weight, task.labels)
        return out

    def confident_metrics(self, split):
        """{task: metrics} on the examples of `split` labelled with confidence >= CONFIDENT,
        for each task with the "confident" evaluator (tweet sentiment)."""
        out = {}
        for task in (t for t in self.tasks if "confident" in t.evaluators):
            data, sizes = self.task_split_stream(
                split, task, where=lambda example: example["confidence"] >= CONFIDENT
            )
            metrics = {"min_confidence": CONFIDENT, "examples": sizes[task.name]}
            if data is not None:
                metrics.update(self.evaluated(data, sizes)[task.name])
            out[task.name] = metrics
        return out

    def own_data(self):
        """{task: {split: {"examples", "from"}}} for the tasks read from a user's files."""
        return {t.name: split_sizes(t) for t in self.tasks if t.files is not None}

    def evaluate_all(self, data, fitted, output):
        """Validation and test metrics, with what the run was and what it cost."""
        return {
            "scenario": self.scenario.name,
            "tasks": [t.name for t in self.tasks],
            "validation": self.validation_metrics(fitted),
            "test": self.with_split_metrics("test", self.evaluate("test")),
            "test_entity_f1_by_type": self.entity_types_f1("test"),
            "test_confident": self.confident_metrics("test"),
            "params": param_counts(self.model),
            "stages": fitted.stages,
            "best_epoch": fitted.best_epoch,  # with --patience: the epoch whose weights were kept
            "train_examples": data.sizes,
            "own_data": self.own_data(),  # a user's task: its split sizes and how each was made
            "epoch_seconds": fitted.epoch_seconds,
            "embedding_cache": self.embed is not None,
            # uncertainty weighting: each task loss's learned factor exp(-s) at the end
            "learned_loss_weights": (
                self.model.task_uncertainty.loss_weights() if self.model.task_uncertainty else {}
            ),
            "data_seconds": data.seconds,
            "optimizer_iterations": int(keras.ops.convert_to_numpy(self.optimizer.iterations)),
            "replicas": self.replicas,
            "processes": self.cluster.num_processes if self.cluster else 1,
            "commit": code_commit(),  # the code that made these numbers (None: no checkout)
            "cpu": machine_cpu(),  # the CPU that timed them (None: unreadable)
            "config": {
                **self.config.to_dict(),
                "learning_rate": self.config.learning_rate_or_default,
                "head_lr_multiplier": self.config.head_lr_multiplier_or_default,
                "preset": str(self.preset),
                "output_dir": str(output),
            },
        }

    def save(self, fitted, metrics, output):
        """Write the model, tokenizer, history, curves, metrics; the checkpoint goes.

        The model is saved with the trainable set its optimizer was built for (for gradual
        unfreezing, the last stage's), so a reload lines the optimizer state up again.
        """
        check_finite(self.model, metrics)
        self.recompile(
            (*optimizer_parts(self.scenario, self.tasks), *self.held), self.config.frozen_layers
        )
        if self.cluster is not None:
            metrics["weight_checksums"] = distributed.checksums(self.model)
        model_path = output / "model.keras" if self.config.save_model else None
        if not writes_files(self.config):
            return model_path  # process 0 writes it
        with distributed.local_only():
            if model_path:
                save_model(self.model, model_path)
                save_tokenizer(self.tokenizer, output / TOKENIZER_DIR)
        write_history_csv(output / "history.csv", fitted.history)
        if fitted.history:
            plot_curves(output / "curves.png", fitted.history, self.tasks)
        write_json(output / "metrics.json", metrics)
        shutil.rmtree(output / CHECKPOINT_DIR, ignore_errors=True)  # the run is complete
        return model_path


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
