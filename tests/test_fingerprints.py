"""The data is what it claims to be: MNIST / Fashion-MNIST files are checked against known checksums.

Hermetic: small fake idx files stand in for the official ones, their sha256 registered in a patched
``KNOWN_FILES`` and their sizes as the patched ``OFFICIAL_COUNTS`` (200 training, 50 test items).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganaug.cli import main
from ganaug.data import fingerprints
from ganaug.data.sources import load_source, load_training_data
from ganaug.errors import InputError
from tests.conftest import make_fake_mnist

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TINY = ["--g-width", "8", "--d-width", "8", "--batch-size", "32", "--quiet", "--no-export"]


@pytest.fixture
def official(tmp_path, monkeypatch) -> dict[str, Path]:
    """Fake "official" MNIST and Fashion-MNIST raw folders, registered as the known files."""
    monkeypatch.delenv(fingerprints.ACCEPT_ENV, raising=False)
    monkeypatch.setattr(fingerprints, "_DIGESTS", {})
    monkeypatch.setattr(
        fingerprints, "OFFICIAL_COUNTS", {name: 200 if name.startswith("train") else 50 for name in FILES}
    )
    mnist = make_fake_mnist(tmp_path / "official", folder="MNIST", seed=0) / "MNIST" / "raw"
    fashion = make_fake_mnist(tmp_path / "official", folder="FashionMNIST", seed=1) / "FashionMNIST" / "raw"
    known = {
        "mnist": {name: fingerprints._hash_file(mnist / name) for name in FILES},
        "fashion-mnist": {name: fingerprints._hash_file(fashion / name) for name in FILES},
    }
    monkeypatch.setattr(fingerprints, "KNOWN_FILES", known)
    return {"mnist": mnist, "fashion-mnist": fashion}


def _place(root: Path, folder: str, files: dict[str, Path]) -> Path:
    """Copy ``files`` (slot name -> source file) into ``root/folder/raw``; returns ``root``."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for name, source in files.items():
        shutil.copyfile(source, raw / name)
    return root


def _refused(root: Path, dataset: str, split: str, pattern: str) -> str:
    with pytest.raises(InputError) as e:
        load_source(dataset, root=root, split=split)
    message = str(e.value)
    assert "\n" not in message and re.search(pattern, message), message
    assert fingerprints.ACCEPT_ENV + "=1" in message
    return message


def test_embedded_checksums_are_eight_distinct_sha256_of_the_official_counts():
    digests = [d for files in fingerprints.KNOWN_FILES.values() for d in files.values()]
    assert len(digests) == len(set(digests)) == 8 and all(re.fullmatch(r"[0-9a-f]{64}", d) for d in digests)
    assert set(fingerprints.KNOWN_FILES) == {"mnist", "fashion-mnist"}
    assert all(set(files) == set(FILES) for files in fingerprints.KNOWN_FILES.values())
    assert fingerprints.OFFICIAL_COUNTS == {FILES[0]: 60000, FILES[1]: 60000, FILES[2]: 10000, FILES[3]: 10000}


def test_the_official_files_load_as_what_they_are(official):
    for dataset in ("mnist", "fashion-mnist"):
        root = official[dataset].parent.parent
        assert len(load_source(dataset, root=root, split="train").labels) == 200
        assert len(load_source(dataset, root=root, split="test").labels) == 50
    assert load_training_data("mnist", root=official["mnist"].parent.parent, per_class=3).identity["size"] == 30


def test_fashion_under_mnist_is_refused_naming_it_and_left_alone(official, tmp_path):
    root = _place(tmp_path / "data", "MNIST", {name: official["fashion-mnist"] / name for name in FILES})
    before = {p.name: p.read_bytes() for p in (root / "MNIST" / "raw").iterdir()}
    message = _refused(root, "mnist", "train", r"holds Fashion-MNIST's training images, not MNIST's;")
    assert message.startswith(str(root / "MNIST" / "raw" / FILES[0]))
    assert f"move these to {root / 'FashionMNIST' / 'raw'} and pass --dataset fashion-mnist" in message
    _refused(root, "mnist", "test", r"t10k-images-idx3-ubyte holds Fashion-MNIST's test images, not MNIST's;")
    assert {p.name: p.read_bytes() for p in (root / "MNIST" / "raw").iterdir()} == before  # nothing changed


def test_mnist_under_fashion_mnist_is_refused(official, tmp_path):
    root = _place(tmp_path / "data", "FashionMNIST", {name: official["mnist"] / name for name in FILES})
    _refused(root, "fashion-mnist", "train", r"holds MNIST's training images, not Fashion-MNIST's;.*--dataset mnist")


def test_swapped_splits_are_refused(official, tmp_path):
    mnist = official["mnist"]
    swapped = {
        FILES[0]: mnist / FILES[2],
        FILES[1]: mnist / FILES[3],
        FILES[2]: mnist / FILES[0],
        FILES[3]: mnist / FILES[1],
    }
    root = _place(tmp_path / "data", "MNIST", swapped)
    message = _refused(root, "mnist", "train", r"holds MNIST's test images, not its training images")
    assert "put MNIST's train-images-idx3-ubyte there" in message and "--dataset" not in message
    _refused(root, "mnist", "test", r"holds MNIST's training images, not its test images")


def test_images_of_one_dataset_and_labels_of_the_other_are_refused(official, tmp_path):
    mixed = {name: official["mnist" if "images" in name else "fashion-mnist"] / name for name in FILES}
    root = _place(tmp_path / "data", "MNIST", mixed)
    message = _refused(
        root, "mnist", "train", r"train-labels-idx1-ubyte holds Fashion-MNIST's training labels, not MNIST's"
    )
    assert "put MNIST's train-labels-idx1-ubyte there" in message and "--dataset" not in message


def test_unknown_file_with_the_official_count_is_refused_unless_accepted(official, tmp_path, monkeypatch):
    root = make_fake_mnist(tmp_path / "data", seed=7)  # 200 / 50 items: the (patched) official counts
    message = _refused(root, "mnist", "train", r"declares MNIST's official 200 images but is not MNIST's official")
    assert "--download" in message and "deliberate substitute" in message
    # a deliberate substitute: the library's verify=False, or the environment variable
    assert len(load_source("mnist", root=root, verify=False).labels) == 200
    assert load_training_data("mnist", root=root, verify=False).identity["size"] == 200
    monkeypatch.setenv(fingerprints.ACCEPT_ENV, "1")
    assert len(load_source("mnist", root=root).labels) == 200
    fashion = _place(tmp_path / "f", "MNIST", {name: official["fashion-mnist"] / name for name in FILES})
    assert load_source("mnist", root=fashion).classes[0] == "0 - zero"  # the user asked for it
    monkeypatch.setenv(fingerprints.ACCEPT_ENV, "0")
    _refused(root, "mnist", "train", r"not MNIST's official")


def test_files_declaring_other_counts_are_the_users_own_data(official, tmp_path, monkeypatch):
    hashed = []
    monkeypatch.setattr(fingerprints, "_hash_file", lambda path: hashed.append(path) or "0" * 64)
    root = make_fake_mnist(tmp_path / "subset", n_train=120, n_test=30, seed=7)
    assert (
        len(load_source("mnist", root=root).labels) == 120
        and len(load_source("mnist", root=root, split="test").labels) == 30
    )
    assert not hashed  # not the official counts: never hashed
    # an unknown training file of the test split's count is a subset too (only a known file there is refused)
    own = make_fake_mnist(tmp_path / "own", n_train=50, n_test=30, seed=8)
    assert len(load_source("mnist", root=own).labels) == 50


def test_a_file_is_hashed_once_per_path_size_and_mtime(official, monkeypatch):
    hashed = []
    real = fingerprints._hash_file
    monkeypatch.setattr(fingerprints, "_hash_file", lambda path: hashed.append(path.name) or real(path))
    root = official["mnist"].parent.parent
    for _ in range(3):
        load_source("mnist", root=root)
    assert sorted(hashed) == sorted(FILES[:2])
    image = official["mnist"] / FILES[0]
    st = image.stat()
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_source("mnist", root=root)
    assert hashed.count(FILES[0]) == 2


def test_cli_train_refuses_a_substitute_in_one_line_before_any_work(official, tmp_path, monkeypatch):
    root = _place(tmp_path / "data", "MNIST", {name: official["fashion-mnist"] / name for name in FILES})
    out = tmp_path / "run"
    args = [
        "train",
        "--dataset",
        "mnist",
        "--data-root",
        str(root),
        "--epochs",
        "1",
        "--out",
        str(out),
        *TINY,
        "--preset",
        "digits",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "holds Fashion-MNIST's training images" in lines[0]
    assert fingerprints.ACCEPT_ENV in lines[0] and not out.exists()
    monkeypatch.setenv(fingerprints.ACCEPT_ENV, "1")  # the CLI honours the variable, without an option
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (out / "config.json").is_file()
