"""The fixed classifier that ganaug trains besides the evaluator: the evaluator's CNN
(:class:`ganaug.classify.evaluator.EvaluatorNet`) at ``width`` with an ``8 * width`` hidden layer, trained for a
fixed number of Adam steps with a cosine schedule on batches drawn with replacement, with no early stopping and no
model selection.

The classification accuracy score (:mod:`ganaug.eval.cas`), the pseudo-labelling teacher
(:mod:`ganaug.train.pseudo`) and the downstream benchmark's classifiers (:mod:`ganaug.downstream`) all train it
with :func:`train_classifier`; :data:`CLASSIFIERS` names its settings. Images everywhere are float
[N, 1, 28, 28] in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ganaug.errors import InputError

if TYPE_CHECKING:
    from ganaug.classify.evaluator import EvaluatorNet


@dataclass(frozen=True)
class CASClassifier:
    """Training recipe of the CAS classifier: ``steps`` Adam steps (lr ``lr``, cosine to 0) on batches of
    ``batch`` images drawn with replacement; the CNN has ``width`` channels and an ``8 * width`` hidden layer."""

    steps: int = 3000
    batch: int = 128
    lr: float = 1e-3
    width: int = 32

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"CASClassifier.{name} must be >= 1, got {getattr(self, name)}")


#: Named classifier settings: ``full`` and ``cpu`` are the downstream benchmark's profiles of those names.
CLASSIFIERS: dict[str, CASClassifier] = {
    "full": CASClassifier(),
    "cpu": CASClassifier(steps=800, batch=64, width=16),
    "smoke": CASClassifier(steps=60, batch=32, width=8),
}


def train_classifier(
    sources: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    classifier: CASClassifier,
    num_classes: int,
    seed: int,
    device: str | torch.device = "cpu",
    real_fraction: float = 0.5,
    classical: bool | str = False,
    classical_on: Sequence[bool] | None = None,
    weights: Sequence[float] | None = None,
    init: EvaluatorNet | None = None,
    real_fraction_end: float | None = None,
) -> EvaluatorNet:
    """Train the fixed CNN on one or two sources of (images float [N, 1, 28, 28] in [-1, 1], labels).

    Labels are int64 [N] class indices or float [N, num_classes] probabilities (soft labels: the loss is the
    cross-entropy against them). Every batch draws ``batch`` images from a single source, or
    ``round(batch * real_fraction)`` from the first and the rest from the second of two. ``classical``
    applies a per-image classical augmentation to every image of the batch: ``True`` or ``"affine"`` the
    random affine (the benchmark's condition c on digits), ``"shift-flip"`` shifts and flips (on clothes);
    see :data:`ganaug.data.augment_ops.CLASSICAL`; ``classical_on`` limits it to the sources marked True. ``weights`` scales each source's per-image loss (default 1
    each; the batch loss is the weighted mean). ``init`` continues training that network (a fresh Adam and
    schedule; used to fine-tune after pretraining) instead of a new one. ``real_fraction_end`` moves the
    first source's share linearly from ``real_fraction`` at the first step to it at the last (a schedule of
    the second source's share; None keeps it constant). Seeded by ``seed``; the caller's global RNG state is
    restored afterwards.

    Raises:
        InputError: a source is empty.
    """
    from ganaug.classify.evaluator import EvaluatorConfig, EvaluatorNet
    from ganaug.data.augment_ops import CLASSICAL
    from ganaug.data.augment_ops import classical as augment

    if any(len(y) == 0 for _, y in sources):
        raise InputError("a classifier training source is empty; generate or keep at least one image per class")
    if classical and classical is not True and classical not in CLASSICAL:
        raise InputError(f"classical {classical!r}: choose one of {', '.join(CLASSICAL)}")
    weights = list(weights) if weights is not None else [1.0] * len(sources)
    device = torch.device(device)
    c = classifier
    soft = any(y.dim() == 2 for _, y in sources)
    # Weights and dropout come from the global RNG, seeded here as the downstream benchmark always did
    # (same numbers); fork_rng hands the caller's state back.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        net = (
            init
            if init is not None
            else EvaluatorNet(EvaluatorConfig(num_classes=num_classes, width=c.width, hidden=8 * c.width))
        )
        net = net.to(device)
        opt = torch.optim.Adam(net.parameters(), lr=c.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=c.steps)
        gen = torch.Generator(device=device).manual_seed(seed)
        moved = [
            (x.to(device), F.one_hot(y, num_classes).float().to(device) if soft and y.dim() == 1 else y.to(device))
            for x, y in sources
        ]
        uniform = all(wt == 1.0 for wt in weights)

        def split(fraction: float) -> tuple[list[int], torch.Tensor]:
            n_first = round(c.batch * fraction) if len(moved) == 2 else c.batch
            sizes = [n_first, c.batch - n_first][: len(moved)]
            return sizes, torch.cat([torch.full((n,), float(wt), device=device) for n, wt in zip(sizes, weights)])

        sizes, w = split(real_fraction)
        net.train()
        for step in range(c.steps):
            if real_fraction_end is not None:
                sizes, w = split(real_fraction + (real_fraction_end - real_fraction) * step / max(c.steps - 1, 1))
            xs, ys = [], []
            for (x, y), n in zip(moved, sizes):
                idx = torch.randint(len(y), (n,), generator=gen, device=device)
                xs.append(x[idx])
                ys.append(y[idx])
            x, y = torch.cat(xs), torch.cat(ys)
            if classical and classical_on is None:
                x = augment(x, gen, classical)
            elif classical:
                x = torch.cat(
                    [
                        augment(part, gen, classical) if on and len(part) else part
                        for part, on in zip(x.split(sizes), classical_on)
                    ]
                )
            if uniform:
                loss = F.cross_entropy(net(x), y)
            else:
                loss = (F.cross_entropy(net(x), y, reduction="none") * w).sum() / w.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def probabilities(
    net: EvaluatorNet, images: torch.Tensor, device: str | torch.device, batch: int = 2000
) -> torch.Tensor:
    """Softmax class probabilities float [N, num_classes] of ``net`` for images float [N, 1, 28, 28] in [-1, 1]."""
    net.eval()
    return torch.cat(
        [torch.softmax(net(images[i : i + batch].to(device)), 1).cpu() for i in range(0, len(images), batch)]
    )


@torch.no_grad()
def predict(net: EvaluatorNet, images: torch.Tensor, device: str | torch.device, batch: int = 2000) -> torch.Tensor:
    """Predicted labels int64 [N] (on the CPU) of float images [N, 1, 28, 28] in [-1, 1]."""
    return torch.cat([net(images[i : i + batch].to(device)).argmax(1).cpu() for i in range(0, len(images), batch)])


def test_accuracy(
    net: EvaluatorNet, images: torch.Tensor, labels: torch.Tensor, num_classes: int, device: str | torch.device
) -> tuple[float, list[float]]:
    """Accuracy over ``images`` and per class (NaN for a class without images)."""
    hit = (predict(net, images, device) == labels).double()
    return float(hit.mean()), [float(hit[labels == c].mean()) for c in range(num_classes)]


test_accuracy.__test__ = False  # not a pytest test, despite its name
