"""Real training data, offline first: MNIST, Fashion-MNIST, scikit-learn's digits and any ImageFolder.

Every source becomes uint8 images [N, 28, 28] with int64 labels; :func:`load_training_data` turns them
into float32 [N, 1, 28, 28] in [-1, 1] for training, optionally a seeded stratified subset of exactly
``per_class`` images per class whose indices are recorded.

Folder layouts (``root`` is what ``--data-root`` names):

* ``mnist``: ``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (torchvision's layout).
* ``fashion-mnist``: ``root/FashionMNIST/raw/...`` likewise.
* ``imagefolder``: ``root/<class name>/<image>``; images are converted to grayscale and resized to 28x28.
* ``digits``: embedded in scikit-learn, no files; 8x8 images scaled to 20x20 and centred in 28x28 like
  MNIST digits. Its ``train`` / ``test`` splits are a fixed stratified 75/25 split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ganaug.config import DATASETS
from ganaug.errors import InputError

Split = Literal["train", "test"]
# torchvision.datasets.MNIST.classes, so digits and MNIST runs name their classes alike.
MNIST_CLASSES = [
    "0 - zero",
    "1 - one",
    "2 - two",
    "3 - three",
    "4 - four",
    "5 - five",
    "6 - six",
    "7 - seven",
    "8 - eight",
    "9 - nine",
]


@dataclass(frozen=True)
class SourceData:
    """A whole split of a source: ``images`` uint8 [N, 28, 28], ``labels`` int64 [N]."""

    name: str
    split: Split
    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]


@dataclass(frozen=True)
class TrainingData:
    """What a GAN trains on.

    Attributes:
        images: float32 [N, 1, 28, 28] in [-1, 1].
        labels: int64 [N] in ``[0, len(classes))``.
        classes: class names, index = label.
        indices: int64 [N], positions of these images in the source split.
        identity: JSON-able description of the data (dataset, split, sizes, per_class, indices hash).
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    indices: np.ndarray
    identity: dict[str, Any]


def load_source(
    name: str, *, root: str | Path | None = None, split: Split = "train", download: bool = False
) -> SourceData:
    """Load one split of a source dataset as uint8 [N, 28, 28] images.

    Raises:
        InputError: unknown dataset, missing ``root`` or files (the message says where it looked).
    """
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    if split not in ("train", "test"):
        raise InputError(f"unknown split {split!r}; choose 'train' or 'test'")
    if name == "digits":
        return _load_digits(split)
    if root is None:
        raise InputError(f"dataset {name!r} needs --data-root (the folder that holds its files)")
    root = Path(root)
    if name == "imagefolder":
        return _load_imagefolder(root, split)
    return _load_torchvision_mnist(name, root, split, download)


def _load_digits(split: Split) -> SourceData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    idx_train, idx_test = train_test_split(
        np.arange(len(bunch.target)), test_size=0.25, stratify=bunch.target, random_state=0
    )
    idx = np.sort(idx_train if split == "train" else idx_test)
    small = torch.from_numpy(bunch.images[idx]).float().div(16.0).unsqueeze(1)  # [N, 1, 8, 8] in [0, 1]
    big = torch.nn.functional.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False)
    big = torch.nn.functional.pad(big, (4, 4, 4, 4))  # [N, 1, 28, 28], digit centred like MNIST
    images = big.squeeze(1).clamp(0, 1).mul(255).round().to(torch.uint8)
    labels = torch.from_numpy(bunch.target[idx]).long()
    return SourceData("digits", split, images, labels, list(MNIST_CLASSES))


def _load_torchvision_mnist(name: str, root: Path, split: Split, download: bool) -> SourceData:
    from torchvision import datasets

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    try:
        ds = cls(str(root), train=split == "train", download=download)
    except RuntimeError as e:
        raw = root / cls.__name__ / "raw"
        raise InputError(
            f"{name} files not found in {raw} (expected {', '.join(f for f, _ in cls.resources[:2]).replace('.gz', '')}, ...); "
            f"pass --download, or point --data-root at the folder that contains {cls.__name__}/raw ({e})"
        ) from None
    return SourceData(name, split, ds.data.clone(), ds.targets.long().clone(), list(ds.classes))


def _load_imagefolder(root: Path, split: Split) -> SourceData:
    from torchvision import datasets, transforms

    folder = root / split if (root / split).is_dir() else root
    if not folder.is_dir():
        raise InputError(
            f"image folder {folder} does not exist; point --data-root at a folder of <class>/<image> files"
        )
    tf = transforms.Compose(
        [transforms.Grayscale(), transforms.Resize(28), transforms.CenterCrop(28), transforms.PILToTensor()]
    )
    try:
        ds = datasets.ImageFolder(str(folder), transform=tf)
    except (FileNotFoundError, RuntimeError) as e:
        raise InputError(f"no images found in {folder}: {e}; expected <class name>/<image> files") from None
    images = torch.stack([ds[i][0][0] for i in range(len(ds))])
    return SourceData("imagefolder", split, images, torch.tensor(ds.targets, dtype=torch.long), list(ds.classes))


def stratified_subset(labels: np.ndarray, per_class: int, *, seed: int) -> np.ndarray:
    """Exactly ``per_class`` indices of every class, drawn without replacement by a seeded RNG; sorted.

    Raises:
        InputError: a class has fewer than ``per_class`` examples.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        pool = np.flatnonzero(labels == c)
        if len(pool) < per_class:
            raise InputError(
                f"--per-class {per_class} is larger than class {int(c)}, which has {len(pool)} images; "
                f"choose --per-class <= {min(np.bincount(labels)[np.unique(labels)])}"
            )
        chosen.append(rng.choice(pool, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def indices_hash(indices: np.ndarray) -> str:
    """sha256 of the int64 little-endian bytes of ``indices``, the identity of a subset."""
    return hashlib.sha256(np.asarray(indices, dtype="<i8").tobytes()).hexdigest()


def to_model_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 28, 28] in [0, 255] -> float32 [N, 1, 28, 28] in [-1, 1]."""
    return images_uint8.unsqueeze(1).float().div(127.5).sub(1.0)


def load_training_data(
    name: str,
    *,
    root: str | Path | None = None,
    download: bool = False,
    per_class: int | None = None,
    seed: int = 0,
) -> TrainingData:
    """The training split of ``name``, optionally a stratified subset of ``per_class`` images per class."""
    src = load_source(name, root=root, split="train", download=download)
    if per_class is None:
        indices = np.arange(len(src.labels), dtype=np.int64)
    else:
        indices = stratified_subset(src.labels.numpy(), per_class, seed=seed)
    idx = torch.from_numpy(indices)
    identity = {
        "dataset": name,
        "split": "train",
        "source_size": len(src.labels),
        "size": len(indices),
        "per_class": per_class,
        "subset_seed": seed if per_class is not None else None,
        "indices_sha256": indices_hash(indices),
    }
    return TrainingData(to_model_range(src.images[idx]), src.labels[idx], src.classes, indices, identity)
