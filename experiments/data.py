"""Prepare the packaged datasets and print their statistics.

python -m experiments.data prepare [--data-dir DIR]
python -m experiments.data stats   [--data-dir DIR] [--datasets bbc_news,wnut16]
python -m experiments.data examples [--out data/examples]  # a user's files, from real text
python -m experiments.data mine-negatives --input pairs.jsonl --output triplets.jsonl \
    [--model PATH] [--max-length N] [--num-negatives 1] [--range-min 0] [--range-max N] \
    [--margin M | --max-score S] [--sampling top|random] [--seed 0] [--overwrite]

Labels per split: classes (bbc_news, tweet_sentiment), entity types (wnut16) or the
genres of the pairs (stsb, whose words and pieces count both sentences).

`mine-negatives` reads an (anchor, positive) file and writes it with hard negatives
mined by an encoder (default: the pretrained one; `--model` a model.keras, export or
preset), with sentence-transformers' options (`mtl_keras.data.mining`).
"""

import collections
import shlex

import numpy as np

from experiments.cli import ArgumentParser, run_main
from mtl_keras.data import BUILDERS, get_builder, load, resolve_data_dir
from mtl_keras.data.examples import EXAMPLES, task_options, write_example_files
from mtl_keras.data.mining import SAMPLING, mine_file
from mtl_keras.data.splits import SPLITS
from mtl_keras.encoding import presets
from mtl_keras.encoding.encoder import SentenceEncoder
from mtl_keras.errors import InputError


def example_words(example, names):
    """(words of the text, labels it counts for): entity types, the class, or for a pair
    the words of both sentences and its genre."""
    if "ner" in example:
        entities = [names[i][2:] for i in example["ner"] if names[i].startswith("B-")]
        return [t.decode() for t in example["tokens"]], entities
    if "score" in example:
        text = example["sentence1"] + b" " + example["sentence2"]
        return text.decode().split(), [example["genre"].decode()]
    return example["text"].decode().split(), [names[example["label"]]]


def split_stats(name, split, data_dir, tokenizer):
    """examples, label counts, mean words and word pieces of one split."""
    features = get_builder(name, data_dir).info.features
    names = []
    if "ner" in features or "label" in features:
        names = (features["ner"].feature if "ner" in features else features["label"]).names
    labels, words, pieces = collections.Counter(), [], []
    for example in load(name, split, data_dir).as_numpy_iterator():
        tokens, counted = example_words(example, names)
        labels.update(counted)
        words.append(len(tokens))
        pieces.append(sum(len(p) for p in tokenizer(tokens)) if tokens else 0)
    return len(words), labels, np.mean(words or [0]), np.mean(pieces or [0])


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["prepare", "stats", "examples", "mine-negatives"])
    parser.add_argument("--data-dir", help="default: $MTL_KERAS_DATA_DIR or <TFDS dir>/mtl_keras")
    parser.add_argument("--datasets", default=",".join(BUILDERS))
    parser.add_argument("--out", default="data/examples", help="where `examples` writes")
    mining = parser.add_argument_group("mine-negatives")
    mining.add_argument("--input", help="an anchor,positive file (CSV, TSV or JSONL)")
    mining.add_argument("--output", help="the .jsonl to write, with the negatives")
    mining.add_argument("--model", help="the encoder that mines (default: the pretrained one)")
    mining.add_argument(
        "--max-length", type=int, help="word pieces per text (default: the model's, else 128)"
    )
    mining.add_argument("--num-negatives", type=int, default=1)
    mining.add_argument("--range-min", type=int, default=0, help="skip the closest N candidates")
    mining.add_argument("--range-max", type=int, help="consider only the closest N")
    mining.add_argument(
        "--margin",
        type=float,
        help="keep candidates scoring below the positive's cosine minus this",
    )
    mining.add_argument("--max-score", type=float, help="keep candidates at or below this cosine")
    mining.add_argument("--sampling", default="top", choices=SAMPLING)
    mining.add_argument("--seed", type=int, default=0)
    mining.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "mine-negatives":
        return mine_negatives(args)
    if args.command == "examples":
        for name, path in write_example_files(args.out).items():
            print(f"{EXAMPLES[name][2]}:\n  {shlex.join(task_options(name, path))}")
        return
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    data_dir = resolve_data_dir(args.data_dir)
    for name in names:
        builder = get_builder(name, data_dir)
        problems = builder.info.metadata.get("problems", {})
        print(f"{name}: prepared in {builder.data_dir}")
        print(
            f"  source rows: {builder.info.metadata.get('source_examples')}, "
            f"set aside: {problems or 'none'}"
        )
    if args.command == "prepare":
        return
    tokenizer = presets.load_tokenizer(presets.default_preset_dir())
    print(f"\n{'dataset':16} {'split':10} {'examples':>8} {'words':>6} {'pieces':>6}  labels")
    for name in names:
        for split in SPLITS:
            n, labels, words, pieces = split_stats(name, split, data_dir, tokenizer)
            shown = ", ".join(f"{k} {v}" for k, v in sorted(labels.items()))
            print(f"{name:16} {split:10} {n:8d} {words:6.1f} {pieces:6.1f}  {shown}")


def mine_negatives(args):
    if not args.input or not args.output:
        raise InputError("mine-negatives needs --input PAIRS and --output TRIPLETS.jsonl.")
    if args.model:
        encoder = SentenceEncoder.from_path(args.model, args.max_length)
    else:
        encoder = SentenceEncoder.pretrained(args.max_length or 128)
    written, dropped = mine_file(
        args.input, args.output, encoder.encode, overwrite=args.overwrite,
        num_negatives=args.num_negatives, range_min=args.range_min, range_max=args.range_max,
        margin=args.margin, max_score=args.max_score, sampling=args.sampling, seed=args.seed,
    )  # fmt: skip
    left = f"; {dropped} anchors had too few candidates and were left out" if dropped else ""
    print(f"wrote {written} rows with {args.num_negatives} hard negatives each to "
          f"{args.output}{left}")  # fmt: skip


if __name__ == "__main__":
    run_main(main)
