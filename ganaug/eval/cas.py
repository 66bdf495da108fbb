"""Classification accuracy score (CAS): train a fixed classifier on generated images only, test it once on the
real test split, and compare with the same classifier trained on the real training split (the ceiling).

The classifier is :mod:`ganaug.classify.classifier`'s (the downstream benchmark's), with no augmentation;
:data:`ganaug.classify.classifier.CLASSIFIERS` names its settings; ``full`` is the full profile's (3,000 steps,
batch 128, width 32), the one the benchmark's figures use.

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ganaug.classify.classifier import CLASSIFIERS, CASClassifier, test_accuracy, train_classifier
from ganaug.errors import GanaugError, InputError
from ganaug.outputs import write_text_whole

if TYPE_CHECKING:
    from ganaug.data.sources import SourceData
    from ganaug.sample.generators import LoadedGenerator
    from ganaug.sample.resample import Sampling

#: Bumped when the recipe changes, so older cached scores are not reused.
CAS_VERSION = 1


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
        """From :func:`ganaug.data.sources.load_source` splits (uint8 images)."""
        from ganaug.data.sources import to_model_range

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
    """Both splits of ``dataset`` (see :func:`ganaug.data.sources.load_source`, which raises for missing files)."""
    from ganaug.data.sources import load_source

    return CASData.from_sources(
        load_source(dataset, root=root, split="train"), load_source(dataset, root=root, split="test")
    )


def _split_hash(split: SourceData) -> str:
    return hashlib.sha256(split.images.numpy().tobytes() + split.labels.numpy().tobytes()).hexdigest()


def generator_sha256(generator: LoadedGenerator) -> str:
    """sha256 of the file a generator was loaded from: the ``.onnx`` file, or a run folder's checkpoint."""
    from ganaug.hashing import file_sha256
    from ganaug.train.checkpoint import checkpoint_path

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
    """CAS of ``generator`` (a run folder, an ``.onnx`` file or a :class:`~ganaug.sample.generators.LoadedGenerator`):
    the classifier trained on generated images (latent seed ``seed``, drawn as ``sampling`` says when given:
    :class:`ganaug.sample.resample.Sampling`; ``per_class`` of each class, or by default as many of each class as
    ``data``'s training split holds) and tested once on ``data``'s test split.

    Returns:
        ``{"accuracy", "per_class", "train_images", "counts", "seconds"}`` (accuracies in [0, 1]; ``per_class``
        is the test accuracy per class, ``counts`` the training images per class) plus ``"threads"`` on a CPU; from the cache when ``cache_dir`` holds this
        score.

    Raises:
        InputError: the generator's classes differ from the data's; an unknown ``classifier`` name.
    """
    from ganaug.data.labels import check_same_classes, labels_from_counts
    from ganaug.sample.generators import generate, open_generator

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
