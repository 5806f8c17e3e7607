import collections
import gc

import numpy as np
import pytest
import tensorflow as tf

from mtl_keras.data.loading import load
from mtl_keras.data.pipeline import evaluation_stream, sampling_weights, training_stream
from mtl_keras.encoding.preprocessing import align_word_tags, make_preprocessor
from mtl_keras.errors import InputError
from mtl_keras.tasks import resolve_tasks
from tests.conftest import TINY_VOCAB, make_tiny_tokenizer


def words(ids):
    return [TINY_VOCAB[i] for i in ids]


def test_first_word_piece_carries_the_tag():
    tokenizer = make_tiny_tokenizer()
    ids, tags, weights = align_word_tags(
        tf.constant(["The", "foxs", "jumps"]), tf.constant([0, 5, 0]), tokenizer, 10
    )
    assert words(ids.numpy()[:6]) == ["[CLS]", "the", "fox", "##s", "jumps", "[SEP]"]
    assert ids.numpy()[6:].tolist() == [0] * 4
    assert tags.numpy().tolist() == [0, 0, 5, 5, 0, 0, 0, 0, 0, 0]
    assert weights.numpy().tolist() == [0, 1, 1, 0, 1, 0, 0, 0, 0, 0]


def test_alignment_truncates_and_keeps_sep():
    tokenizer = make_tiny_tokenizer()
    ids, tags, weights = align_word_tags(
        tf.constant(["the"] * 10), tf.constant([1] * 10), tokenizer, 5
    )
    assert words(ids.numpy()) == ["[CLS]", "the", "the", "the", "[SEP]"]
    assert weights.numpy().tolist() == [0, 1, 1, 1, 0]


@pytest.mark.parametrize(
    "strategy, expected",
    [("proportional", [0.9, 0.1]), ("round_robin", [0.5, 0.5]), ("temperature", [0.75, 0.25])],
)
def test_sampling_weights(strategy, expected):
    np.testing.assert_allclose(sampling_weights([900, 100], strategy, 2.0), expected)


def test_unknown_sampling_is_refused():
    with pytest.raises(InputError, match="proportional, round_robin, temperature"):
        sampling_weights([1, 2], "random")


def test_every_example_has_exactly_one_weighted_head(tiny_data_dir):
    tasks = resolve_tasks("topic,sentiment,ner")
    pre = make_preprocessor(make_tiny_tokenizer(), 16)
    stream, steps, sizes = training_stream(
        tasks, pre, batch_size=4, max_length=16, data_dir=tiny_data_dir, seed=1
    )
    assert steps == sum(sizes.values()) // 4
    for x, y, w in stream.take(6):
        length = x["token_ids"].shape[1]
        assert length == int(tf.reduce_max(tf.reduce_sum(x["padding_mask"], 1)))
        assert y["ner"].shape == w["ner"].shape == (4, length)
        has = np.stack(
            [w["topic"].numpy() > 0, w["sentiment"].numpy() > 0, w["ner"].numpy().sum(1) > 0],
            axis=1,
        )
        assert has.sum(axis=1).tolist() == [1, 1, 1, 1]


def test_order_is_fixed_by_seed(tiny_data_dir):
    tasks = resolve_tasks("topic,sentiment")
    pre = make_preprocessor(make_tiny_tokenizer(), 16)

    def first_batches(seed):
        stream, _, _ = training_stream(tasks, pre, 4, 16, data_dir=tiny_data_dir, seed=seed)
        return [x["token_ids"].numpy().tolist() for x, _, _ in stream.take(3)]

    assert first_batches(3) == first_batches(3)
    assert first_batches(3) != first_batches(4)  # the seed really sets the order


def test_round_robin_alternates_tasks(tiny_data_dir):
    tasks = resolve_tasks("topic,sentiment")
    pre = make_preprocessor(make_tiny_tokenizer(), 16)
    stream, _, _ = training_stream(tasks, pre, 2, 16, "round_robin", data_dir=tiny_data_dir)
    for _, _, w in stream.take(5):
        assert w["topic"].numpy().tolist() == [1.0, 0.0]
        assert w["sentiment"].numpy().tolist() == [0.0, 1.0]


def test_proportional_sampling_follows_sizes(tiny_data_dir):
    tasks = resolve_tasks("topic,sentiment")
    pre = make_preprocessor(make_tiny_tokenizer(), 16)
    stream, _, sizes = training_stream(tasks, pre, 10, 16, data_dir=tiny_data_dir, seed=0)
    counts = np.zeros(2)
    for _, _, w in stream.take(200):
        counts += [w["topic"].numpy().sum(), w["sentiment"].numpy().sum()]
    expected = sampling_weights([sizes["topic"], sizes["sentiment"]])
    np.testing.assert_allclose(counts / counts.sum(), expected, atol=0.03)


def test_evaluation_stream_covers_each_split_once(tiny_data_dir):
    tasks = resolve_tasks("topic,ner")
    pre = make_preprocessor(make_tiny_tokenizer(), 16)
    data, eval_sizes = evaluation_stream(tasks, "train", pre, 3, 16, tiny_data_dir)
    batches = list(data)
    topic = sum(w["topic"].numpy().sum() for _, _, w in batches)
    ner_rows = sum((w["ner"].numpy().sum(1) > 0).sum() for _, _, w in batches)
    _, _, sizes = training_stream(tasks, pre, 1, 16, data_dir=tiny_data_dir)
    assert (topic, ner_rows) == (sizes["topic"], sizes["ner"])
    assert eval_sizes == sizes
    lengths = [int(n) for x, _, _ in batches for n in x["padding_mask"].numpy().sum(axis=1)]
    assert lengths == sorted(lengths, reverse=True)  # longest first, like encode


def test_every_pass_runs_without_autotuning(tiny_data_dir):
    """Autotuning made the end of each pass wait seconds (see `without_autotuning`)."""
    tasks = resolve_tasks("topic")
    pre = make_preprocessor(make_tiny_tokenizer(), 16)
    train, _, _ = training_stream(tasks, pre, 2, 16, data_dir=tiny_data_dir)
    evaluation, _ = evaluation_stream(tasks, "test", pre, 2, 16, tiny_data_dir)
    source = load("bbc_news", "test", tiny_data_dir)
    assert [d.options().autotune.enabled for d in (train, evaluation, source)] == [False] * 3


def test_a_split_can_be_read_as_a_subset(tiny_data_dir):
    from mtl_keras.data.pipeline import array_size, split_arrays

    preprocessor = make_preprocessor(make_tiny_tokenizer(), 16)
    task = resolve_tasks("sentiment")

    def size(where=None):
        return sum(
            array_size(split_arrays(task[0], task, s, preprocessor, 16, tiny_data_dir, where=where))
            for s in ("train", "validation", "test")
        )

    # Tiny tweets: confidences 0.9, 1.0, none (NaN), 0.7, 0.5, 0.8 once de-duplicated.
    assert (size(), size(lambda e: e["confidence"] >= 0.8)) == (6, 3)


def _traced_run(texts):
    """Tokenize `texts` in two batches through the traced function, as a run does; the
    preprocessor dies with this frame (a test's own locals can outlive `del` on 3.11)."""
    from mtl_keras.data import pipeline

    pre = make_preprocessor(make_tiny_tokenizer(), 8)
    assert pipeline.traced(pre) is pipeline.traced(pre)
    got = [pipeline.traced(pre)(tf.constant(part))["token_ids"].numpy() for part in texts]
    assert pipeline.traced(pre).experimental_get_tracing_count() == 1  # one graph, any size
    return np.concatenate(got), pre(tf.constant(sum(texts, [])))["token_ids"].numpy()


@pytest.mark.graph  # counts traces
def test_traced_tokenizer_is_reused_and_released():
    """One traced function per preprocessor, equal to calling it, and not kept alive by
    the cache once the run that made the preprocessor is gone."""
    from mtl_keras.data import pipeline

    gc.collect()
    held = len(pipeline._TRACED)
    got, expected = _traced_run([["the fox", "stocks fell ."], ["a new film star"]])
    np.testing.assert_array_equal(got, expected)
    gc.collect()
    assert len(pipeline._TRACED) == held


@pytest.fixture(scope="module")
def varied_lengths(tmp_path_factory):
    """Tiny sources plus tweets of 1 to 60 words: lengths across several buckets."""
    from mtl_keras.data import get_builder
    from tests.conftest import write_tiny_sources

    root = tmp_path_factory.mktemp("varied")
    sources = write_tiny_sources(root / "sources")
    with open(sources["tweet_sentiment"], "a") as handle:
        words = [w for w in TINY_VOCAB[5:] if w.isalpha()]  # no "," to split a CSV row
        for n in range(1, 61):
            text = " ".join(words[(n * 7 + i) % len(words)] for i in range(n))
            handle.write(f"{['negative', 'neutral', 'positive'][n % 3]},0.9,{text} {n}\n")
    get_builder("tweet_sentiment", root / "prepared", source=sources["tweet_sentiment"])
    return root / "prepared"


def test_length_buckets_group_lengths_and_lose_no_example(varied_lengths):
    from mtl_keras.data.pipeline import bucket_boundaries

    tasks, batch = resolve_tasks("sentiment"), 4
    pre = make_preprocessor(make_tiny_tokenizer(), 64)

    def rows(stream, batches):  # each example as its word pieces, padding cut off
        out, kept = [], []
        for x, _, _ in stream.take(batches):
            lengths = x["padding_mask"].numpy().sum(axis=1)
            kept.append(lengths)
            out += [tuple(r[:n]) for r, n in zip(x["token_ids"].numpy(), lengths, strict=True)]
        return out, kept

    bucketed, steps, sizes = training_stream(tasks, pre, batch, 64, data_dir=varied_lengths, seed=2)
    plain, _, _ = training_stream(tasks, pre, batch, 64, data_dir=varied_lengths, seed=2,
                                  length_buckets=False)  # fmt: skip
    boundaries = bucket_boundaries(64)
    batches = 3 * steps  # three epochs
    got, lengths = rows(bucketed, batches)
    buckets = [set(np.searchsorted(boundaries, n, side="right")) for n in lengths]
    assert all(len(b) == 1 for b in buckets)  # a batch holds one bucket's lengths
    assert len({b.pop() for b in buckets}) == len(boundaries) + 1  # and every bucket is used
    # Bucketing only reorders the shuffled stream: the first rows it emits are drawn from
    # its first rows, and at most (batch - 1) rows per bucket are still waiting, never lost.
    waiting = (len(boundaries) + 1) * (batch - 1)
    drawn, _ = rows(plain, batches + -(-waiting // batch))
    source = collections.Counter(drawn[: batches * batch + waiting])
    emitted = collections.Counter(got)
    assert not emitted - source  # nothing made up, nothing drawn twice
    assert sum((source - emitted).values()) <= waiting
    assert len(set(got)) == sizes["sentiment"]  # every training example came out


def test_the_stream_tokenizes_as_tokenizing_the_split_first_would(tiny_data_dir, tmp_path):
    """Tokenized in the stream, each example comes out as from the split tokenized first
    (the in-memory path the stream replaced), in the same order, past a pass's end."""
    from mtl_keras.data.orders import reshuffled_passes
    from mtl_keras.data.pipeline import split_arrays, tokenized_stream
    from mtl_keras.tasks import from_files

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("sentence1\tsentence2\tscore\n" + "".join(
        f"the fox {i}\tjumps over {'the ' * (i % 5)}dog\t{i % 4}\n" for i in range(60)))  # fmt: skip
    tasks = [*resolve_tasks("topic,sentiment"), from_files("pairs", pairs)]
    pre = make_preprocessor(make_tiny_tokenizer(), 16)
    for task in (tasks[0], tasks[2]):
        streamed, size = tokenized_stream(task, tasks, pre, 16, tiny_data_dir, 40, seed=3)
        arrays = split_arrays(task, tasks, "train", pre, 16, tiny_data_dir, 40)
        assert size == len(arrays[0]["token_ids"]) > 0
        before = reshuffled_passes(tf.data.Dataset.from_tensor_slices(arrays), size, 3)
        count = size + 7  # into the second pass
        for new, old in zip(streamed.take(count), before.take(count), strict=True):
            tf.nest.map_structure(np.testing.assert_array_equal, new, old)
