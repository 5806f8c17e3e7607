"""Text -> BERT inputs with the keras-hub preprocessor, padded only as far as needed."""

import keras_hub
import tensorflow as tf

from mtl_keras.errors import InputError

FEATURES = ("token_ids", "padding_mask", "segment_ids")
# The second text of a pair task (sentence similarity) enters as inputs of its own.
PAIR_FEATURES = tuple(f"pair_{f}" for f in FEATURES)


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


class CleaningPreprocessor(keras_hub.models.BertTextClassifierPreprocessor):
    """keras-hub's BERT preprocessor with the original BERT text cleaning in front."""

    def call(self, x, y=None, sample_weight=None):
        return super().call(clean_text(x), y, sample_weight)


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
    """Cut a padded batch to its longest sentence (and the pair inputs to their longest).

    The preprocessor pads to `max_length`; attention and pooling ignore padding, so
    dropping the all-padding columns changes no result and saves most of the compute
    on short text (tweets average ~16 words, far below 128 word pieces).
    """
    out = dict(features)
    for names in (FEATURES, PAIR_FEATURES):
        if names[1] not in features:
            continue
        lengths = tf.reduce_sum(tf.cast(features[names[1]], tf.int32), axis=1)
        longest = tf.maximum(tf.reduce_max(lengths), 1)
        out.update({name: features[name][:, :longest] for name in names})
    return out
