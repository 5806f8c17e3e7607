"""The run's learning-rate schedule and the optimizer `make_optimizer` builds around it."""

import types

import keras
import numpy as np
import pytest

from mtl_keras.errors import InputError
from mtl_keras.training.layerwise_lr import LayerwiseLR
from mtl_keras.training.optimizers import make_optimizer
from mtl_keras.training.scenarios import SCENARIOS
from mtl_keras.training.schedules import WarmupDecay


def rates(schedule, steps):
    return [float(schedule(step)) for step in steps]


def test_linear_warmup_then_linear_decay_to_zero():
    schedule = WarmupDecay(1.0, total_steps=12, warmup_steps=2, decay="linear")
    np.testing.assert_allclose(rates(schedule, [0, 1, 2, 7, 12, 20]), [0.5, 1.0, 1.0, 0.5, 0, 0])


def test_cosine_and_constant_after_the_same_warmup():
    cosine = WarmupDecay(2.0, total_steps=10, warmup_steps=0, decay="cosine")
    np.testing.assert_allclose(rates(cosine, [0, 5, 10]), [2.0, 1.0, 0.0], atol=1e-6)
    constant = WarmupDecay(2.0, total_steps=10, warmup_steps=4, decay="constant")
    np.testing.assert_allclose(rates(constant, [0, 3, 4, 9, 50]), [0.5, 2.0, 2.0, 2.0, 2.0])


def test_schedule_round_trips_and_refuses_unknown_shapes():
    schedule = WarmupDecay(3e-5, total_steps=100, warmup_steps=10, decay="cosine")
    clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert clone.get_config() == schedule.get_config()
    with pytest.raises(InputError, match="unknown schedule 'step'; choose from: linear, cosine"):
        WarmupDecay(1.0, 10, decay="step")


def test_heads_take_their_multiplier_in_every_scenario():
    optimizer = make_optimizer(SCENARIOS["full"], 1e-4, num_layers=2, head_multiplier=10.0)
    assert isinstance(optimizer, LayerwiseLR)
    for path, factor in (("transformer_layer_1/self_attention_layer/query/kernel", 1.0),
                         ("token_embedding/embeddings", 1.0), ("topic/kernel", 10.0),
                         ("embedding/score/kernel", 10.0)):  # fmt: skip
        assert optimizer.factor(types.SimpleNamespace(path=path)) == factor, path
    # Nothing to scale: still the wrapper (it sums embedding gradients' repeated rows on
    # TensorFlow and follows the trainable set on JAX), every factor 1.
    plain = make_optimizer(SCENARIOS["full"], 1e-4, num_layers=2)
    assert isinstance(plain.inner_optimizer, keras.optimizers.AdamW)
    assert set(plain.multipliers.values()) == {1.0}


def test_gradient_accumulation_updates_every_k_batches():
    optimizer = make_optimizer(SCENARIOS["full"], 0.1, num_layers=2, weight_decay=0.0,
                               total_steps=8, schedule="constant", accumulation_steps=2)  # fmt: skip
    weight = keras.Variable(np.ones(3, "float32"))
    optimizer.build([weight])
    seen = []
    for _ in range(4):
        optimizer.apply([np.ones(3, "float32")], [weight])
        seen.append(float(weight.numpy()[0]))
    assert seen[0] == 1.0 and seen[1] < 1.0 and seen[2] == seen[1] and seen[3] < seen[2]


# The heads' learning-rate factor each scenario uses unless --head-lr-multiplier says
# otherwise (README's scenario table): written out here, not read from SCENARIOS.
DEFAULT_HEAD_MULTIPLIER = {
    "full": 100.0, "frozen_all": 100.0, "frozen_backbone": 1.0, "frozen_head_a": 100.0,
    "frozen_head_b": 100.0, "frozen_lower": 100.0, "gradual_unfreeze": 100.0, "llrd": 100.0,
    "lora": 20.0,
}  # fmt: skip


@pytest.mark.parametrize("scenario", list(DEFAULT_HEAD_MULTIPLIER))
def test_default_head_multiplier_per_scenario(scenario):
    from mtl_keras import RunConfig

    assert set(DEFAULT_HEAD_MULTIPLIER) == set(SCENARIOS)
    config = RunConfig(scenario=scenario, tasks="topic,sentiment")
    expected = DEFAULT_HEAD_MULTIPLIER[scenario]
    assert config.head_lr_multiplier_or_default == expected
    optimizer = make_optimizer(SCENARIOS[scenario], 1e-4, num_layers=2,
                               head_multiplier=config.head_lr_multiplier_or_default)  # fmt: skip
    head, top = (types.SimpleNamespace(path=p) for p in ("topic/kernel", "transformer_layer_1/x"))
    factor = optimizer.factor if isinstance(optimizer, LayerwiseLR) else lambda v: 1.0
    assert factor(head) == expected
    assert factor(top) == (0.8 if scenario == "llrd" else 1.0)  # llrd: the top layer decays once
    mine = RunConfig(scenario=scenario, tasks="topic,sentiment", head_lr_multiplier=5.0)
    assert mine.head_lr_multiplier_or_default == 5.0  # the option wins
