"""`--precision mixed_bfloat16`: bfloat16 products where the CPU has them, a clear refusal
where it does not."""

import json

import numpy as np
import pytest

from mtl_keras import RunConfig
from mtl_keras.errors import InputError
from mtl_keras.provenance import bf16_capable
from tests.conftest import run_tiny


def test_refused_in_one_line_on_a_cpu_without_bfloat16(monkeypatch):
    monkeypatch.setattr("mtl_keras.config.bf16_capable", lambda: False)
    with pytest.raises(InputError, match="AVX-512 BF16 or AMX") as info:
        RunConfig(precision="mixed_bfloat16")
    assert "\n" not in str(info.value)
    monkeypatch.setattr("mtl_keras.config.bf16_capable", lambda: True)
    assert RunConfig(precision="mixed_bfloat16").precision == "mixed_bfloat16"
    with pytest.raises(InputError, match="unknown precision"):
        RunConfig(precision="float16")


@pytest.mark.skipif(not bf16_capable(), reason="this CPU has no bfloat16 instructions")
def test_a_mixed_bfloat16_run_trains_saves_and_reloads_in_bfloat16(
    tiny_preset, tiny_data_dir, tmp_path
):
    from mtl_keras.saving import load_model

    run_tiny(tiny_preset, tiny_data_dir, tmp_path, "--tasks topic,ner,similarity --epochs 1 "
             "--precision mixed_bfloat16")  # fmt: skip
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["precision"] == "mixed_bfloat16"
    for values in metrics["test"].values():
        assert all(np.isfinite(v) for v in values.values())
    model = load_model(tmp_path / "model.keras")
    assert model.backbone.compute_dtype == "bfloat16"  # products in bfloat16
    assert all(v.dtype == "float32" for v in model.backbone.weights)  # weights in float32
