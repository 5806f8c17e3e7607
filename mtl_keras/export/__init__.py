"""Where a trained model goes: TF Serving from raw strings, sentence-transformers, keras-hub."""
