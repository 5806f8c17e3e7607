from experiments import data


def test_stats_reports_splits_labels_and_set_aside_rows(tiny_data_dir, capsys):
    data.main(["stats", "--data-dir", str(tiny_data_dir), "--datasets", "tweet_sentiment,wnut16"])
    out = capsys.readouterr().out
    assert "'duplicate text': 1" in out and "'unknown sentiment label': 1" in out
    assert "tweet_sentiment  train" in out and "wnut16           test" in out
    assert "person" in out  # NER label distribution counts entities by type


def test_stats_of_the_sts_pairs_keep_the_official_splits(tiny_data_dir, capsys):
    data.main(["stats", "--data-dir", str(tiny_data_dir), "--datasets", "stsb"])
    out = capsys.readouterr().out
    assert "'missing sentence': 3" in out  # one malformed row per split file
    rows = {line.split()[1]: line.split() for line in out.splitlines() if line.startswith("stsb ")}
    assert [rows[s][2] for s in ("train", "validation", "test")] == ["5", "3", "4"]
    assert "main-captions 5" in rows["train"][5] + " " + rows["train"][6]
