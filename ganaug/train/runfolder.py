"""The files of a run folder, and the rules for creating, replacing and reopening one.

A run folder holds ``.ganaug.json`` (the marker that makes it replaceable by ``--overwrite``),
``config.json`` (schema :data:`CONFIG_SCHEMA`), ``indices.npy``, ``metrics.csv``, ``samples/epoch_NNNN.png``,
``checkpoint.pt`` (:mod:`ganaug.train.checkpoint`), ``pseudo_labels.npz`` when the GAN also trains on a
pseudo-labelled pool (:mod:`ganaug.train.pseudo`), and at the end ``samples.png``, ``samples.gif``,
``losses.png`` and ``summary.json``. Only :class:`RunFolder` writes them; while one trains into a folder it
holds that folder's lock (:func:`ganaug.outputs.exclusive_lock`), so a second process fails with a message.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ganaug import __version__, viz
from ganaug.errors import InputError
from ganaug.outputs import CHECK_FILE, MARKER, ONNX_FILE, ONNX_FP16_FILE, temp_target
from ganaug.train.checkpoint import CHECKPOINT
from ganaug.train.pseudo import FILE as PSEUDO_LABELS

if TYPE_CHECKING:
    from ganaug.train.pseudo import PseudoLabels

RUN_KIND = "run"
CONFIG = "config.json"
METRICS = "metrics.csv"
INDICES, SUMMARY = "indices.npy", "summary.json"
SAMPLES = "samples"  # the folder of epoch grids, epoch_NNNN.png
GRID, GIF, LOSSES = "samples.png", "samples.gif", "losses.png"
#: Version of config.json's layout; bump it when a key changes meaning or goes away.
CONFIG_SCHEMA = 1
SUPPORTED_CONFIG_SCHEMAS: tuple[int, ...] = (1,)
CONFIG_KEYS: tuple[str, ...] = ("schema", "ganaug_version", "config", "data", "classes")
METRICS_FIELDS = ["step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "wall_time"]
_ATOMIC_FILES = (CHECKPOINT, CONFIG, METRICS, SUMMARY)
#: Every name ganaug writes at a run folder's top level; ``--overwrite`` replaces one only while it holds
#: nothing else.
RUN_FILES = frozenset(
    {MARKER, CONFIG, INDICES, METRICS, SAMPLES, CHECKPOINT, PSEUDO_LABELS, GRID, GIF, LOSSES, SUMMARY}
    | {ONNX_FILE, ONNX_FP16_FILE, CHECK_FILE}
)
_EPOCH_GRID = re.compile(r"epoch_\d{4,}\.png")


def foreign_files(path: Path) -> list[str]:
    """What run folder ``path`` holds that ganaug did not write there (sorted relative paths): a user's notes,
    images generated into it, another run made inside it."""

    def foreign(folder: Path, ours) -> list[str]:
        return sorted(
            str(c.relative_to(path)) for c in folder.iterdir() if not (ours(c) or temp_target(c) in _ATOMIC_FILES)
        )

    found = foreign(path, lambda c: c.name in RUN_FILES and (c.name == SAMPLES) == c.is_dir())
    if (path / SAMPLES).is_dir():
        found += foreign(path / SAMPLES, lambda c: c.is_file() and _EPOCH_GRID.fullmatch(c.name))
    return found


def check_writable(path: Path) -> None:
    """Raise :class:`InputError` unless ``path`` (a folder, existing or not) could be created and written.

    Checked before any work: the nearest existing ancestor must be a folder this process may write to.
    """
    probe = path.absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"cannot create {path}: {probe} is a file, not a folder; choose another --out")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"cannot write to {probe} (permission denied or read-only); choose another --out")


class RunFolder:
    """The run folder at ``path``; :meth:`acquire` takes its lock before anything is written."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = contextlib.ExitStack()

    # ---- claiming -------------------------------------------------------------------------------

    @classmethod
    def check_new(cls, path: str | Path, *, overwrite: bool, read: Sequence[str | Path] = ()) -> RunFolder:
        """Check, before any work, that a new run may be written to ``path``, which must neither hold nor lie
        inside a folder of images the run ``read``s (its samples would join that data).

        Raises:
            InputError: ``path`` is a file; a non-empty folder without ``overwrite``; with ``overwrite``,
                anything :func:`ganaug.outputs.check_replaceable` refuses (the working folder or its
                ancestors, a folder without ganaug's run marker) and a run folder holding files ganaug did
                not write there (:func:`foreign_files`); a folder that cannot be written; ``path`` is,
                holds or lies inside a folder of ``read``.
        """
        from ganaug.outputs import check_not_protected, check_replaceable

        path = Path(path)
        check_not_protected(path, read)
        if path.exists() and not path.is_dir():
            raise InputError(f"{path} is a file; choose a folder for the run")
        if path.is_dir() and any(path.iterdir()) and not overwrite:
            raise InputError(
                f"run folder {path} is not empty; pass --resume {path} to continue it or --overwrite to replace it"
            )
        if overwrite:
            check_replaceable(path, kind=RUN_KIND, foreign=foreign_files)
        check_writable(path)
        return cls(path)

    def acquire(self) -> None:
        """Lock the folder for this process (released by :meth:`release`, or by the OS if it dies) and
        remove the temp files a killed writer left."""
        from ganaug.outputs import clean_stale_temps, exclusive_lock

        self._lock.enter_context(exclusive_lock(self.path, what="--out"))
        if self.path.is_dir():
            for name in _ATOMIC_FILES:
                clean_stale_temps(self.path / name)

    def release(self) -> None:
        self._lock.close()

    def create(self, *, replace: bool) -> None:
        """Make the (locked) folder a fresh, marked run folder; ``replace`` removes a previous run first."""
        from ganaug.outputs import mark_dir, remove_path

        if replace and self.path.is_dir():
            for child in self.path.iterdir():
                remove_path(child)
        (self.path / SAMPLES).mkdir(parents=True, exist_ok=True)
        mark_dir(self.path, RUN_KIND)

    # ---- config.json ----------------------------------------------------------------------------

    def write_config(self, meta: dict[str, Any]) -> None:
        """Write ``meta`` (``config``, ``data``, ``classes``, ...) as config.json with schema and version."""
        self._write_text(CONFIG, json.dumps({"schema": CONFIG_SCHEMA, "ganaug_version": __version__, **meta}, indent=2))

    def read_config(self) -> dict[str, Any]:
        """config.json, checked.

        Raises:
            InputError: no config.json (not a run folder); unreadable JSON; an unsupported or missing schema
                version, or missing keys (one line naming the versions).
        """
        path = self.path / CONFIG
        if not path.is_file():
            raise InputError(f"{self.path} is not a ganaug run folder (no {CONFIG}); start a new run without --resume")
        try:
            meta = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise InputError(f"{path} is corrupt ({type(e).__name__}: {e}); restore it or start a new run") from None
        supported = ", ".join(map(str, SUPPORTED_CONFIG_SCHEMAS))
        if not isinstance(meta, dict):
            raise InputError(f"{path} is corrupt (not a JSON object); restore it or start a new run")
        written_by = f"written by ganaug {meta.get('ganaug_version', '(unknown version)')}"
        if "schema" not in meta:
            raise InputError(
                f"{path} has no schema version ({written_by}); this ganaug reads config schema {supported}: "
                f"use the ganaug that wrote it or start a new run"
            )
        if meta["schema"] not in SUPPORTED_CONFIG_SCHEMAS:
            raise InputError(
                f"{path} has config schema {meta['schema']!r} ({written_by}); this ganaug reads schema {supported}: "
                f"use the ganaug that wrote it"
            )
        missing = [k for k in CONFIG_KEYS if k not in meta]
        if missing:
            raise InputError(f"{path} (config schema {meta['schema']}) lacks {', '.join(missing)}; restore it")
        return meta

    def write_indices(self, indices: np.ndarray, pseudo: PseudoLabels | None = None) -> None:
        """``indices.npy``, and ``pseudo_labels.npz`` when the run trains on a pseudo-labelled pool."""
        np.save(self.path / INDICES, indices)
        if pseudo is not None:
            from ganaug.train.pseudo import FILE

            pseudo.save(self.path / FILE)

    # ---- metrics.csv ----------------------------------------------------------------------------

    def append_metrics(self, row: dict[str, Any]) -> None:
        path = self.path / METRICS
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRICS_FIELDS)
            if new:
                w.writeheader()
            w.writerow(row)

    def truncate_metrics(self, step: int) -> None:
        """Drop the rows after ``step`` (logged after the last checkpoint by a run that was then killed)."""
        path = self.path / METRICS
        if not path.is_file():
            return
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if (r.get("step") or "").isdigit() and int(r["step"]) <= step]
        text = io.StringIO(newline="")
        w = csv.DictWriter(text, fieldnames=METRICS_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        self._write_text(METRICS, text.getvalue())

    # ---- pictures and summary -------------------------------------------------------------------

    def save_epoch_grid(self, grid: torch.Tensor, epoch: int, *, nrow: int) -> None:
        viz.save_grid(grid, self.path / SAMPLES / f"epoch_{epoch:04d}.png", nrow=nrow)  # _EPOCH_GRID

    def finish(self, grid: torch.Tensor, summary: dict[str, Any], *, nrow: int) -> None:
        """Write samples.gif (at most ~100 of the epoch grids, ending on the last), samples.png, losses.png
        and summary.json."""
        frames = sorted((self.path / SAMPLES).glob("epoch_*.png"))
        every = max(1, len(frames) // 100)
        viz.save_gif(frames[::-1][::every][::-1], self.path / GIF)
        viz.save_grid(grid, self.path / GRID, nrow=nrow)
        if (self.path / METRICS).exists():
            viz.plot_losses(self.path / METRICS, self.path / LOSSES)
        self._write_text(SUMMARY, json.dumps({"ganaug_version": __version__, **summary}, indent=2))

    def _write_text(self, name: str, text: str) -> None:
        from ganaug.outputs import write_text_whole

        write_text_whole(self.path / name, text)
