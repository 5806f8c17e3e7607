"""Kinds that train the embedding itself: scored pairs (cosine) and contrastive pairs."""

import re

import keras
import numpy as np
import tensorflow as tf

from mtl_keras.encoding.preprocessing import FEATURES, NEGATIVE_FEATURES
from mtl_keras.errors import InputError
from mtl_keras.evaluation.metrics import (
    Correlation,
    InBatchNegativesLoss,
    in_batch_metrics,
    retrieval_metrics,
)
from mtl_keras.evaluation.sts import spearman
from mtl_keras.tasks.kind import (
    Kind,
    ones_for,
    pair_inputs,
    pair_key_column,
    text_value,
)


class PairSimilarity(Kind):
    """How similar two texts are: the cosine of their embeddings against a score scaled to
    [0, 1] (sentence-transformers' CosineSimilarityLoss). No head: it trains the encoder,
    and what it learnt shows in the embedding, not in an output per text."""

    name = "pair"
    decoder = None
    text_fields = ("sentence1", "sentence2")
    columns = ("sentence1", "sentence2", "score")
    column_types = ("text", "text", "score")
    fields = ("sentence1", "sentence2", "score")
    main_metric = "pearson"
    loss_metric = "mse"
    has_head = False
    second_text = True
    embedding_head = False
    has_labels = False
    scored = True
    matryoshka = True

    def signature(self, num_classes):
        text = tf.TensorSpec([], tf.string)
        return {"sentence1": text, "sentence2": text, "score": tf.TensorSpec([], tf.float32)}

    def score_range(self, name, data):
        scores = data["score"].to_numpy()
        if scores.min() == scores.max():
            raise InputError(f"task {name!r}: every training score is {scores[0]}.")
        return (float(scores.min()), float(scores.max()))

    def empty_target(self, task, max_length):
        return tf.zeros([1], tf.float32), tf.zeros([], tf.float32)

    def encode(self, task, batch, tokenize, tokenizer, max_length):
        x = pair_inputs(tokenize, batch)
        low, high = task.score_range
        score = (tf.cast(batch["score"], tf.float32) - low) / (high - low)
        return x, score[:, None], ones_for(score)

    def output(self, task, head, features):
        """Shape (batch, 1): the cosine of the two texts' embeddings."""
        pair = [features["embedding"], features["pair_embedding"]]
        # Unnamed: under Matryoshka it is made once per width (the output's key names it).
        return keras.layers.Dot(axes=1, normalize=True)(pair)

    def loss(self, task):
        return keras.losses.MeanSquaredError()

    def metrics(self, task):
        """The correlation of cosine and target, and the squared error."""
        return [Correlation(), keras.metrics.MeanSquaredError(name="mse")]

    def key_column(self, data):
        return pair_key_column(data)

    def split_metrics(self, task, encode, examples):
        """Spearman's rank correlation of the cosine and the score over the whole split
        (`pearson` comes from the batches), as STS evaluations report it."""
        rows = examples()
        if not rows:
            return None
        first, second = (encode([r[f].decode("utf-8") for r in rows]) for f in self.fields[:2])
        cosines = np.sum(np.asarray(first) * np.asarray(second), axis=1)
        return {"spearman": spearman(cosines, [float(r["score"]) for r in rows])}

    def parse(self, row, where):
        score = row["score"]
        try:
            score = float(score)
        except (TypeError, ValueError):
            raise InputError(f"{where}: score {score!r} is not a number.") from None
        if not np.isfinite(score):
            raise InputError(f"{where}: score {score!r} is not a finite number.")
        return {"sentence1": text_value(row["sentence1"], "sentence1", where),
                "sentence2": text_value(row["sentence2"], "sentence2", where),
                "score": score}  # fmt: skip


class Contrastive(Kind):
    """Anchor and positive texts (a question and its answer, a title and its abstract)
    pulled together, every other positive of the batch pushed away: the cosines of a
    batch's anchors and positives, scaled by 20, under sentence-transformers'
    MultipleNegativesRankingLoss. With hard negatives (`negative`, or `negative_1` ...
    `negative_n` columns: texts close to the anchor but wrong), each anchor also scores
    against every example's negatives. No head: it trains the embedding. Evaluated by
    retrieval: each test anchor against all of the split's positives (recall@1, MRR)."""

    name = "contrastive"
    decoder = None
    text_fields = ("anchor", "positive")
    columns = ("anchor", "positive")
    column_types = ("text", "text")
    fields = ("anchor", "positive")
    has_head = False
    second_text = True
    embedding_head = False
    has_labels = False
    matryoshka = True
    scale = 20.0  # sentence-transformers' default

    def signature(self, num_classes):
        text = tf.TensorSpec([], tf.string)
        return {"anchor": text, "positive": text}

    def empty_target(self, task, max_length):
        return tf.zeros([1 + task.negatives], tf.float32), tf.zeros([], tf.float32)

    def encode(self, task, batch, tokenize, tokenizer, max_length):
        """The anchor's inputs, the positive's as `pair_*` and the k negatives' as
        `negative_*` (batch, k, length); the target marks the candidates the example
        brings (`metrics.candidate_mask`): its positive and its negatives. Examples of a
        split without negatives (a test file) bring their positive only."""
        pair = {"sentence1": batch["anchor"], "sentence2": batch["positive"]}
        x, weights = pair_inputs(tokenize, pair), ones_for(batch["anchor"])
        size, brought = tf.shape(weights)[0], 0
        if "negatives" in batch:  # (a split without them, e.g. the test file: empty texts)
            negatives = tokenize(tf.reshape(batch["negatives"], [-1]))
            x.update({n: tf.reshape(negatives[f], [size, task.negatives, -1])
                      for f, n in zip(FEATURES, NEGATIVE_FEATURES, strict=True)})  # fmt: skip
            brought = task.negatives
        marks = [tf.ones([size, 1 + brought]), tf.zeros([size, task.negatives - brought])]
        return x, tf.concat(marks, axis=1), weights

    def output(self, task, head, features):
        """(batch, batch [+ batch * k]): 20 x the cosine of every anchor with every
        positive [and every hard negative]."""
        unit = [keras.layers.UnitNormalization()(features[k])
                for k in ("embedding", "pair_embedding")]  # fmt: skip
        scores = keras.ops.matmul(unit[0], keras.ops.transpose(unit[1]))
        if task.negatives:
            negative = keras.layers.UnitNormalization()(features["negative_embedding"])
            against = keras.ops.matmul(unit[0], keras.ops.transpose(negative))
            scores = keras.ops.concatenate([scores, against], axis=1)
        return scores * self.scale

    def loss(self, task):
        return InBatchNegativesLoss()

    def metrics(self, task):
        return in_batch_metrics()

    def parse(self, row, where):
        example = {"anchor": text_value(row["anchor"], "anchor", where),
                   "positive": text_value(row["positive"], "positive", where)}  # fmt: skip
        for ours, theirs in self.extra_columns(list(row), where).items():
            example[ours] = text_value(row[theirs], theirs, where)
        return example

    def extra_columns(self, names, where):
        """The hard negatives: `negative`, or `negative_1` ... `negative_n` (numbered from 1,
        none missing), as negative_1 ... negative_n."""
        numbered = sorted((n for n in names if re.fullmatch(r"negative_[0-9]+", n)),
                          key=lambda n: int(n.rsplit("_", 1)[1]))  # fmt: skip
        if "negative" in names and numbered:
            raise InputError(f"{where}: both 'negative' and {numbered[0]!r}: name the hard "
                             "negatives negative, or negative_1 ... negative_n.")  # fmt: skip
        if "negative" in names:
            return {"negative_1": "negative"}
        expected = [f"negative_{i}" for i in range(1, len(numbered) + 1)]
        if numbered != expected:
            raise InputError(f"{where}: hard-negative columns {', '.join(numbered)}: number them "
                             f"negative_1 ... negative_{len(numbered)}.")  # fmt: skip
        return {name: name for name in numbered}

    def extra_tensors(self, data, text_tensor):
        """The hard negatives as "negatives": (examples, k) texts (none without them)."""
        count = sum(name.startswith("negative_") for name in data)
        if not count:
            return {}
        texts = [text_tensor(data[f"negative_{i}"]) for i in range(1, count + 1)]
        return {"negatives": tf.stack(texts, axis=1)}

    def split_metrics(self, task, encode, examples):
        """Recall@1 and MRR of each anchor against every positive of the split."""
        rows = examples()
        anchors = [e["anchor"].decode("utf-8") for e in rows]
        positives = [e["positive"].decode("utf-8") for e in rows]
        if not anchors:
            return None
        return retrieval_metrics(encode(anchors), encode(positives))
