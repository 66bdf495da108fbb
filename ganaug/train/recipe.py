"""The low-budget recipe: how to train a GAN on a few labelled images per class, and how to mix its images in.

Both halves are what the downstream benchmark measured (``benchmarks/results/HISTORY.md`` lists every lever; the README's
downstream section has the tables), so a user gets the measured setup without reading the benchmark:

- **Training**: the ``few-shot`` preset (``ganaug/train/presets/few-shot.json``, resolved by
  :func:`ganaug.train.presets.resolve`), which ``ganaug train --real-per-class N`` picks for ``N`` below
  :data:`LOW_BUDGET_BELOW`: :data:`LOW_BUDGET_STEPS` G steps (epochs derived from the subset's size), batches of
  at most 64, the dataset's classical augmentation on the real images, D half the default width,
  :data:`LOW_BUDGET_SAVES` grids and checkpoints. The constants here are read from that file, so the benchmark's
  profiles and the preset cannot drift apart.
- **Mixing** (:data:`MIX_PER_CLASS`, :data:`MIX_SHARE`, :data:`MIX_SMOOTHING`): a large generated pool, drawn
  at a 10% share of every batch. ``ganaug.augment(real, run)`` with no rule and ``AugmentedDataset.sampler()``
  with no share use the pool and the share, as does ``ganaug.SyntheticMix(run)`` with no share; their labels stay
  ints. The benchmark's winning lever (``smooth-share-10``) also smoothed the generated labels by 0.2, which turns
  labels into probability vectors: ask for it with ``label_smoothing=MIX_SMOOTHING`` (and ``F.cross_entropy``).
  On Fashion-MNIST it added +1.85 [+1.10, +2.59] points to
  shifts and flips with 10 real images per class and +0.46 [+0.22, +0.70] with 50 (5 seeds, 95% CIs; +1.60
  [+0.75, +2.44] at 10 through ``augment`` and ``sampler``); the same share with hard labels gave -0.43 and -0.25
  on one seed each. On MNIST nothing beat random affine clearly: the smoothed lever −0.37 [−0.89, +0.15] and
  −0.22 [−0.86, +0.41] at 10 (two machines' GANs; +0.02 [−0.51, +0.55] through ``augment``) and +0.19
  [−0.10, +0.47] at 50; hard labels at the same share +0.25 [−0.16, +0.66] and +0.28 [+0.01, +0.54] at 10
  (seed 0 picked it), +0.07 [−0.08, +0.21] at 50. The benchmark's original protocol, half of every batch
  generated with hard labels, lost 1.15 and 0.54 points there.
"""

from __future__ import annotations

from ganaug.config import TrainConfig, epochs_for_steps
from ganaug.train.presets import load as load_preset

__all__ = ["epochs_for_steps"]

_FEW_SHOT = load_preset("few-shot")
#: ``--real-per-class`` below this many images per class gets the low-budget recipe: the ``few-shot`` preset's
#: ``below_per_class`` (the downstream profiles' ``gan_small_below``).
LOW_BUDGET_BELOW = _FEW_SHOT.below_per_class
#: G steps of a low-budget run (the ``few-shot`` preset's; the ``cpu`` profiles' ``gan_steps``).
LOW_BUDGET_STEPS = _FEW_SHOT.steps
#: Sample grids and checkpoints of a low-budget run (with 10 images per class an epoch is one step).
LOW_BUDGET_SAVES = _FEW_SHOT.saves
#: The largest batch of a low-budget run (smaller when the subset holds fewer images).
LOW_BUDGET_BATCH = TrainConfig.batch_size
#: D's width in a low-budget run (the downstream ``cpu`` profiles' ``ModelConfig(d_width=32)``; the default is 64).
LOW_BUDGET_D_WIDTH = _FEW_SHOT.train["model"]["d_width"]

#: Generated images per class that ``augment(real, run)`` adds when no rule is given.
MIX_PER_CLASS = 500
#: The generated share of each batch: ``AugmentedDataset.sampler()`` and ``SyntheticMix(run)`` without a share.
MIX_SHARE = 0.1
#: The label smoothing the benchmark's winning lever gave the generated items (opt-in: ``label_smoothing=``).
MIX_SMOOTHING = 0.2
