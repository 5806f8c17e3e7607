"""The tasks a head can learn, as data: name -> dataset, kind and label names."""

import dataclasses

from mtl_keras.data import sources
from mtl_keras.errors import InputError

KINDS = ("sentence", "token", "pair")
MAIN_METRIC = {"sentence": "accuracy", "token": "entity_f1", "pair": "pearson"}


@dataclasses.dataclass(frozen=True)
class Task:
    """One task: `sentence` tasks label a whole text, `token` tasks label every word,
    `pair` tasks score how similar two texts are (the cosine of their embeddings; no
    head of their own: they train the encoder).
    """

    name: str
    dataset: str
    kind: str
    labels: tuple
    loss_weight: float = 1.0  # the default weight of the task's loss (`--loss-weights`)

    @property
    def num_classes(self):
        return len(self.labels)

    @property
    def main_metric(self):
        """The metric that says how well the task went (studies and plots)."""
        return MAIN_METRIC[self.kind]

    @property
    def loss_metric(self):
        """The task's own loss, averaged over its own examples."""
        return "mse" if self.kind == "pair" else "xent"

    def get_config(self):
        """Plain JSON: a saved model carries its own task list, not a name to look up."""
        return {**dataclasses.asdict(self), "labels": list(self.labels)}

    @classmethod
    def from_config(cls, config):
        if isinstance(config, cls):
            return config
        return cls(**{**config, "labels": tuple(config["labels"])})


TASKS = {
    task.name: task
    for task in (
        Task("topic", "bbc_news", "sentence", tuple(sources.BBC_LABELS)),
        Task("sentiment", "tweet_sentiment", "sentence", tuple(sources.SENTIMENT_LABELS)),
        # A token loss is averaged over every position of a padded batch, most of them
        # unlabelled: weight 8 raised validation entity F1 beside topic 0.385 -> 0.432 (README).
        Task("ner", "wnut16", "token", tuple(sources.NER_TAGS), loss_weight=8.0),
        # A squared error of cosines is about 20x smaller than the heads' cross-entropy;
        # at weight 1 the heads pulled STS-B from 82.03 to 79.36, at 10 it rose to 83.30
        # (topic + sentiment + similarity, 1,000 examples each, 2 epochs; README).
        Task("similarity", "stsb", "pair", (), loss_weight=10.0),
    )
}
DEFAULT_TASKS = ("topic", "sentiment")


def resolve_tasks(names):
    """Task objects for a list or comma-separated string of names, validated."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = list(names)
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise InputError(f"unknown task {unknown[0]!r}; choose from: {', '.join(TASKS)}.")
    if not names:
        raise InputError(f"no task given; choose from: {', '.join(TASKS)}.")
    if len(set(names)) != len(names):
        raise InputError(f"task listed twice in {','.join(names)}.")
    return [TASKS[n] for n in names]
