"""Label text with a trained model: per task the label and probabilities, NER entities.

    python -m experiments.predict --model runs/full-.../model.keras "Stocks fell." "Go team!"
    python -m experiments.predict --model runs/.../model.keras --input texts.txt --output out.jsonl

--input reads .txt (one text per line), .csv (a `text` column) or .jsonl (a "text" field).
Writes one JSON object per text (JSON Lines) to --output, or to the terminal.
"""

import json
import sys
from pathlib import Path

from experiments.cli import ArgumentParser, run_main
from mtl_keras.artifacts import atomic_write, ensure_writable_dir
from mtl_keras.encoding.inputs import read_texts
from mtl_keras.errors import InputError
from mtl_keras.predict import Predictor


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("texts", nargs="*", help="texts to label (or use --input)")
    parser.add_argument("--model", required=True, help="a model.keras written by experiments.run")
    parser.add_argument("--input", help="a .txt, .csv or .jsonl file of texts")
    parser.add_argument("--column", default="text", help="the .csv column or .jsonl field")
    parser.add_argument("--output", help="a .jsonl file to write (default: print)")
    parser.add_argument("--tokenizer", help="default: the 'tokenizer/' folder beside the model")
    parser.add_argument(
        "--max-length",
        type=int,
        help="word pieces per text (default: the length the model trained at)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--embeddings", action="store_true", help="include each embedding")
    args = parser.parse_args(argv)
    if bool(args.texts) == bool(args.input):
        raise InputError("give texts on the command line or --input FILE (one of the two).")
    texts = read_texts(args.input, args.column) if args.input else args.texts
    if args.output and Path(args.output).suffix != ".jsonl":
        raise InputError(f"--output '{args.output}' must end in .jsonl (one JSON object a line).")
    if args.output:
        ensure_writable_dir(Path(args.output).parent, "--output")
        if Path(args.output).is_dir():
            raise InputError(f"--output '{args.output}' is a folder: name a .jsonl file.")
    predictor = Predictor.from_path(args.model, args.tokenizer, args.max_length, args.batch_size)
    progress = bool(args.output) and len(texts) > 10 * args.batch_size
    results = predictor.predict(texts, embeddings=args.embeddings, progress=progress)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
    if args.output:
        atomic_write(args.output, lambda tmp: Path(tmp).write_text(lines, encoding="utf-8"))
        print(f"labelled {len(results)} texts into {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(lines)
    return results


if __name__ == "__main__":
    run_main(main)
