"""Do generated digits make a classifier better? The honest downstream protocol.

For each budget of real labelled images per class and each seed, the seed draws the stratified subset,
trains a GAN on that subset ONLY, and seeds a fixed small CNN classifier trained under each condition:

    a  real only                        c  real + classical augmentation (the dataset's: random affine
                                           for digits, 2-pixel shifts + horizontal flips for Fashion-MNIST)
    b  real + generated                 d  real + classical augmentation + generated
    e  generated only (train on synthetic, test on real)

Every classifier trains for the same fixed number of steps (no early stopping, no model selection) and is
evaluated once, on the untouched test split. Batches of conditions with both kinds of data are
``real_fraction`` real (default half). The classification accuracy score (CAS) of a GAN trained on the
whole training split is condition (e) with that GAN.

Every finished GAN (a ganaug run folder, resumable) and every finished classifier (a JSON file holding its
config and results) is cached under ``--cache``, keyed by a hash of its config: an interrupted run
resumes where it stopped and ``--report-only`` rebuilds the report from the cache (an empty cache is an
error, never a report of nothing).

    python -m benchmarks.downstream --profile smoke                       # digits, CI, a few minutes
    python -m benchmarks.downstream --profile cpu --data-root ../shared/data   # this 2-core machine
    python -m benchmarks.downstream --profile full --data-root DATA --device cuda
    python -m benchmarks.downstream --profile cpu-fashion --data-root ../shared/data   # Fashion-MNIST
    python -m benchmarks.downstream --profile cpu --probes all --budgets 10 --seeds 1 --data-root ../shared/data

``--probes`` runs issue 12's levers (:data:`~.profiles.PROBES`: soft labels, the filter, the synthetic share,
a loss weight, fine-tuning, sampling temperature, shared style, the classifier budget, a GAN loss) as
conditions (a)-(d) on the same seeds and writes one table, ``probes.md``; ``--with PROBE`` runs the whole
profile with one probe's lever (a winner at every seed and budget).

``--pool`` runs the pool protocol (:mod:`.pool`): few labels and the rest of the split unlabelled, where
pseudo-label self-training (p) is the reference and (q) adds a GAN trained on the pseudo-labelled pool.

(from the checkout's root; ``python benchmarks/downstream`` and ``ganaug bench downstream`` do the same).
Writes ``--out`` (default ``runs/benchmarks/downstream/<name>/``): ``report.md``, ``results.json`` (every number), ``accuracy_vs_budget.png``,
``per_class_gain.png`` and ``samples_<budget>.png`` (a GAN grid per budget).

Modules: :mod:`.profiles` (what fixes the numbers, and the probes), :mod:`.cells` (GANs and classifiers,
cached), :mod:`.deform` (the learned elastic deformation lever), :mod:`.stats`, :mod:`.report`, :mod:`.grid` (the driver), :mod:`.probes`, :mod:`.pool` and :mod:`.cli`.
"""

from __future__ import annotations

from ganaug.threads import prepare_environment

prepare_environment()  # before the modules below import torch: idle OpenMP threads sleep instead of spinning

from ganaug.errors import InputError

from . import deform
from .cells import (
    Data,
    gan_config,
    gan_dir,
    gan_quality,
    judge,
    load_data,
    predict,
    real_subset,
    run_cell,
    synthetic,
    test_accuracy,
    train_classifier,
    train_gan,
)
from .cli import main
from .grid import run
from .profiles import CONDITIONS, FULL, PROFILES, REFERENCE, Profile, budget_name, config_key, resolve_profile
from .report import write_report
from .stats import aggregate, summary, verdict

__all__ = [
    "CONDITIONS",
    "FULL",
    "PROFILES",
    "REFERENCE",
    "Data",
    "InputError",
    "Profile",
    "aggregate",
    "budget_name",
    "config_key",
    "deform",
    "gan_config",
    "gan_dir",
    "gan_quality",
    "judge",
    "load_data",
    "main",
    "predict",
    "real_subset",
    "resolve_profile",
    "run",
    "run_cell",
    "summary",
    "synthetic",
    "test_accuracy",
    "train_classifier",
    "train_gan",
    "verdict",
    "write_report",
]
