"""Evaluation throughput against `SentenceEncoder.encode` on the same sentences.

    python -m benchmarks.evaluation

In one process, with the pretrained encoder: a run's final evaluation of the test split
(topic + sentiment: reading, tokenizing, sorting by length, the forward pass and every
metric) against `encode` of the same test texts. Both at batch 32 and length 128.
"""

import argparse
import time

from benchmarks.common import peak_rss_mb, write_result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from mtl_keras import MultiTaskTrainer, RunConfig, SentenceEncoder
    from mtl_keras.data import load

    config = RunConfig(scenario="frozen_all", tasks=("topic", "sentiment"), max_length=128)
    run = MultiTaskTrainer(config)
    run.attach_optimizer(steps_per_epoch=1)  # compiled: evaluate needs the metrics
    texts = [
        row["text"].decode()
        for task in run.tasks
        for row in load(task.dataset, "test").as_numpy_iterator()
    ]
    encoder = SentenceEncoder(run.model.backbone, run.tokenizer, 128)
    encoder.encode(texts[:64])  # trace
    run.evaluate("test")  # trace (and the split's first read)
    evaluation, encoding = [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        run.eval_data.clear()  # each repeat reads and tokenizes the split again
        start = time.perf_counter()
        metrics = run.evaluate("test")
        evaluation.append(time.perf_counter() - start)
        start = time.perf_counter()
        encoder.encode(texts)
        encoding.append(time.perf_counter() - start)
    examples = sum(m["examples"] for m in metrics.values())
    assert examples == len(texts), (examples, len(texts))
    rates = {
        "evaluation_sentences_per_s": len(texts) / sorted(evaluation)[len(evaluation) // 2],
        "encode_sentences_per_s": len(texts) / sorted(encoding)[len(encoding) // 2],
    }
    rates["ratio"] = rates["evaluation_sentences_per_s"] / rates["encode_sentences_per_s"]
    print(rates)
    write_result("evaluation", {"sentences": len(texts), "repeats": args.repeats,
                                "evaluation_seconds": evaluation, "encode_seconds": encoding,
                                **rates, "peak_rss_mb": peak_rss_mb()})  # fmt: skip


if __name__ == "__main__":
    main()
