"""Evaluation throughput against `SentenceEncoder.encode` on the same sentences.

    python -m benchmarks.evaluation

In one process, with the pretrained encoder: a run's final evaluation of the test split
(topic + sentiment: reading, tokenizing, sorting by length, the forward pass and every
metric) against `encode` of the same test texts. Both at batch 32 and length 128, sorted
by length: each side's GFLOP/s is counted from the same padded batches
(`benchmarks.flops.encode_flops`) and held against the machine's fp32 matmul peak,
measured first in the same run (`benchmarks.peak`).
"""

import argparse
import time

from benchmarks import peak
from benchmarks.common import peak_rss_mb, write_result
from benchmarks.encode import word_piece_lengths
from benchmarks.flops import encode_flops


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    limit = peak.measure()  # before this process loads TensorFlow's thread pools
    print(f"fp32 matmul peak {limit['peak_gflops']:.0f} GFLOP/s ({limit['peak_from']})")
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
    flops = encode_flops(word_piece_lengths(texts, 128), 32)
    for side in ("evaluation", "encode"):
        gflops = flops["padded"] / len(texts) * rates[f"{side}_sentences_per_s"] / 1e9
        rates[f"{side}_gflops"] = gflops
        rates[f"{side}_fraction_of_peak"] = gflops / limit["peak_gflops"]
    print(rates)
    write_result("evaluation", {"sentences": len(texts), "repeats": args.repeats,
                                "evaluation_seconds": evaluation, "encode_seconds": encoding,
                                **rates, "flops": flops, "matmul_peak": limit,
                                "peak_rss_mb": peak_rss_mb()})  # fmt: skip


if __name__ == "__main__":
    main()
