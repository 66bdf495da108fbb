"""The data is what it claims to be: the official MNIST and Fashion-MNIST files are known by their sha256.

Both datasets share file names, sizes and header layout, so Fashion-MNIST's files copied under ``MNIST/raw``
load as MNIST without complaint (clothes labelled "0 - zero"). :func:`check_official_file` tells them apart
before anything reads them:

* A file whose idx header declares the item count of an official file of its kind (60000 training or 10000
  test images / labels) is fingerprinted (sha256, cached per ``(path, size, mtime_ns)`` in this process).
  In its own slot (e.g. ``MNIST/raw/train-images-idx3-ubyte`` declaring 60000) it must be the official file
  of that slot; another known file there (Fashion-MNIST's under MNIST, the test split's under the training
  split's name, one dataset's images beside the other's labels) is refused naming what it is, and an unknown
  file declaring the official count is refused as not the official file.
* A file declaring any other count is not the official release: it is a user's own data (a subset, a
  re-crop) and is accepted without hashing. So is an unknown file that declares the *other* split's official
  count (only a known file is refused there: the splits swapped).

A deliberate substitute is accepted with ``verify=False`` in :func:`ganaug.data.sources.load_source` /
:func:`ganaug.data.sources.load_training_data`, or by setting the environment variable
``GANAUG_ACCEPT_SUBSTITUTE_DATA=1`` (which every command honours, as they all load through :mod:`ganaug.data.sources`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ganaug.errors import InputError
from ganaug.hashing import file_sha256

ACCEPT_ENV = "GANAUG_ACCEPT_SUBSTITUTE_DATA"

# sha256 of the *uncompressed* idx files torchvision reads from <root>/{MNIST,FashionMNIST}/raw/ (torchvision's
# `resources` md5s are of the .gz archives, which it extracts and never reads again). Computed from torchvision's
# downloads with `sha256sum {MNIST,FashionMNIST}/raw/*-ubyte`; they agree with the hashes of the uncompressed
# files that other projects publish for yann.lecun.com's MNIST and zalandoresearch/fashion-mnist.
KNOWN_FILES: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
# The item count (idx header N) each official file declares; only files declaring one of these are hashed.
OFFICIAL_COUNTS: dict[str, int] = {
    "train-images-idx3-ubyte": 60000,
    "train-labels-idx1-ubyte": 60000,
    "t10k-images-idx3-ubyte": 10000,
    "t10k-labels-idx1-ubyte": 10000,
}
_DISPLAY = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}

# sha256 per (resolved path, size, mtime_ns): repeated loads in one process hash a file once.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def substitutes_accepted() -> bool:
    """Whether ``GANAUG_ACCEPT_SUBSTITUTE_DATA`` is set to accept files other than the official ones."""
    return os.environ.get(ACCEPT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _hash_file(path: Path) -> str:
    return file_sha256(path)


def cached_sha256(path: str | Path) -> str:
    """sha256 (hex) of the file ``path`` (:func:`ganaug.hashing.file_sha256`), cached per ``(resolved path, size,
    mtime_ns)``: a dataset's files are hashed once a process."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = _hash_file(path)
    return _DIGESTS[key]


def identify(digest: str) -> tuple[str, str] | None:
    """``(dataset, file name)`` of the known official file with sha256 ``digest``, or None."""
    for dataset, files in KNOWN_FILES.items():
        for name, known in files.items():
            if known == digest:
                return dataset, name
    return None


def _describe(dataset: str, name: str, *, owner: bool = True) -> str:
    """``MNIST's training images`` for ``("mnist", "train-images-idx3-ubyte")``."""
    split = "training" if name.startswith("train") else "test"
    kind = "images" if "images" in name else "labels"
    described = f"{split} {kind}"
    return f"{_DISPLAY.get(dataset, dataset)}'s {described}" if owner else described


def _verdict(path: Path, dataset: str, count: int) -> tuple[str, tuple[str, str] | None] | None:
    """None when ``path`` passes; else its sha256 and the known file it is (None: no known file)."""
    slot = path.name
    expected = KNOWN_FILES.get(dataset, {}).get(slot)
    if expected is None:
        return None
    kind = "images" if "images" in slot else "labels"
    if count not in {n for name, n in OFFICIAL_COUNTS.items() if kind in name}:
        return None  # not the official release: the user's own data
    digest = cached_sha256(path)
    if digest == expected:
        return None
    found = identify(digest)
    if found is None and count != OFFICIAL_COUNTS.get(slot):
        return None  # declares the other split's count but is no known file: the user's own data
    return digest, found


def check_official_files(dataset: str, files: list[tuple[str | Path, int]]) -> None:
    """Refuse the first of ``files``, read as ``dataset``'s files of their names, that is not what it claims.

    ``files`` are ``(path, count)`` with ``count`` the item count its idx header declares (already checked
    against its size). A file declaring a count no official file of its kind has is the user's own data and
    passes without being hashed; see the module docstring for the rest. Datasets without known files pass.

    Raises:
        InputError: one line naming the file, what it holds (when it is another known file), and what to do:
            moving the files to the other dataset's folder when all of ``files`` are that dataset's.
    """
    verdicts = [(Path(p), count, _verdict(Path(p), dataset, count)) for p, count in files]
    refused = [(path, count, verdict) for path, count, verdict in verdicts if verdict is not None]
    if not refused:
        return
    path, count, (digest, found) = refused[0]
    slot, display = path.name, _DISPLAY.get(dataset, dataset)
    kind = "images" if "images" in slot else "labels"
    accept = f"or set {ACCEPT_ENV}=1 to use it as a deliberate substitute"
    if found is None:
        raise InputError(
            f"{path} declares {display}'s official {count} {kind} but is not {display}'s official {slot} "
            f"(sha256 {digest[:16]}...); delete it and pass --download or copy the original file again, {accept}"
        )
    other, other_slot = found
    if other == dataset:
        wanted = "its " + _describe(dataset, slot, owner=False)
    else:
        wanted = f"{display}'s" if other_slot == slot else _describe(dataset, slot)
    if other != dataset and all(v is not None and v[1] == (other, p.name) for p, _, v in verdicts):
        folder = path.parent.parent.parent / _FOLDER.get(other, other) / "raw"
        raise InputError(
            f"{path} holds {_describe(other, other_slot)}, not {wanted}; put {display}'s files there, "
            f"or move these to {folder} and pass --dataset {other}, {accept}"
        )
    raise InputError(
        f"{path} holds {_describe(other, other_slot)}, not {wanted}; put {display}'s {slot} there, {accept}"
    )


def check_official_file(path: str | Path, dataset: str, *, count: int) -> None:
    """:func:`check_official_files` of the one file ``path`` whose header declares ``count`` items."""
    check_official_files(dataset, [(path, count)])
