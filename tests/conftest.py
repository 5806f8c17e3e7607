"""Shared fixtures: no network for the whole suite, and a tiny random BERT preset."""

import contextlib
import fcntl
import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# JAX keeps compiled programs on disk, and every test process and the processes tests start
# reuse them: the same tiny model at the same shapes is one program, compiled once (a tiny
# run in a new process: 22 s cold, 9 s warm). `make clean` removes it.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", str(Path(__file__).parents[1] / ".pytest_cache" / "jax")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # tiny: all fast
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# XLA's optimising passes cost more than they save on a tiny model run for a few steps:
# four tiny scenario runs took 34.6 s without them against 61.7 s with, the same metrics
# (AMD EPYC, 2 vCPUs, beside a study). Tests only; inherited by the processes tests start.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# Every Python process a test starts imports tests/network_guard/sitecustomize.py first.
GUARD_DIR = str(Path(__file__).parent / "network_guard")
os.environ["PYTHONPATH"] = os.pathsep.join(
    [GUARD_DIR, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
)

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import mtl_keras  # noqa: E402, F401
from tests.network_guard.sitecustomize import NetworkBlocked, block  # noqa: E402, F401

# See pytest_configure; MTL_KERAS_TESTS_TRACED=1 traces every test, as production does.
EAGER = keras.backend.backend() == "tensorflow" and not os.environ.get("MTL_KERAS_TESTS_TRACED")


def pytest_configure(config):
    """TensorFlow runs tests' `tf.function`s (Keras' train/test/predict steps, the encode
    function) eagerly: on tiny models tracing a graph costs seconds per model and running
    op by op a few milliseconds per step (the TensorFlow suite: 7:31 against 10:14 traced,
    2 workers on 2 vCPUs). What
    only a traced graph can catch is covered by the `graph` tests and fixtures, which run
    as production does, by the processes tests start (always traced), and by the JAX leg
    (compiled)."""
    if EAGER:
        import tensorflow as tf

        tf.config.run_functions_eagerly(True)


@contextlib.contextmanager
def traced():
    """Inside: tf.functions are traced into graphs, as outside tests; after: as before."""
    import tensorflow as tf

    before = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(False)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(before)


@pytest.fixture(autouse=True)
def graph_when_marked(request):
    """A test marked `graph` runs traced (fixtures it uses are built before, eagerly,
    unless they trace themselves)."""
    if request.node.get_closest_marker("graph"):
        with traced():
            yield
    else:
        yield


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any outbound connection or name lookup fails loudly (mtl_keras never downloads);
    the processes tests start are guarded the same way (tests/network_guard/)."""
    block(monkeypatch.setattr)


TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "the a an quick brown fox jumps over lazy dog cafe sao paulo stocks fell "
    "market sport team won match film star new phone chip . , ! ? ##s ##ing ##ed"
).split()


def make_tiny_backbone(num_layers=2, hidden_dim=16, max_sequence_length=32, dropout=0.1):
    return keras_hub.models.BertBackbone(
        vocabulary_size=len(TINY_VOCAB),
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=hidden_dim,
        intermediate_dim=32,
        max_sequence_length=max_sequence_length,
        dropout=dropout,
    )


def deterministic_tiny_model(tasks="topic", **kwargs):
    """A tiny `MultiTaskModel` without dropout anywhere: one batch, one gradient."""
    from mtl_keras.model.backbone import TunableBertBackbone
    from mtl_keras.model.multitask import MultiTaskModel
    from mtl_keras.tasks import resolve_tasks

    keras.utils.set_random_seed(0)
    backbone = TunableBertBackbone.from_backbone(make_tiny_backbone(dropout=0.0))
    return MultiTaskModel(backbone, resolve_tasks(tasks), dropout=0.0, **kwargs)


def schedule_config(optimizer):
    """The `WarmupDecay` settings of a run's optimizer (inside `LayerwiseLR` or not)."""
    config = optimizer.get_config()
    config = config["inner_optimizer"]["config"] if "inner_optimizer" in config else config
    return config["learning_rate"]["config"]


def one_fit_step(model, optimizer, y, start, loss_weights=None, sample_weight=None):
    """{weight path: change} after one `fit` step from the weights `start`."""
    from mtl_keras.model.multitask import compile_model

    model.set_weights(start)
    compile_model(model, optimizer, loss_weights)
    model.fit(tiny_inputs(), y, sample_weight=sample_weight, epochs=1, batch_size=2, verbose=0)
    return {v.path: v.numpy() - s for v, s in zip(model.weights, start, strict=True)}


def make_tiny_tokenizer():
    return keras_hub.models.BertTokenizer(vocabulary=TINY_VOCAB, lowercase=True, strip_accents=True)


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory):
    """A keras-hub preset dir with a 2-layer, 16-wide random BERT and a 40-word vocab."""
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("tiny_bert")
    make_tiny_backbone().save_to_preset(str(path))
    make_tiny_tokenizer().save_to_preset(str(path))
    return path


TINY_TWEETS = [
    ("negative", "0.9", "the phone fell !"),
    ("positive", "1.0", "the team won the match !"),
    ("neutral", "", "a new film star"),
    ("positive", "0.7", "the quick fox"),
    ("neutral", "0.5", "stocks fell ."),
    ("negative", "0.8", "the lazy dog"),
    ("positive", "0.6", "the quick fox"),  # duplicate text
    ("angry", "0.9", "not a label"),  # malformed: unknown label
]
TINY_BBC = {
    "business": ["Stocks fell\n\nstocks fell , market fell .", "Market\n\nthe market fell ."],
    "sports": ["Team won\n\nthe team won the match .", "Match\n\nsport team won ."],
    "tech": ["Phone\n\nnew phone chip .", "Chip\n\na new chip ."],
    "entertainment": ["Film\n\nnew film star .", "Only a title"],  # second is malformed
    "politics": ["Vote\n\nthe vote ."],
}
TINY_WNUT = (
    "the\tO\nquick\tO\nfox\tB-person\n\t\n"
    "stocks\tO\nfell\tO\n\t\n"
    "sao\tB-geo-loc\npaulo\tI-geo-loc\nwon\tO\n\t\n"
    "bad\tX-tag\n\t\n"  # malformed tag
    "the\tO\nfilm\tB-movie\nstar\tO\n\t\n"
)


TINY_STSB = {  # (score, sentence1, sentence2) per official split file
    "sts-train.csv": [
        ("5.0", "the quick brown fox", "the quick brown fox"),
        ("4.2", "the team won the match", "the team won"),
        ("1.0", "stocks fell", "the lazy dog"),
        ("0.0", "a new phone chip", "the film star"),
        ("3.0", "the market fell", "stocks fell ."),
    ],
    "sts-dev.csv": [
        ("4.8", "the lazy dog", "a lazy dog"),
        ("2.5", "the film star", "a new film"),
        ("0.4", "the team won", "the phone chip"),
    ],
    "sts-test.csv": [
        ("4.6", "the new phone", "a new phone chip"),
        ("3.1", "sport team won", "the team won the match"),
        ("0.2", "cafe sao paulo", "stocks fell"),
        ("1.5", "the quick fox", "the fox jumps over the dog"),
    ],
}


def write_tiny_stsb(folder):
    """Tiny STS-B files: tab-separated like the packaged ones, one extra trailing field
    and one malformed row (no second sentence)."""
    folder.mkdir(parents=True)
    for name, rows in TINY_STSB.items():
        lines = [f"main-captions\tMSRvid\t2012\t{i:04d}\t{score}\t{a}\t{b}"
                 for i, (score, a, b) in enumerate(rows)]  # fmt: skip
        lines[0] += "\textra field"
        lines.append("main-news\tx\t2012\t9999\t2.0\tonly one sentence")
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def write_tiny_sources(root):
    """Tiny copies of the packaged sources, same formats, a few malformed rows."""
    bbc = root / "bbc"
    for folder, articles in TINY_BBC.items():
        (bbc / folder).mkdir(parents=True)
        for i, article in enumerate(articles):
            (bbc / folder / f"{i:03d}.txt").write_text(article)
    tweets = root / "tweets.csv"
    lines = ["sentiment,confidence,text"] + [f"{s},{c},{t}" for s, c, t in TINY_TWEETS]
    tweets.write_text("\n".join(lines) + "\n")
    wnut = root / "ner.txt"
    wnut.write_text(TINY_WNUT)
    stsb = write_tiny_stsb(root / "stsb")
    return {"bbc_news": bbc, "tweet_sentiment": tweets, "wnut16": wnut, "stsb": stsb}


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
    """A data dir with every dataset prepared from the tiny sources."""
    from mtl_keras.data import get_builder

    root = tmp_path_factory.mktemp("tiny_data")
    sources = write_tiny_sources(root / "sources")
    for name, source in sources.items():
        get_builder(name, root / "prepared", source=source)
    return root / "prepared"


def tiny_run_argv(preset, data_dir, out, *extra, sts=False):
    """`experiments.run` arguments for a tiny run: tiny BERT, tiny data, short sequences;
    the STS-B measure only with `sts` (tests of it ask; it costs every run seconds)."""
    common = "--max-length 16 --batch-size 4 --verbose 0 --learning-rate 1e-3".split()
    paths = ["--preset", str(preset), "--data-dir", str(data_dir), "--output-dir", str(out)]
    return [*paths, *common, *([] if sts else ["--no-sts"]), *extra]


def finished_tiny_run(tmp_path_factory, preset, data_dir, name, options, sts=False):
    """Run `experiments.run` tiny with `options` (a string) into a new folder; return it."""
    out = tmp_path_factory.mktemp(name)
    run_tiny(preset, data_dir, out, options, sts)
    return out


def run_tiny(preset, data_dir, out, options, sts=False):
    from experiments import run

    return run.main(tiny_run_argv(preset, data_dir, out, *options.split(), sts=sts))


def built_once(tmp_path_factory, name, build):
    """The folder `build(folder)` fills, built once per test session: with pytest-xdist the
    first worker to ask builds it in the session's shared temp folder while the others wait
    on a lock, then every worker reads it (tests only read it). Each worker building its
    own copy cost a tiny run and an export twice."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # one process: its own temp folder
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent  # the session's, above each worker's
    folder = shared / name
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (shared / f"{name}.done").is_file():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed part way
            build(folder)
            (shared / f"{name}.done").touch()
    return folder


@pytest.fixture(scope="session")
def tiny_run(tiny_preset, tiny_data_dir, tmp_path_factory):
    """A finished tiny `experiments.run` with all three heads: its output folder. Its loss
    weights are learned (uncertainty weighting), so everything that reloads, exports or
    predicts with it also covers a model that holds them."""
    options = "--scenario full --tasks topic,sentiment,ner --epochs 1 --loss-weighting uncertainty"

    def build(out):
        with traced():  # the run every export, predict and reload test starts from
            run_tiny(tiny_preset, tiny_data_dir, out, options)

    return built_once(tmp_path_factory, "tiny_run", build)


def cosines(a, b):
    """Row-wise cosine of two arrays of vectors, both sides normalised here: the check is
    about direction, whatever scale either side has."""
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="session")
def tiny_export(tiny_run, tmp_path_factory):
    """`tiny_run`'s model exported once for TF Serving (max length 16): the version folder."""
    from experiments import export

    version = Path("mtl", "1")  # a model base path with one version, as TF Serving reads

    def build(folder):
        out = ["--output", str(folder / version), "--max-length", "16"]
        with traced():
            export.main(["--model", str(tiny_run / "model.keras"), *out])

    return built_once(tmp_path_factory, "tiny_export", build) / version


SENTENCES = ["the quick fox jumps", "a", "", "stocks fell , market fell !", "Café São Paulo"]
FORCED = {"topic": [0, 1, 2, 3, 4], "sentiment": [0, 1, 2, 0, 1]}  # a label per sentence


@pytest.fixture(scope="session")
def decisive_folder(tiny_run, tmp_path_factory):
    """`tiny_run`'s model, whose own heads give `SENTENCES` one topic and one sentiment, with
    heads forced to `FORCED` (`force_labels`) and a large random NER head (tags that
    differ), saved with its tokenizer (and the run's metrics and history) in a folder."""
    from mtl_keras.encoding.preprocessing import make_preprocessor, trim_padding
    from mtl_keras.saving import load_model, load_tokenizer

    def build(folder):
        folder.mkdir(parents=True, exist_ok=True)
        model = load_model(tiny_run / "model.keras", compile=False)
        preprocessor = make_preprocessor(load_tokenizer(tiny_run / "tokenizer"), 16)
        x = trim_padding(preprocessor(tf.constant(SENTENCES)))
        embedding = model.inference_model()(x, training=False)["embedding"]
        for task, labels in FORCED.items():
            force_labels(model.head_denses[task], embedding, labels)
        ner = model.head_denses["ner"]
        ner.kernel.assign(np.random.default_rng(0).normal(size=ner.kernel.shape) * 50)
        model.save(folder / "model.keras")
        shutil.copytree(tiny_run / "tokenizer", folder / "tokenizer")
        for name in ("metrics.json", "history.csv"):
            shutil.copy(tiny_run / name, folder / name)

    return built_once(tmp_path_factory, "decisive", build)


def tiny_inputs():
    """Fixed BERT inputs for the tiny vocabulary: two sentences, one padded."""
    return {
        "token_ids": np.array([[2, 5, 8, 9, 3], [2, 6, 3, 0, 0]], "int32"),
        "padding_mask": np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], "int32"),
        "segment_ids": np.zeros((2, 5), "int32"),
    }


def bert_inputs(tokenizer, texts, max_length=16):
    """The model inputs of `texts` (int32, padded to `max_length`), as training made them."""
    import tensorflow as tf

    from mtl_keras.encoding.preprocessing import make_preprocessor

    x = make_preprocessor(tokenizer, max_length)(tf.constant(texts))
    return {f: tf.cast(v, "int32") for f, v in x.items()}


def force_labels(dense, embeddings, labels, scale=10.0):
    """Set a `Dense` head so that text i (row i of `embeddings`, what the head reads)
    scores highest for class `labels[i]`: its kernel solves E K = scale x one-hot in least
    squares (exact while the embeddings are independent), its bias 0. A tiny model's own
    head often gives every test text one label, and then a served label that ignores
    the text would pass."""
    targets = np.eye(dense.units)[list(labels)] * scale
    kernel = np.linalg.pinv(np.asarray(embeddings, "float64")) @ targets
    dense.kernel.assign(kernel.astype("float32"))
    dense.bias.assign(np.zeros(dense.units, "float32"))


BAD_INPUT_RESULTS = []  # (surface, case, passed): the bad-input corpus, summarised at the end
FUZZ_RESULTS = []  # (surface, case, passed, exit code): tests/fuzz_test.py's generated cases
FUZZ_CASES = []  # the running test's fuzz cases; they travel to FUZZ_RESULTS in its report


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the test's fuzz cases to its report: with `-n` (pytest-xdist) the test runs in
    a worker process, and only reports reach the process that prints the summary."""
    outcome = yield
    if call.when == "call" and FUZZ_CASES:
        outcome.get_result().user_properties.append(("fuzz_cases", [*FUZZ_CASES]))
        FUZZ_CASES.clear()


def pytest_runtest_logreport(report):
    """Collect the fuzz cases, and count each case of tests/bad_input_test.py (its tests
    are named by surface)."""
    for name, value in report.user_properties:
        if name == "fuzz_cases":
            FUZZ_RESULTS.extend(tuple(case) for case in value)
    if "bad_input_test.py::" not in report.nodeid or report.when != "call":
        return
    surface, _, case = report.nodeid.split("::", 1)[1].partition("[")
    BAD_INPUT_RESULTS.append((surface.removeprefix("test_"), case.rstrip("]"), report.passed))


def pytest_terminal_summary(terminalreporter):
    if FUZZ_RESULTS:
        passed = sum(ok for _, _, ok, _ in FUZZ_RESULTS)
        accepted = sum(code == 0 for _, _, _, code in FUZZ_RESULTS)
        surfaces = sorted({s for s, _, _, _ in FUZZ_RESULTS})
        terminalreporter.write_line(
            f"property-style fuzz: {passed}/{len(FUZZ_RESULTS)} generated cases without a "
            f"traceback ({accepted} accepted, {len(FUZZ_RESULTS) - accepted} rejected as "
            f"user errors) across {len(surfaces)} surfaces ({', '.join(surfaces)})"
        )
    if BAD_INPUT_RESULTS:
        passed = sum(ok for _, _, ok in BAD_INPUT_RESULTS)
        surfaces = sorted({s for s, _, _ in BAD_INPUT_RESULTS})
        terminalreporter.write_line(
            f"bad-input corpus: {passed}/{len(BAD_INPUT_RESULTS)} cases passed across "
            f"{len(surfaces)} surfaces ({', '.join(surfaces)})"
        )


def wait_for_checkpoint(progress, process, epoch, timeout=240):
    """Wait until `process` has checkpointed `epoch` (its progress file says so); it must
    still be running then, so a test can kill it mid-run."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if progress.is_file() and json.loads(progress.read_text())["epoch"] >= epoch:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
