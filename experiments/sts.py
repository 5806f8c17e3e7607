"""STS-B: the cosine-similarity Spearman (x 100) of an encoder's embedding.

    python -m experiments.sts                                  # pretrained all-MiniLM-L6-v2
    python -m experiments.sts --model runs/full-.../model.keras
    python -m experiments.sts --preset PATH --split validation

The published figure for all-MiniLM-L6-v2 (MTEB STSBenchmark, test) is 82.03.
"""

from pathlib import Path

from experiments.cli import ArgumentParser, run_main
from mtl_keras import SentenceEncoder
from mtl_keras.data.loading import resolve_data_dir
from mtl_keras.evaluation.sts import sts_benchmark
from mtl_keras.saving import TOKENIZER_DIR, load_model, load_tokenizer


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="a model.keras written by experiments.run")
    source.add_argument("--preset", help="local keras-hub preset or Hugging Face BERT folder")
    parser.add_argument("--tokenizer", help="with --model; default: the 'tokenizer/' beside it")
    parser.add_argument("--split", default="test", choices=["train", "validation", "test"])
    parser.add_argument("--max-length", type=int, default=128, help="word pieces per sentence")
    parser.add_argument("--data-dir", help="default: $MTL_KERAS_DATA_DIR or <TFDS dir>/mtl_keras")
    args = parser.parse_args(argv)
    data_dir = resolve_data_dir(args.data_dir)
    if args.model:
        model = load_model(args.model, compile=False)
        tokenizer = load_tokenizer(args.tokenizer or Path(args.model).parent / TOKENIZER_DIR)
        encoder = SentenceEncoder.from_model(model, tokenizer, args.max_length)
        what = args.model
    elif args.preset:
        encoder, what = SentenceEncoder.from_preset(args.preset, args.max_length), args.preset
    else:
        encoder, what = SentenceEncoder.pretrained(args.max_length), "all-MiniLM-L6-v2"
    result = sts_benchmark(encoder, args.split, data_dir)
    print(
        f"STS-B {result['split']} ({result['pairs']} pairs), cosine Spearman x 100 of "
        f"{what}: {result['spearman']:.2f}"
    )
    return result


if __name__ == "__main__":
    run_main(main)
