"""Pseudo-labels for an unlabelled pool: the common real case of few labels and many images.

A *teacher* (the fixed CNN of :mod:`ganaug.cas`, trained on the labelled subset alone, with the dataset's
classical augmentation) labels every other image of the training split; an image is kept, with the teacher's
class, when the teacher gives that class a probability of at least ``threshold`` (FixMatch's confidence
threshold: 0.95 there). No label outside the subset is ever read.

``ganaug train --per-class N --pseudo-label T`` trains its GAN on the labelled subset plus the kept images
(:func:`add_pool`); the run folder stores them (``pseudo_labels.npz``) so a resumed run trains on the same
ones. The downstream benchmark's pool protocol gives its classifiers the same kept images.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganaug.augment_ops import classical_for
from ganaug.cas import CLASSIFIERS, CASClassifier, probabilities, train_classifier
from ganaug.data import TrainingData, indices_hash, load_source, to_model_range
from ganaug.errors import InputError

#: The teacher's recipe: the downstream cpu profile's classifier (its condition c is the teacher there).
TEACHER: CASClassifier = CLASSIFIERS["cpu"]
FILE = "pseudo_labels.npz"


@dataclass(frozen=True)
class PseudoLabels:
    """The kept pool images of one labelled subset.

    Attributes:
        indices: int64 [K], positions of the kept images in the training split, ascending (never a labelled one).
        labels: int64 [K], the teacher's class of each.
        confidence: float32 [K], the teacher's probability of that class (>= ``threshold``).
        threshold: the confidence threshold they were kept at, in (0, 1].
        pool: how many unlabelled images the teacher saw (K / pool is the kept fraction).
    """

    indices: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    threshold: float
    pool: int

    def save(self, path: str | Path) -> None:
        np.savez(Path(path), **{k: np.asarray(v) for k, v in dataclasses.asdict(self).items()})

    @classmethod
    def load(cls, path: str | Path) -> PseudoLabels:
        """Read what :meth:`save` wrote.

        Raises:
            InputError: no such file, or not one written by :meth:`save`.
        """
        try:
            with np.load(Path(path)) as f:
                return cls(
                    f["indices"].astype(np.int64),
                    f["labels"].astype(np.int64),
                    f["confidence"].astype(np.float32),
                    float(f["threshold"]),
                    int(f["pool"]),
                )
        except (OSError, KeyError, ValueError) as e:
            raise InputError(
                f"{path}: not readable pseudo-labels ({type(e).__name__}: {e}); start the run anew"
            ) from None


def pseudo_label(
    split_images: torch.Tensor,
    labelled: np.ndarray,
    labels: torch.Tensor,
    *,
    threshold: float,
    num_classes: int,
    classical: str,
    seed: int,
    device: str | torch.device = "cpu",
    teacher: CASClassifier | None = None,
) -> PseudoLabels:
    """Label the unlabelled part of a split with a teacher trained on its labelled part.

    Args:
        split_images: uint8 [N, 28, 28], the whole training split.
        labelled: int64 [L], positions of the labelled images in it.
        labels: int64 [L], their labels (the only labels used).
        threshold: keep an image when the teacher's top probability is >= this, in (0, 1].
        classical: the teacher's classical augmentation (a key of :data:`ganaug.augment_ops.CLASSICAL`).
        seed: seeds the teacher.
        teacher: the teacher's recipe  [default: :data:`TEACHER`].
    """
    if not 0 < threshold <= 1:
        raise InputError(f"pseudo-label threshold {threshold}: give a probability in (0, 1], e.g. 0.95")
    subset = (to_model_range(split_images[torch.from_numpy(labelled)]), labels)
    net = train_classifier(
        [subset], classifier=teacher or TEACHER, num_classes=num_classes, seed=seed, device=device, classical=classical
    )
    pool = np.setdiff1d(np.arange(len(split_images), dtype=np.int64), labelled)
    conf, cls = probabilities(net, to_model_range(split_images[torch.from_numpy(pool)]), device).max(1)
    keep = (conf >= threshold).numpy()
    return PseudoLabels(pool[keep], cls.numpy()[keep], conf.numpy()[keep], float(threshold), len(pool))


def add_pool(
    data: TrainingData,
    *,
    root: str | Path | None,
    threshold: float,
    classical: str | None = None,
    seed: int,
    device: str | torch.device = "cpu",
    stored: PseudoLabels | None = None,
) -> tuple[TrainingData, PseudoLabels]:
    """``data`` (a labelled subset of its split) followed by the split's other images the teacher labels with
    confidence >= ``threshold`` (``stored`` ones instead, when given: a resumed run's); and those pseudo-labels.

    ``classical`` defaults to the dataset's (:func:`ganaug.augment_ops.classical_for`). The identity records
    the labelled subset's hash (``labelled_indices_sha256``), the threshold and how many images were kept.

    Raises:
        InputError: ``data`` is the whole split (nothing unlabelled), or ``stored`` was kept at another threshold.
    """
    dataset = data.identity["dataset"]
    if data.identity.get("per_class") is None:
        raise InputError("--pseudo-label needs --per-class: the labelled subset that teaches the rest of the split")
    split = load_source(dataset, root=root, split="train")
    if stored is None:
        pl = pseudo_label(
            split.images,
            data.indices,
            data.labels,
            threshold=threshold,
            num_classes=len(data.classes),
            classical=classical or classical_for(dataset),
            seed=seed,
            device=device,
        )
    elif stored.threshold != threshold or stored.pool != len(split.labels) - len(data.indices):
        raise InputError(
            f"the given pseudo-labels were kept at {stored.threshold} from a pool of {stored.pool} images, not at "
            f"{threshold} from the {len(split.labels) - len(data.indices)} unlabelled ones; make them anew"
        )
    elif np.intersect1d(stored.indices, data.indices).size:
        raise InputError("the given pseudo-labels include labelled images: they belong to another subset")
    else:
        pl = stored
    idx = torch.from_numpy(pl.indices)
    indices = np.concatenate([data.indices, pl.indices])
    identity = dict(data.identity, size=len(indices), indices_sha256=indices_hash(indices))
    identity |= {
        "labelled": len(data.indices),
        "labelled_indices_sha256": data.identity["indices_sha256"],
        "pseudo_label_threshold": threshold,
        "pseudo_labelled": len(pl.indices),
        "unlabelled_pool": pl.pool,
    }
    pooled = TrainingData(
        torch.cat([data.images, to_model_range(split.images[idx])]),
        torch.cat([data.labels, torch.from_numpy(pl.labels)]),
        data.classes,
        indices,
        identity,
    )
    return pooled, pl
