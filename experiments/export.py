"""Export a trained model: TF Serving (raw strings in), sentence-transformers, keras-hub,
ONNX or OpenVINO.

    python -m experiments.export --model runs/full-.../model.keras --output serving/mtl/1
    python -m experiments.export --model PATH --output serving/mtl/2 --quantize int8-weights
    python -m experiments.export --format sentence-transformers --model PATH --output st-model
    python -m experiments.export --format keras-hub --model PATH --output keras-hub-preset
    python -m experiments.export --format openvino --quantize int8 --model PATH --output ov-int8
    python -m experiments.export --format onnx --quantize int8 --model PATH --output onnx-int8

tf-serving (default): a SavedModel whose `serving_default` takes `text` (tf.string [None]) and
returns `embedding` (L2-normalised), `<task>_probs` and `<task>_label` per sentence head, and
for an NER head `word_pieces` and `ner_tags` (a pair task, which scores two texts, trains
the `embedding`). sentence-transformers: the fine-tuned encoder (BERT + the model's mean, cls
or max pooling + Normalize) as a folder `SentenceTransformer(folder)` loads. keras-hub: a
preset of the backbone and tokenizer (no pooling: keras-hub backbones have none). onnx and
openvino: the whole model for ONNX Runtime or OpenVINO, with its tokenizer and label names,
served by `Predictor.from_path(folder)` without TensorFlow; a quantized one prints and
keeps its quality against float32 on the model's test split. No format
overwrites without --overwrite. Each export folder gets a model card (README.md).
"""

from pathlib import Path

from experiments.cli import ArgumentParser, run_main
from mtl_keras.errors import InputError
from mtl_keras.export.cpu import CALIBRATION_SIZE, CPU_FORMATS, PRECISIONS, export_for_cpu
from mtl_keras.export.portable import export_keras_hub, export_sentence_transformers
from mtl_keras.export.serving import QUANTIZATIONS, SIGNATURE, export_for_serving
from mtl_keras.model_card import card_for_model, read_run
from mtl_keras.saving import TOKENIZER_DIR, load_model, load_tokenizer

FORMATS = ("tf-serving", "sentence-transformers", "keras-hub", *CPU_FORMATS)
QUANTIZE = sorted({*QUANTIZATIONS, *(q for f in CPU_FORMATS.values() for q in f if q)})


def build_parser():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model.keras written by experiments.run")
    parser.add_argument("--output", required=True, help="tf-serving: a version dir (serving/mtl/1)")
    parser.add_argument("--format", default=FORMATS[0], choices=FORMATS)
    parser.add_argument(
        "--tokenizer", help=f"default: the '{TOKENIZER_DIR}/' folder beside the model"
    )
    parser.add_argument(
        "--max-length",
        type=int,
        help="word pieces per text (default: the length the model trained at)",
    )
    parser.add_argument(
        "--quantize",
        choices=QUANTIZE,
        help="tf-serving: int8 weights, 3.6x smaller for MiniLM ("
        + "; ".join(f"{name}: {about}" for name, (_, about) in QUANTIZATIONS.items())
        + "). onnx: int8 (dynamic, per channel). openvino: int8 (static, calibrated), "
        "int8-weights",
    )
    parser.add_argument("--precision", default="f32", choices=PRECISIONS,
                        help="openvino: bf16 on CPUs with AVX-512 BF16 or AMX")  # fmt: skip
    parser.add_argument(
        "--calibration",
        help="openvino int8: a .txt, .csv or .jsonl file of texts "
        f"(default: {CALIBRATION_SIZE} of the model's validation texts)",
    )
    parser.add_argument("--data-dir", help="the packaged data's folder, for calibration and "
                        "quality (default: the run's)")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace an existing export")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.quantize in QUANTIZATIONS and args.format in ("sentence-transformers", "keras-hub"):
        raise InputError(f"--quantize applies to --format tf-serving, onnx or openvino, not "
                         f"{args.format}.")  # fmt: skip
    if args.format not in CPU_FORMATS:
        check_tf_serving_options(args)
    model_path = Path(args.model)
    model = load_model(model_path, compile=False)  # first: a bad model file is named as such
    tokenizer = load_tokenizer(args.tokenizer or model_path.parent / TOKENIZER_DIR)
    card = card_for_model(model, model_path, args.format, args.output, args.max_length)
    if args.quantize:
        card += (f"\nQuantized (`--quantize {args.quantize}`): the metrics above are the "
                 "float32 model's.\n")  # fmt: skip
    output = WRITERS[args.format](model, tokenizer, args, card)
    return output


def check_tf_serving_options(args):
    if args.precision != "f32" or args.calibration:
        raise InputError("--precision and --calibration are for --format openvino.")
    if args.quantize and args.quantize not in QUANTIZATIONS:
        raise InputError(f"--quantize {args.quantize} is for --format onnx or openvino.")


def write_sentence_transformers(model, tokenizer, args, card):
    output = export_sentence_transformers(
        model.backbone, tokenizer, args.output, max_length=model.serving_length(args.max_length),
        pooling=model.pooling_mode, overwrite=args.overwrite, card=card,
    )  # fmt: skip
    print(f"exported the encoder of {args.model} to {output}: SentenceTransformer('{output}')")
    return output


def write_keras_hub(model, tokenizer, args, card):
    output = export_keras_hub(
        model.backbone, tokenizer, args.output, max_length=model.serving_length(args.max_length),
        pooling=model.pooling_mode, overwrite=args.overwrite, card=card,
    )  # fmt: skip
    print(f"exported the encoder of {args.model} to {output}: "
          f"keras_hub.models.TextEmbedder.from_preset('{output}')")  # fmt: skip
    return output


def write_tf_serving(model, tokenizer, args, card):
    output = export_for_serving(
        model, tokenizer, args.output, max_length=args.max_length, overwrite=args.overwrite,
        quantize=args.quantize, card=card,
    )  # fmt: skip
    heads = ", ".join(t.name for t in model.tasks)
    print(f"exported {args.model} (heads: {heads}) to {output}")
    show = f"saved_model_cli show --dir {output} --tag_set serve --signature_def {SIGNATURE}"
    print(f"inspect: {show}")
    return output


def write_cpu(model, tokenizer, args, card):
    metrics, _ = read_run(args.model)  # the run's data folder, where it recorded one
    data_dir = args.data_dir or ((metrics or {}).get("config") or {}).get("data_dir")
    output = export_for_cpu(
        model, tokenizer, args.output, args.format, max_length=args.max_length,
        quantize=args.quantize, precision=args.precision, calibration_file=args.calibration,
        data_dir=data_dir, overwrite=args.overwrite, card=card,
    )  # fmt: skip
    print(f"exported {args.model} to {output}: Predictor.from_path('{output}') serves it "
          "without TensorFlow")  # fmt: skip
    return output


WRITERS = {"sentence-transformers": write_sentence_transformers, "keras-hub": write_keras_hub,
           "tf-serving": write_tf_serving, "onnx": write_cpu, "openvino": write_cpu}  # fmt: skip


if __name__ == "__main__":
    run_main(main)
