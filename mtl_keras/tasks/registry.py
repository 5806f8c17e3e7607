"""The tasks a head can learn, as data: name -> dataset, kind and label names."""

import dataclasses
import keyword

import tensorflow as tf

from mtl_keras.data import columns, hf_datasets, sources
from mtl_keras.data.files import as_dataset, example_tensors, file_splits, line_of, split_files
from mtl_keras.data.loading import load
from mtl_keras.errors import InputError
from mtl_keras.tasks.kinds import KINDS


@dataclasses.dataclass(frozen=True)
class Task:
    """One task: its name (the head's and the output's), its kind (a key of `KINDS`:
    `sentence` tasks label a whole text, `token` tasks label every word, `pair` tasks
    score how similar two texts are), its label names and where its examples come from:
    a packaged dataset (`dataset`) or a user's files (`files`, see `from_files`).
    """

    name: str
    dataset: str | None
    kind: str
    labels: tuple
    loss_weight: float = 1.0  # the default weight of the task's loss (`--loss-weights`)
    files: dict | None = None  # {split: path} of a user's task
    columns: dict | None = None  # {the kind's column: the file's column}
    score_range: tuple | None = None  # a pair task's lowest and highest score
    # Extra evaluations a run makes of this task, by name: "confident", the accuracy on
    # the examples whose annotators agreed (the tweets' `confidence` feature).
    evaluators: tuple = ()
    negatives: int = 0  # hard negatives per example (a contrastive task's file columns)
    # Matryoshka training (`model.matryoshka`): the embedding widths its loss is taken
    # at, full width first, and each one's weight; () trains the full width only.
    matryoshka_dims: tuple = ()
    matryoshka_weights: tuple = ()
    # {split: tf.data.Dataset} of raw examples held in memory (see `from_datasets`); not
    # part of the config: a saved model needs the task's labels, not its data.
    datasets: dict | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def spec(self):
        """The task's kind (`mtl_keras.tasks.kinds`): its encoding, head, loss and metrics."""
        return KINDS[self.kind]

    @property
    def num_classes(self):
        return len(self.labels)

    @property
    def main_metric(self):
        """The metric that says how well the task went (studies and plots)."""
        return self.spec.main_metric

    @property
    def loss_metric(self):
        """The task's own loss, averaged over its own examples."""
        return self.spec.loss_metric

    def examples(self, split, data_dir=None):
        """One split of the task's raw examples as a `tf.data.Dataset` (maybe empty)."""
        if self.datasets is not None:
            if split in self.datasets:
                return self.datasets[split]
            return next(iter(self.datasets.values())).take(0)
        if self.files is None:
            return load(self.dataset, split, data_dir)
        _, splits, _ = file_splits(self.files, self.kind, self.columns)
        return as_dataset(self.kind, splits[split], self.labels)

    def size(self, split, data_dir=None):
        """How many examples a split holds (-1 where only reading it all would tell)."""
        if self.datasets is None and self.files is not None:
            _, splits, _ = file_splits(self.files, self.kind, self.columns)
            return len(splits[split])
        return int(self.examples(split, data_dir).cardinality())

    def example_tensors(self, split, data_dir=None):
        """Every raw example of a split at once: {field: tensor, examples along axis 0}
        (the kind's fields), without a Python object per example for a user's files."""
        if self.datasets is None and self.files is not None:
            _, splits, _ = file_splits(self.files, self.kind, self.columns)
            return example_tensors(self.spec, splits[split], self.labels)
        dataset = self.examples(split, data_dir).map(lambda e: {f: e[f] for f in self.spec.fields})
        batches = list(dataset.batch(1 << 16))
        if not batches:
            spec = dataset.element_spec
            return {f: tf.zeros([0, *spec[f].shape], spec[f].dtype) for f in self.spec.fields}
        return {f: tf.concat([batch[f] for batch in batches], 0) for f in self.spec.fields}

    def get_config(self):
        """Plain JSON: a saved model carries its own task list, not a name to look up."""
        config = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        config.pop("datasets")
        config.update(labels=list(self.labels), evaluators=list(self.evaluators),
                      matryoshka_dims=list(self.matryoshka_dims),
                      matryoshka_weights=list(self.matryoshka_weights))  # fmt: skip
        if self.score_range is not None:
            config["score_range"] = list(self.score_range)
        return config

    @classmethod
    def from_config(cls, config):
        if isinstance(config, cls):
            return config
        config = {**config, "labels": tuple(config["labels"])}
        for field in ("evaluators", "matryoshka_dims", "matryoshka_weights"):
            config[field] = tuple(config.get(field, ()))
        if config.get("score_range") is not None:
            config["score_range"] = tuple(config["score_range"])
        return cls(**config)


def from_files(name, path, kind=None, columns=None, loss_weight=1.0):
    """A `Task` over your own labelled files, read and checked now (before any model loads).

    Args:
        name: the task's name (letters, digits, `_`), not a built-in task's.
        path: a .csv/.tsv/.jsonl/.conll file (split 80/10/10 by a hash of the text), or a
            folder with `train.<ext>` and optionally `validation.<ext>` (or `dev.<ext>`)
            and `test.<ext>` (a missing validation split is carved from train).
        kind: a key of `mtl_keras.tasks.kinds.KINDS` ("sentence", "token", "pair",
            "multi_label", "pair_classification", "contrastive"); default: read from the
            columns.
        columns: {the kind's column: your file's column}, e.g. {"text": "body"}.
    """
    check_task_name(name)
    files = {split: str(file) for split, file in split_files(path).items()}
    kind, splits, made = file_splits(files, kind, columns)
    spec, labels = KINDS[kind], ()
    score_range = spec.score_range(name, splits["train"].data)
    if spec.has_labels:
        # Read from the training file, with what was carved from it (a rare label may
        # fall into a carved split); a label only in a validation or test file is an error.
        read = [table for table in splits.values() if table.path == files["train"]]
        labels = spec.label_set(n for table in read for n in table_labels(spec, table))
        if len(labels) < 2:
            found = f"one class ({labels[0]})" if labels else "no labels"
            raise InputError(f"task {name!r}: its training file has {found}; a classifier "
                             "needs at least two.")  # fmt: skip
        check_labels_known(splits, labels, spec)
    # Hard negatives: the training file's; a validation or test file may have none.
    negatives = {split: len(spec.extra_columns(list(table.data), ""))
                 for split, table in splits.items()}  # fmt: skip
    if set(negatives.values()) - {0, negatives["train"]}:
        raise InputError(f"task {name!r}: its splits have different numbers of hard negatives "
                         f"per anchor ({negatives}): give the training file's number, or "
                         "none in a validation or test file.")  # fmt: skip
    return Task(name, None, kind, labels, loss_weight, files, columns and dict(columns),
                score_range, negatives=negatives["train"])  # fmt: skip


def from_datasets(name, kind, datasets, labels=(), score_range=None, loss_weight=1.0):
    """A `Task` over datasets of raw examples, one per split, held for this process:
    `tf.data.Dataset`s (e.g. a TFDS builder's `as_dataset(split)`), or Hugging Face
    `datasets.Dataset` / `IterableDataset`s (read through Arrow, column by column).

    Each example has the kind's fields (`KINDS[kind].fields`, label ids as integers; a
    multi-label task's "labels" a list of ids in a Hugging Face dataset, multi-hot in a
    `tf.data` one): e.g. {"text", "label"} for "sentence", {"tokens", "ner"} for "token",
    {"sentence1", "sentence2", "score"} for "pair". `labels` names the ids (default: the
    names of a Hugging Face `ClassLabel` feature).
    """
    check_task_name(name)
    if kind not in KINDS:
        raise InputError(f"unknown task kind {kind!r}; choose from: {', '.join(KINDS)}.")
    if "train" not in datasets:
        raise InputError(f"task {name!r} has no 'train' dataset; give {{'train': ..., ...}}.")
    spec = KINDS[kind]
    if not labels and spec.has_labels and hf_datasets.is_hf_dataset(datasets["train"]):
        field = next(f for f, t in zip(spec.fields, spec.column_types, strict=True)
                     if t in LABEL_TYPES)  # fmt: skip
        labels = hf_datasets.class_names(datasets["train"], field)
    datasets = dict(datasets)
    for split, data in datasets.items():
        if hf_datasets.is_hf_dataset(data):
            where = f"task {name!r}: the {split} dataset"
            datasets[split] = hf_datasets.as_tf_dataset(data, spec, len(labels), where)
    for split, dataset in datasets.items():
        missing = [f for f in spec.fields if f not in dataset.element_spec]
        if missing:
            raise InputError(f"task {name!r}: the {split} dataset has no {missing[0]!r} field "
                             f"(a {kind} example has {', '.join(spec.fields)}).")  # fmt: skip
    if spec.has_labels and len(labels) < 2:
        raise InputError(f"task {name!r}: give the names of its labels (at least two).")
    if spec.scored and score_range is None:
        raise InputError(f"task {name!r}: give its score_range=(lowest, highest).")
    return Task(name, None, kind, tuple(labels), loss_weight, score_range=score_range,
                datasets=dict(datasets))  # fmt: skip


def negatives_per_example(tasks):
    """The hard negatives each example carries (0: none); tasks that have some agree."""
    counts = sorted({t.negatives for t in tasks if t.negatives})
    if len(counts) > 1:
        raise InputError(f"tasks with hard negatives must have as many per anchor; these have "
                         f"{', '.join(map(str, counts))}.")  # fmt: skip
    return counts[0] if counts else 0


def check_task_name(name):
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise InputError(f"task name {name!r} must be letters, digits and _ (not first a digit).")
    if name in TASKS:
        raise InputError(f"task name {name!r} is a built-in task's: choose another name.")


def label_column(spec, table):
    """The column of a `Columns` that holds the task's label names."""
    return next(table.data[n] for n, t in zip(spec.columns, spec.column_types, strict=True)
                if t in LABEL_TYPES)  # fmt: skip


LABEL_TYPES = ("label", "labels", "tags")


def table_labels(spec, table):
    return columns.names(label_column(spec, table))


def check_labels_known(splits, labels, spec):
    """A label in a validation or test file that training never saw is an error naming it."""
    for split in ("validation", "test"):
        unseen = columns.unknown_label(label_column(spec, splits[split]), labels)
        if unseen is not None:
            row, name = unseen
            file, line = line_of(splits[split], row)
            raise InputError(f"'{file}' line {line}: label {name!r} never occurs in the "
                             "training split; add examples of it there.")  # fmt: skip


def split_sizes(task):
    """{split: (examples, how it was made)} of a user's task (None for a packaged one)."""
    if task.files is None:
        return None
    _, splits, made = file_splits(task.files, task.kind, task.columns)
    return {split: {"examples": len(table), "from": made.get(split, "none")}
            for split, table in splits.items()}  # fmt: skip


TASKS = {
    task.name: task
    for task in (
        Task("topic", "bbc_news", "sentence", tuple(sources.BBC_LABELS)),
        Task(
            "sentiment",
            "tweet_sentiment",
            "sentence",
            tuple(sources.SENTIMENT_LABELS),
            evaluators=("confident",),
        ),
        # A token loss is averaged over every position of a padded batch, most of them
        # unlabelled: weight 8 raised validation entity F1 beside topic 0.385 -> 0.432
        # (docs/training.md).
        Task("ner", "wnut16", "token", tuple(sources.NER_TAGS), loss_weight=8.0),
        # A squared error of cosines is about 20x smaller than the heads' cross-entropy;
        # at weight 1 the heads pulled STS-B from 82.03 to 79.36, at 10 it rose to 83.30
        # (topic + sentiment + similarity, 1,000 examples each, 2 epochs; results/study-v1.1.md).
        Task(
            "similarity",
            "stsb",
            "pair",
            (),
            loss_weight=10.0,
            score_range=(0.0, sources.STSB_MAX_SCORE),
        ),
    )
}
DEFAULT_TASKS = ("topic", "sentiment")


def resolve_tasks(names):
    """Task objects for a list (or comma-separated string) of built-in names and `Task`s."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = list(names)
    unknown = [n for n in names if not isinstance(n, Task) and n not in TASKS]
    if unknown:
        raise InputError(f"unknown task {unknown[0]!r}; choose from: {', '.join(TASKS)} "
                         "(or your own: --task NAME=PATH).")  # fmt: skip
    if not names:
        raise InputError(f"no task given; choose from: {', '.join(TASKS)}.")
    tasks = [n if isinstance(n, Task) else TASKS[n] for n in names]
    listed = [t.name for t in tasks]
    if len(set(listed)) != len(listed):
        raise InputError(f"task listed twice in {','.join(listed)}.")
    return tasks


def run_tasks(metrics):
    """The `Task`s of a finished run (its metrics.json): built-in ones by name, a user's
    from the config it recorded."""
    return [TASKS[t] if isinstance(t, str) else Task.from_config(t)
            for t in metrics["config"]["tasks"]]  # fmt: skip
