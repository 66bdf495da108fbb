"""The benchmark on your own images: ``--dataset imagefolder --data-root DIR``, checked before any work.

``DIR`` holds two splits of one class folder per class, the same class names in both::

    DIR/train/<class name>/<image>    the pool the seeded subsets of each budget are drawn from
    DIR/test/<class name>/<image>     used once, for the final accuracy of every classifier

Images are read as ``ganaug train --dataset imagefolder`` reads them (:func:`ganaug.data.sources.load_source`):
any size or colour, converted to grayscale and resized to 28x28. Class indices follow the sorted folder names.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ganaug.errors import InputError

from .profiles import FULL

LAYOUT = "DIR/train/<class>/<images> and DIR/test/<class>/<images>"


def _image_counts(folder: Path) -> dict[str, int]:
    """Image files per class folder of ``folder`` (any depth, as torchvision's ImageFolder finds them)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, has_file_allowed_extension

    try:
        classes, _ = find_classes(str(folder))
    except FileNotFoundError:
        raise InputError(f"{folder} holds no class folders; the layout is {LAYOUT}") from None
    counts = {}
    for name in classes:
        counts[name] = sum(
            has_file_allowed_extension(f, IMG_EXTENSIONS)
            for _, _, files in os.walk(folder / name, followlinks=True)
            for f in files
        )
    return counts


def check_image_folder(root: str | Path | None, budgets: tuple[int, ...] = ()) -> dict[str, dict[str, int]]:
    """Refuse, in one line and before any image is decoded, an image folder the benchmark cannot use: no
    ``--data-root``, a missing ``train/`` or ``test/`` split, fewer than two classes, a class folder without
    images, train and test class names that differ, or a class with fewer training images than the largest
    budget. Returns the image counts per class of each split.

    Raises:
        InputError: any of the above, naming the folder and what to do.
    """
    if root is None:
        raise InputError(f"--dataset imagefolder needs --data-root DIR; the layout is {LAYOUT}")
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"--data-root {root}: no such folder; the layout is {LAYOUT}")
    for split in ("train", "test"):
        if not (root / split).is_dir():
            hint = ""
            if split == "test" and (root / "val").is_dir():
                hint = " (it has val/: rename it to test/ if those images are held out from training)"
            raise InputError(f"{root} has no {split}/ folder{hint}; the layout is {LAYOUT}")
    counts = {split: _image_counts(root / split) for split in ("train", "test")}
    for split, per_class in counts.items():
        if len(per_class) < 2:
            raise InputError(
                f"{root / split} holds {len(per_class)} class folder(s); the benchmark needs 2 or more classes"
            )
        empty = [name for name, n in per_class.items() if n == 0]
        if empty:
            raise InputError(f"class folder {root / split / empty[0]} holds no images; add some or remove it")
    train, test = set(counts["train"]), set(counts["test"])
    if train != test:
        only = sorted(train - test)
        where, names = ("train/", only) if only else ("test/", sorted(test - train))
        raise InputError(
            f"{root}: class(es) {', '.join(names)} only in {where}; train/ and test/ must hold the same class folders"
        )
    largest = max((b for b in budgets if b != FULL), default=0)
    fewest = min(counts["train"], key=counts["train"].get)
    if counts["train"][fewest] < largest:
        raise InputError(
            f"class {fewest} has {counts['train'][fewest]} training images in {root / 'train'}, fewer than the "
            f"largest budget ({largest} per class); lower --budgets or add images"
        )
    return counts


def data_identity(train, test) -> str:
    """sha256 of both splits as read (:class:`ganaug.data.sources.SourceData`: images, labels, class names): what an
    image folder's cached GANs and classifiers are keyed by."""
    h = hashlib.sha256()
    for split in (train, test):
        h.update(json.dumps(split.classes).encode())
        h.update(split.images.contiguous().numpy().tobytes())
        h.update(split.labels.numpy().astype("<i8").tobytes())
    return h.hexdigest()
