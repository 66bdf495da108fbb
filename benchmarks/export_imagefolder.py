"""Write a built-in dataset as an image folder: ``OUT/train/<class>/<index>.png`` and ``OUT/test/<class>/<index>.png``.

    python benchmarks/export_imagefolder.py --data-root ../shared/data --dataset fashion-mnist --out DIR
    ganaug bench downstream --dataset imagefolder --data-root DIR --augment shift-flip --budgets 10

The folder is what ``ganaug bench downstream --dataset imagefolder`` (and ``ganaug train --dataset
imagefolder``) reads, so the built-in profile and the image-folder path can be compared on the same images.
Class folders are named ``<index> - <class>`` (zero-padded beyond ten classes), so their sorted order is the
dataset's label order; files are named by their position in the split (zero-padded), so within a class they
sort in the dataset's order, and each seed's stratified subset picks the same images as the built-in dataset's
(grouped by class rather than interleaved, so GAN and classifier batches differ). Pixels are written as 8-bit
grayscale PNGs, exactly as loaded (28x28).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere in the checkout
    sys.path.insert(0, str(ROOT))


def class_folders(classes: list[str]) -> list[str]:
    """``<index> - <class>`` per class (the index zero-padded to the width of the last one; a name that already
    starts with its index, as MNIST's ``0 - zero`` does, is kept), path separators replaced by ``-``."""
    width = len(str(len(classes) - 1))
    names = []
    for i, name in enumerate(classes):
        safe = name.replace("/", "-").replace("\\", "-")
        names.append(safe if width == 1 and safe.startswith(f"{i} - ") else f"{i:0{width}d} - {safe}")
    return names


def export(dataset: str, out: Path, data_root: str | None = None) -> dict[str, int]:
    """Write ``dataset``'s train and test splits under ``out``; returns the images written per split.

    Raises:
        InputError: ``out`` already holds a train/ or test/ folder (nothing is overwritten), or the dataset
            cannot be read (:func:`ganaug.data.sources.load_source`).
    """
    from PIL import Image

    from ganaug.data.sources import load_source
    from ganaug.errors import InputError

    for split in ("train", "test"):
        if (out / split).exists():
            raise InputError(f"{out / split} exists; choose an empty --out (nothing is overwritten)")
    sources = {split: load_source(dataset, root=data_root, split=split) for split in ("train", "test")}
    written = {}
    for split, src in sources.items():
        folders = class_folders(src.classes)
        for name in folders:
            (out / split / name).mkdir(parents=True, exist_ok=True)
        width = len(str(len(src.labels) - 1))
        images, labels = src.images.numpy(), src.labels.numpy()
        for i, (image, label) in enumerate(zip(images, labels)):
            Image.fromarray(image, mode="L").save(out / split / folders[label] / f"{i:0{width}d}.png")
        written[split] = len(labels)
    return written


def main(argv: list[str] | None = None) -> dict[str, int]:
    from ganaug.config import DATASETS

    parser = argparse.ArgumentParser(prog="python benchmarks/export_imagefolder.py", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, choices=[d for d in DATASETS if d != "imagefolder"])
    parser.add_argument("--data-root", default=None, help="folder holding MNIST/raw or FashionMNIST/raw")
    parser.add_argument("--out", type=Path, required=True, help="the image folder to write (train/ and test/)")
    args = parser.parse_args(argv)
    written = export(args.dataset, args.out, args.data_root)
    print(f"wrote {args.out}: {written['train']} training and {written['test']} test images")
    return written


if __name__ == "__main__":
    from ganaug.errors import InputError

    try:
        main()
    except InputError as e:
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(2)
