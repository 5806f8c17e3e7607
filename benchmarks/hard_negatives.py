"""The cost of a contrastive step's options: one hard negative per anchor, and Matryoshka
loss at four widths (384, 256, 128, 64), each against in-batch negatives only at full
width, same real pairs, same process, same batches otherwise.

    python -m benchmarks.hard_negatives

STS-B training pairs scored 4 or more (anchor, positive); the triplets add, as each
anchor's negative, the positive of the next pair (a real sentence: the cost of a third
text per example does not depend on how it was chosen). all-MiniLM-L6-v2, batch 32,
`--max-length 64`, AdamW; the variants alternate (in-batch, triplets, Matryoshka, then
again) and each keeps its better run. GFLOP/s count the padded texts each step ran
(`benchmarks.flops`), against the fp32 matmul peak measured first in the same run.
"""

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import peak
from benchmarks.common import write_result
from benchmarks.flops import training_flops
from mtl_keras.encoding.preprocessing import FEATURES, NEGATIVE_FEATURES, PAIR_FEATURES

TOKEN_IDS = (FEATURES[0], PAIR_FEATURES[0], NEGATIVE_FEATURES[0])  # each text group's ids
WIDTHS = (384, 256, 128, 64)  # the Matryoshka variant's (sentence-transformers' usual)


def task_files(folder):
    """{"in-batch": pairs file, "hard negatives": triplets file} of the real pairs."""
    from mtl_keras.data import sources

    pairs, _ = sources.read_stsb()
    close = [p for p in pairs["train"] if p["score"] >= 4]
    rows = [{"anchor": p["sentence1"], "positive": p["sentence2"],
             "negative": close[(i + 1) % len(close)]["sentence2"]}
            for i, p in enumerate(close)]  # fmt: skip
    files = {}
    for name, keep in (("in-batch", ("anchor", "positive")), ("hard negatives", None)):
        path = Path(folder) / f"{name.replace(' ', '_')}.jsonl"
        lines = ({k: v for k, v in r.items() if keep is None or k in keep} for r in rows)
        path.write_text("\n".join(map(json.dumps, lines)) + "\n", encoding="utf-8")
        files[name] = path
    return files


def batches_of(task, steps, max_length=64, batch_size=32):
    """`steps` training batches (numpy) of the task, as a run makes them."""
    from mtl_keras.data.pipeline import training_stream
    from mtl_keras.encoding import presets
    from mtl_keras.encoding.preprocessing import make_preprocessor

    tokenizer = presets.load_tokenizer(presets.default_preset_dir())
    stream, _, _ = training_stream([task], make_preprocessor(tokenizer, max_length),
                                   batch_size=batch_size, max_length=max_length, seed=0)  # fmt: skip
    return list(stream.take(steps).as_numpy_iterator())


def step_shapes(batches):
    """(rows, padded length) of every text group each step encodes: anchors, positives and
    (rows x k, length) of the hard negatives."""
    return [(int(np.prod(x[name].shape[:-1])), x[name].shape[-1])
            for x, _, _ in batches for name in TOKEN_IDS if name in x]  # fmt: skip


def steps_per_second(task, batches, warmup=3):
    """Train steps/s of a fresh model on `batches` (after `warmup` untimed steps)."""
    import keras
    import tensorflow as tf

    from mtl_keras.encoding import presets
    from mtl_keras.model.multitask import MultiTaskModel, compile_model
    from mtl_keras.training.callbacks import EpochTimer

    model = MultiTaskModel(presets.load_backbone(presets.default_preset_dir()), [task])
    compile_model(model, keras.optimizers.AdamW(5e-5))
    spec = tf.nest.map_structure(lambda a: tf.TensorSpec([None] * a.ndim, a.dtype), batches[0])
    data = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=spec)
    model.fit(data.repeat(), steps_per_epoch=warmup, verbose=0)  # trace before timing
    timer = EpochTimer()
    model.fit(data.repeat(), steps_per_epoch=len(batches), verbose=0, callbacks=[timer])
    return len(batches) / timer.times[-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args(argv)
    from mtl_keras.tasks import from_files

    limit = peak.measure()
    print(f"fp32 matmul peak {limit['peak_gflops']:.0f} GFLOP/s ({limit['peak_from']})")
    with tempfile.TemporaryDirectory() as folder:
        tasks = {name: from_files("qa", path) for name, path in task_files(folder).items()}
        batches = {name: batches_of(task, args.steps) for name, task in tasks.items()}
        tasks["matryoshka"] = dataclasses.replace(  # the in-batch task at four widths
            tasks["in-batch"], matryoshka_dims=WIDTHS, matryoshka_weights=(1.0,) * len(WIDTHS)
        )
        batches["matryoshka"] = batches["in-batch"]
        rates = {name: [] for name in tasks}
        for name in [*tasks, *tasks]:  # alternated: drift hits both
            rates[name].append(steps_per_second(tasks[name], batches[name]))
    rows = {}
    for name, runs in rates.items():
        flops = training_flops(step_shapes(batches[name])) / len(batches[name])
        best = max(runs)
        rows[name] = {"steps_per_s": best, "runs": runs, "step_gflop": flops / 1e9,
                      "gflops": best * flops / 1e9,
                      "fraction_of_peak": best * flops / 1e9 / limit["peak_gflops"]}  # fmt: skip
        print(f"{name}: {best:.3f} steps/s, {rows[name]['gflops']:.0f} GFLOP/s "
              f"({rows[name]['fraction_of_peak']:.0%} of the peak)")  # fmt: skip
    cost, widths = (rows["in-batch"]["steps_per_s"] / rows[name]["steps_per_s"]
                    for name in ("hard negatives", "matryoshka"))  # fmt: skip
    print(f"a step with one hard negative per anchor takes {cost:.2f}x the in-batch step")
    print(f"a step with Matryoshka loss at {len(WIDTHS)} widths takes {widths:.2f}x")
    write_result("hard_negatives", {"batch_size": 32, "max_length": 64, "steps": args.steps,
                                    "rows": rows, "step_time_ratio": cost,
                                    "matryoshka_widths": list(WIDTHS),
                                    "matryoshka_step_time_ratio": widths,
                                    "matmul_peak": limit})  # fmt: skip


if __name__ == "__main__":
    main()
