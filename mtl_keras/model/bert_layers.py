"""The names of a keras-hub BERT backbone's layers, in one place.

keras-hub names a BERT backbone's direct sub-layers like this, and its variable paths
start with them (`transformer_layer_3/self_attention_layer/query/kernel`, no backbone
prefix). Freezing scenarios, the layer-decay multipliers and the tests all use these.
"""

EMBEDDING_LAYERS = (
    "token_embedding",
    "position_embedding",
    "segment_embedding",
    "embeddings_layer_norm",
)
POOLER = "pooled_dense"  # the [CLS] pooler; mean pooling replaces it, so it stays frozen
# Inside each transformer block: the feed-forward's second product (GELU output -> hidden).
FEEDFORWARD_OUTPUT = "feedforward_output_dense"


def transformer_layer(index):
    """Name of the transformer block `index` (0 is the lowest)."""
    return f"transformer_layer_{index}"


def transformer_layers(num_layers):
    """Names of all transformer blocks, bottom to top."""
    return [transformer_layer(i) for i in range(num_layers)]
