"""Files a user would bring, written from the packaged real data: one of each task kind.

They show the own-data formats on real text (docs/own-data.md), feed the own-task tests,
and give the study a user's task to measure beside the built-in ones:

    python -m experiments.data examples --out data/examples
    python -m experiments.study --grids multitask --task types=data/examples/types.jsonl
"""

import csv
import json
from pathlib import Path

from mtl_keras.data import sources

# name: (file or folder under the output, the `--task-columns` it needs, what it is)
EXAMPLES = {
    "news": ("news.csv", "text:headline,label:category", "BBC headlines and their category (CSV)"),
    "ents": ("ents.conll", None, "WNUT-16 tweets, a tag per token (CoNLL, three columns)"),
    "sts": ("sts", None, "STS-B pairs with their score (a JSONL folder: train and dev)"),
    "types": ("types.jsonl", None, "the entity types a WNUT-16 tweet mentions (multi-label)"),
    "para": ("para.csv", None, "STS-B pairs, 'similar' when scored 3 or more (pair labels)"),
    "close": ("close.jsonl", None, "STS-B pairs scored 4 or more (anchor and positive)"),
}


def task_options(name, path):
    """The `experiments.run` (and `experiments.study`) options that train example `name`
    from the file or folder at `path`."""
    options, columns = ["--task", f"{name}={path}"], EXAMPLES[name][1]
    if columns:
        options += ["--task-columns", f"{name}={columns}"]
    return options


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _write_csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(header)
        out.writerows(rows)
    return path


def _jsonl(rows):
    return "\n".join(map(json.dumps, rows)) + "\n"


def write_example_files(folder):
    """Write the `EXAMPLES` files under `folder` from the packaged BBC, WNUT-16 and STS-B
    files; returns {task name: path}. Every text is real; only the file layout is chosen,
    as a user would choose it (own column names, a CoNLL file with a -DOCSTART- line, a
    folder with its own dev split)."""
    folder = Path(folder)
    paths = {name: folder / file for name, (file, _, _) in EXAMPLES.items()}
    articles, _ = sources.read_bbc()
    _write_csv(paths["news"], ["headline", "category"],
               ([a["title"], a["label"]] for a in articles[::10]))  # fmt: skip
    sentences, _ = sources.read_wnut()
    lines = ["-DOCSTART- -X- O", ""]
    for sentence in sentences:
        lines += [f"{t} _ {g}" for t, g in zip(sentence["tokens"], sentence["ner"], strict=True)]
        lines.append("")
    _write(paths["ents"], "\n".join(lines))
    pairs, _ = sources.read_stsb()
    for split, name in (("train", "train"), ("validation", "dev")):
        rows = [{k: p[k] for k in ("sentence1", "sentence2", "score")} for p in pairs[split][:80]]
        _write(paths["sts"] / f"{name}.jsonl", _jsonl(rows))
    # Multi-label: the entity types a tweet mentions (none, one or several).
    types = [{"text": " ".join(s["tokens"]),
              "labels": sorted({tag[2:] for tag in s["ner"] if tag != "O"})}
             for s in sentences]  # fmt: skip
    _write(paths["types"], _jsonl(types))
    close = [{"anchor": p["sentence1"], "positive": p["sentence2"]}
             for p in pairs["train"] if p["score"] >= 4]  # fmt: skip
    _write(paths["close"], _jsonl(close))
    _write_csv(paths["para"], ["sentence1", "sentence2", "label"],
               ([p["sentence1"], p["sentence2"], "similar" if p["score"] >= 3 else "other"]
                for p in pairs["train"][:400]))  # fmt: skip
    return paths
