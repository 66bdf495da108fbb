"""Export a run's generator to one self-contained, self-verified ONNX file.

The exported graph is the EMA generator in eval mode with every BatchNorm folded into the Linear /
(transposed) convolution before it, so it computes exactly
``G(z, labels)`` with a batch axis that really is dynamic:

- inputs: ``z`` float32 [N, z_dim], ``labels`` int64 [N] in ``[0, num_classes)``
- output: ``images`` float32 [N, 1, 28, 28] in [-1, 1]

ONNX Runtime fuses Conv+BatchNorm but not ConvTranspose+BatchNorm, so folding here is what keeps the
ConvTranspose layers (most of the generator's time) free of a separate normalization pass.

Facts about the model travel in ``metadata_props`` under ``ganaug.`` keys with JSON values (see
:data:`METADATA_KEYS`); ONNX Runtime hands them back as ``custom_metadata_map``. Before the file appears,
:func:`export_onnx` runs ``onnx.checker`` and compares ONNX Runtime (CPU) with PyTorch on fresh random
inputs at :data:`PARITY_BATCHES`; a mismatch raises :class:`ExportParityError` and leaves no file.
A generator with centre-of-mass placement (:class:`~ganaug.models.dcgan.CenterOfMass`) moves its images by whole pixels, a step function of the image: an image whose
centre of mass sits at a half-pixel tie (within ``10 * tolerance`` px) may be moved one pixel apart by the two
backends. Such an image passes only if it is exactly that (the same unmoved image, moved one pixel more or
less), and the parity record counts them (``centre_of_mass_ties``); rare (one in the first 4,360 checked).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganaug import __version__
from ganaug.config import sampling_problem
from ganaug.errors import GanaugError, InputError
from ganaug.hashing import file_sha256
from ganaug.outputs import ONNX_FILE, ONNX_FP16_FILE, ONNX_KIND

if TYPE_CHECKING:
    import onnx
    import torch

    from ganaug.models.dcgan import Generator

PARITY_BATCHES: tuple[int, ...] = (1, 7, 256, 4096)
PARITY_TOLERANCE: dict[str, float] = {"fp32": 1e-4, "fp16": 1e-2}
OUTPUT_RANGE: tuple[float, float] = (-1.0, 1.0)
KIND = ONNX_KIND
ONNX_SCHEMA = 1
"""Version of the ``ganaug.`` metadata layout; a reader refuses any other (see :func:`check_generator_file`)."""
SUPPORTED_ONNX_SCHEMAS: tuple[int, ...] = (ONNX_SCHEMA,)
METADATA_KEYS: tuple[str, ...] = (
    "kind",
    "schema",
    "z_dim",
    "num_classes",
    "classes",
    "image_shape",
    "output_range",
    "precision",
    "model_config",
    "data",
    "step",
    "checkpoint_sha256",
    "ganaug_version",
    "opset",
    "parity",
)
"""Keys of ``metadata_props`` (each prefixed with ``ganaug.``, each value JSON)."""
PROVENANCE_KEYS: tuple[str, ...] = ("data", "step", "checkpoint_sha256")
"""Metadata keys that say where a generator came from; null unless the caller's ``provenance`` gives them."""
CONTRACT_KEYS = frozenset(METADATA_KEYS) - set(PROVENANCE_KEYS) | {"sampling", "density_weighting", "center_of_mass"}
"""Metadata keys ganaug derives from the generator and the export itself: ``provenance`` cannot set them."""


class ExportParityError(GanaugError, RuntimeError):
    """The exported graph's outputs differ from PyTorch's by more than the tolerance; no file was written."""


def fold_for_inference(generator: torch.nn.Module) -> torch.nn.Module:
    """An eval-mode copy of ``generator`` with BatchNorm folded away.

    Every ``BatchNorm1d``/``BatchNorm2d`` that directly follows a ``Linear``, ``Conv2d`` or ``ConvTranspose2d``
    inside an ``nn.Sequential`` is folded into that layer's weight and bias and replaced by ``nn.Identity``;
    a ``PixelShuffle(2)`` followed by a ``ConvTranspose2d(k4, s2, p1)`` becomes one 3x3 convolution and a
    ``PixelShuffle(4)`` (:func:`_shuffle_deconv_as_conv`).
    The copy computes the same function as ``generator.eval()`` (up to float rounding).
    """
    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    model = copy.deepcopy(generator).eval()
    for seq in model.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        for i in range(len(seq) - 1):
            layer, bn = seq[i], seq[i + 1]
            if not isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
                continue
            if isinstance(layer, nn.Linear):
                seq[i] = fuse_linear_bn_eval(layer, bn)
            elif isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                seq[i] = fuse_conv_bn_eval(layer, bn, transpose=isinstance(layer, nn.ConvTranspose2d))
            else:
                continue
            seq[i + 1] = nn.Identity()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            if _is_shuffle_then_deconv(seq[i], seq[i + 1]):
                seq[i], seq[i + 1] = nn.Identity(), _shuffle_deconv_as_conv(seq[i + 1], seq[i])
    return model.requires_grad_(False).to(torch.float32)


def _is_shuffle_then_deconv(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    from torch import nn

    return (
        isinstance(a, nn.PixelShuffle)
        and a.upscale_factor == 2
        and isinstance(b, nn.ConvTranspose2d)
        and b.kernel_size == (4, 4)
        and b.stride == (2, 2)
        and b.padding == (1, 1)
        and b.output_padding == (0, 0)
        and b.groups == 1
        and b.dilation == (1, 1)
    )


def _shuffle_deconv_as_conv(deconv: torch.nn.ConvTranspose2d, shuffle: torch.nn.PixelShuffle) -> torch.nn.Module:
    """``deconv(shuffle(x))`` rewritten exactly as ``PixelShuffle(4)(conv3x3(x))``.

    On the coarse grid of ``x`` each 4x4 output block of PixelShuffle(2) then ConvTranspose2d(k4, s2, p1)
    depends on the 3x3 neighbourhood of its cell, so the pair is one 3x3 convolution to 16x the output
    channels followed by a PixelShuffle(4). ONNX Runtime then runs a batched Conv and a DepthToSpace of the
    small output instead of a DepthToSpace of the large hidden map and a ConvTranspose per image. The
    weights are read off by probing the pair with one-hot inputs.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    cin = deconv.in_channels * 4
    cout = deconv.out_channels
    probe = torch.zeros(cin, cin, 7, 7)
    probe[torch.arange(cin), torch.arange(cin), 3, 3] = 1.0
    with torch.no_grad():
        response = F.conv_transpose2d(shuffle(probe), deconv.weight, None, stride=2, padding=1)  # [cin, cout, 28, 28]
        blocks = F.pixel_unshuffle(response, 4)  # [cin, cout*16, 7, 7]
        weight = blocks[:, :, 2:5, 2:5].flip(-1, -2).transpose(0, 1).contiguous()  # [cout*16, cin, 3, 3]
        conv = nn.Conv2d(cin, cout * 16, 3, 1, 1)
        conv.weight.copy_(weight)
        bias = deconv.bias if deconv.bias is not None else torch.zeros(cout)
        conv.bias.copy_(bias.repeat_interleave(16))
    return nn.Sequential(conv, nn.PixelShuffle(4))


def export_onnx(
    source: str | Path,
    out: str | Path | None = None,
    *,
    fp16: bool = False,
    overwrite: bool = False,
    center_of_mass: bool = False,
) -> Path:
    """Export the EMA generator of a run folder or checkpoint to ONNX, verify it, and return the file's path.

    Args:
        source: a run folder or its ``checkpoint.pt``.
        out: the ``.onnx`` file to write; default ``<run folder>/generator.onnx``
            (``generator_fp16.onnx`` with ``fp16``), the run's own file, refreshed if it is a ganaug ONNX.
        fp16: store weights and compute in float16 (for GPU providers; inputs and output stay float32).
        overwrite: replace an existing ``out`` if it is an ONNX file ganaug wrote (never anything else).
        center_of_mass: export the generator followed by :class:`~ganaug.models.dcgan.CenterOfMass` (each image moved
            by whole pixels to MNIST's centre-of-mass placement) even if its run does not sample that way; the
            file's ``center_of_mass`` metadata then says ``true``. For data placed that way (MNIST).

    Returns:
        The path of the written file (one self-contained file, no ``.onnx.data`` sidecar).

    Raises:
        InputError: no checkpoint at ``source``, or a file that is not a readable ganaug checkpoint; ``out``
            is not writable, exists (without ``overwrite``), or is not a ganaug ONNX file (the run's
            ``checkpoint.pt`` never is).
        ExportParityError: ``onnx.checker`` passes but ONNX Runtime differs from PyTorch by more than
            :data:`PARITY_TOLERANCE` at some batch size of :data:`PARITY_BATCHES`; nothing is written.
    """
    from ganaug.train.checkpoint import CHECKPOINT

    source = Path(source)
    generator, meta = load_checkpoint_generator(source)
    if center_of_mass:
        from ganaug.models.dcgan import with_center_of_mass

        generator = with_center_of_mass(generator)
    checkpoint = source / CHECKPOINT if source.is_dir() else source
    run_dir = checkpoint.parent
    if out is None:
        out, overwrite = run_dir / (ONNX_FP16_FILE if fp16 else ONNX_FILE), True
    out = Path(out)
    _check_out(out, overwrite=overwrite, protect=(checkpoint,))
    run_config = run_dir / "config.json"
    provenance = {
        "data": json.loads(run_config.read_text()).get("data") if run_config.is_file() else None,
        "step": meta["step"],
        "checkpoint_sha256": file_sha256(checkpoint),
    }
    return export_generator(
        generator,
        out,
        classes=meta["classes"],
        fp16=fp16,
        provenance=provenance,
        overwrite=overwrite,
        protect=(checkpoint,),
        sampling=(meta.get("config") or {}).get("sampling") or {},
        density_weighting=float((meta.get("config") or {}).get("flatten_density") or 0.0),
    )


def _check_out(out: Path, *, overwrite: bool, protect: tuple[Path, ...]) -> None:
    """Refuse, before any work, an ``out`` that cannot be written or must not be replaced."""
    from ganaug.outputs import check_parent_writable, check_replaceable

    if out.is_dir():
        raise InputError(f"--out {out} is a folder; give a file name such as {out / 'generator.onnx'}")
    check_parent_writable(out)
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise InputError(f"{out} already exists; pass --overwrite to replace it or choose another --out")
        check_replaceable(out, kind="onnx", protect=protect)


def export_generator(
    generator: Generator,
    out: str | Path,
    *,
    classes: list[str] | None = None,
    fp16: bool = False,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = False,
    protect: tuple[Path, ...] = (),
    sampling: dict[str, Any] | None = None,
    density_weighting: float = 0.0,
) -> Path:
    """Export an in-memory :class:`~ganaug.models.dcgan.Generator` (see :func:`export_onnx`, which calls this).

    Args:
        generator: the generator to export (its eval-mode function is exported; it is not modified).
        out: the ``.onnx`` file to write.
        classes: class names; default ``"0"``, ``"1"``, ...
        fp16: float16 weights and compute.
        provenance: extra metadata, e.g. ``{"data": ..., "step": ..., "checkpoint_sha256": ...}``
            (each of those three defaults to null); it may not set any of :data:`CONTRACT_KEYS`.
        overwrite: replace an existing ``out`` if it is an ONNX file ganaug wrote.
        protect: paths ``out`` may not be, hold or lie inside (the checkpoint being read).
        sampling: the model's default sampling (its preset's, ``{"temperature": t}``), stored as the ``sampling``
            metadata that generation reads (:attr:`ganaug.sample.runtime.OnnxGenerator.sampling`); empty = plain.
        density_weighting: the run's ``flatten_density`` (0: none), stored so that sampling without its
            correction (``--unflatten``) can say so (:func:`ganaug.sample.runtime.warn_uncorrected`).

    Raises:
        InputError: ``out`` is a folder, its folder is missing or not writable, it exists (without
            ``overwrite``) or is not a ganaug ONNX file, or another process is writing it;
            ``provenance`` sets a contract key.
        GanaugError: the disk filled up while writing (the partial file is removed).
        ExportParityError: see :func:`export_onnx`; nothing is written.
    """
    import onnx
    import torch

    from ganaug.models.dcgan import IMAGE_SHAPE
    from ganaug.outputs import clean_stale_temps, exclusive_lock, reporting_disk_full, temp_path

    out = Path(out)
    _check_out(out, overwrite=overwrite, protect=protect)
    config = generator.config
    classes = list(classes) if classes is not None else [str(c) for c in range(config.num_classes)]
    if len(classes) != config.num_classes:
        raise InputError(f"the generator has {config.num_classes} classes but {len(classes)} names were given")
    precision = "fp16" if fp16 else "fp32"
    clash = sorted(set(provenance or {}) & CONTRACT_KEYS)
    if clash:
        raise InputError(f"provenance may not set {', '.join(clash)}: ganaug derives these from the generator")

    model = fold_for_inference(generator)
    with torch.no_grad():
        proto = _to_onnx(_half_precision(model) if fp16 else model, config.z_dim, config.num_classes)
    metadata: dict[str, Any] = {
        "kind": KIND,
        "schema": ONNX_SCHEMA,
        "z_dim": config.z_dim,
        "num_classes": config.num_classes,
        "classes": classes,
        "image_shape": list(IMAGE_SHAPE),
        "output_range": list(OUTPUT_RANGE),
        "precision": precision,
        "model_config": dataclasses.asdict(config),
        "center_of_mass": bool(getattr(generator, "center_of_mass", False)),
        "sampling": dict(sampling or {}),
        "density_weighting": float(density_weighting),
        **dict.fromkeys(PROVENANCE_KEYS),
        **(provenance or {}),
        "ganaug_version": __version__,
        "opset": next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
    }
    _set_metadata(proto, metadata)
    onnx.checker.check_model(proto, full_check=True)
    parity = check_parity(proto.SerializeToString(), generator, tolerance=PARITY_TOLERANCE[precision])
    _set_metadata(proto, {"parity": parity})

    with exclusive_lock(out, what="--out"):
        clean_stale_temps(out)
        _check_out(out, overwrite=overwrite, protect=protect)  # again: another process may have written it meanwhile
        tmp = temp_path(out)
        try:
            with reporting_disk_full(out, temp=tmp):
                onnx.save_model(proto, tmp, save_as_external_data=False)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return out


def load_checkpoint_generator(source: str | Path) -> tuple[Generator, dict[str, Any]]:
    """:func:`ganaug.train.checkpoint.load_generator`, with a file that is not a readable ganaug checkpoint as bad input.

    Raises:
        InputError: no checkpoint at ``source``, or one that is not a ganaug checkpoint of this version.
    """
    from ganaug.train.checkpoint import load_generator

    try:
        return load_generator(source)
    except InputError:
        raise
    except (pickle.UnpicklingError, EOFError, KeyError, RuntimeError, ValueError) as e:
        reason = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
        raise InputError(
            f"{source} is not a ganaug checkpoint this version can read ({reason}); "
            f"give a run folder or its checkpoint.pt written by `ganaug train`"
        ) from None


def check_parity(
    model: bytes | str | Path,
    generator: torch.nn.Module,
    *,
    tolerance: float,
    batches: tuple[int, ...] = PARITY_BATCHES,
    seed: int = 0,
) -> dict[str, Any]:
    """Max abs difference between the ONNX model (ONNX Runtime, CPU) and ``generator`` (eval) per batch size.

    Inputs are fresh standard-normal ``z`` and uniform labels drawn from ``seed``. ``generator`` is run in eval
    mode and handed back in the mode it came in.

    Returns:
        ``{"provider": "CPUExecutionProvider", "tolerance": t, "max_abs_err": {"1": e1, "7": e7, ...}}``.

    Raises:
        ExportParityError: some batch size differs by more than ``tolerance``.
    """
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model if isinstance(model, bytes) else str(model), options, providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(seed)
    z_dim, num_classes = generator.config.z_dim, generator.config.num_classes
    errors: dict[str, float] = {}
    ties: dict[str, int] = {}
    was_training = generator.training
    generator.eval()
    try:
        for n in batches:
            z = rng.standard_normal((n, z_dim), dtype=np.float32)
            labels = rng.integers(0, num_classes, n, dtype=np.int64)
            (onnx_out,) = session.run(["images"], {"z": z, "labels": labels})
            with torch.no_grad():
                torch_out = generator(torch.from_numpy(z), torch.from_numpy(labels)).numpy()
            per_image = np.abs(onnx_out - torch_out).reshape(n, -1).max(axis=1)
            if getattr(generator, "center_of_mass", False) and (per_image > tolerance).any():
                tied = _tie_moved(generator, z, labels, onnx_out, per_image > tolerance, tolerance)
                per_image[tied], ties[str(n)] = 0.0, int(tied.sum())
            errors[str(n)] = float(per_image.max())
    finally:
        generator.train(was_training)  # the caller's module leaves as it came (export_generator's contract)
    worst = max(errors, key=errors.get)
    if errors[worst] > tolerance:
        raise ExportParityError(
            f"ONNX Runtime differs from PyTorch by {errors[worst]:.3g} at batch {worst} (tolerance {tolerance:g}); "
            f"nothing was written; please report this with your torch {torch.__version__} and onnxruntime {ort.__version__}"
        )
    report = {"provider": "CPUExecutionProvider", "tolerance": tolerance, "max_abs_err": errors}
    return report | ({"centre_of_mass_ties": ties} if ties else {})


def _tie_moved(
    generator: torch.nn.Module, z: np.ndarray, labels: np.ndarray, onnx_out: np.ndarray, differs: np.ndarray, tol: float
) -> np.ndarray:
    """Which images (bool [N]) differ only because their centre of mass sits at a half-pixel tie (within
    ``10 * tol`` px) that the two backends rounded apart: among ``differs`` (bool [N]), those whose ONNX image
    is PyTorch's unmoved image moved by one pixel more or less on either axis (within ``tol``)."""
    import torch

    pick = np.flatnonzero(differs)
    with torch.no_grad():
        raw = generator.from_embedding(
            torch.from_numpy(z[pick]), generator.embed(torch.from_numpy(labels[pick])), centre=False
        )
        centre = generator.centre
        dy, dx = centre.shifts(raw)
        out = torch.from_numpy(onnx_out[pick])
        matched = torch.zeros(len(pick), dtype=torch.bool)
        for a in (-1, 0, 1):
            for b in (-1, 0, 1):
                moved = centre.move(raw, dy + a, dx + b)
                matched |= (moved - out).abs().flatten(1).amax(1) <= tol
        tied = matched & centre.near_half_pixel(raw, 10 * tol)
    result = np.zeros(len(differs), dtype=bool)
    result[pick] = tied.numpy()
    return result


def read_metadata(model: onnx.ModelProto) -> dict[str, Any]:
    """The ``ganaug.`` metadata of an ONNX model, keys without the prefix, values JSON-decoded."""
    prefix = "ganaug."
    return {p.key[len(prefix) :]: json.loads(p.value) for p in model.metadata_props if p.key.startswith(prefix)}


def check_generator_file(proto: onnx.ModelProto, path: str | Path) -> dict[str, Any]:
    """The ``ganaug.`` metadata of a generator file after checking it against the schema and the graph.

    Checks: ``kind`` is :data:`KIND`; ``schema`` is one of :data:`SUPPORTED_ONNX_SCHEMAS`; every key of
    :data:`METADATA_KEYS` is there; ``classes`` has ``num_classes`` names; the graph's inputs are ``z`` float32
    [N, z_dim] and ``labels`` int64 [N] and its output ``images`` float32 [N, *image_shape].

    Raises:
        InputError: one line naming the file, what disagrees and what to do (re-export).
    """
    from onnx import TensorProto

    fix = "re-export it with `ganaug export RUN_DIR --out FILE`"
    try:
        metadata = read_metadata(proto)
    except ValueError:
        raise InputError(f"{path} has ganaug metadata that is not valid JSON (a corrupt file?); {fix}") from None
    if metadata.get("kind") != KIND:
        raise InputError(
            f"{path} is an ONNX model but not a ganaug generator (no ganaug.kind metadata); "
            "export one with `ganaug export RUN_DIR`"
        )
    schema = metadata.get("schema")
    if schema not in SUPPORTED_ONNX_SCHEMAS:
        found = (
            "no schema (written before ganaug versioned its ONNX metadata)" if schema is None else f"schema {schema!r}"
        )
        raise InputError(
            f"{path} has ONNX metadata {found}; ganaug {__version__} reads schema "
            f"{', '.join(map(str, SUPPORTED_ONNX_SCHEMAS))}; {fix}"
        )
    sampling = metadata.get("sampling")  # optional: files exported before presets have none (plain sampling)
    problem = None if sampling is None else sampling_problem(sampling)
    if problem:
        raise InputError(f"{path}: its sampling metadata is wrong ({problem}); {fix}")
    missing = [k for k in METADATA_KEYS if k not in metadata]
    if missing:
        raise InputError(f"{path} lacks the ganaug metadata {', '.join(missing)} (a truncated file?); {fix}")
    z_dim, classes, image_shape = metadata["z_dim"], metadata["classes"], metadata["image_shape"]
    if (
        not (isinstance(classes, list) and all(isinstance(c, str) for c in classes))
        or len(classes) != metadata["num_classes"]
    ):
        raise InputError(
            f"{path}: metadata classes {classes!r} are not num_classes={metadata['num_classes']} names; {fix}"
        )

    def spec(values: Any) -> dict[str, tuple[int, list[int | str]]]:
        return {
            v.name: (v.type.tensor_type.elem_type, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
            for v in values
        }

    inputs, outputs = spec(proto.graph.input), spec(proto.graph.output)
    expected = {
        "input z": (inputs.get("z"), TensorProto.FLOAT, [z_dim]),
        "input labels": (inputs.get("labels"), TensorProto.INT64, []),
        "output images": (outputs.get("images"), TensorProto.FLOAT, list(image_shape)),
    }
    for what, (found_spec, dtype, shape) in expected.items():
        if found_spec is None or found_spec[0] != dtype or found_spec[1][1:] != shape:
            got = "missing" if found_spec is None else f"{TensorProto.DataType.Name(found_spec[0])} {found_spec[1]}"
            raise InputError(
                f"{path}: the graph's {what} is {got} but the metadata says "
                f"{TensorProto.DataType.Name(dtype)} [N{''.join(f', {d}' for d in shape)}]; {fix}"
            )
    return metadata


def _set_metadata(proto: onnx.ModelProto, values: dict[str, Any]) -> None:
    props = {p.key: p.value for p in proto.metadata_props}
    props.update({f"ganaug.{k}": json.dumps(v) for k, v in values.items()})
    del proto.metadata_props[:]
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)


def _to_onnx(model: torch.nn.Module, z_dim: int, num_classes: int) -> onnx.ModelProto:
    # The dynamo exporter gives the cleanest graph here (Gather, Concat, Gemm, Relu, one constant Reshape,
    # ConvTranspose...); the TorchScript one adds a Shape/Slice/Concat chain to build the Reshape target.
    # A batch of 2 while tracing keeps batch-1 specialisation out of the graph.
    import warnings

    import torch

    z = torch.randn(2, z_dim)
    labels = torch.arange(2) % num_classes
    with warnings.catch_warnings():
        # Both inputs share the one batch axis; the exporter says so once per export, harmlessly.
        warnings.filterwarnings("ignore", message=r".*axis name: batch will not be used")
        program = torch.onnx.export(
            model,
            (z, labels),
            input_names=["z", "labels"],
            output_names=["images"],
            dynamo=True,
            dynamic_shapes=({0: "batch"}, {0: "batch"}),
            external_data=False,
            optimize=True,
            verbose=False,
        )
    return program.model_proto


def _half_precision(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with float16 weights and compute behind float32 ``z`` and ``images``."""
    from torch import nn

    class HalfPrecision(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner.half()

        def forward(self, z, labels):
            return self.inner(z.half(), labels).float()

    return HalfPrecision(model).eval()
