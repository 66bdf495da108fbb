"""The evaluation classifier: a small CNN that ganaug trains itself on real data (no downloaded weights).

It judges generators (:mod:`ganaug.eval.metrics`): its predictions give class fidelity, and its penultimate
layer gives the feature space of the Fréchet distance and of k-NN precision/recall, in place of
Inception features, which mean little on 28x28 grayscale digits.

Input contract: images float [N, 1, 28, 28] in [-1, 1], the generator's range and what
:func:`ganaug.data.sources.to_model_range` makes of uint8 images. Anything else raises; nothing is rescaled
silently (a [0, 1] input would otherwise be read as a mostly grey digit).

Architecture (``width`` = 32, ``hidden`` = 128 by default)::

    conv3x3(w) BN ReLU  conv3x3(w) BN ReLU  maxpool      # [N, w, 14, 14]
    conv3x3(2w) BN ReLU conv3x3(2w) BN ReLU maxpool      # [N, 2w, 7, 7]
    flatten, linear(hidden) ReLU                          # [N, hidden]  <- features
    dropout, linear(num_classes)                          # [N, num_classes] logits

Saved as a folder: ``model.safetensors`` (weights and BatchNorm buffers) and ``evaluator.json``
(``schema`` version, architecture, classes, training settings and data identity, test accuracy, ganaug
version). :func:`load_evaluator` reads the schema versions in :data:`SUPPORTED_EVALUATOR_SCHEMAS` only.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganaug import __version__
from ganaug.data.augment_ops import random_affine
from ganaug.errors import InputError, TrainingDiverged

WEIGHTS = "model.safetensors"
CONFIG = "evaluator.json"
EVALUATOR_SCHEMA = 1
"""The ``schema`` version :meth:`Evaluator.save` writes into ``evaluator.json``."""
SUPPORTED_EVALUATOR_SCHEMAS: tuple[int, ...] = (1,)
_REQUIRED_KEYS = ("schema", "config", "classes", "data")


@dataclass(frozen=True)
class EvaluatorConfig:
    """Architecture of the evaluation CNN.

    Attributes:
        num_classes: number of output classes.
        width: channels of the 28x28 stage; the 14x14 stage has ``2 * width``.
        hidden: size of the penultimate layer, i.e. of :meth:`Evaluator.features`.
        dropout: dropout before the last linear layer (training only).
    """

    num_classes: int = 10
    width: int = 32
    hidden: int = 128
    dropout: float = 0.3

    def __post_init__(self) -> None:
        for name in ("num_classes", "width", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"EvaluatorConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"EvaluatorConfig.dropout must be in [0, 1), got {self.dropout}")


def _conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class EvaluatorNet(nn.Module):
    """The CNN itself: ``forward(x)`` -> logits; ``body(x)`` -> penultimate features (see module docstring)."""

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        w = config.width
        self.body = nn.Sequential(
            *_conv_block(1, w),
            *_conv_block(w, w),
            nn.MaxPool2d(2),  # [N, w, 14, 14]
            *_conv_block(w, 2 * w),
            *_conv_block(2 * w, 2 * w),
            nn.MaxPool2d(2),  # [N, 2w, 7, 7]
            nn.Flatten(),  # [N, 2w*49]
            nn.Linear(2 * w * 49, config.hidden),  # [N, hidden]
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.hidden, config.num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def check_images(images: torch.Tensor, *, name: str = "images") -> None:
    """Raise :class:`InputError` unless ``images`` is float [N, 1, 28, 28] with values in [-1, 1]."""
    if not isinstance(images, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if not images.is_floating_point():
        raise InputError(
            f"{name} must be float [N, 1, 28, 28] in [-1, 1], got dtype {images.dtype}; "
            "convert uint8 images with ganaug.data.sources.to_model_range"
        )
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise InputError(f"{name} must have shape [N, 1, 28, 28], got {list(images.shape)}")
    if images.numel() and (images.min() < -1.0 - 1e-4 or images.max() > 1.0 + 1e-4):
        raise InputError(
            f"{name} must lie in [-1, 1] (the generator's range), got [{images.min():.3g}, {images.max():.3g}]; "
            "map [0, 1] images with x * 2 - 1"
        )


class Evaluator:
    """A trained evaluation CNN in eval mode, with its metadata.

    Every method takes images float [N, 1, 28, 28] in [-1, 1] (any device; moved to the evaluator's),
    works in batches of ``batch_size`` without gradients, and returns CPU tensors. Results do not depend
    on the batch size beyond float rounding (eval mode: BatchNorm uses its running statistics, no dropout).

    Raises:
        InputError: images of the wrong dtype, shape or value range (see :func:`check_images`).
    """

    def __init__(
        self,
        net: EvaluatorNet,
        config: EvaluatorConfig,
        *,
        classes: list[str],
        meta: dict[str, Any] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if len(classes) != config.num_classes:
            raise ValueError(f"{len(classes)} class names for a {config.num_classes}-class evaluator")
        self.config = config
        self.classes = list(classes)
        self.meta = dict(meta or {})
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()

    @torch.no_grad()
    def _apply(self, images: torch.Tensor, fn, batch_size: int) -> torch.Tensor:
        check_images(images)
        out = [
            fn(images[i : i + batch_size].to(self.device, torch.float32)).float().cpu()
            for i in range(0, len(images), batch_size)
        ]
        return torch.cat(out) if out else fn(images[:0].to(self.device, torch.float32)).float().cpu()

    def logits(self, images: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
        """Class logits float [N, num_classes]."""
        return self._apply(images, self.net, batch_size)

    def predict(self, images: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
        """Predicted classes int64 [N] (argmax of the logits)."""
        return self.logits(images, batch_size=batch_size).argmax(dim=1)

    def features(self, images: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
        """Penultimate-layer activations float [N, hidden] (after the ReLU, before dropout): the feature
        space of the Fréchet distance and of precision/recall."""
        return self._apply(images, self.net.body, batch_size)

    def features_and_logits(self, images: torch.Tensor, *, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`features` and :meth:`logits` from one pass (the head reads the features)."""
        f = self.features(images, batch_size=batch_size)
        with torch.no_grad():
            logits = torch.cat(
                [
                    self.net.head(f[i : i + batch_size].to(self.device)).float().cpu()
                    for i in range(0, max(len(f), 1), batch_size)
                ]
            )
        return f, logits

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Share of ``images`` whose predicted class equals ``labels`` (int64 [N])."""
        if len(images) != len(labels):
            raise InputError(f"{len(images)} images but {len(labels)} labels")
        return float((self.predict(images) == labels.cpu()).float().mean())

    def save(self, path: str | Path) -> Path:
        """Write ``path/model.safetensors`` and ``path/evaluator.json``; returns ``path``."""
        from safetensors.torch import save

        from ganaug.outputs import write_bytes_whole, write_text_whole

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        write_bytes_whole(path / WEIGHTS, save(state, metadata={"ganaug_version": __version__}))
        doc = {
            **self.meta,
            "schema": EVALUATOR_SCHEMA,
            "ganaug_version": __version__,
            "config": asdict(self.config),
            "classes": self.classes,
        }
        write_text_whole(path / CONFIG, json.dumps(doc, indent=2))
        return path


def load_evaluator(path: str | Path, *, device: str | torch.device = "cpu") -> Evaluator:
    """Load an evaluator folder written by :meth:`Evaluator.save`.

    Raises:
        InputError: ``path`` is not such a folder; an ``evaluator.json`` that is not JSON, lacks a key or has
            a ``schema`` this version does not read (the message names the versions); a ``model.safetensors``
            that is unreadable or does not match the architecture. One line that says what to do.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    retrain = f"retrain it with `ganaug evaluator train --dataset DATASET --out {path} --overwrite`"
    if not (path / CONFIG).is_file() or not (path / WEIGHTS).is_file():
        raise InputError(
            f"{path} is not an evaluator folder (needs {CONFIG} and {WEIGHTS}); "
            "train one with `ganaug evaluator train --data-root DATA --out PATH`"
        )
    try:
        doc = json.loads((path / CONFIG).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path / CONFIG} is not valid JSON ({e}); {retrain}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path / CONFIG} holds a JSON {type(doc).__name__}, not an object; {retrain}")
    check_evaluator_schema(doc, path / CONFIG)
    missing = [k for k in _REQUIRED_KEYS if k not in doc]
    if missing:
        raise InputError(f"{path / CONFIG} lacks {', '.join(missing)}; it is damaged or not ganaug's; {retrain}")
    classes = doc.pop("classes")
    try:
        config = EvaluatorConfig(**doc.pop("config"))
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise ValueError(f"classes must be a list of names, got {classes!r:.80}")
        net = EvaluatorNet(config)
        evaluator = Evaluator(net, config, classes=classes, meta=doc, device="cpu")
    except (TypeError, ValueError) as e:
        raise InputError(f"{path / CONFIG} holds a config this ganaug cannot read ({e}); {retrain}") from None
    try:
        state = load_file(str(path / WEIGHTS))
    except (SafetensorError, OSError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise InputError(f"{path / WEIGHTS} is not a readable safetensors file ({reason}); {retrain}") from None
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        reason = (str(e).strip().splitlines() or [""])[0][:160]
        raise InputError(f"{path / WEIGHTS} does not match {CONFIG} ({reason}); {retrain}") from None
    bad = non_finite_parameters(net)
    if bad:
        raise InputError(f"{path / WEIGHTS} holds non-finite weights ({bad[0]}): its training diverged; {retrain}")
    evaluator.device = torch.device(device)
    evaluator.net = net.to(evaluator.device).eval()
    return evaluator


def non_finite_parameters(net: torch.nn.Module) -> list[str]:
    """Names of ``net``'s parameters and buffers that hold a NaN or an infinity (empty when all are finite)."""
    return [name for name, t in net.state_dict().items() if t.is_floating_point() and not bool(t.isfinite().all())]


def is_evaluator_file(path: str | Path) -> bool:
    """Whether ``path`` (``evaluator.json`` or ``model.safetensors``) is a file :meth:`Evaluator.save` wrote:
    cheap checks of its format and its ganaug stamp, nothing unpickled."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        if path.name == CONFIG:
            doc = json.loads(path.read_text())
            return isinstance(doc, dict) and "ganaug_version" in doc and set(_REQUIRED_KEYS) <= doc.keys()
        if path.name == WEIGHTS:
            with safe_open(str(path), framework="pt") as f:
                return "ganaug_version" in (f.metadata() or {})
    except (OSError, ValueError, SafetensorError):
        return False
    return False


def check_evaluator_schema(doc: dict[str, Any], where: Path) -> None:
    """Raise :class:`InputError` unless ``doc`` (an ``evaluator.json``) has a schema this version reads."""
    supported = ", ".join(map(str, SUPPORTED_EVALUATOR_SCHEMAS))
    schema = doc.get("schema")
    written_by = f"written by ganaug {doc.get('ganaug_version', 'of unknown version')}"
    if schema is None:
        raise InputError(
            f"{where} has no evaluator schema version ({written_by}); this ganaug reads schema {supported}: "
            "retrain the evaluator with `ganaug evaluator train ... --overwrite`"
        )
    if schema not in SUPPORTED_EVALUATOR_SCHEMAS:
        raise InputError(
            f"{where} has evaluator schema {schema!r} ({written_by}); this ganaug reads schema {supported}: "
            "use the ganaug that wrote it, or retrain the evaluator with `ganaug evaluator train ... --overwrite`"
        )


@dataclass(frozen=True)
class EvaluatorTraining:
    """How an evaluator is trained: AdamW with a one-cycle schedule, light random-affine augmentation."""

    epochs: int = 4
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    augment: bool = True
    seed: int = 0
    model: EvaluatorConfig = field(default_factory=EvaluatorConfig)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(
                f"need epochs >= 1, batch_size >= 1, lr > 0; got {self.epochs}, {self.batch_size}, {self.lr}"
            )


def train_evaluator(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    classes: list[str] | None = None,
    settings: EvaluatorTraining = EvaluatorTraining(),
    device: str | torch.device = "cpu",
    data_identity: dict[str, Any] | None = None,
    progress: bool = False,
) -> Evaluator:
    """Train an evaluation CNN from scratch.

    Args:
        images: uint8 [N, 28, 28] in [0, 255] (as :func:`ganaug.data.sources.load_source` returns them).
        labels: int64 [N] in ``[0, num_classes)``.
        classes: class names (default ``"0"``, ``"1"``, ...; their number must equal ``settings.model.num_classes``).
        settings: epochs, batch size, learning rate, augmentation, seed and architecture.
        device: where to train; the returned evaluator lives there too.
        data_identity: JSON-able description of the training data, stored in the metadata.
        progress: show a tqdm bar on stderr.

    Returns:
        The trained :class:`Evaluator` in eval mode. Same inputs, seed and device give the same weights.

    Raises:
        InputError: wrong dtypes/shapes, or labels outside ``[0, num_classes)``.
    """
    from tqdm.auto import tqdm

    cfg = settings.model
    if images.dtype != torch.uint8 or images.dim() != 3 or tuple(images.shape[1:]) != (28, 28):
        raise InputError(f"train_evaluator takes uint8 images [N, 28, 28], got {images.dtype} {list(images.shape)}")
    if labels.dtype != torch.int64 or labels.shape != (len(images),):
        raise InputError(
            f"train_evaluator takes int64 labels [N={len(images)}], got {labels.dtype} {list(labels.shape)}"
        )
    if len(labels) == 0 or int(labels.min()) < 0 or int(labels.max()) >= cfg.num_classes:
        raise InputError(f"labels must lie in [0, {cfg.num_classes}) and be non-empty")
    classes = classes if classes is not None else [str(i) for i in range(cfg.num_classes)]

    device = torch.device(device)
    # Weights and dropout draw from the global RNG, seeded here (same numbers as ever); fork_rng hands the
    # caller's RNG state back unchanged.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(settings.seed)
        net = EvaluatorNet(cfg).to(device)
        gen = torch.Generator(device=device).manual_seed(settings.seed)
        x_all = images.to(device).unsqueeze(1).float().div(127.5).sub(1.0)  # [N, 1, 28, 28] in [-1, 1]
        y_all = labels.to(device)
        batch_size = min(settings.batch_size, len(labels))
        steps_per_epoch = math.ceil(len(labels) / batch_size)
        opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=settings.lr, total_steps=settings.epochs * steps_per_epoch
        )
        bar = tqdm(total=settings.epochs * steps_per_epoch, unit="step", file=sys.stderr, disable=not progress)
        net.train()
        for _ in range(settings.epochs):
            perm = torch.randperm(len(y_all), generator=gen, device=device)
            for b in range(steps_per_epoch):
                idx = perm[b * batch_size : (b + 1) * batch_size]
                x = random_affine(x_all[idx], gen) if settings.augment else x_all[idx]
                loss = F.cross_entropy(net(x), y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    meta = {"training": _jsonable(asdict(settings)), "data": data_identity or {}, "torch_version": torch.__version__}
    bad = non_finite_parameters(net)
    if bad:  # a NaN evaluator would score every generator as noise, minutes later
        raise TrainingDiverged(
            f"the evaluator's training diverged (non-finite weights in {bad[0]}); lower --lr and train again"
        )
    return Evaluator(net, cfg, classes=classes, meta=meta, device=device)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(d, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o)))


def train_evaluator_on(
    dataset: str,
    *,
    root: str | Path | None = None,
    settings: EvaluatorTraining = EvaluatorTraining(),
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> Evaluator:
    """Train on the ``train`` split of ``dataset`` (see :func:`ganaug.data.sources.load_source`) and measure the
    ``test`` split, which plays no part in training or selection. The metadata gets ``test_accuracy``,
    ``test_accuracy_per_class``, ``data`` (dataset, root, sizes, sha256 of the training labels) and
    ``train_seconds``.

    Raises:
        InputError: unknown dataset or missing files.
    """
    import hashlib
    import time

    from ganaug.data.sources import load_source, to_model_range

    train = load_source(dataset, root=root, split="train")
    test = load_source(dataset, root=root, split="test")
    if test.classes != train.classes:
        raise InputError(
            f"the test split's classes {test.classes} differ from the training split's {train.classes}; "
            "give the test split the same class folders"
        )
    identity = {
        "dataset": dataset,
        "data_root": None if root is None else str(Path(root).resolve()),
        "train_size": len(train.labels),
        "test_size": len(test.labels),
        "train_sha256": hashlib.sha256(train.images.numpy().tobytes() + train.labels.numpy().tobytes()).hexdigest(),
    }
    settings = EvaluatorTraining(
        **{
            **asdict(settings),
            "model": EvaluatorConfig(**{**asdict(settings.model), "num_classes": len(train.classes)}),
        }
    )
    t0 = time.perf_counter()
    ev = train_evaluator(
        train.images,
        train.labels,
        classes=train.classes,
        settings=settings,
        device=device,
        data_identity=identity,
        progress=progress,
    )
    ev.meta["train_seconds"] = round(time.perf_counter() - t0, 1)
    ev.meta["device"] = str(torch.device(device))
    pred = ev.predict(to_model_range(test.images))
    ev.meta["test_accuracy"] = float((pred == test.labels).float().mean())
    ev.meta["test_accuracy_per_class"] = {
        name: float((pred[test.labels == c] == c).float().mean()) for c, name in enumerate(test.classes)
    }
    return ev
