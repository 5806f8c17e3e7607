"""Training precision: our train step in float32 against mixed_bfloat16 (bfloat16 products,
float32 weights), on the same real batches, each in its own process, against the peak of
its precision measured first in the same run (`benchmarks.peak`).

    python -m benchmarks.precision

Where the CPU has no bfloat16 instructions, mixed_bfloat16 is refused by `RunConfig`; here
it is measured anyway only where `provenance.bf16_capable()` holds.
"""

import argparse
import pickle
import tempfile
from pathlib import Path

from benchmarks import peak
from benchmarks.common import write_result
from benchmarks.flops import training_flops
from benchmarks.train_step import in_own_process, real_batches
from mtl_keras.provenance import bf16_capable


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    if not bf16_capable():
        print("this CPU has no bfloat16 instructions (AVX-512 BF16 or AMX): nothing to compare")
        return
    peaks = {"float32": peak.measure(("numpy", "tensorflow"))["peak_gflops"],
             "mixed_bfloat16": peak.measure_low_precision()["bf16"]["peak"]}  # fmt: skip
    batches = real_batches(args.steps)
    step_flops = training_flops([b[0]["token_ids"].shape for b in batches]) / len(batches)
    sides = {}
    with tempfile.TemporaryDirectory() as folder:
        batches_file = str(Path(folder) / "batches.pkl")
        Path(batches_file).write_bytes(pickle.dumps(batches))
        for precision in ("float32", "mixed_bfloat16", "float32"):  # float32 twice: drift
            side = in_own_process("keras", batches_file, args.steps, "--precision", precision)
            sides.setdefault(precision, []).append(side["steps_per_s"])
    rows = {}
    for precision, rates in sides.items():
        rate = max(rates)
        gflops = rate * step_flops / 1e9
        rows[precision] = {"steps_per_s": rate, "runs": rates, "gflops": gflops,
                           "peak_gflops": peaks[precision],
                           "fraction_of_peak": gflops / peaks[precision]}  # fmt: skip
        print(precision, rows[precision])
    ratio = rows["mixed_bfloat16"]["steps_per_s"] / rows["float32"]["steps_per_s"]
    print(f"mixed_bfloat16 / float32: {ratio:.2f}x")
    write_result("precision", {"steps": args.steps, "batch_size": 32, "rows": rows,
                               "bf16_vs_float32": ratio, "step_gflop": step_flops / 1e9})  # fmt: skip


if __name__ == "__main__":
    main()
