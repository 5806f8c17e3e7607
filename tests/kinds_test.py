"""Each kind's numbers against values computed by hand: its metrics, its output and its
targets (a wrong F1, a missing sigmoid, a head on the wrong features or an unscaled score
fails here, not only a range check)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_keras.encoding.preprocessing import FEATURES, PAIR_FEATURES
from mtl_keras.evaluation.metrics import Correlation, LogitF1
from mtl_keras.model.multitask import MultiTaskModel
from mtl_keras.tasks import Task
from mtl_keras.tasks.kinds import KINDS
from tests.conftest import make_tiny_backbone, tiny_inputs

Y_TRUE = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], "float32")
# Row 1's first logit, 0.3, is probability 0.57: above the threshold only after a sigmoid.
LOGITS = np.array([[2, -1, -3], [0.3, 3, -2], [4, -2, -1], [-1, -1, 5]], "float32")
# Predicted [[1,0,0],[1,1,0],[1,0,0],[0,0,1]]: label 0 tp 2 fp 1 fn 0, label 1 tp 1 fn 1,
# label 2 tp 1 fn 1.
PER_LABEL = [2 * 2 / (2 * 2 + 1), 2 / 3, 2 / 3]


def logit_f1(average, sample_weight=None):
    metric = LogitF1(average)
    metric.update_state(
        Y_TRUE[:2], LOGITS[:2], None if sample_weight is None else sample_weight[:2]
    )
    metric.update_state(
        Y_TRUE[2:], LOGITS[2:], None if sample_weight is None else sample_weight[2:]
    )
    return float(metric.result())


def test_logit_f1_micro_and_macro_match_hand_counts():
    assert logit_f1("micro") == pytest.approx(2 * 4 / (2 * 4 + 1 + 2), abs=1e-6)  # tp 4 fp 1 fn 2
    assert logit_f1("macro") == pytest.approx(np.mean(PER_LABEL), abs=1e-6)
    # Row 4 weighted out: label 2 has one gold and no prediction left (F1 0).
    weight = np.array([1, 1, 1, 0], "float32")
    assert logit_f1("micro", weight) == pytest.approx(2 * 3 / (2 * 3 + 1 + 2), abs=1e-6)
    assert logit_f1("macro", weight) == pytest.approx((PER_LABEL[0] + 2 / 3 + 0) / 3, abs=1e-6)
    assert LogitF1.from_config(LogitF1("macro").get_config()).average == "macro"


def test_correlation_is_one_pearson_r_over_the_weighted_examples_of_every_batch():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=12).astype("float32"), rng.normal(size=12).astype("float32")
    y += x  # correlated
    weight = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0], "float32")  # 0: another task's
    metric = Correlation()
    for rows in (slice(0, 5), slice(5, 12)):  # two batches of unequal size
        metric.update_state(y[rows, None], x[rows, None], weight[rows])
    keep = weight > 0
    want = np.corrcoef(x[keep], y[keep])[0, 1]
    assert float(metric.result()) == pytest.approx(want, abs=1e-5)
    per_batch = np.mean([np.corrcoef(x[r][keep[r]], y[r][keep[r]])[0, 1]
                         for r in (slice(0, 5), slice(5, 12))])  # fmt: skip
    assert abs(want - per_batch) > 1e-3  # the batch mean would be another number


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="float64 sums on TF only")
def test_correlation_keeps_its_digits_when_the_cosines_barely_vary():
    """A new encoder's cosines often sit within 0.01 of each other: float32 sums of x and
    x^2 then cancel (r was 0.006 off on 80 pairs, and 0 instead of -1 on two)."""
    rng = np.random.default_rng(0)
    x = (0.95 + 0.002 * rng.normal(size=80)).astype("float32")
    y = (rng.uniform(size=80) + (x - 0.95) / 0.002 * 0.3).astype("float32")
    metric = Correlation()
    for start in range(0, 80, 8):
        metric.update_state(y[start : start + 8, None], x[start : start + 8, None])
    assert float(metric.result()) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-6)
    metric.reset_state()
    metric.update_state(np.array([[0.2], [0.9]]), np.array([[0.951], [0.9505]]))
    assert float(metric.result()) == pytest.approx(-1.0, abs=1e-6)


def pair_model(kind, labels=()):
    keras.utils.set_random_seed(1)
    task = Task("pairs", None, kind, labels)
    model = MultiTaskModel(make_tiny_backbone(dropout=0.0), [task], dropout=0.0)
    x = tiny_inputs()
    x.update({p: x[f][::-1] for f, p in zip(FEATURES, PAIR_FEATURES, strict=True)})
    embed = model.embedding_model()
    u = np.asarray(embed({f: x[f] for f in FEATURES}, training=False))
    v = np.asarray(embed({f: x[p] for f, p in zip(FEATURES, PAIR_FEATURES, strict=True)}))
    return model, np.asarray(model(x, training=False)["pairs"]), u, v


def test_pair_classification_head_reads_u_v_and_their_absolute_difference():
    model, logits, u, v = pair_model("pair_classification", ("no", "yes"))
    dense = model.head_denses["pairs"]
    kernel, bias = (np.asarray(w) for w in (dense.kernel, dense.bias))
    assert kernel.shape == (3 * u.shape[1], 2)
    want = np.concatenate([u, v, np.abs(u - v)], axis=1) @ kernel + bias
    np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-5)
    assert np.abs(u - v).max() > 1e-3  # the two texts differ, so |u - v| counts


def test_contrastive_output_is_twenty_times_every_anchor_positive_cosine():
    _, scores, u, v = pair_model("contrastive")
    unit = [a / np.linalg.norm(a, axis=1, keepdims=True) for a in (u, v)]
    np.testing.assert_allclose(scores, 20.0 * unit[0] @ unit[1].T, rtol=1e-4, atol=1e-4)
    assert KINDS["contrastive"].scale == 20.0  # sentence-transformers' default


def test_hard_negatives_follow_the_positives_example_by_example():
    """With k = 2 hard negatives, the output is (batch, batch + batch * 2): every anchor
    against the batch's positives, then against each example's negatives in order."""
    keras.utils.set_random_seed(1)
    task = Task("qa", None, "contrastive", (), negatives=2)
    model = MultiTaskModel(make_tiny_backbone(dropout=0.0), [task], dropout=0.0)
    x = tiny_inputs()
    x.update({p: x[f][::-1] for f, p in zip(FEATURES, PAIR_FEATURES, strict=True)})
    negatives = {f: np.stack([x[f], x[f][::-1]], axis=1) for f in FEATURES}  # (2, 2, 5)
    x.update({f"negative_{f}": value for f, value in negatives.items()})
    scores = np.asarray(model(x, training=False)["qa"])
    embed = model.embedding_model()
    unit = [np.asarray(embed(inputs, training=False)) for inputs in (
        {f: x[f] for f in FEATURES}, {f: x[f][::-1] for f in FEATURES})]  # fmt: skip
    unit = [a / np.linalg.norm(a, axis=1, keepdims=True) for a in unit]
    # Example 0's negatives are texts 0 and 1, example 1's texts 1 and 0.
    negative = np.stack([unit[0][0], unit[0][1], unit[0][1], unit[0][0]])
    want = 20.0 * unit[0] @ np.concatenate([unit[1], negative]).T
    assert scores.shape == (2, 6)
    np.testing.assert_allclose(scores, want, rtol=1e-4, atol=1e-4)


def test_examples_bring_their_negatives_as_candidates_or_only_their_positive():
    """A training batch with 2 negatives each marks 3 candidates per example; a test split
    without negatives marks the positive only (its negative inputs stay the empty text)."""
    task = Task("qa", None, "contrastive", (), negatives=2)

    def tokenize(texts):
        ids = tf.ones([tf.shape(texts)[0], 4], tf.int32)
        return {"token_ids": ids, "padding_mask": ids, "segment_ids": ids * 0}

    pairs = {"anchor": tf.constant(["a", "b"]), "positive": tf.constant(["c", "d"])}
    x, target, _ = KINDS["contrastive"].encode(
        task, {**pairs, "negatives": tf.constant([["e", "f"], ["g", "h"]])}, tokenize, None, 4
    )
    assert x["negative_token_ids"].shape == (2, 2, 4)
    np.testing.assert_array_equal(np.asarray(target), np.ones((2, 3)))
    x, target, _ = KINDS["contrastive"].encode(task, pairs, tokenize, None, 4)
    assert "negative_token_ids" not in x
    np.testing.assert_array_equal(np.asarray(target), [[1, 0, 0], [1, 0, 0]])


def test_pair_scores_are_scaled_to_0_1_by_the_training_range():
    task = Task("sim", None, "pair", (), score_range=(1.0, 5.0))
    batch = {"sentence1": tf.constant(["a"] * 4), "sentence2": tf.constant(["b"] * 4),
             "score": tf.constant([1.0, 3.0, 5.0, 2.0])}  # fmt: skip

    def tokenize(texts):
        ids = tf.zeros([tf.shape(texts)[0], 2], tf.int32)
        return {"token_ids": ids, "padding_mask": ids + 1, "segment_ids": ids}

    _, target, weight = KINDS["pair"].encode(task, batch, tokenize, None, 2)
    np.testing.assert_allclose(np.asarray(target)[:, 0], [0.0, 0.5, 1.0, 0.25])
    np.testing.assert_array_equal(np.asarray(weight), [1, 1, 1, 1])
