"""Word pieces without TensorFlow: a Hugging Face `tokenizers` BERT tokenizer with the same
vocabulary, cleaning, lower-casing and accent stripping as the keras-hub one a model trained
with (the exports' tests check equal ids on real text). Used by the exported models'
runtime, where the keras-hub tokenizer (TF Text ops) is not available.
"""

import numpy as np
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

TOKENIZER_FILE = "tokenizer.json"
# A text's BERT inputs, by name: the model's input names everywhere (here, where TensorFlow
# is not imported, so that `encoding.preprocessing` can take them from here).
FEATURES = ("token_ids", "padding_mask", "segment_ids")
CLS, SEP, PAD, UNK = "[CLS]", "[SEP]", "[PAD]", "[UNK]"


def bert_tokenizer(vocabulary, lowercase=True, strip_accents=True):
    """A `tokenizers.Tokenizer` for BERT over `vocabulary` (a list of word pieces, ids in
    order): the original BERT cleaning (control characters dropped, whitespace unified),
    Chinese characters split, [CLS] text [SEP]."""
    vocab = {piece: i for i, piece in enumerate(vocabulary)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token=UNK, max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=strip_accents,
        lowercase=lowercase,
    )  # fmt: skip
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}", special_tokens=[(CLS, vocab[CLS]), (SEP, vocab[SEP])]
    )
    return tokenizer


def load_tokenizer(path, max_length):
    """The tokenizer saved at `path`, cutting texts at `max_length` pieces ([CLS]/[SEP] in)."""
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()
    return tokenizer


def text_features(tokenizer, texts):
    """{"token_ids", "padding_mask", "segment_ids"} (int32, padded to the longest) of texts."""
    return padded([encoding.ids for encoding in tokenizer.encode_batch(texts)], tokenizer)


def word_features(tokenizer, words):
    """The inputs of texts given as lists of words, with each word's first piece marked
    (`first_piece`) and its number of pieces (0: a word that gives none, or one cut off):
    what a token head's predictions are read back by."""
    encodings = tokenizer.encode_batch(words, is_pretokenized=True)
    features = padded([encoding.ids for encoding in encodings], tokenizer)
    first = np.zeros_like(features["token_ids"])
    counts = []
    for row, (encoding, text_words) in enumerate(zip(encodings, words, strict=True)):
        count = np.zeros(len(text_words), np.int64)
        previous = None
        for position, word in enumerate(encoding.word_ids):
            if word is not None:
                count[word] += 1
                first[row, position] = word != previous
            previous = word
        counts.append(count)
    return {**features, "first_piece": first}, counts


def padded(ids, tokenizer):
    pad = tokenizer.token_to_id(PAD)
    longest = max(len(row) for row in ids)
    token_ids = np.full((len(ids), longest), pad, np.int32)
    mask = np.zeros_like(token_ids)
    for row, values in enumerate(ids):
        token_ids[row, : len(values)] = values
        mask[row, : len(values)] = 1
    return dict(zip(FEATURES, (token_ids, mask, np.zeros_like(token_ids)), strict=True))
