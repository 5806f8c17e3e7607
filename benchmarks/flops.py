"""Floating-point work of a BERT encoder pass, counted from the shapes that ran.

A multiply-add is 2 FLOPs. Per layer and sequence of L word pieces, hidden size h and
feed-forward size f: the query, key, value and output projections 4 x 2·L·h², the
feed-forward 2 x 2·L·h·f, and attention's scores and weighted sum 2 x 2·L²·h. Layer
norm, softmax, GELU and the embeddings are left out: they are not matrix products, and
the matmul peak is the limit this count is held against. MiniLM-L6 (h 384, f 1536):
about 21 MFLOP per word piece for the six layers' matmuls, plus attention.
"""

import numpy as np

MINILM = {"num_layers": 6, "hidden_dim": 384, "intermediate_dim": 1536}


def forward_flops(batch_lengths, num_layers, hidden_dim, intermediate_dim):
    """FLOPs of one forward pass over batches padded to `batch_lengths`, given as a list
    of (rows, padded length) pairs."""
    h, f = hidden_dim, intermediate_dim
    total = 0
    for rows, length in batch_lengths:
        dense = 2 * length * (4 * h * h + 2 * h * f)
        attention = 2 * 2 * length * length * h
        total += rows * num_layers * (dense + attention)
    return float(total)


# The backward pass costs about twice the forward (a gradient for the inputs and one for
# the weights): training a batch is 3 x its forward.
TRAIN_FACTOR = 3


def training_flops(batch_shapes, config=MINILM):
    """FLOPs of training on batches of (rows, padded length): forward and backward."""
    return TRAIN_FACTOR * forward_flops(batch_shapes, **config)


def sorted_batches(lengths, batch_size):
    """(rows, padded length) of each batch when texts are sorted by length (longest
    first) and each batch is padded to its longest, as `encode` and sentence-transformers
    both batch."""
    ordered = sorted(lengths, reverse=True)
    return [(len(ordered[i : i + batch_size]), ordered[i])
            for i in range(0, len(ordered), batch_size)]  # fmt: skip


def arrival_batches(lengths, batch_size):
    """(rows, padded length) of each batch of texts in the order they came, each padded to
    its longest: what a served signature sees from its callers' batches."""
    return [(len(lengths[i : i + batch_size]), max(lengths[i : i + batch_size]))
            for i in range(0, len(lengths), batch_size)]  # fmt: skip


def encode_flops(lengths, batch_size, config=MINILM, batching=sorted_batches):
    """{"padded": FLOPs as computed, "real": FLOPs of the real word pieces alone}, with
    the texts batched by `batching` (sorted by length, as `encode` does; or
    `arrival_batches`, as a served signature sees them)."""
    batches = batching(lengths, batch_size)
    return {"padded": forward_flops(batches, **config),
            "real": forward_flops([(1, n) for n in lengths], **config),
            "word_pieces": int(np.sum(lengths)),
            "padded_word_pieces": int(sum(rows * n for rows, n in batches))}  # fmt: skip
