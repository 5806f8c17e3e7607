"""Embed sentences and print their cosine-similarity matrix.

python -m experiments.embed "A sentence." "Another one."
python -m experiments.embed            # built-in samples
python -m experiments.embed --preset PATH_TO_LOCAL_BERT "..."
"""

import numpy as np

from experiments.cli import ArgumentParser, run_main
from mtl_keras import SentenceEncoder

SAMPLES = [
    "The central bank raised interest rates again.",
    "Stocks fell after the rate decision.",
    "The striker scored twice in the final.",
    "Café au lait in São Paulo.",
]


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sentences", nargs="*", help="sentences to embed (default: samples)")
    parser.add_argument("--preset", help="local keras-hub preset dir or Hugging Face BERT folder")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--show", type=int, default=5, help="leading values to print per embedding")
    args = parser.parse_args(argv)
    sentences = args.sentences or SAMPLES
    if args.preset:
        encoder = SentenceEncoder.from_preset(args.preset, args.max_length)
    else:
        encoder = SentenceEncoder.pretrained(args.max_length)
    embeddings = encoder.encode(sentences)
    np.set_printoptions(precision=4, suppress=True, linewidth=120)
    for i, (sentence, vector) in enumerate(zip(sentences, embeddings, strict=True)):
        print(f"[{i}] {sentence!r}\n    shape={vector.shape} first={vector[: args.show]}")
    print("\ncosine similarity:")
    print(embeddings @ embeddings.T)
    return embeddings


if __name__ == "__main__":
    run_main(main)
