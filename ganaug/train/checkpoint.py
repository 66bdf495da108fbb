"""Checkpoint files: the one place that writes and reads ``checkpoint.pt``.

A checkpoint is a ``torch.save`` dict (loaded with ``weights_only=True``) holding
``schema`` (:data:`CHECKPOINT_SCHEMA`), ``ganaug_version``, ``config`` (``TrainConfig.to_dict()``),
``classes``, ``step``, ``train_seconds``, the state dicts ``G``, ``D``, ``G_ema``, ``opt_g``, ``opt_d``,
``scaler_g``, ``scaler_d``, and the RNG states ``rng`` (batch order and z) and ``aug_rng`` (one per rank).

Both :mod:`ganaug.train.trainer` (which writes and resumes) and :mod:`ganaug.train.export` (which reads) import this
module; it imports neither, so there is no import cycle between them.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ganaug.config import RemovedLeverError, TrainConfig
from ganaug.errors import InputError
from ganaug.models.dcgan import Generator

CHECKPOINT = "checkpoint.pt"
#: Version of the checkpoint layout; bump it when a key changes meaning or goes away.
CHECKPOINT_SCHEMA = 1
SUPPORTED_CHECKPOINT_SCHEMAS: tuple[int, ...] = (1,)
CHECKPOINT_KEYS: tuple[str, ...] = (
    "schema",
    "ganaug_version",
    "config",
    "classes",
    "step",
    "train_seconds",
    "G",
    "D",
    "G_ema",
    "opt_g",
    "opt_d",
    "scaler_g",
    "scaler_d",
    "rng",
    "aug_rng",
)


#: What unpickling a damaged file raises besides torch's own errors: a bad memo reference (``\x80\x02h\x05.``)
#: is a KeyError, an empty stack an IndexError, a mangled opcode argument a TypeError or AttributeError.
CORRUPT_PICKLE_ERRORS: tuple[type[Exception], ...] = (
    pickle.UnpicklingError,
    EOFError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
)


def checkpoint_path(path: str | Path) -> Path:
    """``path`` itself for a file, ``path/checkpoint.pt`` for a run folder."""
    path = Path(path)
    return path / CHECKPOINT if path.is_dir() else path


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` (every key of :data:`CHECKPOINT_KEYS` but ``schema``) atomically to ``path``.

    The file appears complete or not at all: it is written to a hidden temp file beside ``path`` and
    renamed over it. A full disk removes the partial temp file and raises a one-line
    :class:`~ganaug.errors.GanaugError`.
    """
    from ganaug.outputs import reporting_disk_full, temp_path

    state = {"schema": CHECKPOINT_SCHEMA, **state}
    missing = set(CHECKPOINT_KEYS) - set(state)
    if missing:
        raise ValueError(f"checkpoint state lacks {sorted(missing)}")
    tmp = temp_path(path)
    try:
        with reporting_disk_full(path, temp=tmp):
            # Serialised in memory, then written by Python: a full disk then surfaces as OSError(ENOSPC), not
            # as the opaque RuntimeError ("unexpected pos") torch's zip writer raises, even on a file object.
            buffer = io.BytesIO()
            torch.save(state, buffer)
            with open(tmp, "wb") as f:
                f.write(buffer.getbuffer())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint (a file, or a run folder's ``checkpoint.pt``).

    Raises:
        InputError: no file; a file that is not a readable checkpoint (corrupt, truncated, not ganaug's);
            a schema version this ganaug does not read, or missing keys. One line naming the versions.
    """
    ckpt = checkpoint_path(path)
    if not ckpt.is_file():
        raise InputError(f"no checkpoint at {ckpt}; give a run folder or its {CHECKPOINT}")
    try:
        state = torch.load(ckpt, map_location=map_location, weights_only=True)
    except CORRUPT_PICKLE_ERRORS + (RuntimeError, ValueError, zipfile.BadZipFile, OSError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise InputError(
            f"{ckpt} is corrupt or truncated, not a checkpoint ganaug can read ({type(e).__name__}: {reason}); "
            f"restore it or start the run again with --overwrite"
        ) from None
    if not isinstance(state, dict):
        raise InputError(f"{ckpt} is not a ganaug checkpoint (it holds a {type(state).__name__}, not a dict)")
    check_checkpoint_schema(state, ckpt)
    return state


def check_checkpoint_schema(state: dict[str, Any], where: Path) -> None:
    """Raise :class:`InputError` unless ``state`` has a supported ``schema`` and every expected key."""
    supported = ", ".join(map(str, SUPPORTED_CHECKPOINT_SCHEMAS))
    written_by = f"written by ganaug {state.get('ganaug_version', '(unknown version)')}"
    schema = state.get("schema")
    if schema is None:
        raise InputError(
            f"{where} has no checkpoint schema version ({written_by}); this ganaug reads schema {supported}: "
            f"retrain it with this version or use the ganaug that wrote it"
        )
    if schema not in SUPPORTED_CHECKPOINT_SCHEMAS:
        raise InputError(
            f"{where} has checkpoint schema {schema!r} ({written_by}); this ganaug reads schema {supported}: "
            f"use the ganaug that wrote it"
        )
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise InputError(
            f"{where} (checkpoint schema {schema}) lacks {', '.join(missing)}; it is damaged or not ganaug's: "
            f"restore it or retrain"
        )


def config_of(state: dict[str, Any], where: Path) -> TrainConfig:
    """The checkpoint's :class:`TrainConfig` (also as an older ganaug wrote it: :func:`ganaug.config.upgrade_config`),
    with an unknown key or value, or a lever ganaug no longer has, as a one-line :class:`InputError`."""
    run = where.parent if where.name in (CHECKPOINT, "config.json") else where
    try:
        return TrainConfig.from_dict(state["config"], where=str(run))
    except RemovedLeverError as e:
        raise InputError(str(e)) from None
    except (TypeError, ValueError) as e:
        raise InputError(f"{where} holds a config this ganaug cannot read: {e}") from None


def load_generator(
    path: str | Path, *, ema: bool = True, device: str | torch.device = "cpu"
) -> tuple[Generator, dict[str, Any]]:
    """The (EMA by default) generator of a run folder or checkpoint file, in eval mode (followed by
    :class:`~ganaug.models.dcgan.CenterOfMass` when the run samples that way), and the checkpoint's metadata
    (``ganaug_version``, ``config``, ``classes``, ``step``, ``schema``).

    Raises:
        InputError: as :func:`load_checkpoint`.
    """
    ckpt = checkpoint_path(path)
    state = load_checkpoint(ckpt, map_location=device)
    config = config_of(state, ckpt)
    # A run that samples its images placed (sample_center_of_mass) loads as a generator with the move (no weights).
    g = Generator(config.model, center_of_mass=config.sample_center_of_mass).to(device)
    prefix = "module."
    weights = {k[len(prefix) :]: v for k, v in state["G_ema"].items() if k.startswith(prefix)} if ema else state["G"]
    try:
        g.load_state_dict(weights)
    except RuntimeError as e:
        reason = (str(e).strip().splitlines() or [""])[0][:200]
        raise InputError(f"{ckpt}: the generator weights do not match its config ({reason}); retrain it") from None
    meta = {k: state[k] for k in ("schema", "ganaug_version", "config", "classes", "step")}
    return g.eval(), meta
