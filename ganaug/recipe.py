"""The low-budget recipe: how to train a GAN on a few labelled images per class, and how to mix its images in.

Both halves are what issue 12's downstream benchmark measured (``benchmarks/results/issue12.md``; the README's
downstream section has the tables), so a user gets the measured setup without reading the benchmark:

- **Training** (:func:`low_budget_fields`, :func:`low_budget_config`): ``ganaug train --per-class N`` with ``N``
  below :data:`LOW_BUDGET_BELOW` trains as the benchmark's tiny-budget GANs do: :data:`LOW_BUDGET_STEPS` G steps
  (epochs derived from the subset's size), batches of at most 64, the dataset's classical augmentation on the
  real images (:func:`ganaug.augment_ops.classical_for`: random affine for digits, shifts and flips for
  clothes), D half the default width, :data:`LOW_BUDGET_SAVES` grids and checkpoints. Without it a 100-image
  run would get the dataset's default epochs: 15 steps on MNIST.
- **Mixing** (:data:`MIX_PER_CLASS`, :data:`MIX_SHARE`, :data:`MIX_SMOOTHING`): a large generated pool, drawn
  at a 10% share of every batch, its labels smoothed by 0.2. ``ganaug.augment(real, run)`` with no rule and
  ``AugmentedDataset.sampler()`` with no share use it, as does ``ganaug.SyntheticMix(run)`` with no share.
  It is the benchmark's ``smooth-share-10`` lever: on Fashion-MNIST it added +1.85 [+1.10, +2.59] points to
  shifts and flips with 10 real images per class and +0.46 [+0.22, +0.70] with 50 (5 seeds, 95% CIs; +1.60
  [+0.75, +2.44] at 10 through ``augment`` and ``sampler``). On MNIST nothing beat random affine clearly: this
  lever −0.37 [−0.89, +0.15] and −0.22 [−0.86, +0.41] at 10 (two machines' GANs; +0.02 [−0.51, +0.55] through
  ``augment``) and +0.19 [−0.10, +0.47] at 50; hard labels at the same share +0.25 [−0.16, +0.66] and +0.28
  [+0.01, +0.54] at 10 (seed 0 picked it), +0.07 [−0.08, +0.21] at 50. The benchmark's original protocol, half
  of every batch generated with hard labels, lost 1.15 and 0.54 points there.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ganaug.config import ModelConfig, TrainConfig

#: ``--per-class`` below this many images per class gets the low-budget recipe (the downstream profiles'
#: ``gan_small_below``).
LOW_BUDGET_BELOW = 200
#: G steps of a low-budget run (the ``cpu`` profiles' ``gan_steps``).
LOW_BUDGET_STEPS = 6000
#: Sample grids and checkpoints of a low-budget run (with 10 images per class an epoch is one step).
LOW_BUDGET_SAVES = 40
#: The largest batch of a low-budget run (smaller when the subset holds fewer images).
LOW_BUDGET_BATCH = 64
#: D's width in a low-budget run (the downstream ``cpu`` profiles' ``ModelConfig(d_width=32)``; the default is 64).
LOW_BUDGET_D_WIDTH = 32

#: Generated images per class that ``augment(real, run)`` adds when no rule is given.
MIX_PER_CLASS = 500
#: The generated share of each batch: ``AugmentedDataset.sampler()`` and ``SyntheticMix(run)`` without a share.
MIX_SHARE = 0.1
#: Label smoothing of the generated items when the recipe's share is used.
MIX_SMOOTHING = 0.2


def epochs_for_steps(steps: int, n_images: int, batch_size: int) -> int:
    """Epochs that give at least ``steps`` G steps when an epoch is ``n_images // batch_size`` batches (>= 1)."""
    return max(1, math.ceil(steps / max(1, n_images // batch_size)))


def low_budget_fields(
    dataset: str, per_class: int, num_classes: int, *, batch_size: int | None = None, epochs: int | None = None
) -> dict[str, Any]:
    """The :class:`ganaug.config.TrainConfig` fields (and D's width) of the low-budget recipe for ``per_class``
    images of each of ``num_classes`` classes: ``epochs`` (:data:`LOW_BUDGET_STEPS` steps at ``batch_size``,
    default the smaller of :data:`LOW_BUDGET_BATCH` and the subset's size; or ``epochs`` as given),
    ``batch_size``, ``save_every`` (:data:`LOW_BUDGET_SAVES` over the epochs), ``augment_real`` (the dataset's
    classical augmentation; ``"affine"`` for an image folder, as :func:`~ganaug.augment_ops.classical_for`
    says) and ``d_width``.

    >>> low_budget_fields("fashion-mnist", 10, 10)
    {'epochs': 6000, 'batch_size': 64, 'save_every': 150, 'augment_real': 'shift-flip', 'd_width': 32}
    """
    from ganaug.augment_ops import classical_for

    n_images = per_class * num_classes
    batch = min(LOW_BUDGET_BATCH, n_images) if batch_size is None else batch_size
    epochs = epochs_for_steps(LOW_BUDGET_STEPS, n_images, batch) if epochs is None else epochs
    return {
        "epochs": epochs,
        "batch_size": batch,
        "save_every": max(1, epochs // LOW_BUDGET_SAVES),
        "augment_real": classical_for(dataset),
        "d_width": LOW_BUDGET_D_WIDTH,
    }


def low_budget_config(dataset: str, per_class: int, num_classes: int = 10, **options: Any) -> TrainConfig:
    """A :class:`~ganaug.config.TrainConfig` of the low-budget recipe (:func:`low_budget_fields`) for ``per_class``
    images of each of ``num_classes`` classes; ``options`` are further TrainConfig fields, and one that the
    recipe also sets wins (``model=`` keeps its own ``d_width``)::

        Trainer.new(low_budget_config("fashion-mnist", 10, data_root="DATA", seed=0), "runs/fashion").fit()
    """
    fields = low_budget_fields(
        dataset, per_class, num_classes, batch_size=options.get("batch_size"), epochs=options.get("epochs")
    )
    d_width = fields.pop("d_width")
    model = options.pop("model", None) or dataclasses.replace(ModelConfig(), d_width=d_width)
    return TrainConfig(dataset=dataset, per_class=per_class, **{**fields, **options}, model=model)
