"""Open a generator whichever its format (a ``.onnx`` file or a run folder's checkpoint) and draw images from it.

:func:`open_generator` gives a :class:`LoadedGenerator` (ONNX Runtime, or the PyTorch EMA generator of a
checkpoint); :func:`generate` draws index-addressed samples from it, as a :class:`ganaug.sample.resample.Sampling`
says. The metrics (:mod:`ganaug.eval`) and the CAS take what this draws.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganaug.errors import GanaugError, InputError
from ganaug.sample.resample import Sampling


@dataclass
class LoadedGenerator:
    """A generator to evaluate, whichever its format.

    Attributes:
        run: ``(z float32 [N, z_dim], labels int64 [N]) -> images float32 [N, 1, 28, 28] in [-1, 1]``.
        z_dim: latent size.
        classes: class names, index = label.
        data: identity of the data it was trained on (``dataset``, ``per_class``, ``subset_seed``,
            ``indices_sha256``, ...), or None when unknown.
        backend: ``onnx`` (ONNX Runtime) or ``pytorch`` (the EMA generator of a checkpoint).
        path: what was opened.
        sampling: the model's default sampling (``{"temperature": t}``; empty = plain).
    """

    run: Callable[[np.ndarray, np.ndarray], np.ndarray]
    z_dim: int
    classes: list[str]
    data: dict[str, Any] | None
    backend: str
    path: Path
    sampling: dict[str, Any] = field(default_factory=dict)


def open_generator(path: str | Path, *, backend: str = "auto") -> LoadedGenerator:
    """Open a ``.onnx`` file or a run folder. ``auto``: ONNX Runtime when an ONNX file is there, else the
    PyTorch EMA generator of the run's checkpoint.

    Raises:
        InputError: nothing loadable at ``path``, a corrupt or truncated checkpoint or ``config.json``, or an
            unknown backend (one line naming the file).
    """
    from ganaug.sample.runtime import ONNX_FILE, OnnxGenerator

    path = Path(path)
    if backend not in ("auto", "onnx", "pytorch"):
        raise InputError(f"unknown backend {backend!r}; choose auto, onnx or pytorch")
    onnx_file = path if path.suffix == ".onnx" else path / ONNX_FILE
    if backend == "onnx" or (backend == "auto" and onnx_file.is_file()):
        gen = OnnxGenerator(onnx_file, provider="auto")
        return LoadedGenerator(
            gen.run, gen.z_dim, gen.classes, gen.metadata.get("data"), "onnx", onnx_file, sampling=gen.sampling
        )
    from ganaug.train.checkpoint import load_generator

    try:
        g, meta = load_generator(path)
    except GanaugError:
        raise
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, KeyError, OSError, zipfile.BadZipFile) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise InputError(f"{path}: the checkpoint is corrupt or truncated ({reason}); retrain or restore it") from None
    data = None
    if path.is_dir() and (path / "config.json").is_file():
        try:
            doc = json.loads((path / "config.json").read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{path / 'config.json'} is not valid JSON ({e}); restore it from the run") from None
        data = doc.get("data") if isinstance(doc, dict) else None

    @torch.no_grad()
    def run(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return g(torch.from_numpy(z), torch.from_numpy(labels)).numpy()

    sampling = dict((meta.get("config") or {}).get("sampling") or {})
    return LoadedGenerator(run, g.config.z_dim, list(meta["classes"]), data, "pytorch", path, sampling=sampling)


def generate(
    generator: LoadedGenerator,
    labels: np.ndarray,
    *,
    seed: int,
    batch_size: int = 1000,
    z: np.ndarray | None = None,
    sampling: Sampling | None = None,
) -> torch.Tensor:
    """Images float32 [N, 1, 28, 28] in [-1, 1]; image ``i`` is ``G(latents(seed, i, i + 1), labels[i])``, or
    ``G(z[i], labels[i])`` when latents float32 [N, z_dim] are given (``seed`` is then unused), or sample ``i``
    of ``sampling`` (:class:`ganaug.sample.resample.Sampling`: a temperature and a label check) when that is given."""

    def batch(lo: int) -> np.ndarray:
        part = labels[lo : lo + batch_size]
        if z is not None:
            return generator.run(z[lo : lo + batch_size], part)
        idx = np.arange(lo, lo + len(part), dtype=np.int64)
        return (sampling or Sampling()).images(generator.run, part, idx, seed=seed, z_dim=generator.z_dim)

    out = [torch.from_numpy(np.asarray(batch(lo))) for lo in range(0, len(labels), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, 1, 28, 28)
