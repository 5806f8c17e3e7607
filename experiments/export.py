"""Export a trained model: TF Serving (raw strings in), sentence-transformers or keras-hub.

    python -m experiments.export --model runs/full-.../model.keras --output serving/mtl/1
    python -m experiments.export --model PATH --output serving/mtl/2 --quantize int8-weights
    python -m experiments.export --format sentence-transformers --model PATH --output st-model
    python -m experiments.export --format keras-hub --model PATH --output keras-hub-preset

tf-serving (default): a SavedModel whose `serving_default` takes `text` (tf.string [None]) and
returns `embedding` (L2-normalised), `<task>_probs` and `<task>_label` per sentence head, and
for an NER head `word_pieces` and `ner_tags` (a pair task, which scores two texts, trains
the `embedding`). sentence-transformers: the fine-tuned encoder (BERT + the model's mean, cls
or max pooling + Normalize) as a folder `SentenceTransformer(folder)` loads. keras-hub: a
preset of the backbone and tokenizer (no pooling: keras-hub backbones have none). No format
overwrites without --overwrite. Each export folder gets a model card (README.md).
"""

from pathlib import Path

from experiments.cli import ArgumentParser, run_main
from mtl_keras.errors import InputError
from mtl_keras.export.portable import export_keras_hub, export_sentence_transformers
from mtl_keras.export.serving import QUANTIZATIONS, SIGNATURE, export_for_serving
from mtl_keras.model_card import card_for_model
from mtl_keras.saving import TOKENIZER_DIR, load_model, load_tokenizer

FORMATS = ("tf-serving", "sentence-transformers", "keras-hub")


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
        choices=list(QUANTIZATIONS),
        help="tf-serving: int8 weights, 3.6x smaller for MiniLM. "
        + "; ".join(f"{name}: {about}" for name, (_, about) in QUANTIZATIONS.items()),
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing export")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.quantize and args.format != "tf-serving":
        raise InputError(f"--quantize applies to --format tf-serving only, not {args.format}.")
    model_path = Path(args.model)
    model = load_model(model_path, compile=False)  # first: a bad model file is named as such
    tokenizer = load_tokenizer(args.tokenizer or model_path.parent / TOKENIZER_DIR)
    card = card_for_model(model, model_path, args.format, args.output, args.max_length)
    if args.quantize:
        card += (f"\nWeights quantized to int8 (`--quantize {args.quantize}`): the metrics above "
                 "are the float32 model's.\n")  # fmt: skip
    if args.format == "sentence-transformers":
        output = export_sentence_transformers(
            model.backbone,
            tokenizer,
            args.output,
            max_length=model.serving_length(args.max_length),
            pooling=model.pooling_mode,
            overwrite=args.overwrite,
            card=card,
        )
        print(f"exported the encoder of {model_path} to {output}: SentenceTransformer('{output}')")
    elif args.format == "keras-hub":
        output = export_keras_hub(
            model.backbone, tokenizer, args.output, overwrite=args.overwrite, card=card
        )
        print(f"exported the encoder of {model_path} to {output} (a keras-hub preset)")
    else:
        output = export_for_serving(
            model,
            tokenizer,
            args.output,
            max_length=args.max_length,
            overwrite=args.overwrite,
            quantize=args.quantize,
            card=card,
        )
        heads = ", ".join(t.name for t in model.tasks)
        print(f"exported {model_path} (heads: {heads}) to {output}")
        show = f"saved_model_cli show --dir {output} --tag_set serve --signature_def {SIGNATURE}"
        print(f"inspect: {show}")
    return output


if __name__ == "__main__":
    run_main(main)
