"""What a run measures after training: each task's metrics per split in one pass, metrics
over a whole split (retrieval), entity F1 per type, the confidently labelled subset, the
embedding on STS-B before and after, and the record of the run (`evaluate_all`)."""

import keras
import numpy as np

from mtl_keras.data.loading import resolve_data_dir
from mtl_keras.data.pipeline import evaluation_stream
from mtl_keras.encoding.encoder import SentenceEncoder, traced_inference
from mtl_keras.evaluation.metrics import entity_f1_by_type
from mtl_keras.evaluation.sts import sts_pairs, sts_spearman
from mtl_keras.evaluation.widths import memoized, width_metrics
from mtl_keras.model.multitask import per_task_logs
from mtl_keras.provenance import code_commit, cpu_model, framework_versions, machine_cpu
from mtl_keras.training.setup import param_counts


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


class RunEvaluation:
    """The measuring steps of a `MultiTaskTrainer` (a mixin: it reads the trainer's model,
    tasks, config, data and cluster)."""

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
        return sts_spearman(self.encode(), self.stsb_test())

    def stsb_test(self):
        """STS-B's test pairs (`sts.sts_pairs`), read once."""
        if self.sts_pairs is None:
            self.sts_pairs = sts_pairs("test", resolve_data_dir(self.config.data_dir))
        return self.sts_pairs

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

    def split_examples(self, task, split):
        """A function that reads a task's raw examples of `split` (within the eval cap)."""
        data_dir, cap = resolve_data_dir(self.config.data_dir), self.config.max_eval_examples
        return lambda: list(task.examples(split, data_dir).take(cap or -1).as_numpy_iterator())

    def with_split_metrics(self, split, metrics, encode):
        """`metrics` ({task: {...}}) with each task's metrics over the whole split added: what
        a kind measures beyond batches (`Kind.split_metrics`: retrieval for contrastive).
        `encode`: the run's embedding (`encode()`)."""
        for task in self.tasks:
            examples = self.split_examples(task, split)
            found = task.spec.split_metrics(task, encode, examples)
            if found:
                metrics[task.name].update(found)
        return metrics

    def matryoshka_metrics(self, split, encode):
        """{width: {"stsb_spearman", <task>: split metrics}} of the embedding cut to each
        width a Matryoshka run trained ({} otherwise): STS-B's test Spearman x 100 and
        each pair or contrastive task's figures over `split`. `encode`: as for
        `with_split_metrics`."""
        widths = next((t.matryoshka_dims for t in self.tasks if t.matryoshka_dims), ())
        if not widths:
            return {}
        measures = {}
        for task in (t for t in self.tasks if t.spec.matryoshka):
            examples = self.split_examples(task, split)
            measures[task.name] = lambda encode, t=task, e=examples: t.spec.split_metrics(
                t, encode, e
            )
        if self.config.measure_sts:
            measures["stsb_spearman"] = lambda encode: sts_spearman(encode, self.stsb_test())
        return width_metrics(encode, widths, measures)

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

    def evaluate_all(self, data, fitted, output):
        """Validation and test metrics, with what the run was and what it cost."""
        encode = memoized(self.encode())  # the final model's: each test text embedded once
        return {
            "scenario": self.scenario.name,
            "tasks": [t.name for t in self.tasks],
            "validation": self.validation_metrics(fitted),
            "test": self.with_split_metrics("test", self.evaluate("test"), encode),
            "test_entity_f1_by_type": self.entity_types_f1("test"),
            "test_confident": self.confident_metrics("test"),
            "test_matryoshka": self.matryoshka_metrics("test", encode),
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
            "cpu_model": cpu_model().get("cpu_model"),  # its name, as the model card shows it
            "versions": framework_versions(),  # Python and the frameworks that trained it
            "config": {
                **self.config.to_dict(),
                "learning_rate": self.config.learning_rate_or_default,
                "head_lr_multiplier": self.config.head_lr_multiplier_or_default,
                "preset": str(self.preset),
                "output_dir": str(output),
            },
        }
