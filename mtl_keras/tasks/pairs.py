"""Kinds that train the embedding itself: scored pairs (cosine) and contrastive pairs."""

import keras
import numpy as np
import tensorflow as tf

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
        return keras.layers.Dot(axes=1, normalize=True, name=task.name)(pair)

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
    MultipleNegativesRankingLoss. No head: it trains the embedding. Evaluated by
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
    scale = 20.0  # sentence-transformers' default

    def signature(self, num_classes):
        text = tf.TensorSpec([], tf.string)
        return {"anchor": text, "positive": text}

    def empty_target(self, task, max_length):
        return tf.zeros([1], tf.float32), tf.zeros([], tf.float32)

    def encode(self, task, batch, tokenize, tokenizer, max_length):
        pair = {"sentence1": batch["anchor"], "sentence2": batch["positive"]}
        weights = ones_for(batch["anchor"])
        return pair_inputs(tokenize, pair), weights[:, None], weights

    def output(self, task, head, features):
        """(batch, batch): 20 x the cosine of every anchor with every positive."""
        unit = [keras.layers.UnitNormalization()(features[k])
                for k in ("embedding", "pair_embedding")]  # fmt: skip
        return keras.ops.matmul(unit[0], keras.ops.transpose(unit[1])) * self.scale

    def loss(self, task):
        return InBatchNegativesLoss()

    def metrics(self, task):
        return in_batch_metrics()

    def parse(self, row, where):
        if "negative" in row:
            raise InputError(
                f"{where}: hard negatives ('negative') are not supported yet; drop the "
                "column (the batch's other positives are the negatives)."
            )
        return {"anchor": text_value(row["anchor"], "anchor", where),
                "positive": text_value(row["positive"], "positive", where)}  # fmt: skip

    def split_metrics(self, task, encode, examples):
        """Recall@1 and MRR of each anchor against every positive of the split."""
        rows = examples()
        anchors = [e["anchor"].decode("utf-8") for e in rows]
        positives = [e["positive"].decode("utf-8") for e in rows]
        if not anchors:
            return None
        return retrieval_metrics(encode(anchors), encode(positives))
