"""Serving an exported model without TensorFlow: ONNX Runtime or OpenVINO for the model,
Hugging Face `tokenizers` for the word pieces, numpy for the rest (`ExportedPredictor`,
`ExportedEncoder`). Nothing in this package imports TensorFlow or Keras."""
