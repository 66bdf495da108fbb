"""The downstream benchmark's lab: ``ganaug bench downstream`` (the package's :mod:`ganaug.downstream`) and the
experiments that stay in the source checkout.

``python -m benchmarks.downstream`` takes every option of ``ganaug bench downstream`` and runs the same
protocol, with the lab's additions:

- ``--probes NAMES`` runs named levers (:data:`.profiles.PROBES`: soft labels, the filter, the synthetic share,
  a loss weight, fine-tuning, sampling temperature, shared style, the classifier budget, style mixing between
  inverted training images, latents far from them, learned elastic deformation and its hand-set control) as
  conditions (a)-(d) on the same seeds and writes one table, ``probes.md`` (:mod:`.probes`); ``--with PROBE``
  runs the whole profile with one probe's lever.
- :class:`.profiles.Profile` adds the lab's levers to the product's profile; :mod:`.levers` (latent inversion,
  deformed items) and :mod:`.deform` (the learned elastic deformation) implement them.

    python -m benchmarks.downstream --profile smoke                       # digits, CI, a few minutes
    python -m benchmarks.downstream --profile cpu --data-root ../shared/data   # this 2-core machine
    python -m benchmarks.downstream --profile cpu --probes all --budgets 10 --seeds 1 --data-root ../shared/data

(from the checkout's root; ``python benchmarks/downstream`` does the same). The names below are the
product's, re-exported, and the lab's modules: ``cells``, ``grid``, ``pool``, ``report`` and ``stats`` are the
product's modules.
"""

from __future__ import annotations

from ganaug.threads import prepare_environment

prepare_environment()  # before the modules below import torch: idle OpenMP threads sleep instead of spinning

from ganaug.downstream import cells, folders, grid, pool, report, stats
from ganaug.downstream.cells import (
    Data,
    gan_config,
    gan_dir,
    gan_quality,
    judge,
    load_data,
    predict,
    real_subset,
    run_cell,
    test_accuracy,
    train_classifier,
    train_gan,
)
from ganaug.downstream.grid import run
from ganaug.downstream.report import write_report
from ganaug.downstream.stats import aggregate, summary, verdict
from ganaug.errors import InputError

from . import deform, levers, probes, profiles
from .cli import main
from .levers import synthetic
from .profiles import (
    CONDITIONS,
    FULL,
    PROBES,
    PROFILES,
    REFERENCE,
    Profile,
    budget_name,
    config_key,
    probe_profile,
    resolve_profile,
)

__all__ = [
    "CONDITIONS",
    "FULL",
    "PROBES",
    "PROFILES",
    "REFERENCE",
    "Data",
    "InputError",
    "Profile",
    "aggregate",
    "budget_name",
    "cells",
    "config_key",
    "deform",
    "folders",
    "gan_config",
    "gan_dir",
    "gan_quality",
    "grid",
    "judge",
    "levers",
    "load_data",
    "main",
    "pool",
    "predict",
    "probe_profile",
    "probes",
    "profiles",
    "real_subset",
    "report",
    "resolve_profile",
    "run",
    "run_cell",
    "stats",
    "summary",
    "synthetic",
    "test_accuracy",
    "train_classifier",
    "train_gan",
    "verdict",
    "write_report",
]
