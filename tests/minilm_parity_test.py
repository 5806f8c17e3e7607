"""The one integration test with the real weights: parity with sentence-transformers.

The reference was made by scripts/make_minilm_reference.py (torch, sentence-transformers);
this suite needs neither.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from mtl_keras import SentenceEncoder
from tests.conftest import cosines

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "minilm_reference.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("max_length", [128, 256])
def test_matches_sentence_transformers(max_length):
    cases = [c for c in REFERENCE["cases"] if c["max_length"] == max_length]
    encoder = SentenceEncoder.pretrained(max_length=max_length)
    got = encoder.encode([c["text"] for c in cases])
    want = np.array([c["embedding"] for c in cases], dtype=np.float32)
    assert got.shape == (len(cases), 384)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # encode normalises
    cosine = cosines(got, want)
    assert cosine.min() >= 0.9999, cosine.round(7).tolist()


def test_reference_covers_the_hard_cases():
    texts = [c["text"] for c in REFERENCE["cases"] if c["max_length"] == 128]
    assert len(texts) >= 8
    assert any(len(t) == 1 for t in texts)
    assert any(ch in "".join(texts) for ch in "éãü")
    assert REFERENCE["long_sentence_word_pieces"] > 128
