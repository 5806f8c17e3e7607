"""Export a saved model for TF Serving: a SavedModel whose signature takes raw sentences.

    python -m experiments.export --model runs/full-.../model.keras --output serving/mtl/1

Signature `serving_default`: input `text` (tf.string [None]); outputs `embedding`
(L2-normalised), `<task>_probs` and `<task>_label` per sentence head, and for an NER head
`word_pieces` and `ner_tags` (per word piece, "" for padding and [CLS]/[SEP]).
"""

import argparse
from pathlib import Path

from experiments.cli import run_main
from mtl_keras.export import SIGNATURE, export_for_serving
from mtl_keras.saving import TOKENIZER_DIR, load_model, load_tokenizer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model.keras written by experiments.run")
    parser.add_argument("--output", required=True, help="version dir, e.g. serving/mtl/1")
    parser.add_argument(
        "--tokenizer", help=f"default: the '{TOKENIZER_DIR}/' folder beside the model"
    )
    parser.add_argument("--max-length", type=int, default=128, help="word pieces per sentence")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version dir")
    args = parser.parse_args(argv)
    model_path = Path(args.model)
    model = load_model(model_path, compile=False)  # first: a bad model file is named as such
    tokenizer = load_tokenizer(args.tokenizer or model_path.parent / TOKENIZER_DIR)
    output = export_for_serving(
        model, tokenizer, args.output, max_length=args.max_length, overwrite=args.overwrite
    )
    heads = ", ".join(t.name for t in model.tasks)
    print(f"exported {model_path} (heads: {heads}) to {output}")
    print(
        f"inspect: saved_model_cli show --dir {output} --tag_set serve --signature_def {SIGNATURE}"
    )
    return output


if __name__ == "__main__":
    run_main(main)
