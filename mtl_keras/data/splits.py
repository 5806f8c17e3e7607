"""Deterministic de-duplication and 80/10/10 splits by a hash of the text.

A hash (not a seeded shuffle) gives every machine and every version of the data the same
split for the same text, and identical texts can never land in two splits.
"""

import collections
import hashlib

SPLITS = ("train", "validation", "test")


def split_of(key):
    """'train' for 8 of 10 hash buckets, 'validation' for one, 'test' for one."""
    bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % 10
    return "train" if bucket < 8 else ("validation" if bucket == 8 else "test")


def deduplicate(examples, key):
    """Keep the first example of each exact key; return (kept, Counter of what was removed)."""
    seen, kept, problems = set(), [], collections.Counter()
    for example in examples:
        k = key(example)
        if k in seen:
            problems["duplicate text"] += 1
        else:
            seen.add(k)
            kept.append(example)
    return kept, problems


def split_examples(examples, key):
    """{'train': [...], 'validation': [...], 'test': [...]} after de-duplication."""
    kept, problems = deduplicate(examples, key)
    out = {name: [] for name in SPLITS}
    for example in kept:
        out[split_of(key(example))].append(example)
    return out, problems
