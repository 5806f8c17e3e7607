import csv

from experiments import study


def test_tiny_study_writes_tables_plots_and_resumes(tiny_preset, tiny_data_dir, tmp_path):
    runner = f"--preset {tiny_preset} --data-dir {tiny_data_dir} --max-length 16 --batch-size 4 --learning-rate 1e-3"
    argv = [
        "--grids",
        "main",
        "--scenarios",
        "full,frozen_all",
        "--seeds",
        "0,1",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--results-dir",
        str(tmp_path / "results"),
        "--runner-args",
        runner,
    ]
    study.main(argv)
    rows = list(csv.DictReader(open(tmp_path / "results" / "study.csv")))
    assert sorted((r["config"], r["seed"]) for r in rows) == [
        ("frozen_all", "0"),
        ("frozen_all", "1"),
        ("full", "0"),
        ("full", "1"),
    ]
    assert {"topic_accuracy", "sentiment_macro_f1", "trainable_params", "sts_after"} <= set(rows[0])
    # The forgetting column: a scenario that trains nothing changes the embedding by 0.
    assert [float(r["sts_change"]) for r in rows if r["config"] == "frozen_all"] == [0.0, 0.0]
    report = (tmp_path / "RESULTS.md").read_text()
    assert "| full | 2 |" in report and "Transfer: topic alone" in report
    assert "sts_after" in report and "sts_change" in report
    names = ("main_metrics.png", "main_tradeoffs.png", "main_learning_curves.png", "main_sts.png")
    for name in names:
        assert (tmp_path / "results" / name).stat().st_size > 0
    # Resumable: a second call reruns nothing.
    log = tmp_path / "runs" / "main" / "full-seed0" / "log.txt"
    stamp = log.stat().st_mtime_ns
    study.main(argv)
    assert log.stat().st_mtime_ns == stamp


def test_sweep_and_size_configs(tmp_path):
    from mtl_keras import study as lib

    swept = lib.run_config(tmp_path, "topic,sentiment", "lora-lr0.001-h20", 0)
    assert (swept.scenario, swept.learning_rate, swept.head_lr_multiplier) == ("lora", 1e-3, 20)
    small = lib.run_config(tmp_path, "topic,sentiment", "llrd-0.8-n250", 1)
    assert small.max_train_examples is None and small.train_examples == {"sentiment": 250}
    assert (small.scenario, small.layer_decay) == ("llrd", 0.8)  # the base config's knobs kept
    assert lib.run_config(tmp_path, "topic,sentiment", "full-nall", 0).train_examples == {}
    slow_lora = lib.run_config(tmp_path, "topic,sentiment", "lora-lr0.0002-nall", 0)
    assert (slow_lora.scenario, slow_lora.learning_rate, slow_lora.lora_rank) == ("lora", 2e-4, 8)
    assert slow_lora.max_train_examples is None and slow_lora.train_examples == {}
    assert len(lib.GRIDS["size"][1]) == len(lib.SIZE_SCENARIOS) * len(lib.SIZES) + 1


def test_size_curve_groups_configs_by_scenario(tmp_path):
    from mtl_keras import study as lib
    from mtl_keras.plots import plot_size_curve

    rows = [
        {"grid": "size", "config": f"full-n{n}", "seed": s, "sentiment_train": t,
         "sentiment_accuracy": a + s / 100, "topic_accuracy": 0.9}
        for n, t, a in (("250", 250, 0.6), ("all", 9000, 0.8), ("1000", 1000, 0.7))
        for s in (0, 1)
    ]  # fmt: skip
    curves, metrics = lib.size_curves(rows, lib.summarise(rows, "size"))
    assert sorted(metrics) == ["sentiment_accuracy", "topic_accuracy"]
    points = curves["full"]
    assert [x for x, _ in points] == [250, 1000, 9000]  # sorted by tweets, "all" last
    assert [round(v["sentiment_accuracy"][0], 3) for _, v in points] == [0.605, 0.705, 0.805]
    assert plot_size_curve(tmp_path / "size.png", curves, metrics).stat().st_size > 0
