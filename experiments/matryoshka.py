"""Matryoshka training against full-width training only: STS-B and retrieval on STS-B
test pairs scored 4 or more, with the embedding cut to 384, 256, 128 and 64 values,
three seeds, paired by seed.

    python -m experiments.matryoshka [--seeds 0,1,2]

A thin wrapper over `mtl_keras.study.matryoshka`; writes results/matryoshka.md (the
table, with the commit and CPU it was made at) and prints it.
"""

from experiments.cli import run_main, study_main
from mtl_keras.study import matryoshka


def main(argv=None):
    return study_main(matryoshka, __doc__, "results/matryoshka.md", argv)


if __name__ == "__main__":
    run_main(main)
