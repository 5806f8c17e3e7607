"""Hard negatives (mined by the pretrained encoder) against in-batch negatives only:
retrieval on STS-B test pairs scored 4 or more, three seeds, paired by seed.

    python -m experiments.hard_negatives [--seeds 0,1,2]

A thin wrapper over `mtl_keras.study.negatives`; writes results/hard-negatives.md (the
table, with the commit and CPU it was made at) and prints it.
"""

from experiments.cli import run_main, study_main
from mtl_keras.study import negatives


def main(argv=None):
    return study_main(negatives, __doc__, "results/hard-negatives.md", argv)


if __name__ == "__main__":
    run_main(main)
