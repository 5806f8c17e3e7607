"""Hard negatives (mined by the pretrained encoder) against in-batch negatives only:
retrieval on STS-B test pairs scored 4 or more, three seeds, paired by seed.

    python -m experiments.hard_negatives [--seeds 0,1,2]

A thin wrapper over `mtl_keras.study.negatives`; writes results/hard-negatives.md (the
table, with the commit and CPU it was made at) and prints it.
"""

import argparse
from pathlib import Path

from experiments.cli import run_main
from mtl_keras.provenance import code_commit, cpu_model
from mtl_keras.study import negatives


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="results/hard-negatives.md")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    rows, untrained = negatives.compare(seeds)
    made = f"Made at commit {code_commit()} on {cpu_model().get('cpu_model')}, seeds {seeds}."
    text = f"{made}\n\n{negatives.section(rows, untrained)}\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    run_main(main)
