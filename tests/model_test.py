"""The multi-task model's compiled loss: per-task weights mix the tasks' gradients."""

import keras
import numpy as np
import pytest

from tests.conftest import deterministic_tiny_model, one_fit_step


def test_loss_weights_mix_the_task_gradients():
    """With plain SGD a step is the rate times the gradient of the weighted sum of the
    task losses, so the step with weights (2, 3) is 2x topic's step plus 3x sentiment's,
    on the shared encoder and on each head."""
    model = deterministic_tiny_model("topic,sentiment")
    start = model.get_weights()
    y = {"topic": np.array([1, 3]), "sentiment": np.array([0, 2])}

    def step(topic, sentiment):
        weights = {"topic": topic, "sentiment": sentiment}
        return one_fit_step(model, keras.optimizers.SGD(10.0), y, start, weights)

    topic, sentiment, mixed = step(1.0, 0.0), step(0.0, 1.0), step(2.0, 3.0)
    shared = "transformer_layer_1/self_attention_layer/query/kernel"
    assert np.abs(topic[shared]).max() > 1e-4 and np.abs(sentiment[shared]).max() > 1e-4
    assert np.abs(topic["sentiment/kernel"]).max() == 0  # a weight of 0: no gradient there
    for path in mixed:
        np.testing.assert_allclose(mixed[path], 2 * topic[path] + 3 * sentiment[path],
                                   atol=1e-6, rtol=1e-3, err_msg=path)  # fmt: skip


@pytest.mark.graph
def test_fit_traces_the_train_step_once():
    """`compile_model` has Keras build the loss and metric state before the first step:
    TensorFlow otherwise creates it in a first trace of the step and traces it again."""
    from mtl_keras.model.multitask import compile_model
    from tests.conftest import tiny_inputs

    model = compile_model(deterministic_tiny_model("topic,sentiment"), keras.optimizers.SGD(0.1))
    traces, step = [], model.train_step

    def counted(*args):  # its Python body runs once per trace
        traces.append(1)
        return step(*args)

    model.train_step = counted
    y = {"topic": np.array([1, 3]), "sentiment": np.array([0, 2])}
    model.fit(tiny_inputs(), y, epochs=2, batch_size=2, verbose=0)
    assert len(traces) == 1
    assert {m.name for m in model.metrics} >= {"loss", "topic_loss", "sentiment_loss"}
