"""A user's own files: read in each format, split, labelled, trained, predicted, exported."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from experiments import export, run
from mtl_keras import Predictor, RunConfig, SentenceEncoder
from mtl_keras.data import sources
from mtl_keras.data.examples import task_options, write_example_files
from mtl_keras.data.splits import split_of
from mtl_keras.encoding.preprocessing import FEATURES
from mtl_keras.errors import InputError
from mtl_keras.saving import load_tokenizer
from mtl_keras.tasks import Task, from_files
from tests.conftest import bert_inputs, force_labels, traced


def write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def examples(task, split):
    return list(task.examples(split).as_numpy_iterator())


ACCEPTED = {  # file name: (content, the texts it holds, in order)
    "bom.csv": (b"\xef\xbb\xbftext,label\nhi,a\nho,b\n", ["hi", "ho"]),
    "crlf.csv": (b"text,label\r\nhi,a\r\nho,b\r\n", ["hi", "ho"]),
    "quoted.csv": ('text,label\n"two\nlines, one text",a\nho,b\n', ["two\nlines, one text", "ho"]),
    "tabs.tsv": ('label\ttext\na\t"hi, there\nb\tho\n', ['"hi, there', "ho"]),  # no quoting
    "lines.jsonl": ('{"text": "hi", "label": 1}\n\n{"text": "ho", "label": 2}\n', ["hi", "ho"]),
    "bom_crlf.tsv": (b"\xef\xbb\xbftext\tlabel\r\nhi\ta\r\nho\tb\r\n", ["hi", "ho"]),
    "bom_crlf.jsonl": (
        b'\xef\xbb\xbf{"text": "hi", "label": "a"}\r\n{"text": "ho", "label": "b"}\r\n',
        ["hi", "ho"],
    ),
}


@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted_file_forms_read_every_text(tmp_path, name):
    content, texts = ACCEPTED[name]
    folder = tmp_path / "mine"
    write(folder / f"train{name[name.index('.') :]}", content)
    write(folder / f"validation{name[name.index('.') :]}", content)
    task = from_files("mine", folder)
    assert task.kind == "sentence" and task.labels in (("a", "b"), ("1", "2"))
    got = [e["text"].decode() for e in examples(task, "train")]
    assert got == texts
    assert [int(e["label"]) for e in examples(task, "train")] == [0, 1]


def test_conll_reads_the_last_column_skips_docstart_and_puts_o_first(tmp_path):
    text = "-DOCSTART- -X- O\n\nAda NNP B-per\nsaw VBD O\n\nParis NNP B-loc\n\n\nhi UH O\n"
    task = from_files("ents", write(tmp_path / "train.conll", text), kind="token")
    assert task.labels == ("O", "B-loc", "B-per")
    rows = [(e["tokens"].tolist(), e["ner"].tolist()) for e in examples(task, "train")]
    rows += [(e["tokens"].tolist(), e["ner"].tolist()) for s in ("validation", "test")
             for e in examples(task, s)]  # fmt: skip
    assert sorted(rows) == sorted([([b"Ada", b"saw"], [2, 0]), ([b"Paris"], [1]), ([b"hi"], [0])])


TOKEN_FILES = {  # the same two sentences as a user might write them in each format
    "train.conll": b"\xef\xbb\xbfAda NNP B-per\r\nsaw VBD O\r\n\r\nParis NNP B-loc\r\n",
    "train.csv": "tokens,tags\nAda saw,B-per O\nParis,B-loc\n",
    "train.tsv": "tags\ttokens\nB-per O\tAda saw\nB-loc\tParis\n",
    "train.jsonl": '{"tokens": ["Ada", "saw"], "tags": ["B-per", "O"]}\n'
    '{"tokens": ["Paris"], "tags": ["B-loc"]}\n',
}


@pytest.mark.parametrize("name", TOKEN_FILES)
def test_token_tasks_read_from_every_format(tmp_path, name):
    """`.conll` (here with a byte-order mark and CRLF), and `tokens,tags` columns in CSV
    and TSV (whitespace-separated) and JSONL (lists) make the same token task."""
    for split in ("train", "validation", "test"):  # nothing carved: train keeps both rows
        write(tmp_path / "t" / f"{split}{name[5:]}", TOKEN_FILES[name])
    task = from_files("ents", tmp_path / "t")
    assert task.kind == "token" and task.labels == ("O", "B-loc", "B-per")
    rows = [(e["tokens"].tolist(), e["ner"].tolist()) for e in examples(task, "train")]
    assert rows == [([b"Ada", b"saw"], [2, 0]), ([b"Paris"], [1])]


def test_a_forced_kind_overrides_what_the_columns_say(tmp_path):
    rows = "text,label,labels\nhi,a,a|b\nho,b,b\nhe,a,\n"
    path = write(tmp_path / "both" / "train.csv", rows)
    write(tmp_path / "both" / "validation.csv", rows)
    detected = from_files("mine", path.parent)
    assert detected.kind == "sentence" and detected.labels == ("a", "b")
    forced = from_files("mine", path.parent, kind="multi_label")
    assert forced.kind == "multi_label" and forced.labels == ("a", "b")
    hot = [e["labels"].tolist() for e in examples(forced, "train")]
    assert hot == [[1, 1], [0, 1], [0, 0]]


def test_a_single_file_is_split_by_the_hash_of_each_text(tmp_path):
    texts = [f"sentence number {i}" for i in range(200)]
    lines = ["text,label", *(f"{t},{'ab'[i % 2]}" for i, t in enumerate(texts))]
    task = from_files("mine", write(tmp_path / "all.csv", "\n".join(lines)))
    for split in ("train", "validation", "test"):
        got = {e["text"].decode() for e in examples(task, split)}
        assert got == {t for t in texts if split_of(t) == split}, split
    sizes = {s: len(examples(task, s)) for s in ("train", "validation", "test")}
    assert sum(sizes.values()) == 200 and min(sizes.values()) > 5


def test_a_folder_with_dev_carves_only_the_missing_test_split(tmp_path):
    write(
        tmp_path / "d" / "train.csv", "text,label\n" + "".join(f"t{i},{i % 3}\n" for i in range(90))
    )
    write(tmp_path / "d" / "dev.csv", "text,label\nv1,0\nv2,1\n")
    task = from_files("mine", tmp_path / "d")
    assert len(examples(task, "validation")) == 2
    carved = [e["text"].decode() for e in examples(task, "test")]
    assert carved and all(split_of(t) == "test" for t in carved)
    assert len(examples(task, "train")) + len(carved) == 90


def test_pair_scores_are_scaled_by_the_training_range_and_columns_map(tmp_path):
    rows = [{"q": "a b", "r": "a c", "sim": s} for s in (1.0, 3.0, 5.0, 2.0)]
    path = write(tmp_path / "pairs" / "train.jsonl", "\n".join(map(json.dumps, rows)))
    write(tmp_path / "pairs" / "validation.jsonl", path.read_text())
    columns = {"sentence1": "q", "sentence2": "r", "score": "sim"}
    task = from_files("sim", tmp_path / "pairs", columns=columns)
    assert task.kind == "pair" and task.score_range == (1.0, 5.0) and task.labels == ()
    assert Task.from_config(json.loads(json.dumps(task.get_config()))) == task
    batch = next(iter(task.examples("train").batch(4)))
    _, target, _ = task.spec.encode(task, batch, lambda t: dict.fromkeys(FEATURES, t), None, 8)
    scores = np.asarray(batch["score"])
    assert len(scores) >= 3 and scores.max() > 1.0
    np.testing.assert_allclose(np.asarray(target)[:, 0], (scores - 1.0) / 4.0)  # to [0, 1]


def test_multi_label_reads_pipes_in_csv_and_lists_in_jsonl_as_multi_hot(tmp_path):
    csv_file = write(tmp_path / "c" / "train.csv", "text,labels\nhi,a|c\nho,\nhe,b\n")
    write(tmp_path / "c" / "validation.csv", csv_file.read_text())
    lines = ['{"text": "hi", "labels": ["a", "c"]}', '{"text": "ho", "labels": []}',
             '{"text": "he", "labels": ["b"]}']  # fmt: skip
    write(tmp_path / "j" / "train.jsonl", "\n".join(lines))
    write(tmp_path / "j" / "validation.jsonl", "\n".join(lines))
    for folder in ("c", "j"):
        task = from_files("tags", tmp_path / folder)
        assert task.kind == "multi_label" and task.labels == ("a", "b", "c")
        hot = [e["labels"].tolist() for e in examples(task, "train")]
        assert hot == [[1, 0, 1], [0, 0, 0], [0, 1, 0]], folder


def test_pair_labels_make_a_pair_classification_task(tmp_path):
    rows = "sentence1,sentence2,label\na,b,yes\nc,d,no\n"
    write(tmp_path / "p" / "train.csv", rows)
    write(tmp_path / "p" / "validation.csv", rows)
    task = from_files("para", tmp_path / "p")
    assert task.kind == "pair_classification" and task.labels == ("no", "yes")
    assert [int(e["label"]) for e in examples(task, "train")] == [1, 0]


def test_anchor_positive_pairs_make_a_contrastive_task(tmp_path):
    rows = ['{"anchor": "how old is the sun", "positive": "about 4.6 billion years"}',
            '{"anchor": "capital of france", "positive": "paris"}']  # fmt: skip
    write(tmp_path / "q" / "train.jsonl", "\n".join(rows))
    write(tmp_path / "q" / "validation.jsonl", "\n".join(rows))
    task = from_files("qa", tmp_path / "q")
    assert task.kind == "contrastive" and task.labels == () and task.score_range is None
    assert [e["positive"] for e in examples(task, "train")] == [
        b"about 4.6 billion years",
        b"paris",
    ]


def test_hard_negatives_read_from_a_column_or_numbered_columns(tmp_path):
    one = from_files("qa", write(tmp_path / "one.csv", "anchor,positive,negative\n" + "".join(
        f"question {i},answer {i},wrong answer {i}\n" for i in range(30))))  # fmt: skip
    assert one.negatives == 1 and one.get_config()["negatives"] == 1
    first = examples(one, "train")[0]
    assert first["negatives"].tolist() == [first["anchor"].replace(b"question", b"wrong answer")]
    rows = [{"anchor": f"q{i}", "positive": f"a{i}", "negative_2": f"y{i}", "negative_1": f"x{i}"}
            for i in range(30)]  # fmt: skip
    two = from_files("qa", write(tmp_path / "two.jsonl", "\n".join(map(json.dumps, rows))))
    assert two.negatives == 2
    assert all(e["negatives"].tolist() == [b"x" + e["anchor"][1:], b"y" + e["anchor"][1:]]
               for e in examples(two, "train"))  # fmt: skip
    write(tmp_path / "mixed" / "train.csv", "anchor,positive,negative\na,b,c\n")
    write(tmp_path / "mixed" / "dev.csv", "anchor,positive\nd,e\n")  # none: fine
    assert from_files("qa", tmp_path / "mixed").negatives == 1
    write(tmp_path / "mixed" / "dev.csv", "anchor,positive,negative_1,negative_2\nd,e,f,g\n")
    with pytest.raises(InputError, match="different numbers of hard negatives"):
        from_files("qa", tmp_path / "mixed")


def test_in_batch_loss_with_a_hard_negative_matches_a_hand_computed_value():
    """Columns: the batch's 3 positives, then each example's hard negative; example 3 is
    another task's, so its positive and negative are no candidates."""
    from mtl_keras.evaluation.metrics import in_batch_hits, in_batch_xent

    scores = np.array([[5.0, 1.0, 9.0, 4.0, 0.0, 9.0],
                       [2.0, 3.0, 9.0, 1.0, 3.5, 9.0],
                       [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], "float32")  # fmt: skip
    valid = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]], "float32")
    candidates = [0, 1, 3, 4]
    want = [np.log(np.exp(scores[i, candidates]).sum()) - scores[i, i] for i in range(2)]
    np.testing.assert_allclose(np.asarray(in_batch_xent(valid, scores))[:2], want, rtol=1e-5)
    # Anchor 2's hard negative (3.5) outscores its positive (3.0): a miss.
    assert np.asarray(in_batch_hits(valid, scores))[:2].tolist() == [1.0, 0.0]


def test_in_batch_loss_masks_other_tasks_columns_and_retrieval_ranks():
    from mtl_keras.evaluation.metrics import in_batch_hits, in_batch_xent, retrieval_metrics

    scores = np.array([[5.0, 1.0, 9.0], [2.0, 3.0, 9.0], [0.0, 0.0, 0.0]], "float32")
    valid = np.array([[1.0], [1.0], [0.0]], "float32")  # row 3 is another task's example
    # Column 3 is masked: rows 1 and 2 choose between their own two columns.
    want = [np.log1p(np.exp(1.0 - 5.0)), np.log1p(np.exp(2.0 - 3.0))]
    np.testing.assert_allclose(np.asarray(in_batch_xent(valid, scores))[:2], want, rtol=1e-5)
    assert np.asarray(in_batch_hits(valid, scores))[:2].tolist() == [1.0, 1.0]
    anchors = np.array([[1.0, 0], [1.0, 0], [0, 1.0]])
    positives = np.array([[1.0, 0], [0.8, 0.6], [0, 1.0]])  # anchor 2's own ranks 2nd
    got = retrieval_metrics(anchors, positives)
    assert got == {"recall_at_1": 2 / 3, "mrr": (1 + 0.5 + 1) / 3}


def test_run_config_takes_task_objects_beside_built_in_names(tmp_path):
    task = from_files("mine", write(tmp_path / "m.csv", "text,label\nhi,a\nho,b\n"))
    config = RunConfig(tasks=[task, "topic"])
    assert config.task_names == ["mine", "topic"] and config.tasks[1] == "topic"
    assert config.to_dict()["tasks"][0]["files"] == {"train": str(tmp_path / "m.csv")}


# --- end to end on real text (from the packaged datasets, written as a user would) ---


@pytest.fixture(scope="module")
def own_run(tiny_preset, tiny_data_dir, tmp_path_factory):
    """One tiny run of six user tasks (one of each kind) beside the built-in topic."""
    folder = tmp_path_factory.mktemp("own")
    paths = write_example_files(folder / "data")
    options = [o for name, path in paths.items() for o in task_options(name, path)]
    argv = ["--tasks", "topic", *options,
            "--train-examples", "ents=64,news=64,sts=64,types=64,para=64,close=64",
            "--max-eval-examples", "40",
            "--epochs", "1", "--preset", str(tiny_preset), "--data-dir", str(tiny_data_dir),
            "--max-length", "16", "--batch-size", "8", "--verbose", "0", "--no-sts",
            "--output-dir", str(folder / "run")]  # fmt: skip
    with traced():  # about 50 steps of seven heads: tracing once is cheaper than eager steps
        metrics = run.main(argv)
    return folder / "run", metrics


def test_own_tasks_train_and_report_metrics_under_their_names(own_run):
    out, metrics = own_run
    assert metrics == json.loads((out / "metrics.json").read_text())
    assert metrics["tasks"] == ["topic", "news", "ents", "sts", "types", "para", "close"]
    test = metrics["test"]
    assert 0 <= test["news"]["accuracy"] <= 1 and 0 <= test["news"]["macro_f1"] <= 1
    assert 0 <= test["ents"]["entity_f1"] <= 1 and -1 <= test["sts"]["pearson"] <= 1
    assert -1 <= test["sts"]["spearman"] <= 1  # over the whole split, from the embedding
    assert 0 <= test["types"]["micro_f1"] <= 1 and 0 <= test["types"]["macro_f1"] <= 1
    assert 0 <= test["para"]["accuracy"] <= 1 and 0 <= test["para"]["macro_f1"] <= 1
    # Retrieval over the whole test split (up to --max-eval-examples anchors).
    close = test["close"]
    assert 0 <= close["recall_at_1"] <= close["mrr"] <= 1 and close["mrr"] > 0
    assert close["examples"] == min(40, metrics["own_data"]["close"]["test"]["examples"])
    assert test["ents"]["examples"] == 40  # --max-eval-examples
    assert test["news"]["examples"] == metrics["own_data"]["news"]["test"]["examples"] < 40
    assert metrics["train_examples"] == {"topic": metrics["train_examples"]["topic"], "news": 64,
                                         "ents": 64, "sts": 64, "types": 64, "para": 64,
                                         "close": 64}  # fmt: skip
    data = metrics["own_data"]
    assert data["sts"]["validation"]["from"].endswith("dev.jsonl")
    assert data["sts"]["validation"]["examples"] == 80
    assert "by text hash" in data["news"]["test"]["from"]
    assert set(metrics["test_entity_f1_by_type"]["ents"]) >= {"person", "geo-loc"}
    card = (out / "README.md").read_text()  # the model card names each kind and its data
    assert "| close | contrastive |" in card and "| types | multi_label |" in card
    assert data["news"]["test"]["from"] in card


def class_f1(gold, predicted):
    """(macro F1, micro F1) of boolean [examples, classes] matrices, each class's F1 0
    where it has no true or predicted example (as Keras' `F1Score` counts it)."""
    tp, fp, fn = ((g & p).sum(0) for g, p in ((gold, predicted), (~gold, predicted),
                                             (gold, ~predicted)))  # fmt: skip
    per_class = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    return per_class.mean(), 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)


def test_own_tasks_test_metrics_recompute_from_the_saved_model(own_run):
    """Every kind's reported test figures, recomputed here from the saved model's outputs
    on the same examples with numpy: a wrong F1, correlation or ranking fails."""
    from scipy.stats import spearmanr

    from mtl_keras.encoding.preprocessing import PAIR_FEATURES
    from mtl_keras.saving import load_model, load_tokenizer

    out, metrics = own_run
    model = load_model(out / "model.keras", compile=False)
    inference = model.inference_model()
    tokenizer = load_tokenizer(out / "tokenizer")
    tasks, test = {t.name: t for t in model.tasks}, metrics["test"]

    def rows(name):
        found = list(tasks[name].examples("test").take(test[name]["examples"]).as_numpy_iterator())
        assert len(found) == test[name]["examples"] > 1
        return found

    def inputs(texts):
        return bert_inputs(tokenizer, texts)

    def fields(examples, *names):
        return [[e[n].decode() for e in examples] for n in names]

    news = rows("news")
    logits = inference(inputs(fields(news, "text")[0]), training=False)["news"].numpy()
    gold = np.array([e["label"] for e in news])
    hot = np.eye(len(tasks["news"].labels), dtype=bool)
    macro, _ = class_f1(hot[gold], hot[logits.argmax(1)])
    assert test["news"]["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == gold), abs=1e-6)
    assert test["news"]["macro_f1"] == pytest.approx(macro, abs=1e-5)

    types = rows("types")
    logits = inference(inputs(fields(types, "text")[0]), training=False)["types"].numpy()
    macro, micro = class_f1(np.array([e["labels"] for e in types]) > 0.5, logits > 0)
    assert test["types"]["macro_f1"] == pytest.approx(macro, abs=1e-5)
    assert test["types"]["micro_f1"] == pytest.approx(micro, abs=1e-5)

    para = rows("para")
    first, second = (inputs(texts) for texts in fields(para, "sentence1", "sentence2"))
    pair = {**first, **{p: second[f] for f, p in zip(FEATURES, PAIR_FEATURES, strict=True)}}
    predicted = model(pair, training=False)["para"].numpy().argmax(1)
    gold = np.array([e["label"] for e in para])
    hot = np.eye(len(tasks["para"].labels), dtype=bool)
    assert test["para"]["accuracy"] == pytest.approx(np.mean(predicted == gold), abs=1e-6)
    assert test["para"]["macro_f1"] == pytest.approx(class_f1(hot[gold], hot[predicted])[0],
                                                     abs=1e-5)  # fmt: skip

    # Whole-split figures embed as the run did (its encoder, batches and traced graph): the
    # tiny model's cosines nearly tie, and float noise of another path would reorder them.
    encoder = SentenceEncoder.from_model(model, tokenizer, 16)

    def embed(texts):
        with traced():
            return encoder.encode(texts, batch_size=8)

    sts = rows("sts")
    cosine = np.sum(np.prod([embed(t) for t in fields(sts, "sentence1", "sentence2")], 0), 1)
    score = np.array([e["score"] for e in sts])
    assert test["sts"]["pearson"] == pytest.approx(np.corrcoef(cosine, score)[0, 1], abs=1e-4)
    assert test["sts"]["spearman"] == pytest.approx(spearmanr(cosine, score)[0], abs=1e-6)

    close = rows("close")
    anchors, positives = (embed(t) for t in fields(close, "anchor", "positive"))
    scores = anchors @ positives.T
    rank = 1 + (scores > np.diag(scores)[:, None]).sum(1)
    assert test["close"]["recall_at_1"] == pytest.approx(np.mean(rank == 1), abs=1e-6)
    assert test["close"]["mrr"] == pytest.approx(np.mean(1 / rank), abs=1e-6)
    assert 0 < test["close"]["mrr"] < 1  # neither every anchor first nor a constant


# Words of the tiny vocabulary (tests/conftest.py), so the texts' embeddings differ.
SERVED_TEXTS = ["the quick brown fox", "I saw Ada Lovelace in London", "the team won the match",
                "a new phone chip", "stocks fell , the market fell"]  # fmt: skip


@pytest.fixture(scope="module")
def decisive_model(own_run, tmp_path_factory):
    """`own_run`'s model with heads made decisive, saved beside its tokenizer: the sentence
    head gives the five texts five labels (`force_labels`); a large random token head, so
    tags differ; and the multi-label head's biases set so one label is always above 0.5
    and one always below (so a threshold that is wrong on either side shows)."""
    from mtl_keras.saving import load_model

    out, _ = own_run
    model = load_model(out / "model.keras", compile=False)
    x = bert_inputs(load_tokenizer(out / "tokenizer"), SERVED_TEXTS)
    embedding = model.inference_model()(x, training=False)["embedding"]
    force_labels(model.head_denses["news"], embedding, range(len(SERVED_TEXTS)))
    ents = model.head_denses["ents"]
    ents.kernel.assign(np.random.default_rng(0).normal(size=ents.kernel.shape) * 50)
    bias = np.zeros(model.head_denses["types"].bias.shape, "float32")
    bias[0], bias[1] = 30.0, -30.0
    model.head_denses["types"].bias.assign(bias)
    folder = tmp_path_factory.mktemp("decisive")
    model.save(folder / "model.keras")
    shutil.copytree(out / "tokenizer", folder / "tokenizer")
    return folder


def test_own_tasks_predict_and_serve_with_their_label_names(decisive_model, tmp_path):
    from mtl_keras.saving import load_model

    predictor = Predictor.from_path(decisive_model / "model.keras")
    labels = {t.name: t.labels for t in predictor.tasks}
    assert set(labels["news"]) == set(sources.BBC_LABELS) and labels["ents"][0] == "O"
    predicted = predictor.predict(SERVED_TEXTS)
    news = [p["news"]["label"] for p in predicted]
    assert news == list(labels["news"])  # text i gets label i (`force_labels`)
    assert len(predicted[1]["ents"]["tags"]) == 6 and "sts" not in predicted[0]
    assert "para" not in predicted[0] and "close" not in predicted[0]  # no output per text
    for p in predicted:
        types = p["types"]
        assert list(types["probabilities"]) == list(labels["types"])
        assert types["labels"] == [n for n, v in types["probabilities"].items() if v > 0.5]
        assert labels["types"][0] in types["labels"] and labels["types"][1] not in types["labels"]
    version = tmp_path / "serving" / "1"
    export.main(["--model", str(decisive_model / "model.keras"), "--output", str(version)])
    served = tf.saved_model.load(str(version)).signatures["serving_default"](
        text=tf.constant(SERVED_TEXTS)
    )
    assert [label.decode() for label in served["news_label"].numpy()] == news
    np.testing.assert_allclose(
        served["news_probs"].numpy(),
        [list(p["news"]["probabilities"].values()) for p in predicted],
        atol=1e-5,
    )
    np.testing.assert_allclose(
        served["types_probs"].numpy(),
        [list(p["types"]["probabilities"].values()) for p in predicted],
        atol=1e-5,
    )
    served_types = [[n.decode() for n in row if n] for row in served["types_labels"].numpy()]
    assert served_types == [p["types"]["labels"] for p in predicted]
    # Token tags: each real word piece's tag is the Keras argmax; a word's first piece
    # carries the tag the Predictor gives that word.
    x = bert_inputs(load_tokenizer(decisive_model / "tokenizer"), SERVED_TEXTS)
    model = load_model(decisive_model / "model.keras").inference_model()
    logits = model(x, training=False)["ents"].numpy()
    pieces, tags = served["word_pieces"].numpy(), served["ents_tags"].numpy()
    real = (pieces != b"") & (pieces != b"[CLS]") & (pieces != b"[SEP]")
    width = pieces.shape[1]
    want = np.where(real, np.array(labels["ents"], object)[logits[:, :width].argmax(-1)], "")
    assert [[t.decode() for t in row] for row in tags] == want.tolist()
    assert len({t for row in tags for t in row} - {b""}) > 1  # tags differ
    for row, p in enumerate(predicted):
        first = [t.decode() for t, piece in zip(tags[row], pieces[row], strict=True)
                 if piece and not piece.startswith(b"##") and piece not in (b"[CLS]", b"[SEP]")]  # fmt: skip
        assert first == p["ents"]["tags"], (p["text"], first)


def test_a_task_from_in_memory_datasets_trains_like_any_other(tiny_preset, tmp_path):
    from mtl_keras import train
    from mtl_keras.tasks import from_datasets

    texts = ["the team won the match", "stocks fell", "a new phone chip", "the market fell"]
    splits = {
        split: tf.data.Dataset.from_tensor_slices({"text": texts, "label": [0, 1, 0, 1]})
        for split in ("train", "validation", "test")
    }
    task = from_datasets("memo", "sentence", splits, labels=("sport", "money"))
    assert "datasets" not in task.get_config()
    result = train(RunConfig(tasks=[task], preset=str(tiny_preset), max_length=16, epochs=1,
                             batch_size=2, output_dir=str(tmp_path / "run"), measure_sts=False,
                             verbose=0))  # fmt: skip
    assert result.metrics["test"]["memo"]["examples"] == 4
    assert result.metrics["config"]["tasks"][0]["labels"] == ["sport", "money"]
    with pytest.raises(InputError, match="the train dataset has no 'label' field"):
        from_datasets(
            "memo", "sentence", {"train": splits["train"].map(lambda e: {"text": e["text"]})}
        )


def test_triplets_train_beside_a_built_in_task_and_the_model_reloads(
    tiny_preset, tiny_data_dir, tmp_path
):
    """STS-B pairs scored 4 or more, each with another pair's sentence as its hard
    negative: the contrastive output scores every anchor against the batch's positives
    and negatives, the run reports retrieval, and the saved model predicts as any other."""
    from mtl_keras.data.pipeline import evaluation_stream
    from mtl_keras.encoding.preprocessing import make_preprocessor
    from mtl_keras.saving import load_model

    pairs, _ = sources.read_stsb()
    close = [p for p in pairs["train"] if p["score"] >= 4][:120]
    rows = [{"anchor": p["sentence1"], "positive": p["sentence2"],
             "negative": close[(i + 1) % len(close)]["sentence2"]}
            for i, p in enumerate(close)]  # fmt: skip
    path = write(tmp_path / "triplets.jsonl", "\n".join(map(json.dumps, rows)))
    out = tmp_path / "run"
    metrics = run.main(["--tasks", "topic", "--task", f"qa={path}", "--max-eval-examples", "24",
                        "--epochs", "1", "--preset", str(tiny_preset), "--data-dir",
                        str(tiny_data_dir), "--max-length", "16", "--batch-size", "8",
                        "--verbose", "0", "--no-sts", "--output-dir", str(out)])  # fmt: skip
    assert 0 <= metrics["test"]["qa"]["recall_at_1"] <= 1
    assert metrics["config"]["tasks"][1]["negatives"] == 1
    model = load_model(out / "model.keras", compile=False)
    preprocessor = make_preprocessor(load_tokenizer(out / "tokenizer"), 16)
    batches, _ = evaluation_stream(model.tasks, "test", preprocessor, batch_size=8,
                                   max_length=16, only="qa")  # fmt: skip
    x, y, _ = next(iter(batches))
    size = x["token_ids"].shape[0]
    assert x["negative_token_ids"].shape[:2] == (size, 1) and y["qa"].shape == (size, 2)
    assert model(x)["qa"].shape == (size, 2 * size)  # positives, then hard negatives
    assert set(Predictor.from_path(out / "model.keras").predict(["a text"])[0]) == {
        "text", "topic"}  # fmt: skip
