"""Uncertainty weighting: the learned log-variances weigh the task losses as Kendall et al.
define, train with `fit`, leave absent tasks alone and survive save and reload."""

import json
import math

import keras
import numpy as np
import pytest

from mtl_keras.config import RunConfig
from mtl_keras.errors import InputError
from mtl_keras.model.multitask import MultiTaskModel, compile_model
from mtl_keras.saving import load_model
from mtl_keras.training.optimizers import make_optimizer
from mtl_keras.training.scenarios import SCENARIOS
from tests.conftest import deterministic_tiny_model, one_fit_step, tiny_inputs

Y = {"topic": np.array([1, 3]), "sentiment": np.array([0, 2])}
LOG_VARIANCE = "task_uncertainty/log_variance"


def task_losses(model):
    """Each task's mean cross-entropy on the tiny batch, before any step."""
    outputs = model(tiny_inputs(), training=False)
    return {
        name: float(np.mean(keras.losses.sparse_categorical_crossentropy(
            Y[name], outputs[name], from_logits=True)))
        for name in Y
    }  # fmt: skip


def with_log_variance(start, model, values):
    """`start` (model.get_weights()) with the log-variances set to `values`."""
    index = [v.path for v in model.weights].index(LOG_VARIANCE)
    return [np.array(values, "float32") if i == index else w for i, w in enumerate(start)]


def test_learned_weights_scale_each_task_loss_like_fixed_weights():
    """With plain SGD, a step at log-variances s equals the step of fixed weights
    exp(-s) everywhere in the model, and s itself moves by -rate * (1/2 - exp(-s) L)."""
    rate = 0.5
    learned = deterministic_tiny_model("topic,sentiment", loss_weighting="uncertainty")
    fixed = deterministic_tiny_model("topic,sentiment")
    s = [math.log(2.0), -math.log(3.0)]  # weights 1/2 and 3
    start = with_log_variance(learned.get_weights(), learned, s)
    learned.set_weights(start)
    losses = task_losses(learned)
    step = one_fit_step(learned, keras.optimizers.SGD(rate), Y, start)
    plain = one_fit_step(fixed, keras.optimizers.SGD(rate), Y, fixed.get_weights(),
                         {"topic": 0.5, "sentiment": 3.0})  # fmt: skip
    assert set(step) - set(plain) == {LOG_VARIANCE}
    for path, change in plain.items():
        np.testing.assert_allclose(step[path], change, atol=1e-6, rtol=1e-3, err_msg=path)
    expected = [-rate * (0.5 - math.exp(-v) * losses[name]) for v, name in zip(s, Y, strict=True)]
    np.testing.assert_allclose(step[LOG_VARIANCE], expected, rtol=1e-3)
    assert np.abs(expected).min() > 1e-3  # the check above is not about zeros


def test_a_task_without_labels_in_the_batch_keeps_its_log_variance():
    model = deterministic_tiny_model("topic,sentiment", loss_weighting="uncertainty")
    weights = {"topic": np.ones(2, "float32"), "sentiment": np.zeros(2, "float32")}
    step = one_fit_step(model, keras.optimizers.SGD(0.5), Y, model.get_weights(),
                        sample_weight=weights)  # fmt: skip
    topic, sentiment = step[LOG_VARIANCE]
    assert abs(topic) > 1e-3 and sentiment == 0


def test_log_variances_are_not_weight_decayed():
    """A zero gradient leaves AdamW's moments at 0, so only decay could move a weight:
    the encoder's kernel shrinks, the log-variances do not."""
    model = deterministic_tiny_model("topic,sentiment", loss_weighting="uncertainty")
    optimizer = make_optimizer(SCENARIOS["full"], 0.1, 2, head_multiplier=1.0, weight_decay=0.5)
    kernel = model.backbone.get_layer("transformer_layer_0").weights[0]
    log_variance = model.task_uncertainty.log_variance
    log_variance.assign([1.0, -1.0])
    before = [kernel.numpy().copy(), log_variance.numpy().copy()]
    optimizer.apply_gradients([(np.zeros(v.shape, "float32"), v) for v in (kernel, log_variance)])
    assert np.abs(kernel.numpy()).sum() < np.abs(before[0]).sum()
    np.testing.assert_array_equal(log_variance.numpy(), before[1])


def test_learned_weights_survive_save_and_reload(tmp_path):
    model = deterministic_tiny_model("topic,sentiment", loss_weighting="uncertainty")
    compile_model(model, keras.optimizers.SGD(0.5))
    model.fit(tiny_inputs(), Y, epochs=2, batch_size=2, verbose=0)
    learned = model.task_uncertainty.loss_weights()
    assert learned["topic"] != 1.0 and learned["sentiment"] != 1.0
    model.save(tmp_path / "model.keras")
    reloaded = load_model(tmp_path / "model.keras")
    assert reloaded.loss_weighting == "uncertainty"
    assert reloaded.task_uncertainty.loss_weights() == pytest.approx(learned, rel=1e-6)
    fixed = MultiTaskModel.from_config(deterministic_tiny_model("topic").get_config())
    assert fixed.loss_weighting == "fixed" and fixed.task_uncertainty is None


def test_fixed_weights_and_uncertainty_weighting_are_refused_together():
    model = deterministic_tiny_model("topic,sentiment", loss_weighting="uncertainty")
    with pytest.raises(InputError, match="choose one"):
        compile_model(model, "sgd", {"topic": 2.0})
    with pytest.raises(InputError, match="choose one"):
        RunConfig(tasks="topic,sentiment", loss_weighting="uncertainty", loss_weights={"topic": 2})
    with pytest.raises(InputError, match="unknown loss weighting 'kendall'"):
        RunConfig(loss_weighting="kendall")


def test_a_run_records_the_weights_it_learned(tiny_run):
    """`--loss-weighting uncertainty` end to end (the shared tiny run): metrics.json has
    each task's learned factor, and the saved model holds the same ones."""
    learned = json.loads((tiny_run / "metrics.json").read_text())["learned_loss_weights"]
    assert set(learned) == {"topic", "sentiment", "ner"}
    assert all(0 < w < float("inf") and w != 1.0 for w in learned.values())
    model = load_model(tiny_run / "model.keras")
    assert model.task_uncertainty.loss_weights() == pytest.approx(learned, rel=1e-6)


def test_heads_on_cached_embeddings_learn_the_weights_too():
    """A frozen backbone trains `heads_model` on cached embeddings: the log-variances
    (the model's) train with it."""
    model = deterministic_tiny_model("topic,sentiment", loss_weighting="uncertainty")
    heads = model.heads_model()
    compile_model(heads, keras.optimizers.SGD(0.5), tasks=model.tasks)
    heads.fit(np.ones((2, 16), "float32"), Y, batch_size=2, epochs=1, verbose=0)
    assert all(w != 1.0 for w in model.task_uncertainty.loss_weights().values())
