"""Shared fixtures: fake MNIST files in the real idx format and tiny trained runs."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ganaug.config import ModelConfig, TrainConfig

TINY_MODEL = ModelConfig(z_dim=8, embed_dim=4, g_width=8, d_width=8)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an idx file: magic 0x0000 08 <ndim>, big-endian dims, raw bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(struct.pack(">I", 0x0800 | array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.tobytes())


def make_fake_mnist(root: Path, *, folder: str = "MNIST", n_train: int = 200, n_test: int = 50, seed: int = 0) -> Path:
    """Fake ``root/<folder>/raw`` idx files: each class is a blob at its own place (learnable, tiny)."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        images = rng.integers(0, 30, size=(n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            r, col = 4 + 2 * (c // 5) * 5, 4 + (c % 5) * 4
            images[i, r : r + 8, col : col + 4] = 255
        write_idx(raw / f"{split}-images-idx3-ubyte", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels.astype(np.uint8))
    return root


@pytest.fixture
def fake_mnist_root(tmp_path: Path) -> Path:
    """A folder with ``MNIST/raw/*-ubyte`` of 200 train and 50 test images."""
    return make_fake_mnist(tmp_path / "data")


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)
    yield


@pytest.fixture
def one_thread():
    """For tiny models (``pytestmark = pytest.mark.usefixtures("one_thread")``): one thread runs them faster,
    and on a shared CPU two threads stall at every OpenMP barrier. The autouse ``_two_threads`` resets it."""
    torch.set_num_threads(1)
    yield


def tiny_config(**overrides) -> TrainConfig:
    """A config that trains in about a second on CPU (digits, tiny model, no export)."""
    base = {
        "dataset": "digits",
        "epochs": 1,
        "batch_size": 32,
        "model": TINY_MODEL,
        "device": "cpu",
        "log_every": 5,
        "export_onnx": False,
        "per_class": 20,
    }
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished tiny run folder (digits, 2 epochs, tiny model, no ONNX export), shared by the session."""
    from ganaug.train.trainer import Trainer

    run_dir = tmp_path_factory.mktemp("tiny_run")
    Trainer.new(tiny_config(epochs=2), run_dir, overwrite=True, progress=False).fit()
    return run_dir


def exported_copy(run_dir: Path, folder: Path) -> Path:
    """``folder``: a copy of the run folder ``run_dir`` with its generator exported to ``generator.onnx`` inside
    (the shared tiny run has none); a copy, so a test may change it without touching the session's run."""
    import shutil

    from ganaug.train.export import export_onnx

    shutil.copytree(run_dir, folder)
    export_onnx(folder)
    return folder
