"""Generated images as a drop-in ``torchvision`` dataset, and the package's real sources as one too.

:class:`GeneratedDataset` stands where ``torchvision.datasets.MNIST`` stood: item ``i`` is
``(PIL.Image mode "L" 28x28, int)``, transforms included, so training code takes it unchanged::

    train = GeneratedDataset("runs/mnist/generator.onnx", per_class=6000, seed=0, transform=transform)

Item ``i`` depends only on (generator file, seed, i): it is ``G(ganaug.sample.latents.latents(seed, i, i + 1),
targets[i])``. By default ``targets`` is the class-by-class layout (:func:`ganaug.data.labels.labels_from_counts`)
shuffled by a permutation seeded with ``seed`` (:func:`mixed_order`), so the classes are mixed like a real
dataset's and a DataLoader without ``shuffle=True`` still sees every class in every batch; ``order="sorted"``
keeps the class-by-class layout (the images ``ganaug generate`` makes with the same counts and seed). ONNX
Runtime's CPU kernels compute each row of a batch independently of the others, of the batch size and of
the thread count, so the items are the same whatever the epoch, access order, ``batch_size`` or
``num_workers``: DataLoader workers fetch the indices the sampler hands them, so no worker repeats another's
items. Generation is batched: a DataLoader batch is one :meth:`GeneratedDataset.__getitems__`
call that generates the batch's missing items in one ONNX call; items are cached per process.

:class:`SourceDataset` wraps :func:`ganaug.data.sources.load_source` (digits, MNIST, Fashion-MNIST, image
folders) in the same item contract, for mixing real and synthetic data (:mod:`ganaug.feed.mixing`).
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import VisionDataset

from ganaug.data.labels import labels_from_counts, parse_counts, resolve_class, to_uint8, whole
from ganaug.errors import InputError
from ganaug.sample.latents import check_seed, derive_seed, latents
from ganaug.sample.resample import LabelCheck, Sampling, model_sampling
from ganaug.sample.runtime import warn_uncorrected
from ganaug.sample.unflatten import Unflatten

Output = Literal["pil", "tensor"]
Order = Literal["mixed", "sorted"]
ORDERS: tuple[str, ...] = ("mixed", "sorted")
ClassKey = int | str
VALUE_RANGES: tuple[tuple[float, float], ...] = ((0.0, 1.0), (-1.0, 1.0))
"""The ranges ``output="tensor"`` can hand out: ``(0, 1)`` like ``ToTensor()``, or the generator's ``(-1, 1)``."""

_EPOCH_PURPOSE = 0  # the middle word of the SeedSequence entropy, so epoch and other derived seeds never meet
_ORDER_PURPOSE = 2  # 1 is reserved (an older stream of ganaug.feed.mixing)
# (pid, file, provider, threads) -> (the file's stat stamp, OnnxGenerator): one per process and file version,
# so a generator re-exported to the same path is not served by the old file's session.
_RUNTIMES: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def epoch_seed(seed: int, epoch: int) -> int:
    """The latent seed of epoch ``epoch`` in fresh-samples mode (:meth:`GeneratedDataset.set_epoch`)."""
    return derive_seed(seed, _EPOCH_PURPOSE, epoch)


def mixed_order(seed: int, n: int) -> np.ndarray:
    """The permutation int64 [n] that mixes a class-by-class layout: ``targets = sorted_labels[mixed_order(seed, n)]``.

    It is the stable argsort of ``n`` raw 64-bit draws of ``numpy.random.PCG64(derive_seed(seed, 2, n))``: a bit
    generator's raw stream is fixed across numpy versions, unlike ``Generator.permutation``'s algorithm.
    """
    keys = np.random.PCG64(derive_seed(seed, _ORDER_PURPOSE, n)).random_raw(n)
    return np.argsort(keys, kind="stable").astype(np.int64)


def largest_remainder(length: int, weights: Sequence[float]) -> list[int]:
    """Split ``length`` into integer counts proportional to ``weights`` (Hamilton's largest-remainder method).

    Each count is ``floor(length * w / sum(w))``; the leftover units go to the largest fractional parts,
    ties to the lower index. ``largest_remainder(10, [1, 1, 1]) == [4, 3, 3]``.
    """
    total = float(sum(weights))
    quotas = [length * w / total for w in weights]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda k: (-(quotas[k] - counts[k]), k))
    for k in order[: length - sum(counts)]:
        counts[k] += 1
    return counts


def _positive_int(value: Any, what: str) -> int:
    return whole(value, what, minimum=1)


def resolve_labels(
    classes: Sequence[str],
    *,
    per_class: int | Mapping[ClassKey, int] | None,
    length: int | None,
    class_weights: Sequence[float] | Mapping[ClassKey, float] | None,
) -> np.ndarray:
    """int64 labels laid out class by class, from ``per_class`` or from ``length`` (+ ``class_weights``).

    ``per_class`` as in :func:`ganaug.data.labels.parse_counts` (an int for every class, or class -> count in the
    mapping's order), so a dataset and ``ganaug generate`` with the same counts and seed make the same
    images. ``length`` is split over the classes, in index order, by :func:`largest_remainder`.

    Raises:
        InputError: neither or both of ``per_class`` / ``length``; ``class_weights`` without ``length``; a
            count < 1; negative, non-finite or all-zero weights; unknown classes.
    """
    if (per_class is None) == (length is None):
        raise InputError(
            "give exactly one of per_class= (int or {class: count}) or length= (with optional class_weights=)"
        )
    if per_class is not None:
        if class_weights is not None:
            raise InputError("class_weights= goes with length=, not with per_class=")
        return labels_from_counts(parse_counts(classes, per_class, what="per_class"))
    length = _positive_int(length, "length")
    if class_weights is None:
        weights = [1.0] * len(classes)
    elif isinstance(class_weights, Mapping):
        weights = [0.0] * len(classes)
        for key, w in class_weights.items():
            weights[resolve_class(classes, key)] = float(w)
    else:
        weights = [float(w) for w in class_weights]
        if len(weights) != len(classes):
            raise InputError(f"class_weights has {len(weights)} entries but the generator has {len(classes)} classes")
    if not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise InputError(f"class_weights must be finite, >= 0 and not all zero, got {weights}")
    return labels_from_counts(largest_remainder(length, weights))


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class GeneratedDataset(VisionDataset):
    """Images of an exported ganaug generator as a ``torchvision`` dataset: item ``i`` is ``(image, label)``.

    With ``output="pil"`` (the default) ``image`` is a ``PIL.Image`` of mode ``"L"`` and 28x28 pixels, exactly
    what ``torchvision.datasets.MNIST`` returns; ``transform`` and ``target_transform`` are applied as MNIST
    applies them. With ``output="tensor"`` it is a float32 tensor [1, 28, 28] in ``value_range`` (the
    generator's float output, not rounded to 8 bits). ``label`` is an ``int``.

    Law: item ``i`` is ``G(ganaug.sample.latents.latents(s, i, i + 1, z_dim), targets[i])`` with ``s = seed``, or
    ``s = epoch_seed(seed, e)`` after :meth:`set_epoch` ``(e)``. ``targets`` holds ``counts[c]`` items of class
    ``c``: with ``order="mixed"`` (the default) it is ``sorted_targets[mixed_order(seed, len)]``, classes mixed
    like a real dataset's so that a DataLoader without ``shuffle=True`` still trains on every class; with
    ``order="sorted"`` it is ``sorted_targets`` itself, the classes one after another (:func:`resolve_labels`).
    ``targets`` never changes with the epoch. PIL images are :func:`ganaug.sample.runtime.to_uint8` of the float output.
    With a ``temperature``, a ``label_check`` or ``unflatten``, item ``i`` is sample ``i`` of
    :class:`ganaug.sample.resample.Sampling` instead (latents scaled by the temperature; an image the check assigns to
    another class drawn again from fresh latents; one of several candidates kept towards the real density): still
    a function of (generator, seed or epoch, i) alone.

    Args:
        generator: an exported ``generator.onnx`` or a run folder that holds one.
        per_class: items per class, an ``int`` or a mapping class (index or name) -> count (classes left
            out get none).
        length: total items instead of ``per_class``, split over the classes in proportion to
            ``class_weights`` (a sequence by class index or a mapping class -> weight; default equal) by
            :func:`largest_remainder`.
        seed: the latent seed (>= 0); it also seeds the mixed order.
        order: ``"mixed"`` (default) or ``"sorted"`` (class by class, as ``ganaug generate`` lays images out).
        transform, target_transform: applied to each image / label, as in torchvision.
        output: ``"pil"`` or ``"tensor"``.
        value_range: with ``output="tensor"`` only: ``(0, 1)`` (default, like ``ToTensor()``) or ``(-1, 1)``.
        provider: ONNX Runtime provider in the main process (``"cpu"``, or as :class:`ganaug.sample.runtime.OnnxGenerator`
            takes it). DataLoader workers always use the CPU, so a forked worker never touches CUDA; items are
            identical across worker counts only with the CPU provider in the main process too.
        threads: ONNX Runtime intra-op threads. Default: ONNX Runtime's own choice in the main process and
            ``max(1, cores // num_workers)`` in each DataLoader worker, so workers do not oversubscribe.
        chunk_size: the most items one ONNX call generates; a single ``dataset[i]`` generates the missing
            items of its aligned chunk ``[i // chunk_size * chunk_size, ...)`` so item-by-item loops stay batched.
        temperature: latents are ``temperature * N(0, I)`` (> 0; 1 is the plain sample). Default: the model's
            own (its preset's ``sampling``, carried in the ONNX metadata; 1 for models without one).
        label_check: a :class:`ganaug.sample.resample.LabelCheck` (an evaluator folder, or a classifier of your own
            with its input range) that must agree with each item's label: an item it rejects is drawn again from
            its own latent stream, up to ``rounds`` tries (see :mod:`ganaug.sample.resample`). An evaluator folder is
            loaded with 8 rounds. Default: the model's own check when its preset asks for one (``label_check.onnx``
            beside the model, written by ``ganaug train``).
        unflatten: for a run folder trained with ``flatten_density`` (the mnist preset's density weighting): candidates per item (0 = off; or a
            :class:`ganaug.sample.unflatten.Unflatten`), one kept towards the real density (:mod:`ganaug.sample.resample`). It
            holds the run's training images (47 MB for MNIST), read from ``data_root`` (default: the run's).
        sampling: ``"model"`` (default): the model's default sampling (its temperature and label check, as
            ``ganaug generate`` uses them) fills in what is not given; ``"plain"``: temperature 1 and no check
            unless given.

    Memory: generated items stay cached in each process that generated them (784 bytes an item for
    ``"pil"``, 3,136 for ``"tensor"``, plus ``4 * z_dim`` for latents); :meth:`materialize` fills the cache
    at once, in the main process, before workers fork or are spawned (the cache travels with the pickle;
    the ONNX Runtime session never does: each process opens its own, lazily).

    Raises:
        InputError: bad counts, weights or class names; a file that is not a ganaug generator; an image
            shape other than one channel; an unknown ``output``, ``value_range`` or ``order``; a ``label_check``
            that is not one, or whose classes differ from the generator's.

    Example:
        >>> ds = GeneratedDataset("runs/mnist", per_class=100, seed=0)  # doctest: +SKIP
        >>> image, label = ds[0]  # PIL.Image mode "L" 28x28, 0
    """

    def __init__(
        self,
        generator: str | Path,
        *,
        per_class: int | Mapping[ClassKey, int] | None = None,
        length: int | None = None,
        class_weights: Sequence[float] | Mapping[ClassKey, float] | None = None,
        seed: int = 0,
        order: Order = "mixed",
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        output: Output = "pil",
        value_range: tuple[float, float] | None = None,
        provider: str = "cpu",
        threads: int | None = None,
        chunk_size: int = 1024,
        temperature: float | None = None,
        label_check: str | Path | LabelCheck | None = None,
        unflatten: int | Unflatten = 0,
        data_root: str | Path | None = None,
        sampling: str = "model",
    ) -> None:
        super().__init__(str(generator), transform=transform, target_transform=target_transform)
        if output not in ("pil", "tensor"):
            raise InputError(f"unknown output {output!r}; choose 'pil' or 'tensor'")
        if order not in ORDERS:
            raise InputError(f"unknown order {order!r}; choose 'mixed' or 'sorted'")
        if value_range is not None and output != "tensor":
            raise InputError("value_range= applies to output='tensor' only; PIL images are uint8 in [0, 255]")
        value_range = (0.0, 1.0) if value_range is None else tuple(float(v) for v in value_range)
        if value_range not in VALUE_RANGES:
            raise InputError(f"unknown value_range {value_range}; choose (0, 1) or (-1, 1)")
        seed = check_seed(seed)  # before any work: the latent stream takes [0, 2**63)
        if threads is not None:
            _positive_int(threads, "threads")
        self.generator_path = Path(generator)
        self.seed = int(seed)
        self.order: Order = order
        self.output: Output = output
        self.value_range: tuple[float, float] = value_range
        self.provider = provider
        self.threads = threads
        self.chunk_size = _positive_int(chunk_size, "chunk_size")
        self.epoch: int | None = None
        if not isinstance(unflatten, Unflatten) and unflatten:
            unflatten = Unflatten.for_run(generator, candidates=unflatten, data_root=data_root)
        runtime = self._runtime()
        own = model_sampling(  # the model's default sampling where the caller leaves it open, as `ganaug generate`
            runtime.sampling,
            runtime.path,
            sampling=sampling,
            temperature=temperature,
            label_check=label_check,
            threads=threads,
        )
        self.sampling = Sampling(own.temperature, own.check, unflatten or None)
        warn_uncorrected(runtime, unflatten=self.sampling.unflatten is not None)
        self.z_dim: int = int(runtime.z_dim)
        self.classes: list[str] = list(runtime.classes)
        self.image_shape: tuple[int, int, int] = tuple(int(s) for s in runtime.image_shape)
        if len(self.image_shape) != 3 or self.image_shape[0] != 1:
            raise InputError(
                f"{generator} makes images of shape {list(self.image_shape)}; GeneratedDataset needs one channel [1, H, W]"
            )
        self.class_to_idx: dict[str, int] = {c: i for i, c in enumerate(self.classes)}
        labels = resolve_labels(self.classes, per_class=per_class, length=length, class_weights=class_weights)
        self.sampling.check_classes(self.classes, self.image_shape)
        self._labels = labels[mixed_order(self.seed, len(labels))] if order == "mixed" else labels
        self.targets: torch.Tensor = torch.from_numpy(self._labels)
        self.counts: list[int] = np.bincount(self._labels, minlength=len(self.classes)).tolist()
        self._reset_cache()

    # -- the torchvision contract -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """``(image, label)`` of item ``index`` (negative counts from the end).

        Raises:
            IndexError: ``index`` outside ``[-len, len)``.
        """
        i = self._check_index(index)
        self._fill_chunk(i)
        return self._item(self._cache[i], i)

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, Any]]:
        """The items at ``indices``, generated in one batch: what a DataLoader calls once per batch."""
        idx = np.array([self._check_index(i) for i in indices], dtype=np.int64)
        arrays = self.arrays(idx)
        return [self._item(a, i) for a, i in zip(arrays, idx.tolist())]

    def extra_repr(self) -> str:
        counts = dict(zip(self.classes, self.counts))
        epoch = "fixed samples" if self.epoch is None else f"epoch {self.epoch} (fresh samples per epoch)"
        lines = [f"Seed: {self.seed}, {epoch}", f"Order: {self.order}", f"Output: {self.output}"]
        if self.output == "tensor":
            lines[-1] += f" in {list(self.value_range)}"
        if not self.sampling.plain:
            checked = ", label-checked" if self.sampling.check is not None else ""
            if self.sampling.unflatten is not None:
                checked += f", unflattened ({self.sampling.unflatten.candidates} candidates)"
            lines.append(f"Sampling: temperature {self.sampling.temperature:g}{checked}")
        lines.append(f"Items per class: {counts}")
        return "\n".join(lines)

    # -- ganaug extras --------------------------------------------------------------------------------

    def set_epoch(self, epoch: int | None) -> None:
        """Opt in to fresh samples per epoch: from now on the latent seed is ``epoch_seed(seed, epoch)``.

        Labels (``targets``) stay put; every image changes, reproducibly per ``(seed, epoch)``. ``None`` goes
        back to the fixed samples of ``seed``. Call it before iterating a DataLoader each epoch (workers get
        a fresh copy of the dataset per epoch unless ``persistent_workers=True``, which this cannot reach).
        """
        if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0):
            raise InputError(f"epoch must be a whole number >= 0 or None, got {epoch!r}")
        if epoch != self.epoch:
            self.epoch = None if epoch is None else int(epoch)
            self._reset_cache()

    @property
    def latent_seed(self) -> int:
        """The seed the latents of the current epoch come from."""
        return self.seed if self.epoch is None else epoch_seed(self.seed, self.epoch)

    def arrays(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """The raw images at ``indices`` (non-negative), generated if missing, as a new array.

        Returns:
            uint8 [k, H, W] for ``output="pil"``; float32 [k, 1, H, W] in ``value_range`` for ``"tensor"``.
        """
        idx = np.asarray(indices, dtype=np.int64)
        self._fill(np.unique(idx))
        return self._cache[idx]

    @property
    def data(self) -> torch.Tensor:
        """Every image as uint8 [N, H, W] in [0, 255], like ``torchvision.datasets.MNIST.data``, for scripts
        that read it (to compute a mean, say). The first access generates all of them."""
        images = self.arrays(np.arange(len(self), dtype=np.int64))
        if self.output != "pil":  # back from value_range to [-1, 1], then rounded like the PIL items
            images = to_uint8(images * 2.0 - 1.0 if self.value_range == (0.0, 1.0) else images)
        return torch.from_numpy(images)

    def materialize(self) -> GeneratedDataset:
        """Generate every item now, in batches of ``chunk_size``, and return ``self``."""
        self._fill(np.arange(len(self), dtype=np.int64))
        return self

    # -- internals ------------------------------------------------------------------------------------

    def _check_index(self, index: Any) -> int:
        i = operator.index(index)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of range for a GeneratedDataset of {n} items")
        return i + n if i < 0 else i

    def _reset_cache(self) -> None:
        self._cache: np.ndarray | None = None  # [N, H, W] uint8 or [N, 1, H, W] float32
        self._have: np.ndarray | None = None  # bool [N]
        self._z: dict[int, np.ndarray] = {}  # chunk number -> latents of that aligned chunk

    def _runtime(self) -> Any:
        from torch.utils.data import get_worker_info

        from ganaug.sample.runtime import ONNX_FILE, OnnxGenerator

        worker = get_worker_info()
        if worker is None:
            provider, threads = self.provider, self.threads
        else:
            provider, threads = "cpu", self.threads or max(1, _cpu_count() // worker.num_workers)
        key = (os.getpid(), str(self.generator_path.resolve()), provider, threads)
        onnx_file = self.generator_path / ONNX_FILE if self.generator_path.is_dir() else self.generator_path
        stat = onnx_file.stat() if onnx_file.is_file() else None
        stamp = None if stat is None else (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        cached = _RUNTIMES.get(key)
        if cached is None or cached[0] != stamp:
            _RUNTIMES[key] = (stamp, OnnxGenerator(self.generator_path, provider=provider, threads=threads))
        return _RUNTIMES[key][1]

    def _fill_chunk(self, i: int) -> None:
        """Generate the missing items of item ``i``'s aligned chunk, so item-by-item loops stay batched."""
        start = i // self.chunk_size * self.chunk_size
        self._fill(np.arange(start, min(start + self.chunk_size, len(self)), dtype=np.int64))

    def _latents(self, idx: np.ndarray) -> np.ndarray:
        # Latents come an aligned chunk at a time (one Philox call, cached): per index they would cost ~25 us each.
        seed, size = self.latent_seed, self.chunk_size
        z = np.empty((idx.size, self.z_dim), np.float32)
        chunks = idx // size
        for c in np.unique(chunks).tolist():
            if c not in self._z:
                self._z[c] = latents(seed, c * size, min((c + 1) * size, len(self)), self.z_dim)
            rows = chunks == c
            z[rows] = self._z[c][idx[rows] - c * size]
        return z

    def _fill(self, idx: np.ndarray) -> None:
        """Generate the items at sorted unique ``idx`` that are not cached yet, ``chunk_size`` per ONNX call."""
        if self._cache is None:
            _, h, w = self.image_shape
            shape = (len(self), h, w) if self.output == "pil" else (len(self), 1, h, w)
            self._cache = np.empty(shape, np.uint8 if self.output == "pil" else np.float32)
            self._have = np.zeros(len(self), dtype=bool)
        missing = idx[~self._have[idx]]
        if missing.size == 0:
            return
        runtime = self._runtime()
        for start in range(0, missing.size, self.chunk_size):
            part = missing[start : start + self.chunk_size]
            z, labels = self._latents(part), self._labels[part]
            # float32 [k, 1, H, W] in [-1, 1]
            images = self.sampling.images(runtime.run, labels, part, seed=self.latent_seed, z_dim=self.z_dim, z=z)
            self._cache[part] = self._convert(images)
            self._have[part] = True

    def _convert(self, images: np.ndarray) -> np.ndarray:
        if self.output == "pil":
            return to_uint8(images)
        if self.value_range == (0.0, 1.0):
            return (images + 1.0) * 0.5
        return images

    def _item(self, array: np.ndarray, index: int) -> tuple[Any, Any]:
        image = Image.fromarray(array) if self.output == "pil" else torch.from_numpy(array.copy())
        target = int(self._labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


class SourceDataset(VisionDataset):
    """A real source of :func:`ganaug.data.sources.load_source` as a ``torchvision`` dataset of ``(PIL "L" 28x28, int)``.

    Folder layouts and the digits split are those of :mod:`ganaug.data.sources`; ``data`` is uint8 [N, 28, 28] and
    ``targets`` int64 [N], as in ``torchvision.datasets.MNIST``.

    Raises:
        InputError: as :func:`ganaug.data.sources.load_source`.
    """

    def __init__(
        self,
        name: str,
        root: str | Path | None = None,
        *,
        split: Literal["train", "test"] = "train",
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ) -> None:
        from ganaug.data.sources import load_source

        super().__init__(root, transform=transform, target_transform=target_transform)
        source = load_source(name, root=root, split=split, download=download)
        self.name, self.split = name, split
        self.data: torch.Tensor = source.images
        self.targets: torch.Tensor = source.labels
        self.classes: list[str] = list(source.classes)
        self.class_to_idx: dict[str, int] = {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, target = Image.fromarray(self.data[index].numpy()), int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def extra_repr(self) -> str:
        return f"Source: {self.name}, split: {self.split}"
