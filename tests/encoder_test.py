import numpy as np
import pytest

from mtl_keras import SentenceEncoder
from mtl_keras.errors import InputError, UserError


@pytest.fixture(scope="module")
def encoder(tiny_preset):
    return SentenceEncoder.from_preset(tiny_preset, max_length=16)


def test_shapes_and_dtype(encoder):
    out = encoder.encode(["the quick fox", "a dog", ""])
    assert out.shape == (3, 16) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def test_empty_list_and_bare_string(encoder):
    assert encoder.encode([]).shape == (0, 16)
    np.testing.assert_allclose(encoder.encode("the fox"), encoder.encode(["the fox"]))


def test_order_and_batching_do_not_change_results(encoder):
    sentences = [
        "the quick brown fox jumps over the lazy dog",
        "a",
        "stocks fell",
        "new phone chip !",
    ]
    together = encoder.encode(sentences, batch_size=3)
    one_by_one = np.concatenate([encoder.encode([s]) for s in sentences])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    reversed_ = encoder.encode(sentences[::-1], batch_size=2)[::-1]
    np.testing.assert_allclose(together, reversed_, atol=1e-5)


def test_normalize_false_keeps_raw_mean(encoder):
    raw = encoder.encode(["the quick fox"], normalize=False)
    unit = encoder.encode(["the quick fox"])
    np.testing.assert_allclose(raw / np.linalg.norm(raw), unit, rtol=1e-5)


def test_dimensions_keep_the_first_ones_then_normalise(encoder):
    """A Matryoshka-style shorter embedding: the first k values, as unit vectors."""
    sentences = ["the quick fox", "stocks fell", "a"]
    raw = encoder.encode(sentences, normalize=False)
    short = encoder.encode(sentences, dimensions=8)
    assert short.shape == (3, 8) and encoder.encode([], dimensions=8).shape == (0, 8)
    np.testing.assert_allclose(short, raw[:, :8] / np.linalg.norm(raw[:, :8], axis=1)[:, None],
                               rtol=1e-5)  # fmt: skip
    np.testing.assert_allclose(encoder.encode(sentences, normalize=False, dimensions=8),
                               raw[:, :8])  # fmt: skip
    for bad, message in ((0, "in \\[1, 16\\]"), (17, "got 17"), ("8", "must be an int")):
        with pytest.raises(UserError, match=message):
            encoder.encode(sentences, dimensions=bad)


def test_long_text_is_truncated_to_max_length(encoder):
    features = encoder.tokenize(["the " * 500])
    assert features["token_ids"].shape == (1, 16)
    assert encoder.encode(["the " * 500]).shape == (1, 16)


@pytest.mark.parametrize(
    "bad, index, kind", [([None], 0, "NoneType"), (["ok", 3], 1, "int"), (["a", b"b"], 1, "bytes")]
)
def test_non_string_items_name_index_and_type(encoder, bad, index, kind):
    with pytest.raises(TypeError, match=rf"sentences\[{index}\] is {kind}"):
        encoder.encode(bad)


def test_non_list_input_is_refused(encoder):
    with pytest.raises(TypeError, match="list of str"):
        encoder.encode(42)


def test_max_length_beyond_positions_is_refused(tiny_preset):
    with pytest.raises(InputError, match="exceeds this encoder's 32 positions"):
        SentenceEncoder.from_preset(tiny_preset, max_length=64)


def test_missing_preset_dir_is_one_line_error(tmp_path):
    with pytest.raises(UserError, match="never downloads") as info:
        SentenceEncoder.from_preset(tmp_path / "nope")
    assert "\n" not in str(info.value)
