"""Pseudo-labels for an unlabelled pool: the common real case of few labels and many images.

A *teacher* (the fixed CNN of :mod:`ganaug.eval.cas`, trained on the labelled images alone, with the dataset's
classical augmentation) labels every image of an unlabelled pool; an image is kept, with the teacher's class,
when the teacher gives that class a probability of at least ``threshold`` (FixMatch's confidence threshold:
0.95 there). No label outside the labelled images is ever read.

``ganaug train --real-per-class N --pseudo-label T`` trains its GAN on the labelled subset plus the kept images of
the rest of the split (how the benchmark simulates few labels); ``--unlabelled DIR`` makes a folder of
unlabelled images the pool instead (a real user's case). See :func:`add_pool`. The run folder stores the
pseudo-labels (``pseudo_labels.npz``), so a resumed run trains on the same ones; the downstream benchmark's
pool protocol gives its classifiers the same kept images.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganaug.classify.classifier import CLASSIFIERS, CASClassifier, probabilities, train_classifier
from ganaug.data.augment_ops import classical_for
from ganaug.data.sources import TrainingData, indices_hash, load_source, to_model_range
from ganaug.errors import InputError

#: The teacher's recipe: the downstream cpu profile's classifier (its condition c is the teacher there).
TEACHER: CASClassifier = CLASSIFIERS["cpu"]
FILE = "pseudo_labels.npz"


@dataclass(frozen=True)
class PseudoLabels:
    """The kept pool images of one labelled subset.

    Attributes:
        indices: int64 [K], positions of the kept images in the pool's source, ascending: the training split
            (never a labelled image), or an unlabelled folder's sorted files.
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
    labelled: tuple[torch.Tensor, torch.Tensor],
    pool: torch.Tensor,
    *,
    threshold: float,
    num_classes: int,
    classical: str,
    seed: int,
    device: str | torch.device = "cpu",
    teacher: CASClassifier | None = None,
) -> PseudoLabels:
    """Label ``pool`` with a teacher trained on ``labelled``; ``indices`` are positions in ``pool``.

    Args:
        labelled: images float [L, 1, 28, 28] in [-1, 1] and their labels int64 [L] (the only labels used).
        pool: the unlabelled images, float [M, 1, 28, 28] in [-1, 1].
        threshold: keep an image when the teacher's top probability is >= this, in (0, 1].
        classical: the teacher's classical augmentation (a key of :data:`ganaug.data.augment_ops.CLASSICAL`).
        seed: seeds the teacher.
        teacher: the teacher's recipe  [default: :data:`TEACHER`].
    """
    if not 0 < threshold <= 1:
        raise InputError(f"pseudo-label threshold {threshold}: give a probability in (0, 1], e.g. 0.95")
    net = train_classifier(
        [labelled],
        classifier=teacher or TEACHER,
        num_classes=num_classes,
        seed=seed,
        device=device,
        classical=classical,
    )
    conf, cls = probabilities(net, pool, device).max(1)
    keep = (conf >= threshold).numpy()
    return PseudoLabels(np.flatnonzero(keep), cls.numpy()[keep], conf.numpy()[keep], float(threshold), len(pool))


def label_rest_of_split(
    split_images: torch.Tensor, labelled: np.ndarray, labels: torch.Tensor, **options
) -> PseudoLabels:
    """:func:`pseudo_label` with the split's labelled images (uint8 [N, 28, 28] at positions ``labelled``, with
    ``labels``) as the teacher's data and every other image of the split as the pool; ``indices`` are positions
    in the split. ``options``: those of :func:`pseudo_label`."""
    rest = np.setdiff1d(np.arange(len(split_images), dtype=np.int64), labelled)
    subset = (to_model_range(split_images[torch.from_numpy(labelled)]), labels)
    pl = pseudo_label(subset, to_model_range(split_images[torch.from_numpy(rest)]), **options)
    return dataclasses.replace(pl, indices=rest[pl.indices])


def add_pool(
    data: TrainingData,
    *,
    root: str | Path | None,
    threshold: float,
    unlabelled: str | Path | None = None,
    classical: str | None = None,
    seed: int,
    device: str | torch.device = "cpu",
    stored: PseudoLabels | None = None,
) -> tuple[TrainingData, PseudoLabels]:
    """``data`` (the labelled images) followed by the pool's images its teacher labels with confidence >=
    ``threshold`` (``stored`` ones instead, when given: a resumed run's); and those pseudo-labels.

    The pool is the image folder ``unlabelled`` (:func:`ganaug.data.sources.load_unlabelled`), or without one every
    image of the training split outside ``data`` (then ``data`` must be a ``per_class`` subset). In
    ``indices``, a folder image at position j of the folder's sorted files is ``source_size + j``.
    ``classical`` defaults to the dataset's (:func:`ganaug.data.augment_ops.classical_for`). The identity records
    the labelled images' hash (``labelled_indices_sha256``), the threshold, how many images were kept, and the
    folder's ``unlabelled_sha256``.

    Raises:
        InputError: no folder and ``data`` is the whole split (nothing unlabelled); ``stored`` pseudo-labels that
            do not fit this pool (another threshold or size, or labelled images among them).
    """
    dataset = data.identity["dataset"]
    identity = dict(data.identity)
    if unlabelled is not None:
        from ganaug.data.sources import load_unlabelled

        pool_images, identity["unlabelled_sha256"] = load_unlabelled(unlabelled)
        offset = data.identity["source_size"]
        pool_size = len(pool_images)
    elif data.identity.get("per_class") is None:
        raise InputError(
            "--pseudo-label needs a pool: --real-per-class (the rest of the split) or --unlabelled DIR (a folder of images)"
        )
    else:
        split = load_source(dataset, root=root, split="train").images
        offset, pool_size = 0, len(split) - len(data.indices)
    options = {"threshold": threshold, "num_classes": len(data.classes), "seed": seed, "device": device}
    options["classical"] = classical or classical_for(dataset)
    if stored is not None:
        if stored.threshold != threshold or stored.pool != pool_size:
            raise InputError(
                f"the given pseudo-labels were kept at {stored.threshold} from a pool of {stored.pool} images, not at "
                f"{threshold} from these {pool_size}; make them anew"
            )
        if unlabelled is None and np.intersect1d(stored.indices, data.indices).size:
            raise InputError("the given pseudo-labels include labelled images: they belong to another subset")
        pl = stored
    elif unlabelled is not None:
        pl = pseudo_label((data.images, data.labels), to_model_range(pool_images), **options)
    else:
        pl = label_rest_of_split(split, data.indices, data.labels, **options)
    kept = torch.from_numpy(pl.indices)
    images = pool_images[kept] if unlabelled is not None else split[kept]
    indices = np.concatenate([data.indices, pl.indices + offset])
    identity |= {
        "size": len(indices),
        "indices_sha256": indices_hash(indices),
        "labelled": len(data.indices),
        "labelled_indices_sha256": data.identity["indices_sha256"],
        "pseudo_label_threshold": threshold,
        "pseudo_labelled": len(pl.indices),
        "unlabelled_pool": pl.pool,
    }
    pooled = TrainingData(
        torch.cat([data.images, to_model_range(images)]),
        torch.cat([data.labels, torch.from_numpy(pl.labels)]),
        data.classes,
        indices,
        identity,
    )
    return pooled, pl
