"""Checkpoint selection: score the EMA generator after every epoch on images held out of the training split.

``TrainConfig.holdout`` images per class are drawn (seeded) from what the run would train on and never
trained on; ``TrainConfig.select_by`` says how a snapshot is scored against them in the features of a
ganaug evaluator (``select_evaluator``): ``fd`` is the Fréchet distance (lower is better), ``recall`` the
k=3 recall (higher is better). The same fixed latents are used every epoch and no training RNG is
touched, so selection never changes the run itself and resume stays exact. The test split is never used.

The best snapshot travels in the checkpoint under ``selected`` (``metric``, ``score``, ``epoch``,
``G_ema``, and ``history``: every epoch's ``[epoch, score]`` so far, which summary.json records too, so a
user sees whether the score still rose at the end); :func:`ganaug.checkpoint.load_generator` (so export,
evaluate and generate) prefers it.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from ganaug.data import TrainingData, indices_hash, split_holdout


def hold_out(data: TrainingData, per_class: int, *, seed: int) -> tuple[TrainingData, torch.Tensor, torch.Tensor]:
    """``data`` without ``per_class`` held-out images per class, and the held-out images float [H, 1, 28, 28] in
    [-1, 1] and labels int64 [H]. The identity records the trained indices' hash and the holdout's."""
    keep, held = split_holdout(data.labels.numpy(), per_class, seed=seed)
    k, h = torch.from_numpy(keep), torch.from_numpy(held)
    identity = dict(data.identity, size=len(keep), indices_sha256=indices_hash(data.indices[keep]))
    identity |= {
        "holdout_per_class": per_class,
        "holdout_seed": seed,
        "holdout_sha256": indices_hash(data.indices[held]),
    }
    kept = TrainingData(data.images[k], data.labels[k], data.classes, data.indices[keep], identity)
    return kept, data.images[h], data.labels[h]


class Selection:
    """Scores EMA generator snapshots against the held-out images and keeps the best one.

    Args:
        metric: ``"fd"`` or ``"recall"``.
        evaluator_path: folder written by ``ganaug evaluator train`` (its classes must be the run's).
        images, labels: the held-out images float [H, 1, 28, 28] in [-1, 1] and labels int64 [H].
        classes: the run's class names (the evaluator's must be the same, in order).
        z_dim: the generator's latent size; seed: seeds the fixed latents (one sample per held-out image).
    """

    def __init__(
        self,
        metric: str,
        evaluator_path: str,
        images: torch.Tensor,
        labels: torch.Tensor,
        classes: list[str],
        *,
        z_dim: int,
        seed: int,
    ) -> None:
        from ganaug.evaluator import load_evaluator
        from ganaug.metrics import check_same_classes, gaussian_stats

        self.metric = metric
        self.evaluator = load_evaluator(evaluator_path)
        check_same_classes(classes, self.evaluator.classes)
        self.reference = self.evaluator.features(images)  # [H, hidden]
        self.reference_stats = gaussian_stats(self.reference)
        gen = torch.Generator().manual_seed((seed + 2_000_003) % 2**64)
        self.z, self.labels = torch.randn(len(labels), z_dim, generator=gen), labels.clone()
        self.best: dict[str, Any] | None = None
        self.history: list[list[float]] = []  # [epoch, score] of every scored epoch

    @torch.no_grad()
    def score(self, generator: torch.nn.Module) -> float:
        """The metric of ``generator`` (its eval-mode output on the fixed latents; its mode is restored)."""
        from ganaug.metrics import frechet_distance_from_stats, gaussian_stats, precision_recall

        device = next(generator.parameters()).device
        was_training = generator.training
        generator.eval()
        fake = torch.cat(
            [
                generator(self.z[i : i + 1000].to(device), self.labels[i : i + 1000].to(device)).float().cpu()
                for i in range(0, len(self.z), 1000)
            ]
        )
        generator.train(was_training)
        features = self.evaluator.features(fake)
        if self.metric == "fd":
            return frechet_distance_from_stats(*gaussian_stats(features), *self.reference_stats)
        return precision_recall(self.reference, features, k=3).recall

    def update(self, ema: torch.nn.Module, generator: torch.nn.Module, epoch: int) -> float:
        """Score ``generator`` (the module inside ``ema``) after ``epoch``; keep a copy of ``ema``'s state if best."""
        s = self.score(generator)
        self.history.append([epoch, s])
        better = self.best is None or (s < self.best["score"] if self.metric == "fd" else s > self.best["score"])
        if better and math.isfinite(s):
            state = {k: v.detach().clone().cpu() for k, v in ema.state_dict().items()}
            self.best = {"metric": self.metric, "score": s, "epoch": epoch, "G_ema": state}
        return s

    def state_dict(self) -> dict[str, Any] | None:
        return None if self.best is None else {**self.best, "history": copy.deepcopy(self.history)}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        state = dict(state or {})
        self.history = [list(h) for h in state.pop("history", [])]  # absent in checkpoints before it was kept
        self.best = state or None

    def summary(self) -> dict[str, Any]:
        """``{"metric", "score", "epoch", "history"}`` of the kept snapshot (what summary.json records)."""
        return {k: v for k, v in (self.best or {}).items() if k != "G_ema"} | {"history": self.history}
