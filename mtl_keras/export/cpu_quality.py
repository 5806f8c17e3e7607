"""The quality gate of a CPU export: how far it is from the float32 Keras model on the
model's own test split, in what users see. Printed by the export and kept in export.json.

Measured: the embedding's cosine to float32 (mean, min) on every test text; per task, how
often the export's prediction equals float32's, and the task's test metric from each (a
label's accuracy, a label set's micro F1, a token task's entity F1); STS-B of each.
"""

import itertools

import numpy as np

from mtl_keras.errors import InputError
from mtl_keras.evaluation.sts import sts_pairs, sts_spearman
from mtl_keras.runtime.decoding import entity_spans


def accuracy(predicted, gold):
    return float(np.mean([p["label"] == g["label"] for p, g in zip(predicted, gold, strict=True)]))


def micro_f1(predicted, gold):
    found = sum(
        len(set(p["labels"]) & set(g["labels"])) for p, g in zip(predicted, gold, strict=True)
    )
    total = sum(len(p["labels"]) for p in predicted) + sum(len(g["labels"]) for g in gold)
    return 2 * found / total if total else 1.0


def entity_f1(predicted, gold):
    """Entity F1 over word tags (a word the model did not see counts as "O")."""
    hits = found = wanted = 0
    for p, g in zip(predicted, gold, strict=True):
        names = sorted({*g["tags"], *(t for t in p["tags"] if t), "O"})
        ids = {name: i for i, name in enumerate(names)}
        mine = entity_spans([ids[t or "O"] for t in p["tags"]], names)
        theirs = entity_spans([ids[t] for t in g["tags"]], names)
        hits, found, wanted = hits + len(mine & theirs), found + len(mine), wanted + len(theirs)
    return 2 * hits / (found + wanted) if found + wanted else 1.0


# decoder -> (the test metric, what two predictions must share to agree)
METRICS = {"one_label": (accuracy, "label"), "label_set": (micro_f1, "labels"),
           "word_tags": (entity_f1, "tags")}  # fmt: skip


def test_examples(model, data_dir=None, cap=500):
    """(every text, {task: (texts, gold predictions)}) of the model's text tasks' test
    splits, at most `cap` examples each; a task whose data cannot be read is left out."""
    texts, tasks = [], {}
    for task in model.text_tasks:
        try:
            rows = list(task.examples("test", data_dir).take(cap).as_numpy_iterator())
        except (InputError, OSError) as error:
            print(f"quality: {task.name}'s test split is not readable here ({error}); left out")
            continue
        task_texts = [task.spec.texts(row)[0] for row in rows]
        tasks[task.name] = (task_texts, [task.spec.gold(task, row) for row in rows])
        texts += task_texts
    return texts, tasks


def quality_report(model, tokenizer, folder, texts, tasks, sts=None):
    """{"texts", "cosine_mean", "cosine_min", "tasks": {...}, ["sts_b"]} of the export in
    `folder` against the float32 `model` (see the module's docstring)."""
    from mtl_keras.encoding.encoder import SentenceEncoder
    from mtl_keras.predict import Predictor
    from mtl_keras.runtime.predictor import ExportedPredictor

    exported = ExportedPredictor(folder)  # one engine: it encodes and predicts
    length = exported.max_length
    keras_predictor = Predictor(model, tokenizer, length)
    keras_encoder = SentenceEncoder.from_model(model, tokenizer, length)
    cosines = cosine_rows(keras_encoder.encode(texts), exported.encode(texts))
    report = {"texts": len(texts), "cosine_mean": float(cosines.mean()),
              "cosine_min": float(cosines.min()), "tasks": {}}  # fmt: skip
    decoders = {t["name"]: t["decoder"] for t in exported.info["tasks"]}
    for name, (task_texts, gold) in tasks.items():
        metric, field = METRICS[decoders[name]]
        ours = [row[name] for row in exported.predict(task_texts)]
        theirs = [row[name] for row in keras_predictor.predict(task_texts)]
        same = np.mean([a[field] == b[field] for a, b in zip(ours, theirs, strict=True)])
        report["tasks"][name] = {"examples": len(gold), "metric": metric.__name__,
                                 "float32": metric(theirs, gold), "export": metric(ours, gold),
                                 "agreement": float(same)}  # fmt: skip
    if sts is not None:
        report["sts_b"] = {"float32": sts_spearman(keras_encoder.encode, sts),
                           "export": sts_spearman(exported.encode, sts)}  # fmt: skip
    return report


def cosine_rows(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def quality_lines(report):
    """The report as the export prints it: one line per measure."""
    lines = [f"quality against float32 on {report['texts']} test texts: embedding cosine mean "
             f"{report['cosine_mean']:.5f}, min {report['cosine_min']:.5f}"]  # fmt: skip
    for name, task in report["tasks"].items():
        lines.append(f"  {name}: {task['metric']} {task['export']:.4f} (float32 "
                     f"{task['float32']:.4f}), predictions equal on {task['agreement']:.1%} "
                     f"of {task['examples']}")  # fmt: skip
    if "sts_b" in report:
        sts = report["sts_b"]
        lines.append(f"  STS-B test Spearman x 100: {sts['export']:.2f} (float32 "
                     f"{sts['float32']:.2f})")  # fmt: skip
    return lines


def sts_test_pairs(data_dir=None):
    """The STS-B test pairs, or None where the packaged data is not readable."""
    try:
        return sts_pairs("test", data_dir)
    except (InputError, OSError):
        return None


def validation_texts(model, data_dir=None, count=300):
    """Up to `count` texts of the model's tasks' validation splits, taken in turn from each
    task (calibration data for static int8)."""
    per_task = []
    for task in model.tasks:
        try:
            rows = task.examples("validation", data_dir).take(count).as_numpy_iterator()
            per_task.append([text for row in rows for text in task.spec.texts(row)])
        except (InputError, OSError):
            continue
    mixed = [text for text in itertools.chain(*itertools.zip_longest(*per_task)) if text]
    texts = list(dict.fromkeys(mixed))[:count]
    if not texts:
        raise InputError("no validation texts to calibrate int8 on: pass --calibration FILE.")
    return texts


def quality_section(report):
    """The model card's section on the export's quality against float32."""
    rows = [f"| embedding cosine to float32, mean / min | {report['cosine_mean']:.5f} / "
            f"{report['cosine_min']:.5f} |"]  # fmt: skip
    for name, task in report["tasks"].items():
        rows.append(f"| {name} {task['metric']} (float32) | {task['export']:.4f} "
                    f"({task['float32']:.4f}) |")  # fmt: skip
        rows.append(f"| {name} predictions equal to float32's | {task['agreement']:.1%} |")
    if "sts_b" in report:
        sts = report["sts_b"]
        rows.append(f"| STS-B test Spearman x 100 (float32) | {sts['export']:.2f} "
                    f"({sts['float32']:.2f}) |")  # fmt: skip
    return (f"\n## Quality against float32\n\nOn {report['texts']} texts of the model's test "
            "split:\n\n| measure | value |\n|---|---|\n" + "\n".join(rows) + "\n")  # fmt: skip
