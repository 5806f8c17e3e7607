"""Prepare the packaged datasets and print their statistics.

python -m experiments.data prepare [--data-dir DIR]
python -m experiments.data stats   [--data-dir DIR] [--datasets bbc_news,wnut16]
python -m experiments.data examples [--out data/examples]  # a user's files, from real text

Labels per split: classes (bbc_news, tweet_sentiment), entity types (wnut16) or the
genres of the pairs (stsb, whose words and pieces count both sentences).
"""

import collections
import shlex

import numpy as np

from experiments.cli import ArgumentParser, run_main
from mtl_keras.data import BUILDERS, get_builder, load, resolve_data_dir
from mtl_keras.data.examples import EXAMPLES, task_options, write_example_files
from mtl_keras.data.splits import SPLITS
from mtl_keras.encoding import presets


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
    parser.add_argument("command", choices=["prepare", "stats", "examples"])
    parser.add_argument("--data-dir", help="default: $MTL_KERAS_DATA_DIR or <TFDS dir>/mtl_keras")
    parser.add_argument("--datasets", default=",".join(BUILDERS))
    parser.add_argument("--out", default="data/examples", help="where `examples` writes")
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    run_main(main)
