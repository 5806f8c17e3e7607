"""Checks on the sentences users pass in, shared by every public entry point."""

import numpy as np

from mtl_keras.errors import InputTypeError


def as_sentence_list(sentences):
    """Return `sentences` as a list of str, or raise naming the first bad item.

    A bare string is one sentence. An empty string is a valid (empty) sentence.
    """
    if isinstance(sentences, str):
        return [sentences]
    if isinstance(sentences, np.ndarray):
        sentences = sentences.tolist()
    if not isinstance(sentences, list | tuple):
        raise InputTypeError(
            f"sentences must be a str or a list of str, got {type(sentences).__name__}."
        )
    for index, sentence in enumerate(sentences):
        if not isinstance(sentence, str):
            raise InputTypeError(
                f"sentences[{index}] is {type(sentence).__name__}, expected str: "
                "pass text only (decode bytes, drop None)."
            )
    return list(sentences)
