import argparse

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


def test_examples_writes_a_users_files_from_real_text_that_the_printed_options_read(
    tmp_path, capsys
):
    import shlex

    from experiments.run import add_own_task_options, own_tasks

    data.main(["examples", "--out", str(tmp_path / "examples")])
    options = [o for line in capsys.readouterr().out.splitlines() if line.startswith("  --task")
               for o in shlex.split(line)]  # fmt: skip
    parser = argparse.ArgumentParser()
    add_own_task_options(parser)
    tasks = {t.name: t for t in own_tasks(parser.parse_args(options))}
    kinds = {name: task.kind for name, task in tasks.items()}
    assert kinds == {"news": "sentence", "ents": "token", "sts": "pair",
                     "types": "multi_label", "para": "pair_classification", "close": "contrastive"}  # fmt: skip
    assert set(tasks["news"].labels) == {"business", "entertainment", "politics", "sport", "tech"}
    assert {"person", "geo-loc"} <= set(tasks["types"].labels)
    types = (tmp_path / "examples" / "types.jsonl").read_text().splitlines()
    assert len(types) > 2000  # every WNUT-16 tweet, a line each
