"""Issue 11, round 18 (scratch, not in the package): the label check with a confidence threshold.

`ganaug evaluate`, with one change to `ganaug.resample.LabelCheck.judge`: a try is accepted only when CHECK's
argmax is its label *and* CHECK gives the label a probability of at least TAU (the package accepts on the argmax
alone). Run from the repository root:

    TAU=0.9 python benchmarks/results/coverage_cpu_round18/confidence/confidence_check.py evaluate RUN \
        --evaluator benchmarks/results/evaluators/mnist_cpu --data-root ../shared/data --temperature 1.05 \
        --label-check CHECK --threads 2 --json tau0.9.t1.05.evaluate.json

The JSON records the check's sha256 but not TAU (the file name does). Do not pass --cas: its cache key does not
know TAU either.
"""

import os
import sys

from ganaug import resample
from ganaug.cli import main

TAU = float(os.environ["TAU"])
_argmax_judge = resample.LabelCheck.judge


def judge(self, images, labels):
    agrees, score = _argmax_judge(self, images, labels)
    return agrees & (score >= TAU), score


resample.LabelCheck.judge = judge

if __name__ == "__main__":
    sys.exit(main())
