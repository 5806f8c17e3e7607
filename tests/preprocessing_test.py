import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from mtl_keras.encoding.preprocessing import clean_text, make_preprocessor, trim_padding
from mtl_keras.errors import InputError
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


# Texts around the cut: long, words with several pieces, words that give no piece (a lone
# combining accent, a non-ASCII space), CJK, punctuation runs, leading/trailing spaces.
AROUND_THE_CUT = [
    "the quick brown fox jumps over the lazy dog " * 3,
    "jumping foxes, dogs! cafes? " * 4,
    "\u0301 \u0301 \u0301 \u0301 \u0301 \u0301 \u0301 \u0301 \u0301 \u0301 the fox",
    "\u3000 \u3000 \u3000 \u3000 \u3000 \u3000 \u3000 \u3000 \u3000 \u3000 \u3000 the dog",
    "  the  fox\u00a0jumps\tover\n\nthe dog  ",
    "東京 の the fox " * 3,
    "...!!!???,,, " * 3,
    "the fox",
    "",
]


@pytest.mark.parametrize("length", [4, 8, 13])
def test_cut_text_tokenizes_like_the_whole_text(length):
    """Only the first words are tokenized; the result equals keras-hub's on the whole
    (cleaned) text, one text at a time and as a batch, eager and traced."""
    tokenizer = make_tiny_tokenizer()
    ours = make_preprocessor(tokenizer, length)
    plain = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=length)
    texts = tf.constant(AROUND_THE_CUT)
    expected = plain(clean_text(texts))
    traced = tf.function(ours)
    for got in (ours(texts), traced(texts)):
        for feature, value in expected.items():
            np.testing.assert_array_equal(got[feature].numpy(), value.numpy())
    for i, text in enumerate(AROUND_THE_CUT):
        np.testing.assert_array_equal(
            ours(tf.constant(text))["token_ids"].numpy(), expected["token_ids"].numpy()[i]
        )
