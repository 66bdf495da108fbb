"""Real training data, offline first: MNIST, Fashion-MNIST, scikit-learn's digits and any ImageFolder.

Every source becomes uint8 images [N, 28, 28] with int64 labels; :func:`load_training_data` turns them
into float32 [N, 1, 28, 28] in [-1, 1] for training, optionally a seeded stratified subset of exactly
``per_class`` images per class whose indices are recorded.

Folder layouts (``root`` is what ``--data-root`` names):

* ``mnist``: ``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (torchvision's layout).
* ``fashion-mnist``: ``root/FashionMNIST/raw/...`` likewise.
* ``imagefolder``: ``root/train/<class name>/<image>`` and ``root/test/<class name>/<image>``, or only
  ``root/<class name>/<image>`` (a training split and no test split). Any number of classes (>= 2), named by
  their folders. Images are converted to grayscale and resized to 28x28; every image is decoded up front, so
  an unreadable one is reported (by path) before any training. Without ``test/`` there is no test split:
  asking for one raises rather than evaluate on the training images.
* ``digits``: embedded in scikit-learn, no files; 8x8 images scaled to 20x20 and centred in 28x28 like
  MNIST digits. Its ``train`` / ``test`` splits are a fixed stratified 75/25 split.

MNIST and Fashion-MNIST are what they claim to be: a file whose header declares an official count (60000
training or 10000 test items) must be that dataset's official file of its name, known by its sha256
(:mod:`ganaug.data.fingerprints`); Fashion-MNIST's files under ``MNIST/raw``, the splits swapped, or an unknown file
with the official count are refused in one line before anything reads them. Files declaring other counts are not
the official release and are read as the user's own data (a subset, say). ``verify=False`` or the environment
variable ``GANAUG_ACCEPT_SUBSTITUTE_DATA=1`` accepts a deliberate substitute.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ganaug.config import DATASETS, LAST_WITH_REMOVED_LEVERS
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
    name: str,
    *,
    root: str | Path | None = None,
    split: Split = "train",
    download: bool = False,
    verify: bool = True,
) -> SourceData:
    """Load one split of a source dataset as uint8 [N, 28, 28] images.

    ``verify``: refuse MNIST / Fashion-MNIST files that declare the official counts but are not the official
    files of ``name`` (see the module docstring and :func:`ganaug.data.fingerprints.check_official_files`). False, or
    the environment variable ``GANAUG_ACCEPT_SUBSTITUTE_DATA=1``, accepts a deliberate substitute.

    Raises:
        InputError: unknown dataset, missing ``root`` or files (the message says where it looked); an MNIST
            file with a bad header or size, or that is another dataset's or split's file, or not the official
            file though it declares the official count; an unreadable image, an image folder without the split
            asked for. One line naming the file.
    """
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    if split not in ("train", "test"):
        raise InputError(f"unknown split {split!r}; choose 'train' or 'test'")
    if name == "digits":
        return _load_digits(split)
    root = _root(name, root)
    if name == "imagefolder":
        return _load_imagefolder(root, split)
    return _load_torchvision_mnist(name, root, split, download, verify=verify)


def _root(name: str, root: str | Path | None) -> Path:
    if root is None:
        raise InputError(f"dataset {name!r} needs --data-root (the folder that holds its files)")
    return Path(root)


def class_count(name: str, root: str | Path | None = None) -> int:
    """How many classes dataset ``name`` has, read without loading an image: ten for digits, MNIST and
    Fashion-MNIST; an image folder's training split's class folders.

    Raises:
        InputError: an image folder without ``root``, or whose split holds no class folder.
    """
    if name != "imagefolder":
        return len(MNIST_CLASSES)
    from torchvision.datasets.folder import find_classes

    folder = imagefolder_split(_root(name, root), "train")
    try:
        return len(find_classes(str(folder))[0])
    except FileNotFoundError:
        raise InputError(f"no class folders in {folder}; expected <class name>/<image> files") from None


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


_IDX_MAGIC = {"images": (0x00000803, 3), "labels": (0x00000801, 1)}  # uint8 data, ndim


def check_idx_file(path: Path, kind: Literal["images", "labels"], *, count: int | None = None) -> int:
    """Check an MNIST idx file's header against its size, before torchvision reads it; returns N.

    ``images`` files hold magic ``0x00000803`` and dims ``[N, 28, 28]``; ``labels`` files ``0x00000801`` and
    ``[N]`` with every label < 10. ``count`` (the images' N) must match a labels file's N.

    Raises:
        InputError: wrong magic or dims, a size other than the header promises, labels out of range, or a
            count mismatch; one line naming the file and what to do.
    """
    magic_expected, ndim = _IDX_MAGIC[kind]
    fix = "delete it and pass --download, or copy the original file again"
    size = path.stat().st_size
    head_size = 4 + 4 * ndim
    with open(path, "rb") as f:
        head = f.read(head_size)
    if len(head) < head_size:
        raise InputError(f"{path} is truncated ({size} bytes, less than an idx header); {fix}")
    magic, *dims = struct.unpack(f">I{ndim}I", head)
    if magic != magic_expected:
        raise InputError(
            f"{path} is not an MNIST {kind} file (idx magic 0x{magic:08x}, expected 0x{magic_expected:08x}); {fix}"
        )
    if kind == "images" and dims[1:] != [28, 28]:
        raise InputError(f"{path} holds images of {dims[1]}x{dims[2]}, not 28x28; {fix}")
    expected = head_size + int(np.prod(dims))
    if size != expected:
        raise InputError(
            f"{path} holds {size} bytes but its header promises {expected} ({' x '.join(map(str, dims))}); "
            f"the file is truncated or corrupt; {fix}"
        )
    if count is not None and dims[0] != count:
        raise InputError(f"{path} holds {dims[0]} labels but the images file beside it {count} images; {fix}")
    if kind == "labels" and dims[0]:
        top = int(np.fromfile(path, dtype=np.uint8, offset=head_size).max())
        if top > 9:
            raise InputError(f"{path} holds label {top}; MNIST labels are 0..9; {fix}")
    return dims[0]


def _load_torchvision_mnist(name: str, root: Path, split: Split, download: bool, *, verify: bool) -> SourceData:
    from torchvision import datasets

    from ganaug.data.fingerprints import check_official_files, substitutes_accepted

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    raw = root / cls.__name__ / "raw"
    prefix = "train" if split == "train" else "t10k"
    images_file, labels_file = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
    if images_file.is_file() and labels_file.is_file():  # otherwise torchvision says what is missing, or downloads
        count = check_idx_file(images_file, "images")
        check_idx_file(labels_file, "labels", count=count)
        if verify and not substitutes_accepted():  # before torchvision reads (or --download touches) anything
            check_official_files(name, [(images_file, count), (labels_file, count)])
    try:
        ds = cls(str(root), train=split == "train", download=download)
    except RuntimeError as e:
        raise InputError(
            f"{name} files not found in {raw} (expected {', '.join(f for f, _ in cls.resources[:2]).replace('.gz', '')}, ...); "
            f"pass --download, or point --data-root at the folder that contains {cls.__name__}/raw ({e})"
        ) from None
    return SourceData(name, split, ds.data.clone(), ds.targets.long().clone(), list(ds.classes))


def imagefolder_split(root: Path, split: Split) -> Path:
    """The folder that holds ``split`` of the image folder ``root`` (see the module docstring).

    Raises:
        InputError: ``root`` missing; ``split="test"`` without ``root/test``; ``root/test`` without ``root/train``.
    """
    if not root.is_dir():
        raise InputError(f"image folder {root} does not exist; point --data-root at a folder of <class>/<image> files")
    if (root / split).is_dir():
        return root / split
    if split == "test":
        raise InputError(
            f"image folder {root} has no test/ folder, and ganaug never evaluates on training images; "
            f"move held-out images to {root / 'test'}/<class>/ and the training images to {root / 'train'}/<class>/"
        )
    if (root / "test").is_dir():
        raise InputError(
            f"image folder {root} has test/ but no train/; put the training images in {root / 'train'}/<class>/"
        )
    return root


def _to_28x28():
    """Grayscale, resized and centre-cropped to 28x28, as uint8 [1, 28, 28]: every image file ganaug reads."""
    from torchvision import transforms

    return transforms.Compose(
        [transforms.Grayscale(), transforms.Resize(28), transforms.CenterCrop(28), transforms.PILToTensor()]
    )


def _read_images(paths: list[str]) -> torch.Tensor:
    """uint8 [N, 28, 28] of the image files ``paths``, decoded now.

    Raises:
        InputError: a file that is not a readable image (named, with the reason).
    """
    from PIL import Image, UnidentifiedImageError

    tf = _to_28x28()
    images = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                image = Image.open(f)
                image.load()
                images.append(tf(image.convert("RGB"))[0])
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
            raise InputError(f"{path} is not a readable image ({reason}); remove or replace it") from None
    return torch.stack(images)


def _load_imagefolder(root: Path, split: Split) -> SourceData:
    from torchvision import datasets

    folder = imagefolder_split(root, split)
    try:
        ds = datasets.ImageFolder(str(folder))
    except (FileNotFoundError, RuntimeError) as e:
        raise InputError(f"no images found in {folder}: {e}; expected <class name>/<image> files") from None
    if len(ds.classes) < 2:
        raise InputError(f"image folder {folder} holds {len(ds.classes)} class folder(s); a conditional GAN needs >= 2")
    images = _read_images([path for path, _ in ds.samples])
    return SourceData("imagefolder", split, images, torch.tensor(ds.targets, dtype=torch.long), list(ds.classes))


def load_unlabelled(folder: str | Path) -> tuple[torch.Tensor, str]:
    """Every image file under ``folder`` (any depth, sorted by relative path; torchvision's image extensions)
    as uint8 [M, 28, 28], read like the ``imagefolder`` dataset; and a sha256 of their relative paths and
    bytes, the folder's identity (a resumed run checks it).

    Raises:
        InputError: ``folder`` missing or without images; an unreadable image.
    """
    paths, digest = unlabelled_files(folder)
    return _read_images([str(p) for p in paths]), digest


def unlabelled_files(folder: str | Path) -> tuple[list[Path], str]:
    """The image files under ``folder`` in :func:`load_unlabelled`'s order, and their sha256 (without decoding).

    Raises:
        InputError: ``folder`` missing or without images.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS

    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"unlabelled folder {root} does not exist; point --unlabelled at a folder of images")
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
    if not paths:
        raise InputError(f"no images under {root} (looked for {', '.join(IMG_EXTENSIONS)})")
    digest = hashlib.sha256()
    for p in paths:
        digest.update(p.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return paths, digest.hexdigest()


def stratified_subset(labels: np.ndarray, per_class: int, *, seed: int, option: str = "--per-class") -> np.ndarray:
    """Exactly ``per_class`` indices of every class, drawn without replacement by a seeded RNG; sorted.

    Raises:
        InputError: a class has fewer than ``per_class`` examples (the message names ``option``, the command's).
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        pool = np.flatnonzero(labels == c)
        if len(pool) < per_class:
            raise InputError(
                f"{option} {per_class} is larger than class {int(c)}, which has {len(pool)} images; "
                f"choose {option} <= {min(np.bincount(labels)[np.unique(labels)])}"
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
    verify: bool = True,
) -> TrainingData:
    """The training split of ``name``, optionally a stratified subset of ``per_class`` images per class.
    ``verify``: as in :func:`load_source`."""
    src = load_source(name, root=root, split="train", download=download, verify=verify)
    if per_class is None:
        indices = np.arange(len(src.labels), dtype=np.int64)
    else:
        indices = stratified_subset(src.labels.numpy(), per_class, seed=seed, option="--real-per-class")
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


def training_images(data: dict[str, Any], *, root: str | Path | None) -> torch.Tensor:
    """The images (float [N, 1, 28, 28] in [-1, 1]) a generator trained on, rebuilt from its data identity
    (the subset is re-drawn with its seed and checked against the recorded sha256).

    Raises:
        InputError: the files under ``root`` give a different subset than the one recorded.
    """
    return training_set(data, root=root)[0]


def training_set(data: dict[str, Any], *, root: str | Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`training_images` with their labels: ``(images float [N, 1, 28, 28] in [-1, 1], labels int64 [N])``."""
    src = load_source(data["dataset"], root=root, split="train")
    if data.get("per_class") is None:
        idx = np.arange(len(src.labels))
    else:
        idx = stratified_subset(src.labels.numpy(), data["per_class"], seed=data["subset_seed"])
    if data.get("holdout_per_class"):  # images held out for checkpoint selection, a lever ganaug no longer has
        raise InputError(
            "this generator trained on its split less the images checkpoint selection (--select-by) held out, a "
            f"lever ganaug no longer has; evaluate it with ganaug at git commit {LAST_WITH_REMOVED_LEVERS}"
        )
    if data.get("indices_sha256") and indices_hash(idx) != data["indices_sha256"]:
        raise InputError(
            f"the {data['dataset']} files under {root} differ from those the generator trained on; "
            "point --data-root at the original data"
        )
    rows = torch.from_numpy(idx)
    return to_model_range(src.images[rows]), src.labels[rows]
