"""Does generated data make a classifier better? The honest downstream protocol (``ganaug bench downstream``).

For each budget of real labelled images per class and each seed, the seed draws the stratified subset,
trains a GAN on that subset ONLY, and seeds a fixed small CNN classifier trained under each condition:

    a  real only                        c  real + classical augmentation (the dataset's: random affine
                                           for digits, 2-pixel shifts + horizontal flips for clothes)
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

    ganaug bench downstream --profile smoke                                   # digits, a few minutes
    ganaug bench downstream --profile cpu --data-root DATA                    # MNIST on a 2-core machine
    ganaug bench downstream --profile cpu-fashion --data-root DATA            # Fashion-MNIST
    ganaug bench downstream --dataset imagefolder --data-root DIR --augment shift-flip   # your images

``--dataset imagefolder`` (:mod:`.folders`) runs a profile (``cpu`` unless ``--profile`` says otherwise) on
``DIR/train/<class>/`` and ``DIR/test/<class>/``, conditions (a)-(d), with the classical augmentation
``--augment`` names. ``--pool`` runs the pool protocol (:mod:`.pool`): few labels and the rest of the split
unlabelled, where pseudo-label self-training (p) is the reference and (q) adds a GAN trained on the
pseudo-labelled pool.

Writes ``--out`` (default ``runs/benchmarks/downstream/<name>/``): ``report.md``, ``results.json`` (every
number), ``accuracy_vs_budget.png``, ``per_class_gain.png`` and ``samples_<budget>.png`` (a GAN grid per budget).

Modules: :mod:`.profiles` (what fixes the numbers), :mod:`.cells` (GANs and classifiers, cached),
:mod:`.folders` (image folders), :mod:`.stats`, :mod:`.report`, :mod:`.machine` (what it ran on, written into every
results file, also by the source checkout's ``benchmarks/`` scripts), :mod:`.grid` (the driver), :mod:`.pool` and
:mod:`.cli`. A source checkout's ``benchmarks/downstream`` adds the lab's probes and levers on top of them.
"""

from __future__ import annotations

from ganaug.errors import InputError

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
from .folders import check_image_folder
from .grid import run
from .pool import run_pool
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
    "check_image_folder",
    "config_key",
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
    "run_pool",
    "summary",
    "synthetic",
    "test_accuracy",
    "train_classifier",
    "train_gan",
    "verdict",
    "write_report",
]
