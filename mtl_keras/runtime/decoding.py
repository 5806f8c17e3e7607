"""From one text's outputs to what a user reads: a label and probabilities, a set of labels,
or each word's tag and the entity spans. Numpy only, shared by `Predictor` (Keras) and the
exported models' runtime, so both read predictions back the same way.

A task kind names its decoder (`Kind.decoder`); an export records that name per task.
"""

import numpy as np


def softmax(logits):
    logits = np.asarray(logits, np.float64)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits):
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))


def entity_spans(tags, names):
    """(start, end, type) spans of a BIO tag-id sequence, conlleval style.

    A span starts at B-X, or at I-X that does not continue an X span, and runs while
    I-X follows.
    """
    spans, start, kind = [], None, None
    for i, tag in enumerate([names[t] for t in tags] + ["O"]):
        prefix, _, tag_type = tag.partition("-")
        continues = prefix == "I" and tag_type == kind
        if start is not None and not continues:
            spans.append((start, i, kind))
            start, kind = None, None
        if prefix == "B" or (prefix == "I" and not continues):
            start, kind = i, tag_type
    return set(spans)


def one_label(labels, logits, **_):
    """The label and every label's probability (a softmax head)."""
    probs = softmax(logits)
    return {
        "label": labels[int(np.argmax(probs))],
        "probabilities": {n: float(p) for n, p in zip(labels, probs, strict=True)},
    }


def label_set(labels, logits, **_):
    """Every label above probability 0.5, and every label's probability (sigmoid heads)."""
    probs = sigmoid(logits)
    return {
        "labels": [name for name, p in zip(labels, probs, strict=True) if p > 0.5],
        "probabilities": {n: float(p) for n, p in zip(labels, probs, strict=True)},
    }


def word_tags(labels, logits, text, words, pieces_per_word, first_piece):
    """Each word's tag (None where the model saw no piece of it) and the BIO entity spans
    with their character offsets, from the logits of every word piece."""
    tagged = iter(np.argmax(np.asarray(logits)[np.asarray(first_piece) > 0], axis=-1).tolist())
    tag_ids = [next(tagged, None) if count else None for count in pieces_per_word]
    outside = labels.index("O")
    spans = entity_spans([outside if t is None else t for t in tag_ids], labels)
    entities = [
        {"text": text[words[s][1] : words[e - 1][2]], "type": entity,
         "start": words[s][1], "end": words[e - 1][2]}
        for s, e, entity in sorted(spans)
    ]  # fmt: skip
    tags = [None if t is None else labels[t] for t in tag_ids]
    return {"entities": entities, "words": [w for w, _, _ in words], "tags": tags}


DECODERS = {"one_label": one_label, "label_set": label_set, "word_tags": word_tags}
