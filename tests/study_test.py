import csv
import subprocess
from pathlib import Path

import pytest

from experiments import study
from mtl_keras.errors import InputError


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
    assert sorted((r["grid"], r["config"], r["seed"]) for r in rows) == [
        ("main", "frozen_all", "0"),
        ("main", "frozen_all", "1"),
        ("main", "full", "0"),
        ("main", "full", "1"),
        ("transfer", "add_sentiment", "0"),
        ("transfer", "topic_only", "0"),
    ]
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=60
    )
    if head.returncode == 0:  # every run names the commit that made it
        assert {r["commit"].removesuffix("+changes") for r in rows} == {head.stdout.strip()}
    from mtl_keras.provenance import machine_cpu

    assert {r["cpu"] for r in rows} == {machine_cpu() or ""}  # and the CPU that timed it
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
    # Rows of runs made elsewhere (--from-csv) stay; a run here replaces its own row.
    from mtl_keras import study as lib

    elsewhere = tmp_path / "elsewhere.csv"
    old = [{**rows[0], "grid": "ner", "config": "full"}, {**rows[0], "topic_accuracy": "-1"}]
    lib.write_csv(elsewhere, old)
    study.main([*argv, "--report-only", "--from-csv", str(elsewhere)])
    merged = list(csv.DictReader(open(tmp_path / "results" / "study.csv")))
    assert len(merged) == len(rows) + 1 and "-1" not in {r["topic_accuracy"] for r in merged}
    assert ("ner", "full") in {(r["grid"], r["config"]) for r in merged}


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
    from mtl_keras.evaluation.plots import plot_size_curve

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
    table = lib.size_table(lib.summarise(rows, "size"))
    assert (
        "| `full` | 0.6050 ± 0.0071 | 0.7050 ± 0.0071 | – | 0.8050 ± 0.0071 | 0.9000 ± 0.0000 | – |"
        in table
    )


def seed_rows(grid, config, values, commit="abc1234", **extra):
    return [{"grid": grid, "config": config, "seed": s, "commit": commit, "sentiment_accuracy": v,
             **extra} for s, v in enumerate(values)]  # fmt: skip


def test_spread_is_the_sample_standard_deviation():
    from mtl_keras import study as lib

    rows = seed_rows("main", "full", [0.70, 0.72, 0.74])
    mean, std, n = lib.summarise(rows, "main")["full"]["sentiment_accuracy"]
    assert (round(mean, 6), round(std, 6), n) == (0.72, 0.02, 3)  # ddof=1; ddof=0 is 0.0163
    one = lib.summarise(seed_rows("main", "full", [0.7]), "main")["full"]["sentiment_accuracy"]
    assert one == (0.7, 0.0, 1)


def test_paired_differences_are_taken_by_seed_and_marked_only_beyond_the_noise():
    from mtl_keras import study as lib

    rows = (
        seed_rows("main", "full", [0.70, 0.75, 0.72])
        + seed_rows("main", "llrd-0.8", [0.71, 0.76, 0.73])  # +0.01 on every seed
        + seed_rows("main", "lora", [0.69, 0.77, 0.72])  # -0.01, +0.02, 0: noise
        + seed_rows("main", "frozen_lower", [0.9])
    )  # one seed: no spread, left out
    diffs = lib.paired_differences(rows, "main", ["sentiment_accuracy"])
    assert set(diffs) == {"llrd-0.8", "lora"}
    mean, std, n, low, high = diffs["llrd-0.8"]["sentiment_accuracy"]
    assert (round(mean, 6), round(std, 6), n) == (0.01, 0.0, 3) and low > 0
    mean, std, n, low, high = diffs["lora"]["sentiment_accuracy"]
    assert round(mean, 6) == round(0.01 / 3, 6) and low < 0 < high
    table = lib.differences_table(diffs)
    assert "| llrd-0.8 − full | 3 | **+0.0100 ± 0.0000** |" in table
    assert "| lora − full | 3 | +0.0033 ± 0.0153 |" in table
    # The size grid compares each scenario with `full` at the same number of tweets.
    assert lib.baseline_of("lora-n250") == "full-n250" and lib.baseline_of("lora") == "full"


def test_report_rebuilds_from_the_csv_and_names_the_commits(tmp_path):
    from mtl_keras import study as lib

    run = {"topic_accuracy": 0.9, "trainable_params": 10, "seconds_per_epoch": 1.5}
    rows = (seed_rows("main", "full", [0.70, 0.75], commit="aaa1111", cpu="amd-epyc-a35562", **run)
            + seed_rows("main", "lora", [0.71, 0.74], commit="bbb2222", **run)
            + [{"grid": "transfer", "config": "topic_only", "seed": 0, "commit": "aaa1111",
                "topic_accuracy": 0.96},
               {"grid": "transfer", "config": "add_sentiment", "seed": 0, "commit": "aaa1111",
                "topic_accuracy": 0.97, "sentiment_accuracy": 0.72}])  # fmt: skip
    lib.write_csv(tmp_path / "study.csv", rows)
    back = lib.rows_from_csv(tmp_path / "study.csv")
    assert back == rows  # numbers as numbers, missing cells left out
    lib.report(tmp_path / "no-runs", tmp_path / "results", tmp_path / "RESULTS.md", base_rows=back)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "**These runs span 2 commits:** `aaa1111` (2), `bbb2222` (2) runs." in text
    # Seconds per epoch compare only within one CPU: a table mixing CPUs says so.
    assert (
        "**CPUs mixed or unrecorded:** `amd-epyc-a35562` (2), `unrecorded` (2) runs; "
        "compare seconds per epoch only between runs on one CPU."
    ) in text
    assert "One seed. Runs made at commit `aaa1111`. CPU unrecorded: runs made before" in text
    assert lib.cpus_line(rows[:2]) == "Runs made on the CPU `amd-epyc-a35562`."
    assert "| lora − full | 2 |" in text and "sample standard deviations (ddof = 1)" in text
    assert "| 2. `frozen_head_a` from step 1, + sentiment | 0.9700 | 0.7200 |" in text
    assert lib.rows_from_csv(tmp_path / "results" / "study.csv") == rows


def test_multitask_grid_configs_train_each_task_set_at_equal_examples_per_task(tmp_path):
    from mtl_keras import study as lib

    configs = lib.GRIDS["multitask"][1]
    assert len(configs) == 4 + 6 + 1 + 1 + 12 and "topic+sentiment+ner+similarity" in configs
    learned = lib.run_config(tmp_path, "topic", "topic+sentiment+ner+similarity-uncertainty", 0)
    assert learned.loss_weighting == "uncertainty" and learned.max_train_examples == 2000
    assert learned.tasks == ("topic", "sentiment", "ner", "similarity")
    assert "topic+sentiment+ner+similarity-uncertainty-alldata" in lib.GRIDS["multitask-alldata"][1]
    pair = lib.run_config(tmp_path, lib.GRIDS["multitask"][0], "sentiment+ner", 2)
    assert pair.tasks == ("sentiment", "ner") and pair.scenario == "full"
    assert (pair.max_train_examples, pair.sampling, pair.seed) == (2000, "proportional", 2)
    alone = lib.run_config(tmp_path, lib.GRIDS["multitask-alldata"][0], "ner-alldata", 0)
    assert alone.tasks == ("ner",) and alone.max_train_examples is None
    assert (alone.max_length, alone.epochs) == (128, 3)
    assert lib.multitask_config(["similarity", "topic"], "-alldata") == "topic+similarity-alldata"


def test_the_recipe_grid_runs_make_train_full_with_and_without_the_pairs(tmp_path):
    import re
    import shlex

    from experiments.run import build_parser, config_from_args
    from mtl_keras import study as lib

    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    full_args = re.search(r"^FULL_ARGS \?= ((?:.*\\\n)*.*)$", makefile, re.M).group(1)
    full_args = shlex.split(full_args.replace("\\\n", " "))
    recipe = config_from_args(build_parser().parse_args(full_args)).to_dict()
    ignored = ("tasks", "seed", "output_dir", "verbose", "save_model")
    for config, tasks in lib.RECIPE_CONFIGS.items():
        ran = lib.run_config(tmp_path, lib.GRIDS["recipe"][0], config, 1).to_dict()
        assert {k: v for k, v in ran.items() if k not in ignored} == {
            k: v for k, v in recipe.items() if k not in ignored
        }, config
        assert ",".join(ran["tasks"]) == tasks and ran["seed"] == 1
    # The shipped default trains the pairs too (3 seeds: RESULTS.md, grid `recipe`).
    assert recipe["tasks"] == lib.RECIPE_CONFIGS["recipe+similarity"].split(",")
    assert lib.GRIDS["recipe"][2] == [0, 1, 2]
    # The report compares the recipe with the pairs against without them, by seed.
    run = {
        "topic_accuracy": 0.98,
        "ner_entity_f1": 0.45,
        "sts_after": 77.0,
        "trainable_params": 10,
        "seconds_per_epoch": 1.5,
    }
    rows = (seed_rows("recipe", "recipe", [0.81, 0.82], **run)
            + seed_rows("recipe", "recipe+similarity", [0.80, 0.82],
                        **{**run, "sts_after": 83.0, "similarity_pearson": 0.88}))  # fmt: skip
    lib.report(tmp_path / "no-runs", tmp_path / "results", tmp_path / "RESULTS.md", base_rows=rows)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "Per-run budget: `make train-full`'s, `--max-train-examples None" in text
    assert "| recipe+similarity − recipe | 2 | +0.0000 ± 0.0000 | -0.0050 ± 0.0071 |" in text


def test_affinity_is_the_paired_gain_of_training_beside_a_task(tmp_path):
    from mtl_keras import study as lib

    def runs(config, **metrics):
        return [{"grid": "multitask", "config": config, "seed": s, "commit": "abc",
                 "trainable_params": 1, "seconds_per_epoch": 1.0, "sts_after": 80.0,
                 **{k: v[s] for k, v in metrics.items()}} for s in range(3)]  # fmt: skip

    rows = (runs("topic", topic_accuracy=[0.90, 0.92, 0.91])
            + runs("sentiment", sentiment_accuracy=[0.70, 0.72, 0.71])
            + runs("topic+sentiment", topic_accuracy=[0.93, 0.95, 0.94],  # +0.03 on each seed
                   sentiment_accuracy=[0.69, 0.73, 0.71]))  # -0.01, +0.01, 0: noise  # fmt: skip
    cells = lib.affinity(rows, "multitask")
    mean, std, n, low, _ = cells["topic"]["sentiment"]
    assert (round(mean, 6), round(std, 6), n) == (0.03, 0.0, 3) and low > 0
    mean, _, _, low, high = cells["sentiment"]["topic"]
    assert round(mean, 6) == 0.0 and low < 0 < high
    assert cells["topic"]["ner"] is None and cells["ner"]["topic"] is None  # never ran
    table = lib.affinity_table(cells)
    assert "| topic (accuracy) |  | **+0.0300 ± 0.0000** | – | – | – |" in table
    assert "| sentiment (accuracy) | +0.0000 ± 0.0100 |  | – | – | – |" in table
    lib.report(tmp_path / "none", tmp_path / "results", tmp_path / "RESULTS.md", base_rows=rows)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "## Grid `multitask`: each task alone, every pair and all four together" in text
    assert "| topic+sentiment | 3 | 0.9400 ± 0.0100 | 0.7100 ± 0.0200 | 80.00 ± 0.00 | 1 |" in text
    assert "the study's, with the RunConfig fields {'max_train_examples': 2000}" in text
    assert (tmp_path / "results" / "multitask_affinity.png").stat().st_size > 0
    assert "Loss weighting" not in text  # no learned-weights runs yet
    # A user's task in the grids: a built-in task's "all" is still the built-in four.
    rows += runs("topic+sentiment+ner+similarity", topic_accuracy=[0.91, 0.93, 0.92])
    (tmp_path / "mine.csv").write_text("text,label\nhi,a\nho,b\n")
    with lib.own_tasks_in_grids([_task(tmp_path)]):
        cells = lib.affinity(rows, "multitask")
    assert round(cells["topic"]["all"][0], 6) == 0.01 and cells["mine"]["all"] is None


def test_affinity_plot_labels_stay_legible_on_the_darkest_cells(tmp_path, monkeypatch):
    from mtl_keras.evaluation import plots

    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, dpi: figures.append(fig))
    cells = {"ner": {"sentiment": (-0.037, 0.018, 3, -0.08, 0.007), "topic": (-0.004, 0.003, 3, -0.01, 0.004)},
             "topic": {"ner": (0.006, 0.003, 3, -0.001, 0.013), "sentiment": None}}  # fmt: skip
    plots.plot_affinity(tmp_path / "affinity.png", cells)
    labels = {t.get_text(): t.get_color() for t in figures[0].axes[0].texts}
    # -3.7 is the colour map's darkest red: black on it could not be read.
    assert labels == {"-3.7": "white", "-0.4": "black", "+0.6": "black"}


def test_learned_loss_weights_are_compared_with_the_fixed_ones_by_seed(tmp_path):
    from mtl_keras import study as lib

    fixed, learned = "topic+sentiment+ner+similarity", "topic+sentiment+ner+similarity-uncertainty"
    rows = [{"grid": "multitask", "config": config, "seed": s, "commit": "abc", "sts_after": sts,
             "topic_accuracy": topic, **weights}
            for s in range(3)
            for config, sts, topic, weights in [
                (fixed, 80.0 + s, 0.9, {}),
                (learned, 82.0 + s, 0.9 + s / 100, {"topic_loss_weight": 2.0 + s})]]  # fmt: skip
    text = "\n".join(lib.multitask_section(tmp_path, rows, "multitask"))
    assert f"learned (uncertainty weighting, `{learned}`) minus fixed (`{fixed}`: topic 1," in text
    assert "| topic_accuracy | sentiment_accuracy | ner_entity_f1 | similarity_pearson |" in text
    assert "| +0.0100 ± 0.0100 | – | – | – | **+2.00 ± 0.00** |" in text
    assert "Learned factors exp(−s) at the end (mean ± sample std over seeds): topic 3 ± 1." in text
    one_seed = [r for r in rows if r["seed"] == 0]
    text = "\n".join(lib.multitask_section(tmp_path, one_seed, "multitask"))
    assert "| – | – | – | – | – |" in text  # nothing to pair with one seed
    assert "at the end (mean ± sample std over seeds): topic 2." in text


def test_sequential_configs_train_the_second_task_from_the_first_alone(
    tiny_preset, tiny_data_dir, tmp_path
):
    import json

    from mtl_keras import study as lib

    then = lib.run_config(tmp_path, "topic", "topic-then-sentiment", 1)
    assert then.tasks == ("topic", "sentiment") and then.train_examples == {"topic": 0}
    assert then.max_train_examples == 2000 and "sentiment-then-topic" in lib.GRIDS["multitask"][1]
    assert "ner-then-similarity-alldata" in lib.GRIDS["multitask-alldata"][1]
    tiny = {"preset": str(tiny_preset), "data_dir": str(tiny_data_dir), "max_length": 16,
            "batch_size": 4, "learning_rate": 1e-3, "measure_sts": False}  # fmt: skip
    metrics = lib.sequential_run(tmp_path, "multitask", "topic-then-sentiment", 0, tiny)
    first = tmp_path / "multitask-first" / "topic-seed0"
    assert json.loads((first / "metrics.json").read_text())["tasks"] == ["topic"]
    assert metrics["train_examples"]["topic"] == 0 and metrics["train_examples"]["sentiment"] > 0
    assert metrics["config"]["init_from"] == str(first / "model.keras")
    rows = lib.rows_from_runs(tmp_path)  # the second stage is the config's row; not the first
    assert [(r["grid"], r["config"]) for r in rows] == [("multitask", "topic-then-sentiment")]
    assert "topic_accuracy" in rows[0] and "sentiment_accuracy" in rows[0]


def test_sequential_orders_are_compared_with_alone_and_together_by_seed(tmp_path):
    from mtl_keras import study as lib

    def run(config, seed, **values):
        return {"grid": "multitask", "config": config, "seed": seed, "commit": "abc",
                "sts_after": 80.0, **values}  # fmt: skip

    rows = [
        row
        for s in range(3)
        for row in (
            run("topic", s, topic_accuracy=0.90),
            run("sentiment", s, sentiment_accuracy=0.70),
            run("topic+sentiment", s, topic_accuracy=0.92, sentiment_accuracy=0.71),
            run(
                "topic-then-sentiment",
                s,
                topic_accuracy=0.80 + s / 100,
                sentiment_accuracy=0.71,
                sts_after=79.0,
            ),  # fmt: skip
        )
    ]
    text = "\n".join(lib.sequential_part(rows, "multitask", lib.summarise(rows, "multitask")))
    assert "| topic (topic_accuracy), then sentiment (sentiment_accuracy) | 3 | " in text
    assert ("| **-0.0900 ± 0.0100** | **-0.1100 ± 0.0100** | **+0.0100 ± 0.0000** | "
            "+0.0000 ± 0.0000 | **-1.00 ± 0.00** |") in text  # fmt: skip
    assert lib.sequential_part(rows[:3], "multitask", lib.summarise(rows[:3], "multitask")) == []


def test_a_users_task_joins_the_multitask_grid_for_the_block(
    tiny_preset, tiny_data_dir, tmp_path, capsys
):
    """`--task mine=PATH`: the user's task alone, beside each built-in task and with all
    four, run and reported like the built-in ones; the grids are as before afterwards."""
    from mtl_keras import study as lib

    texts = ["the team won the match", "stocks fell", "a new film star", "the market fell",
             "sport team won", "new phone chip", "the lazy dog", "the quick fox"]  # fmt: skip
    rows = [f"{t} {i},{'up' if 'won' in t or 'new' in t else 'down'}"
            for i in range(4) for t in texts]  # fmt: skip
    (tmp_path / "mine.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    before = (dict(lib.CONFIGS), list(lib.GRIDS["multitask"][1]))
    runner = (f"--preset {tiny_preset} --data-dir {tiny_data_dir} --max-length 16 "
              "--batch-size 4 --learning-rate 1e-3 --no-sts")  # fmt: skip
    argv = ["--grids", "multitask", "--scenarios", "topic+mine", "--seeds", "0",
            "--task", f"mine={tmp_path / 'mine.csv'}", "--runs-dir", str(tmp_path / "runs"),
            "--results-dir", str(tmp_path / "results"), "--no-transfer",
            "--runner-args", runner]  # fmt: skip
    study.main(argv)
    assert (dict(lib.CONFIGS), list(lib.GRIDS["multitask"][1])) == before
    assert "mine" not in lib.OWN_TASKS
    found = lib.rows_from_runs(tmp_path / "runs")
    assert [(r["config"], r["seed"], r["tasks"]) for r in found] == [
        ("topic+mine", 0, "topic,mine")
    ]
    assert {"mine_accuracy", "mine_macro_f1", "topic_accuracy"} <= set(found[0])
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| mine (accuracy) |" in text and "| + mine | + all |" in text
    # Rebuilt from the csv without --task: the rows stay, and the command says how to report them.
    assert lib.unreported_tasks(found) == ["mine"]
    capsys.readouterr()
    study.main(["--report-only", "--from-csv", str(tmp_path / "results" / "study.csv"),
                "--runs-dir", str(tmp_path / "none"), "--results-dir", str(tmp_path / "again")])  # fmt: skip
    assert "RESULTS.md reports them with --task mine=PATH" in capsys.readouterr().out
    assert lib.rows_from_csv(tmp_path / "again" / "study.csv") == lib.rows_from_csv(
        tmp_path / "results" / "study.csv"
    )
    with lib.own_tasks_in_grids([_task(tmp_path)]) as added:
        assert lib.unreported_tasks(found) == []
        assert {"mine", "ner+mine", "topic+sentiment+ner+similarity+mine", "mine-alldata"} <= set(
            added
        )
        config = lib.run_config(tmp_path, "", "topic+mine", 0)
        assert [getattr(t, "name", t) for t in config.tasks] == ["topic", "mine"]
        assert config.max_train_examples == 2000
        with pytest.raises(InputError, match="'mine' is in the study already"):
            with lib.own_tasks_in_grids([_task(tmp_path)]):
                pass
    assert "mine" not in lib.CONFIGS
    with lib.own_tasks_in_grids([]) as added:  # no task of yours: the grids as they are
        assert added == [] and list(lib.GRIDS["multitask"][1]) == before[1]


def _task(folder):
    from mtl_keras.tasks import from_files

    return from_files("mine", folder / "mine.csv")
