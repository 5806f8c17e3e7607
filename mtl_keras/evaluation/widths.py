"""The embedding cut to its first k values (Matryoshka): each measure again at each width.

Each text is embedded once at full width; a width's vectors are its first k values,
normalised again (`SentenceEncoder.encode(..., dimensions=k)` gives the same).
"""

import numpy as np

from mtl_keras.encoding.inputs import finish_embeddings


def memoized(encode):
    """`encode` (list of str -> unit vectors) that embeds each distinct text once."""
    seen = {}

    def encode_once(texts):
        new = [t for t in dict.fromkeys(texts) if t not in seen]
        if new:
            seen.update(zip(new, np.asarray(encode(new), np.float32), strict=True))
        return np.stack([seen[t] for t in texts])

    return encode_once


def width_metrics(encode, widths, measures):
    """{width (str, as JSON keys are): {measure: its result}} at each width.

    Args:
        encode: list of str -> unit vectors at full width.
        widths: the widths (ints) to cut the embedding to.
        measures: {name: function(encode) -> a figure or a dict of figures, or None},
            e.g. STS-B's Spearman, or a task's retrieval (`Kind.split_metrics`).
    """
    encode = memoized(encode)
    out = {}
    for width in widths:

        def cut(texts, width=width):
            if not texts:
                return np.zeros((0, width), np.float32)
            return finish_embeddings(encode(texts).copy(), dimensions=int(width))

        found = {name: measure(cut) for name, measure in measures.items()}
        out[str(width)] = {name: value for name, value in found.items() if value is not None}
    return out
