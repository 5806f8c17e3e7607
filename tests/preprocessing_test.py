import numpy as np
import pytest
import tensorflow as tf

from mtl_keras.errors import InputError
from mtl_keras.preprocessing import clean_text, make_preprocessor, trim_padding
from tests.conftest import TINY_VOCAB, make_tiny_tokenizer


def test_clean_text_follows_bert_rules():
    raw = ["I\ufffd\ufffdm", "tab\tnew\nline\rend", "zero\u200bwidth\x00nul\x1bx", "Café ok"]
    assert [t.decode() for t in clean_text(tf.constant(raw)).numpy()] == [
        "Im",
        "tab new line end",
        "zerowidthnulx",
        "Café ok",
    ]


def test_garbage_inside_a_word_no_longer_makes_it_unknown():
    pre = make_preprocessor(make_tiny_tokenizer(), 8)
    ids = pre(tf.constant(["the\ufffd\ufffd fox"]))["token_ids"].numpy()[0]
    assert [TINY_VOCAB[i] for i in ids[:4]] == ["[CLS]", "the", "fox", "[SEP]"]


def test_trim_padding_cuts_to_longest():
    pre = make_preprocessor(make_tiny_tokenizer(), 12)
    out = trim_padding(pre(tf.constant(["the fox", "the quick brown fox jumps"])))
    assert out["token_ids"].shape == (2, 7)
    np.testing.assert_array_equal(out["padding_mask"].numpy().sum(1), [4, 7])


def test_bad_max_length():
    with pytest.raises(InputError, match="max_length must be an int >= 2"):
        make_preprocessor(make_tiny_tokenizer(), 1)
