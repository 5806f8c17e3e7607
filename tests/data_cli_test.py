from experiments import data


def test_stats_reports_splits_labels_and_set_aside_rows(tiny_data_dir, capsys):
    data.main(["stats", "--data-dir", str(tiny_data_dir), "--datasets", "tweet_sentiment,wnut16"])
    out = capsys.readouterr().out
    assert "'duplicate text': 1" in out and "'unknown sentiment label': 1" in out
    assert "tweet_sentiment  train" in out and "wnut16           test" in out
    assert "person" in out  # NER label distribution counts entities by type
