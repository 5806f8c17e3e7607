"""Text -> embedding: local weights, the tokenizer's inputs, pooling, `SentenceEncoder`."""
