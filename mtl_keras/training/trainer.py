"""`MultiTaskTrainer`: the steps of one run (build, load data, fit the stages, resume, save);
its measuring steps are `evaluation.run_metrics.RunEvaluation`'s."""

import shutil
import time

import keras

from mtl_keras.artifacts import save_model, write_history_csv, write_json
from mtl_keras.data.loading import resolve_data_dir
from mtl_keras.data.pipeline import evaluation_stream, training_stream
from mtl_keras.distributed import cluster as distributed
from mtl_keras.encoding import presets
from mtl_keras.encoding.encoder import traced_inference
from mtl_keras.encoding.preprocessing import make_preprocessor
from mtl_keras.evaluation.plots import plot_curves
from mtl_keras.evaluation.run_metrics import RunEvaluation
from mtl_keras.model.matryoshka import with_widths
from mtl_keras.model.multitask import compile_model, per_task_logs
from mtl_keras.model_card import write_model_card
from mtl_keras.saving import TOKENIZER_DIR, save_tokenizer
from mtl_keras.tasks import resolve_tasks, split_sizes
from mtl_keras.training.callbacks import (
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
from mtl_keras.training.optimizers import make_optimizer
from mtl_keras.training.scenarios import (
    HEAD_PART,
    get_scenario,
    optimizer_parts,
    set_frozen,
    training_stages,
)
from mtl_keras.training.setup import (
    Fitted,
    RunData,
    check_divergence,
    check_finite,
    new_model,
    param_counts,
    preset_path,
    start_distribution,
    writes_files,
)


class MultiTaskTrainer(RunEvaluation):
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
        self.tasks = with_widths(self.tasks, config.matryoshka_dims, config.matryoshka_weights,
                                 pretrained.hidden_dim)  # fmt: skip
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
        steps = config.epoch_steps(steps)
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

    def own_data(self):
        """{task: {split: {"examples", "from"}}} for the tasks read from a user's files."""
        return {t.name: split_sizes(t) for t in self.tasks if t.files is not None}

    def save(self, fitted, metrics, output):
        """Write the model, tokenizer, model card, history, curves, metrics; the checkpoint goes.

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
        if model_path:
            write_model_card(output, self.tasks, metrics, fitted.history, "keras")
        shutil.rmtree(output / CHECKPOINT_DIR, ignore_errors=True)  # the run is complete
        return model_path
