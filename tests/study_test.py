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
