"""Classification accuracy score (CAS): train a fixed classifier on generated images only, test it once on the
real test split, and compare with the same classifier trained on the real training split (the ceiling).

The classifier is the downstream benchmark's (:mod:`ganaug.downstream`): the evaluator's CNN
(:class:`ganaug.evaluator.EvaluatorNet`) at ``width`` with an ``8 * width`` hidden layer, trained for a fixed
number of Adam steps with a cosine schedule on batches drawn with replacement, no augmentation, no
early stopping and no model selection. :data:`CLASSIFIERS` names its settings; ``full`` is the full
profile's (3,000 steps, batch 128, width 32), the one the issue's figures use.

By default the generated set has the real training split's size and class counts (as CAS is defined:
Ravuri & Vinyals, 2019), so the score and its ceiling differ only in where the images come from; a fixed
``per_class`` (the earlier default was 1,000) also measures the smaller set's handicap.

Both scores are seeded (``seed`` seeds the latents, the classifier's weights, dropout and batches) and
cached on disk: one JSON file per score under ``cache_dir``, keyed by the sha256 of the generator file
(or of the real data), the real data's identity, the classifier settings, the amount, the seed, the
device type and, on a CPU, torch's thread count, so a second call trains nothing. A seeded score is
reproducible bit for bit on one machine at one thread count; a different thread count sums the
convolutions' gradients in another order, which moved a full-profile MNIST CAS by 0.1 pp.
Images everywhere are float [N, 1, 28, 28] in [-1, 1].
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ganaug.errors import GanaugError, InputError
from ganaug.outputs import write_text_whole

if TYPE_CHECKING:
    from ganaug.data import SourceData
    from ganaug.evaluator import EvaluatorNet
    from ganaug.metrics import LoadedGenerator
    from ganaug.resample import Sampling

#: Bumped when the recipe changes, so older cached scores are not reused.
CAS_VERSION = 1


@dataclass(frozen=True)
class CASClassifier:
    """Training recipe of the CAS classifier: ``steps`` Adam steps (lr ``lr``, cosine to 0) on batches of
    ``batch`` images drawn with replacement; the CNN has ``width`` channels and an ``8 * width`` hidden layer."""

    steps: int = 3000
    batch: int = 128
    lr: float = 1e-3
    width: int = 32

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"CASClassifier.{name} must be >= 1, got {getattr(self, name)}")


#: Named classifier settings: ``full`` and ``cpu`` are the downstream benchmark's profiles of those names.
CLASSIFIERS: dict[str, CASClassifier] = {
    "full": CASClassifier(),
    "cpu": CASClassifier(steps=800, batch=64, width=16),
    "smoke": CASClassifier(steps=60, batch=32, width=8),
}


def train_classifier(
    sources: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    classifier: CASClassifier,
    num_classes: int,
    seed: int,
    device: str | torch.device = "cpu",
    real_fraction: float = 0.5,
    classical: bool | str = False,
    classical_on: Sequence[bool] | None = None,
    weights: Sequence[float] | None = None,
    init: EvaluatorNet | None = None,
    real_fraction_end: float | None = None,
) -> EvaluatorNet:
    """Train the fixed CNN on one or two sources of (images float [N, 1, 28, 28] in [-1, 1], labels).

    Labels are int64 [N] class indices or float [N, num_classes] probabilities (soft labels: the loss is the
    cross-entropy against them). Every batch draws ``batch`` images from a single source, or
    ``round(batch * real_fraction)`` from the first and the rest from the second of two. ``classical``
    applies a per-image classical augmentation to every image of the batch: ``True`` or ``"affine"`` the
    random affine (the benchmark's condition c on digits), ``"shift-flip"`` shifts and flips (on clothes);
    see :data:`ganaug.augment_ops.CLASSICAL`; ``classical_on`` limits it to the sources marked True. ``weights`` scales each source's per-image loss (default 1
    each; the batch loss is the weighted mean). ``init`` continues training that network (a fresh Adam and
    schedule; used to fine-tune after pretraining) instead of a new one. ``real_fraction_end`` moves the
    first source's share linearly from ``real_fraction`` at the first step to it at the last (a schedule of
    the second source's share; None keeps it constant). Seeded by ``seed``; the caller's global RNG state is
    restored afterwards.

    Raises:
        InputError: a source is empty.
    """
    from ganaug.augment_ops import CLASSICAL
    from ganaug.augment_ops import classical as augment
    from ganaug.evaluator import EvaluatorConfig, EvaluatorNet

    if any(len(y) == 0 for _, y in sources):
        raise InputError("a classifier training source is empty; generate or keep at least one image per class")
    if classical and classical is not True and classical not in CLASSICAL:
        raise InputError(f"classical {classical!r}: choose one of {', '.join(CLASSICAL)}")
    weights = list(weights) if weights is not None else [1.0] * len(sources)
    device = torch.device(device)
    c = classifier
    soft = any(y.dim() == 2 for _, y in sources)
    # Weights and dropout come from the global RNG, seeded here as the downstream benchmark always did
    # (same numbers); fork_rng hands the caller's state back.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        net = (
            init
            if init is not None
            else EvaluatorNet(EvaluatorConfig(num_classes=num_classes, width=c.width, hidden=8 * c.width))
        )
        net = net.to(device)
        opt = torch.optim.Adam(net.parameters(), lr=c.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=c.steps)
        gen = torch.Generator(device=device).manual_seed(seed)
        moved = [
            (x.to(device), F.one_hot(y, num_classes).float().to(device) if soft and y.dim() == 1 else y.to(device))
            for x, y in sources
        ]
        uniform = all(wt == 1.0 for wt in weights)

        def split(fraction: float) -> tuple[list[int], torch.Tensor]:
            n_first = round(c.batch * fraction) if len(moved) == 2 else c.batch
            sizes = [n_first, c.batch - n_first][: len(moved)]
            return sizes, torch.cat([torch.full((n,), float(wt), device=device) for n, wt in zip(sizes, weights)])

        sizes, w = split(real_fraction)
        net.train()
        for step in range(c.steps):
            if real_fraction_end is not None:
                sizes, w = split(real_fraction + (real_fraction_end - real_fraction) * step / max(c.steps - 1, 1))
            xs, ys = [], []
            for (x, y), n in zip(moved, sizes):
                idx = torch.randint(len(y), (n,), generator=gen, device=device)
                xs.append(x[idx])
                ys.append(y[idx])
            x, y = torch.cat(xs), torch.cat(ys)
            if classical and classical_on is None:
                x = augment(x, gen, classical)
            elif classical:
                x = torch.cat(
                    [
                        augment(part, gen, classical) if on and len(part) else part
                        for part, on in zip(x.split(sizes), classical_on)
                    ]
                )
            if uniform:
                loss = F.cross_entropy(net(x), y)
            else:
                loss = (F.cross_entropy(net(x), y, reduction="none") * w).sum() / w.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def probabilities(
    net: EvaluatorNet, images: torch.Tensor, device: str | torch.device, batch: int = 2000
) -> torch.Tensor:
    """Softmax class probabilities float [N, num_classes] of ``net`` for images float [N, 1, 28, 28] in [-1, 1]."""
    net.eval()
    return torch.cat(
        [torch.softmax(net(images[i : i + batch].to(device)), 1).cpu() for i in range(0, len(images), batch)]
    )


@torch.no_grad()
def predict(net: EvaluatorNet, images: torch.Tensor, device: str | torch.device, batch: int = 2000) -> torch.Tensor:
    """Predicted labels int64 [N] (on the CPU) of float images [N, 1, 28, 28] in [-1, 1]."""
    return torch.cat([net(images[i : i + batch].to(device)).argmax(1).cpu() for i in range(0, len(images), batch)])


def test_accuracy(
    net: EvaluatorNet, images: torch.Tensor, labels: torch.Tensor, num_classes: int, device: str | torch.device
) -> tuple[float, list[float]]:
    """Accuracy over ``images`` and per class (NaN for a class without images)."""
    hit = (predict(net, images, device) == labels).double()
    return float(hit.mean()), [float(hit[labels == c].mean()) for c in range(num_classes)]


test_accuracy.__test__ = False  # not a pytest test, despite its name


@dataclass(frozen=True)
class CASData:
    """The real data CAS is measured against: both splits float [N, 1, 28, 28] in [-1, 1] with int64 labels,
    the class names, and an identity (dataset and sha256 of each split's bytes) for the cache key."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    identity: dict[str, Any]

    @classmethod
    def from_sources(cls, train: SourceData, test: SourceData) -> CASData:
        """From :func:`ganaug.data.load_source` splits (uint8 images)."""
        from ganaug.data import to_model_range

        if train.classes != test.classes:
            raise InputError(
                f"the test split's classes {test.classes} differ from the training split's {train.classes}"
            )
        identity = {"dataset": train.name, "train_sha256": _split_hash(train), "test_sha256": _split_hash(test)}
        return cls(
            to_model_range(train.images),
            train.labels,
            to_model_range(test.images),
            test.labels,
            list(train.classes),
            identity,
        )


def load_cas_data(dataset: str, *, root: str | Path | None = None) -> CASData:
    """Both splits of ``dataset`` (see :func:`ganaug.data.load_source`, which raises for missing files)."""
    from ganaug.data import load_source

    return CASData.from_sources(
        load_source(dataset, root=root, split="train"), load_source(dataset, root=root, split="test")
    )


def _split_hash(split: SourceData) -> str:
    return hashlib.sha256(split.images.numpy().tobytes() + split.labels.numpy().tobytes()).hexdigest()


def generator_sha256(generator: LoadedGenerator) -> str:
    """sha256 of the file a generator was loaded from: the ``.onnx`` file, or a run folder's checkpoint."""
    from ganaug.checkpoint import checkpoint_path
    from ganaug.export import file_sha256

    return file_sha256(generator.path if generator.backend == "onnx" else checkpoint_path(generator.path))


class CacheNotWritten(UserWarning):
    """A score was computed but could not be written to the cache (full disk, read-only or unusable folder)."""


def _cached(cache_dir: str | Path | None, kind: str, key: dict[str, Any], compute) -> dict[str, Any]:
    """``compute()``, or its result cached under ``cache_dir`` for ``key``; a failed cache write is a
    :class:`CacheNotWritten` warning (no partial file is left) and the computed result is still returned."""
    if cache_dir is None:
        return compute()
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    path = Path(cache_dir) / f"{kind}_{digest[:20]}.json"
    if path.is_file():
        try:
            doc = json.loads(path.read_text())
            if doc.get("key") == key:
                return doc["result"]
        except (OSError, ValueError, KeyError):
            pass  # unreadable or foreign: recompute and replace it
    result = compute()
    try:  # a cache that cannot be written costs the next call time, never this call's score
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_whole(path, json.dumps({"key": key, "result": result}, indent=1))
    except (OSError, GanaugError) as e:
        reason = str(e) if isinstance(e, GanaugError) else f"{type(e).__name__}: {e.strerror or e}"
        warnings.warn(f"the {kind} score was not cached in {cache_dir} ({reason})", CacheNotWritten, stacklevel=3)
    return result


def _score(
    images: torch.Tensor, labels: torch.Tensor, data: CASData, classifier: CASClassifier, seed: int, device
) -> dict[str, Any]:
    t0 = time.perf_counter()
    net = train_classifier(
        [(images, labels)], classifier=classifier, num_classes=len(data.classes), seed=seed, device=device
    )
    accuracy, per_class = test_accuracy(net, data.test_images, data.test_labels, len(data.classes), device)
    return {
        "accuracy": accuracy,
        "per_class": per_class,
        "train_images": len(labels),
        "counts": torch.bincount(labels, minlength=len(data.classes)).tolist(),
        "seconds": round(time.perf_counter() - t0, 2),
        **threads_of(device),
    }


def _key(kind: str, data: CASData, classifier: str | CASClassifier, seed: int, device, **extra) -> dict[str, Any]:
    settings = CLASSIFIERS[classifier] if isinstance(classifier, str) else classifier
    return {
        "kind": kind,
        "cas_version": CAS_VERSION,
        "data": data.identity,
        "classifier": dataclasses.asdict(settings),
        "seed": seed,
        "device_type": torch.device(device).type,
        **threads_of(device),
        **extra,
    }


def threads_of(device: str | torch.device) -> dict[str, int]:
    """``{"threads": n}`` on a CPU (torch's intra-op thread count: the classifier's sums depend on it), else
    ``{}``."""
    return {"threads": torch.get_num_threads()} if torch.device(device).type == "cpu" else {}


def generated_counts(data: CASData, per_class: int | None) -> list[int]:
    """Images to generate per class: ``per_class`` of each, or (``None``) as many as the real training split
    holds of each class, the ceiling's set."""
    if per_class is None:
        return torch.bincount(data.train_labels, minlength=len(data.classes)).tolist()
    if per_class < 1:
        raise InputError(f"per_class must be >= 1, got {per_class}")
    return [per_class] * len(data.classes)


def _settings(classifier: str | CASClassifier) -> CASClassifier:
    if isinstance(classifier, CASClassifier):
        return classifier
    if classifier not in CLASSIFIERS:
        raise InputError(f"unknown CAS classifier {classifier!r}; choose one of {', '.join(CLASSIFIERS)}")
    return CLASSIFIERS[classifier]


def cas_score(
    generator: str | Path | LoadedGenerator,
    data: CASData,
    *,
    per_class: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    classifier: str | CASClassifier = "full",
    cache_dir: str | Path | None = None,
    sampling: Sampling | None = None,
) -> dict[str, Any]:
    """CAS of ``generator`` (a run folder, an ``.onnx`` file or a :class:`~ganaug.metrics.LoadedGenerator`):
    the classifier trained on generated images (latent seed ``seed``, drawn as ``sampling`` says when given:
    :class:`ganaug.resample.Sampling`; ``per_class`` of each class, or by default as many of each class as
    ``data``'s training split holds) and tested once on ``data``'s test split.

    Returns:
        ``{"accuracy", "per_class", "train_images", "counts", "seconds"}`` (accuracies in [0, 1]; ``per_class``
        is the test accuracy per class, ``counts`` the training images per class) plus ``"threads"`` on a CPU; from the cache when ``cache_dir`` holds this
        score.

    Raises:
        InputError: the generator's classes differ from the data's; an unknown ``classifier`` name.
    """
    from ganaug.metrics import check_same_classes, generate, open_generator
    from ganaug.sampling import labels_from_counts

    settings = _settings(classifier)
    gen = generator if not isinstance(generator, (str, Path)) else open_generator(generator)
    check_same_classes(gen.classes, data.classes)
    if sampling is not None:
        sampling.check_classes(gen.classes)
    counts = generated_counts(data, per_class)
    key = _key("cas", data, settings, seed, device, counts=counts, backend=gen.backend)
    if sampling is not None and not sampling.plain:  # plain sampling keeps the keys of scores cached before
        key["sampling"] = sampling.identity()

    def compute() -> dict[str, Any]:
        labels = labels_from_counts(counts)
        images = generate(gen, labels, seed=seed, sampling=sampling)
        return _score(images, torch.from_numpy(labels), data, settings, seed, device)

    if cache_dir is not None:
        key["generator_sha256"] = generator_sha256(gen)
    return _cached(cache_dir, "cas", key, compute)


def real_ceiling(
    data: CASData,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    classifier: str | CASClassifier = "full",
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The same classifier trained on ``data``'s whole real training split: the ceiling CAS is read against.
    Returns what :func:`cas_score` returns."""
    settings = _settings(classifier)
    key = _key("ceiling", data, settings, seed, device)
    return _cached(
        cache_dir, "ceiling", key, lambda: _score(data.train_images, data.train_labels, data, settings, seed, device)
    )


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/ganaug/cas`` (``~/.cache/ganaug/cas`` when unset)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ganaug" / "cas"
