"""Prepare the packaged datasets and print their statistics.

python -m experiments.data prepare [--data-dir DIR]
python -m experiments.data stats   [--data-dir DIR] [--datasets bbc_news,wnut16]
"""

import argparse
import collections

import numpy as np

from experiments.cli import run_main
from mtl_keras import presets
from mtl_keras.data import BUILDERS, get_builder, load, resolve_data_dir
from mtl_keras.data.splits import SPLITS


def split_stats(name, split, data_dir, tokenizer):
    """examples, label counts, mean words and word pieces of one split."""
    builder = get_builder(name, data_dir)
    is_ner = name == "wnut16"
    label_names = (
        builder.info.features["ner"].feature if is_ner else builder.info.features["label"]
    ).names
    labels, words, pieces = collections.Counter(), [], []
    for example in load(name, split, data_dir).as_numpy_iterator():
        if is_ner:
            tokens = [t.decode() for t in example["tokens"]]
            labels.update(
                label_names[i][2:] for i in example["ner"] if label_names[i].startswith("B-")
            )
        else:
            tokens = example["text"].decode().split()
            labels[label_names[example["label"]]] += 1
        words.append(len(tokens))
        pieces.append(sum(len(p) for p in tokenizer(tokens)) if tokens else 0)
    return len(words), labels, np.mean(words or [0]), np.mean(pieces or [0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["prepare", "stats"])
    parser.add_argument("--data-dir", help="default: $MTL_KERAS_DATA_DIR or <TFDS dir>/mtl_keras")
    parser.add_argument("--datasets", default=",".join(BUILDERS))
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    run_main(main)
