"""Exports for fast CPU serving: ONNX (ONNX Runtime) and OpenVINO, in float32 or int8.

Each folder is self-contained: the model, `tokenizer.json` (Hugging Face `tokenizers`, the
same word pieces as the keras-hub tokenizer), `export.json` (format, tasks with their label
names and decoders, length, quality against float32) and the model card. `mtl_keras.runtime`
serves it from raw strings without TensorFlow.

Why not Keras' exporter all the way: `model.export(format="onnx")` is used (it converts with
tf2onnx), but its `format="openvino"` keeps the attention projections as Einsum, which NNCF
leaves unquantized (16 of 40 weight matrices); converting the ONNX file with OpenVINO gives
MatMuls, and all 40 quantize.
"""

import json
import tempfile
from pathlib import Path

import tensorflow as tf

from mtl_keras.artifacts import atomic_write, check_replaceable, ensure_writable_dir, write_card
from mtl_keras.encoding.preprocessing import FEATURES, check_max_length
from mtl_keras.errors import InputError
from mtl_keras.export.cpu_quality import quality_report
from mtl_keras.export.onnx_graph import fuse_layer_norms, gemm_as_matmul, plain_attention
from mtl_keras.model.bert_layers import FEEDFORWARD_OUTPUT
from mtl_keras.model.multitask import MultiTaskModel
from mtl_keras.provenance import bf16_capable
from mtl_keras.runtime.predictor import EXPORT_FILE
from mtl_keras.runtime.tokenizer import TOKENIZER_FILE, bert_tokenizer

# {format: {quantization: what it does}}; None is float32.
CPU_FORMATS = {
    "onnx": {
        None: "float32",
        "int8": "dynamic int8, per output channel (ONNX Runtime's quantize_dynamic)",
    },
    "openvino": {
        None: "float32",
        "int8": "static int8 of weights and activations (NNCF, calibrated on real texts)",
        "int8-weights": "int8 weights, float32 products (NNCF compress_weights)",
    },
}
PRECISIONS = ("f32", "bf16")  # OpenVINO's inference precision on the CPU
CALIBRATION_SIZE = 300


def check_options(fmt, quantize, precision):
    """One clear line for a combination this export cannot make."""
    if fmt not in CPU_FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose {', '.join(CPU_FORMATS)}.")
    if quantize not in CPU_FORMATS[fmt]:
        known = ", ".join(q for q in CPU_FORMATS[fmt] if q)
        raise InputError(f"--quantize {quantize} is not made for {fmt}; choose {known}.")
    if precision not in PRECISIONS:
        raise InputError(f"--precision {precision} is unknown; choose {', '.join(PRECISIONS)}.")
    if precision == "bf16" and fmt != "openvino":
        raise InputError("--precision bf16 is OpenVINO's: use --format openvino.")
    if precision == "bf16" and bf16_capable() is False:
        raise InputError("--precision bf16 needs a CPU with AVX-512 BF16 or AMX, which this "
                         "one lacks: leave it at f32.")  # fmt: skip


def export_cpu(model, tokenizer, output, fmt, *, max_length=None, quantize=None,
               precision="f32", calibration=(), quality_texts=None, overwrite=False,
               card=None, card_extra=None, onnx_source=None):  # fmt: skip
    """Write an ONNX or OpenVINO export of `model` to the folder `output`; returns its path.

    Args:
        fmt: "onnx" or "openvino".
        quantize: None (float32) or a name in `CPU_FORMATS[fmt]`.
        precision: OpenVINO's inference precision, "f32" or "bf16" (recorded; the
            runtime compiles with it).
        calibration: texts for OpenVINO's static int8 (the model's own validation texts).
        quality_texts: None, or (texts, {task: (texts, gold)}, sts pairs) to measure the
            export against the float32 model on (`cpu_quality.quality_report`); the
            report is printed and kept in export.json.
        card: the model card's text (README.md); `card_extra(quality)` is appended to it
            when the quality was measured.
        onnx_source: a float32 `model.onnx` of this model made before (e.g. by the float32
            ONNX export), to quantize or convert instead of converting the model again
            (tf2onnx takes most of an export's time).
    """
    if not isinstance(model, MultiTaskModel):
        raise InputError(f"can only export a MultiTaskModel, got {type(model).__name__}.")
    check_options(fmt, quantize, precision)
    if fmt == "openvino" and quantize == "int8" and not calibration:
        raise InputError("OpenVINO int8 needs calibration texts: pass --calibration FILE.")
    output = check_replaceable(output, overwrite)
    max_length = model.serving_length(max_length)
    check_max_length(max_length, model.backbone)
    ensure_writable_dir(output.parent, "--output")
    info = {
        "format": fmt, "quantize": quantize, "precision": precision, "max_length": max_length,
        "max_positions": model.backbone.max_sequence_length,
        "embedding_dim": model.backbone.hidden_dim, "pooling": model.pooling_mode,
        "tasks": [{"name": t.name, "kind": t.kind, "labels": list(t.labels),
                   "decoder": t.spec.decoder, "reads_sequence": t.spec.reads_sequence}
                  for t in model.text_tasks],
    }  # fmt: skip
    fast = bert_tokenizer(tokenizer.get_vocabulary(), tokenizer.lowercase, tokenizer.strip_accents)

    def write(folder):
        folder = Path(folder)
        fast.save(str(folder / TOKENIZER_FILE))
        with tempfile.TemporaryDirectory() as scratch:
            onnx_file = Path(onnx_source or Path(scratch) / "model.onnx")
            if onnx_source is None:
                info["graph_rewrites"] = write_onnx(model, onnx_file)
            if fmt == "onnx":
                write_onnx_model(onnx_file, folder / "model.onnx", quantize)
            else:
                write_openvino_model(onnx_file, folder / "model.xml", quantize, calibration,
                                     folder / TOKENIZER_FILE, max_length)  # fmt: skip
        if quality_texts is not None:  # the runtime measured reads export.json
            (folder / EXPORT_FILE).write_text(json.dumps(info, indent=2))
            info["quality"] = quality_report(model, tokenizer, folder, *quality_texts)
        (folder / EXPORT_FILE).write_text(json.dumps(info, indent=2))
        extra = card_extra(info["quality"]) if card_extra and "quality" in info else ""
        write_card(folder, None if card is None else card + extra)

    path = atomic_write(output, write, directory=True)
    return path, info.get("quality")


def write_onnx(model, path):
    """The model's inference pass (`inference_model`: embedding and every text task's
    logits) as ONNX, by Keras' exporter, its layer norms and attention then rewritten in
    the forms runtimes fuse (`onnx_graph`); returns {"layer_norms", "attention"}: how
    many were. The signature is given: a functional model that was never called has no
    shapes for it to trace ("The model provided has never called")."""
    import onnx

    signature = {f: tf.TensorSpec([None, None], tf.int32, name=f) for f in FEATURES}
    model.inference_model().export(str(path), format="onnx", input_signature=[signature],
                                   verbose=False)  # fmt: skip
    graph, layer_norms = fuse_layer_norms(onnx.load(str(path)))
    graph, attention = plain_attention(graph)
    onnx.save(graph, str(path))
    return {"layer_norms": layer_norms, "attention": attention}


def write_onnx_model(source, path, quantize):
    """Copy the float32 ONNX file, or write it with int8 weights, dynamically quantized per
    output channel (per tensor, one scale for a whole matrix, lost quality: min cosine to
    float32 0.885 on real text, against 0.985 per channel).

    Only the weight products are quantized (not the embedding tables' lookups), and not
    the feed-forward's second product: its inputs are GELU outputs with a few large
    values, which one dynamic int8 scale per batch resolves poorly. On 600 real sentences
    (a fine-tuned MiniLM, length 64) leaving those six products in float32 raised the
    cosine to float32 from mean 0.9959 / min 0.981 to 0.9984 / 0.993, for about 5 % of
    the int8 speed.
    """
    if quantize is None:
        path.write_bytes(source.read_bytes())
        return
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = gemm_as_matmul(onnx.load(str(source)))
    kept = [n.name for n in model.graph.node
            if n.op_type == "MatMul" and FEEDFORWARD_OUTPUT in n.name]  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        rewritten = Path(scratch) / "matmul.onnx"
        onnx.save(model, str(rewritten))
        quantize_dynamic(str(rewritten), str(path), per_channel=True,
                         weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         nodes_to_exclude=kept)  # fmt: skip


def write_openvino_model(source, path, quantize, calibration, tokenizer_file, max_length):
    """Convert the ONNX file to OpenVINO IR (float32 weights, not fp16), with NNCF's
    post-training int8 (calibrated on `calibration` texts, tokenized as served: by the
    export's `tokenizer_file` at `max_length`) or int8 weights."""
    import nncf
    import openvino as ov

    from mtl_keras.runtime.tokenizer import load_tokenizer, text_features

    model = ov.convert_model(str(source))
    if quantize == "int8":
        tokenizer = load_tokenizer(tokenizer_file, max_length)
        items = [text_features(tokenizer, [text]) for text in calibration]
        model = nncf.quantize(model, nncf.Dataset(items), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(items))  # fmt: skip
    elif quantize == "int8-weights":
        model = nncf.compress_weights(model)
    ov.save_model(model, str(path), compress_to_fp16=False)


def export_for_cpu(model, tokenizer, output, fmt, *, max_length=None, quantize=None,
                   precision="f32", calibration_file=None, data_dir=None, overwrite=False,
                   card=None, onnx_source=None):  # fmt: skip
    """`export_cpu` with what a user would otherwise gather: calibration texts for OpenVINO
    int8 (`calibration_file`, else the model's validation texts), and for a quantized or
    bfloat16 export its quality against float32 on the model's test split (printed, and
    kept in export.json and the model card). Returns the folder."""
    from mtl_keras.encoding.inputs import read_texts
    from mtl_keras.export.cpu_quality import (
        quality_lines,
        quality_section,
        sts_test_pairs,
        test_examples,
        validation_texts,
    )

    check_options(fmt, quantize, precision)
    calibration = ()
    if fmt == "openvino" and quantize == "int8":
        calibration = (read_texts(calibration_file) if calibration_file
                       else validation_texts(model, data_dir, CALIBRATION_SIZE))  # fmt: skip
        print(f"calibrating int8 on {len(calibration)} texts")
    measured = None
    if quantize or precision != "f32":
        texts, tasks = test_examples(model, data_dir)
        measured = (texts, tasks, sts_test_pairs(data_dir))
    path, quality = export_cpu(model, tokenizer, output, fmt, max_length=max_length,
                               quantize=quantize, precision=precision, calibration=calibration,
                               quality_texts=measured, overwrite=overwrite,
                               card=card, card_extra=quality_section,
                               onnx_source=onnx_source)  # fmt: skip
    for line in quality_lines(quality) if quality else ():
        print(line)
    return path
