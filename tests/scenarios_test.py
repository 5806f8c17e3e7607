"""Every scenario trains exactly the weight groups it should (tiny BERT, tiny data)."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from experiments import run
from mtl_keras.data import load
from mtl_keras.data.sources import NER_TYPES
from mtl_keras.encoding.preprocessing import trim_padding
from mtl_keras.model.backbone import TunableBertBackbone
from mtl_keras.model.multitask import MultiTaskModel
from mtl_keras.tasks import resolve_tasks
from mtl_keras.training.layerwise_lr import LayerwiseLR
from mtl_keras.training.scenarios import SCENARIOS, gradual_stages
from tests.conftest import make_tiny_backbone, tiny_run_argv

GROUPS = (
    "embeddings",
    "transformer_layer_0",
    "transformer_layer_1",
    "pooled_dense",
    "topic",
    "sentiment",
)


def group_of(path):
    if path.split("/")[0] in (
        "token_embedding",
        "position_embedding",
        "segment_embedding",
        "embeddings_layer_norm",
    ):
        return "embeddings"
    return path.split("/")[0]


def weights_by_group(model):
    groups = {}
    for variable in model.weights:
        if "lora" in variable.path:
            continue
        groups.setdefault(group_of(variable.path), []).append(np.array(variable.numpy()))
    return groups


def run_scenario(tiny_preset, tiny_data_dir, out, scenario, *extra):
    more = ["--scenario", scenario, "--epochs", "2", "--seed", "7", "--frozen-layers", "1", *extra]
    return run.main(tiny_run_argv(tiny_preset, tiny_data_dir, out, *more))


@pytest.fixture(scope="module")
def runs(tiny_preset, tiny_data_dir, tmp_path_factory):
    """One short run per scenario, same seed: {name: (metrics, reloaded model)}."""
    root = tmp_path_factory.mktemp("scenario_runs")
    out = {}
    for name in SCENARIOS:
        extra = ["--learning-rate", "1e-3", "--lora-rank", "2"]
        if name == "llrd":  # trained on after reload: the default decay ends at a rate of 0
            extra += ["--schedule", "constant"]
        metrics = run_scenario(tiny_preset, tiny_data_dir, root / name, name, *extra)
        out[name] = (metrics, keras.models.load_model(root / name / "model.keras"), root / name)
    return out


EXPECTED_CHANGED = {
    "full": {"embeddings", "transformer_layer_0", "transformer_layer_1", "topic", "sentiment"},
    "frozen_all": set(),
    "frozen_backbone": {"topic", "sentiment"},
    "frozen_head_a": {"embeddings", "transformer_layer_0", "transformer_layer_1", "sentiment"},
    "frozen_head_b": {"embeddings", "transformer_layer_0", "transformer_layer_1", "topic"},
    "frozen_lower": {"transformer_layer_1", "topic", "sentiment"},
    # 2 epochs, one stage each: heads only, then the top layer too.
    "gradual_unfreeze": {"transformer_layer_1", "topic", "sentiment"},
    "llrd": {"embeddings", "transformer_layer_0", "transformer_layer_1", "topic", "sentiment"},
    # keras-hub LoRA leaves the query/value biases trainable; the rest is checked below.
    "lora": {"transformer_layer_0", "transformer_layer_1", "topic", "sentiment"},
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_exactly_the_expected_groups_change(runs, scenario):
    start = weights_by_group(runs["frozen_all"][1])  # same seed: the untrained model
    end = weights_by_group(runs[scenario][1])
    changed = {
        g
        for g in GROUPS
        if any(not np.array_equal(a, b) for a, b in zip(start[g], end[g], strict=True))
    }
    assert changed == EXPECTED_CHANGED[scenario]


def test_lora_changes_query_value_by_low_rank_only(runs):
    # Saving merges the adapters into the kernels (Keras' LoRA), so the reloaded query and
    # value kernels differ from the start by a low-rank matrix (--lora-rank 2); every
    # other backbone weight, but the query/value biases keras-hub leaves trainable, is fixed.
    metrics, model, _ = runs["lora"]
    assert model.backbone.lora_rank == 2
    start = {v.path: v.numpy() for v in runs["frozen_all"][1].weights}
    changed = {}
    for v in model.weights:
        if v.path in start and v.path.startswith(("transformer_layer", "token_embedding")):
            if not np.array_equal(start[v.path], v.numpy()):
                changed[v.path] = v.numpy() - start[v.path]
    attention = "transformer_layer_{}/self_attention_layer/{}/{}"
    assert set(changed) == {
        attention.format(i, name, kind)
        for i in (0, 1)
        for name in ("query", "value")
        for kind in ("kernel", "bias")
    }
    for path, delta in changed.items():
        if path.endswith("kernel"):
            singular = np.linalg.svd(delta.reshape(delta.shape[0], -1), compute_uv=False)
            # Keras factorises the (hidden, heads, head_dim) kernel per head: rank <= heads * r.
            assert (singular > 1e-3 * singular[0]).sum() <= 2 * 2, (path, singular)
    assert metrics["params"]["trainable"] < runs["full"][0]["params"]["trainable"]


def test_gradual_unfreezing_grows_trainable_and_keeps_optimizer_state(runs):
    metrics = runs["gradual_unfreeze"][0]
    counts = [stage["trainable_params"] for stage in metrics["stages"]]
    assert len(counts) == 2 and counts[0] < counts[1]
    steps = sum(metrics["train_examples"].values()) // 4
    assert metrics["optimizer_iterations"] == 2 * steps


def test_the_schedule_spans_every_stage_and_ends_at_zero(runs):
    from mtl_keras.training.schedules import WarmupDecay
    from tests.conftest import schedule_config

    metrics, model, _ = runs["gradual_unfreeze"]
    total = metrics["optimizer_iterations"]
    steps = sum(metrics["train_examples"].values()) // 4
    schedule = schedule_config(model.optimizer)  # as saved with the model
    assert schedule["total_steps"] == total == 2 * steps  # both stages, one schedule
    assert schedule["warmup_steps"] == round(0.1 * total) and schedule["decay"] == "linear"
    assert float(model.optimizer.learning_rate) == 0.0  # the rate after the last step
    assert float(WarmupDecay(**schedule)(total - 1)) > 0  # ... the last step still learned


def test_gradual_stage_plan():
    assert gradual_stages(num_layers=2, epochs=5, every=1) == [
        (0, 1, ("embeddings", "lower"), 2),
        (1, 2, ("embeddings", "lower"), 1),
        (2, 3, ("embeddings", "lower"), 0),
        (3, 5, (), 0),
    ]
    assert gradual_stages(num_layers=6, epochs=3, every=2) == [
        (0, 2, ("embeddings", "lower"), 6),
        (2, 3, ("embeddings", "lower"), 5),
    ]


def test_frozen_all_is_evaluated_and_saved_without_training(runs):
    metrics, _, folder = runs["frozen_all"]
    assert metrics["params"]["trainable"] == 0 and metrics["optimizer_iterations"] == 0
    assert set(metrics["test"]) == {"topic", "sentiment"}
    assert (folder / "model.keras").is_file() and (folder / "metrics.json").is_file()


def test_runner_writes_all_artefacts(runs):
    metrics, _, folder = runs["full"]
    for name in ("model.keras", "metrics.json", "history.csv", "curves.png"):
        assert (folder / name).stat().st_size > 0, name
    assert any((folder / "logs").rglob("events.out.tfevents*"))
    saved = json.loads((folder / "metrics.json").read_text())
    assert (
        saved["config"]["scenario"] == "full"
        and saved["params"]["total"] > saved["params"]["trainable"] > 0
    )
    assert set(saved["test"]["topic"]) >= {"accuracy", "macro_f1", "xent", "examples"}
    history = (folder / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and len(history) == 3  # header + 2 epochs
    assert len(saved["epoch_seconds"]) == 2


def test_ner_runs_report_f1_per_entity_type(tiny_run):
    saved = json.loads((tiny_run / "metrics.json").read_text())
    by_type = saved["test_entity_f1_by_type"]["ner"]
    assert set(by_type) == set(NER_TYPES) and all(0.0 <= f <= 1.0 for f in by_type.values())


def test_llrd_model_reloads_with_optimizer_and_keeps_training(runs, tiny_data_dir):
    metrics, model, folder = runs["llrd"]
    assert isinstance(model.optimizer, LayerwiseLR)
    assert int(model.optimizer.iterations.numpy()) == metrics["optimizer_iterations"] > 0
    assert model.optimizer.multipliers["^transformer_layer_1/"] == pytest.approx(0.8)
    x = {
        "token_ids": np.array([[2, 5, 6, 3]]),
        "padding_mask": np.ones((1, 4), "int32"),
        "segment_ids": np.zeros((1, 4), "int32"),
    }
    y = {"topic": np.array([1]), "sentiment": np.array([0])}
    before = model.get_layer("topic").kernel.numpy().copy()
    model.fit(x, y, epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == metrics["optimizer_iterations"] + 1
    assert not np.array_equal(before, model.get_layer("topic").kernel.numpy())


def test_frozen_backbone_runs_in_inference_mode():
    tasks = resolve_tasks("topic")
    x = {
        "token_ids": np.array([[2, 5, 6, 7, 3]]),
        "padding_mask": np.ones((1, 5), "int32"),
        "segment_ids": np.zeros((1, 5), "int32"),
    }
    backbone = TunableBertBackbone.from_backbone(make_tiny_backbone())
    backbone.inference_mode = True
    frozen = MultiTaskModel(backbone, tasks).embedding_model()
    a, b = (np.asarray(frozen(x, training=True)) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    dropping = MultiTaskModel(make_tiny_backbone(), tasks).embedding_model()
    c, d = (np.asarray(dropping(x, training=True)) for _ in range(2))
    assert not np.array_equal(c, d)  # the check above can fail: dropout is really on here


@pytest.fixture(scope="module")
def data_with_validation(tmp_path_factory):
    """Tiny sources grown until every split has topic and sentiment examples."""
    from mtl_keras.data import get_builder
    from tests.conftest import write_tiny_sources

    root = tmp_path_factory.mktemp("grown")
    sources = write_tiny_sources(root / "sources")
    words = "the quick brown fox jumps over lazy dog market sport team film".split()
    with open(sources["tweet_sentiment"], "a") as handle:
        for i in range(60):
            handle.write(
                f"{['negative', 'neutral', 'positive'][i % 3]},0.9,{words[i % 12]} {words[(i * 7) % 12]} {i}\n"
            )
    for i in range(40):
        (sources["bbc_news"] / "tech" / f"x{i:03d}.txt").write_text(f"T{i}\n\nnew phone chip {i} .")
    for name, source in sources.items():
        get_builder(name, root / "prepared", source=source)
    return root / "prepared"


def test_frozen_backbone_cache_matches_running_the_backbone(
    tiny_preset, data_with_validation, tmp_path
):
    cached = run_scenario(tiny_preset, data_with_validation, tmp_path / "cached", "frozen_backbone")
    direct = run_scenario(
        tiny_preset,
        data_with_validation,
        tmp_path / "direct",
        "frozen_backbone",
        "--no-cache",
        "--no-length-buckets",  # the cached embeddings are not bucketed: same batches
    )
    assert cached["embedding_cache"] and not direct["embedding_cache"]
    assert (
        cached["validation"]["sentiment"]["examples"] > 0
        and cached["validation"]["topic"]["examples"] > 0
    )
    for split in ("validation", "test"):
        for task in ("topic", "sentiment"):
            for key in ("accuracy", "xent"):
                assert cached[split][task][key] == pytest.approx(direct[split][task][key], abs=1e-4)
    assert cached["optimizer_iterations"] == direct["optimizer_iterations"]


def test_sentiment_is_also_scored_on_confidently_labelled_tweets(tiny_run, tiny_data_dir):
    saved = json.loads((tiny_run / "metrics.json").read_text())
    confident = saved["test_confident"]
    assert set(confident) == {"sentiment"}  # the only dataset with annotator confidence
    tweets = load("tweet_sentiment", "test", tiny_data_dir)
    expected = sum(float(e["confidence"]) >= 0.8 for e in tweets)
    assert confident["sentiment"]["min_confidence"] == 0.8
    assert confident["sentiment"]["examples"] == expected <= saved["test"]["sentiment"]["examples"]
    assert expected == 0 or 0.0 <= confident["sentiment"]["accuracy"] <= 1.0
    assert set(confident["sentiment"]) <= {
        "min_confidence",
        "examples",
        "accuracy",
        "macro_f1",
        "xent",
    }


def test_confident_metrics_hold_only_the_task_and_its_subset(tiny_preset, tiny_data_dir, tmp_path):
    from mtl_keras import MultiTaskTrainer, RunConfig

    config = RunConfig(tasks="topic,sentiment,ner", preset=str(tiny_preset), max_length=16,
                       data_dir=str(tiny_data_dir), output_dir=str(tmp_path), measure_sts=False)  # fmt: skip
    run = MultiTaskTrainer(config)
    run.attach_optimizer(steps_per_epoch=1)  # compiled, as after training
    confident = [e for e in load("tweet_sentiment", "train", tiny_data_dir)
                 if float(e["confidence"]) >= 0.8]  # fmt: skip
    got = run.confident_metrics("train")["sentiment"]
    assert got["examples"] == len(confident) > 0
    assert set(got) == {"min_confidence", "examples", "accuracy", "macro_f1", "xent"}
    # The same figures recomputed from the model's predictions on those tweets alone.
    texts = tf.constant([e["text"].numpy() for e in confident])
    logits = run.model(trim_padding(run.preprocessor(texts)), training=False)["sentiment"]
    labels = np.array([int(e["label"]) for e in confident])
    assert got["accuracy"] == pytest.approx(np.mean(np.argmax(logits, -1) == labels))
    xent = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    assert got["xent"] == pytest.approx(float(np.mean(xent)), rel=1e-5)


def optimizer_state(optimizer):
    """{variable name: value} of an optimizer's moments, step counts and so on."""
    return {v.path: v.numpy().copy() for v in optimizer.variables}


def test_gradual_unfreezing_keeps_the_optimizer_moments_across_stages(
    tiny_preset, tiny_data_dir, tmp_path
):
    from mtl_keras import MultiTaskTrainer, RunConfig

    config = RunConfig(scenario="gradual_unfreeze", tasks="topic,sentiment", epochs=2, seed=7,
                       preset=str(tiny_preset), data_dir=str(tiny_data_dir), max_length=16,
                       batch_size=4, learning_rate=1e-3, measure_sts=False, verbose=0)  # fmt: skip
    run = MultiTaskTrainer(config)
    data = run.load_data()
    run.attach_optimizer(data.steps)
    states, fit = [], run.fit_model.fit

    def watched_fit(*args, **kwargs):  # the optimizer's state as each stage starts and ends
        states.append(optimizer_state(run.optimizer))
        history = fit(*args, **kwargs)
        states.append(optimizer_state(run.optimizer))
        return history

    run.fit_model.fit = watched_fit
    run.fit(data, tmp_path)
    assert len(states) == 4  # two stages: heads, then the top layer too
    first_end, second_start, second_end = states[1], states[2], states[3]
    for name, value in first_end.items():  # nothing between the stages touched the state
        np.testing.assert_array_equal(second_start[name], value, err_msg=name)

    def moments(state, part):
        return [v for n, v in state.items() if part in n and n.endswith(("momentum", "velocity"))]

    head, top = moments(first_end, "topic_kernel"), moments(first_end, "transformer_layer_1_")
    assert head and top
    assert all(np.abs(m).max() > 0 for m in head)  # the heads trained in stage 1 ...
    assert all(np.abs(m).max() == 0 for m in top)  # ... the top layer was frozen ...
    assert all(np.abs(m).max() > 0 for m in moments(second_end, "transformer_layer_1_"))
    steps = run.optimizer.iterations.path  # one step count over both stages
    assert (int(first_end[steps]), int(second_end[steps])) == (data.steps, 2 * data.steps)
