"""Text -> BERT inputs with the keras-hub preprocessor, padded only as far as needed."""

import functools

import keras_hub
import tensorflow as tf

from mtl_keras.backends import length_step
from mtl_keras.errors import InputError
from mtl_keras.runtime.tokenizer import FEATURES

# The second text of a pair task (sentence similarity) enters as inputs of its own.
PAIR_FEATURES = tuple(f"pair_{f}" for f in FEATURES)
# A contrastive task's hard negatives: (batch, k, length) inputs, k texts per example.
NEGATIVE_FEATURES = tuple(f"negative_{f}" for f in FEATURES)


# Hugging Face's BERT tokenizer drops NUL, U+FFFD and other control/format characters and
# reads tab/newline/carriage return as spaces before splitting; keras-hub's does not, so a
# word holding a U+FFFD (common in scraped tweets) became [UNK] instead of its word pieces.
_WHITESPACE_CONTROLS = r"[\t\n\r]"
_DROPPED = r"[\p{Cc}\p{Cf}\x{FFFD}]"


def clean_text(text):
    """The original BERT text cleaning, as graph ops (works in tf.data and SavedModels).

    Bytes that are not valid UTF-8 are dropped first, as `inputs.drop_invalid_unicode`
    does in Python, so the same text gives the same pieces everywhere.
    """
    text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="ignore")
    text = tf.strings.regex_replace(text, _WHITESPACE_CONTROLS, " ")
    return tf.strings.regex_replace(text, _DROPPED, "")


def first_words(text, count):
    """Each text cut to its first `count` whitespace-separated words, and whether it was cut.

    Works on one text or a batch of them, in graph code too; other shapes are left whole.
    """
    if text.shape.rank not in (0, 1):
        return text, tf.zeros_like(text, tf.bool)
    words = tf.strings.split(text)
    if text.shape.rank == 0:
        return tf.strings.reduce_join(words[:count], separator=" "), tf.size(words) > count
    cut = tf.strings.reduce_join(words[:, :count], axis=-1, separator=" ")
    return cut, words.row_lengths() > count


class CleaningPreprocessor(keras_hub.models.BertTextClassifierPreprocessor):
    """keras-hub's BERT preprocessor with the original BERT text cleaning in front, and
    only as much of each text tokenized as can fit.

    keras-hub tokenizes a whole text before truncating it: for a BBC article that took a
    third of `encode`'s time. BERT tokenizes each whitespace-separated word on its own,
    so the word pieces of the first words are the first word pieces of the text. Cutting
    to `sequence_length` words gives at least that many pieces unless some words give
    none (a lone combining accent, say); a text whose cut did not fill the sequence is
    tokenized whole, so the result is always that of the uncut text.
    """

    def call(self, x, y=None, sample_weight=None):
        text = clean_text(x)
        whole = functools.partial(super().call, text, y, sample_weight)
        cut, was_cut = first_words(text, self.sequence_length)
        out = super().call(cut, y, sample_weight)
        features = out[0] if isinstance(out, tuple) else out
        pieces = tf.reduce_sum(tf.cast(features["padding_mask"], tf.int32), axis=-1)
        short = tf.reduce_any(was_cut & (pieces < self.sequence_length))
        return tf.cond(short, whole, lambda: out)


def make_preprocessor(tokenizer, max_length):
    """BERT preprocessing: cleaning, WordPiece, [CLS]/[SEP], truncation to `max_length`."""
    if not isinstance(max_length, int) or max_length < 2:
        raise InputError(
            f"max_length must be an int >= 2 (room for [CLS] and [SEP]), got {max_length!r}."
        )
    return CleaningPreprocessor(tokenizer, sequence_length=max_length)


def check_max_length(max_length, backbone):
    """Refuse lengths the backbone has no position embeddings for."""
    limit = backbone.max_sequence_length
    if max_length > limit:
        raise InputError(
            f"max_length={max_length} exceeds this encoder's {limit} positions; use <= {limit}."
        )


def trim_padding(features):
    """Cut a padded batch to its longest sentence (and the pair and hard-negative inputs to
    their longest).

    The preprocessor pads to `max_length`; attention and pooling ignore padding, so
    dropping the all-padding columns changes no result and saves most of the compute
    on short text (tweets average ~16 words, far below 128 word pieces). On JAX the
    length is rounded up to `backends.length_step()`, so few shapes are compiled.
    """
    out, step = dict(features), length_step()
    for names in (FEATURES, PAIR_FEATURES, NEGATIVE_FEATURES):
        if names[1] not in features:
            continue
        lengths = tf.reduce_sum(tf.cast(features[names[1]], tf.int32), axis=-1)
        longest = tf.maximum(tf.reduce_max(lengths), 1)
        if step > 1:
            width = tf.shape(features[names[1]])[-1]
            longest = tf.minimum((longest + step - 1) // step * step, width)
        out.update({name: features[name][..., :longest] for name in names})
    return out


def align_word_tags(words, tags, tokenizer, max_length):
    """Word pieces of `words` with [CLS]/[SEP], their tags and 0/1 weights, padded.

    Returns (token_ids, tags, weights), each of shape [max_length]; only the first piece
    of each word has weight 1. Words beyond `max_length - 2` pieces are cut.
    """
    pieces = tokenizer(words)
    if not isinstance(pieces, tf.RaggedTensor):  # eager calls return Python lists
        pieces = tf.ragged.constant(pieces, dtype=tf.int32, ragged_rank=1)
    counts = pieces.row_lengths()
    flat = tf.cast(pieces.flat_values, tf.int32)[: max_length - 2]
    piece_tags = tf.repeat(tf.cast(tags, tf.int32), counts)[: max_length - 2]
    first = tf.cast(tf.ragged.range(counts).flat_values == 0, tf.float32)[: max_length - 2]
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    token_ids = tf.concat([[cls], flat, [sep]], axis=0)
    piece_tags = tf.concat([[0], piece_tags, [0]], axis=0)
    weights = tf.concat([[0.0], first, [0.0]], axis=0)
    padding = [[0, max_length - tf.shape(token_ids)[0]]]
    return (
        tf.pad(token_ids, padding, constant_values=pad),
        tf.pad(piece_tags, padding),
        tf.pad(weights, padding),
    )
