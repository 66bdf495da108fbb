"""Synthetic images mixed into a batch on its own device, like torchvision's ``CutMix`` / ``MixUp``.

:class:`SyntheticMix` takes a batch ``(images, labels)`` where the training loop already has it (after the
DataLoader, after ``.to(device)``) and hands it back with a share of its items replaced by, or extended
with, generated images of chosen classes, scaled and normalised like the real ones::

    mix = ganaug.SyntheticMix("runs/mnist", share=0.5, normalize=(0.1307, 0.3081), seed=0)
    for images, labels in loader:
        images, labels = mix(images.to("cuda"), labels.to("cuda"))

On a CUDA batch the generator runs on that GPU: ONNX Runtime's CUDA provider writing through IO binding
into a torch tensor (``backend="onnx"``), or the PyTorch generator (``backend="torch"``); on a CPU batch,
ONNX Runtime or PyTorch on the CPU. Nothing goes through the host but the latents (and, with a
``label_check``, the images, once, for the check to judge them).

The law of a step: with ``n`` synthetic items a batch, synthetic item ``k`` of step ``s`` is
``G(latents(plan.latent_seed, s * n + k, s * n + k + 1), plan.labels[k])`` (:meth:`SyntheticMix.plan`): row
``s * n + k`` of one latent stream of the seed. The labels and (in ``replace`` mode) the replaced positions
come from two counter-based streams of the seed too, step ``s`` owning its own stretch of each. So every item
depends only on ``(seed, s)`` and the batch size: never on the batches before, their order, the device or
``lookahead``; and a block of steps is drawn with one call per stream (vectorised, no per-step work).

In a DataLoader ``collate_fn`` (torchvision's place for ``CutMix`` / ``MixUp``: ``mix(*default_collate(b))``),
each worker holds its own copy of the mix and draws its own part of the one stream: the ``k``-th call in worker
``w`` of ``W`` is step ``s0 + k * W + w`` (``s0`` the step of the copy the workers started from). The DataLoader
hands batch ``i`` to worker ``i % W`` (round robin, restarted at worker 0 each epoch), so batch ``i`` gets step
``s0 + i``: the synthetic items of a batch are the same whatever ``num_workers``, and no worker replays another's.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from ganaug.data.labels import check_smoothing, smooth_labels
from ganaug.errors import InputError
from ganaug.models.dcgan import IMAGE_SHAPE
from ganaug.sample.latents import latents
from ganaug.sample.resample import LabelCheck, Sampling, model_sampling
from ganaug.threads import check_threads
from ganaug.train.recipe import MIX_SHARE

if TYPE_CHECKING:
    from ganaug.sample.runtime import OnnxGenerator

Mode = Literal["replace", "extend"]
Backend = Literal["onnx", "torch"]
_MIX_PURPOSE = 10  # SeedSequence word of this module's streams (ganaug.feed.dataset uses 0 and 2; 1 is reserved)


@dataclass(frozen=True)
class MixPlan:
    """What one step generates: ``n`` synthetic items, where they go, of which classes, from which latents.

    Attributes:
        step: the step.
        n: how many synthetic items.
        latent_seed: synthetic item ``k`` has latent
            ``ganaug.sample.latents.latents(latent_seed, latent_start + k, latent_start + k + 1, z_dim)``.
        latent_start: ``step * n``: the step's first row of the latent stream.
        positions: ``replace`` mode: int64 [n], sorted, the batch positions replaced; ``extend``: ``None``
            (the synthetic items follow the real ones).
        labels: int64 [n], the classes generated; ``None`` with ``classes="same"`` (the replaced items' labels).
    """

    step: int
    n: int
    latent_seed: int
    latent_start: int
    positions: np.ndarray | None
    labels: np.ndarray | None


class SyntheticMix:
    """Replace (or extend) a share of each batch with generated images, on the batch's device.

    Args:
        generator: a run folder (``generator.onnx`` and ``checkpoint.pt`` inside), a generator ``.onnx``
            file (``backend="onnx"``) or a ``checkpoint.pt`` (``backend="torch"``).
        share: the synthetic share of the returned batch of N items. ``replace``: ``round(share * N)``
            items are replaced (0 <= share <= 1). ``extend``: ``m = round(share * N / (1 - share))``
            items are appended, so ``m / (N + m)`` is ``share`` up to rounding (0 <= share < 1). Left out:
            the low-budget recipe's 0.1 (:mod:`ganaug.train.recipe`; the benchmark measured it with
            ``label_smoothing=0.2``, which you ask for yourself: it changes the labels' type).
        mode: ``replace`` (the batch keeps its size) or ``extend`` (synthetic items appended).
        classes: ``uniform`` (each synthetic label uniform over the classes), a sequence of
            ``num_classes`` weights (not necessarily normalised), or ``same`` (``replace`` only: each
            replaced item is generated in the class it had).
        value_range: ``(low, high)`` that the generator's [-1, 1] maps to, as the real batch's pixels:
            ``(0, 1)`` after ``ToTensor()`` (default), ``(-1, 1)`` for ganaug's own tensors. Float batches only.
        normalize: optional ``(mean, std)``, as torchvision's ``Normalize`` on the real batch (one channel).
        quantize: round the generated images to 8 bits first, as real images (and ganaug's datasets) are.
        seed: >= 0; with the step it alone fixes every synthetic item.
        backend: ``onnx`` (ONNX Runtime: CUDA provider for CUDA batches, CPU otherwise) or ``torch`` (the
            run's BatchNorm-folded EMA generator in PyTorch, on the batch's device).
        threads: ONNX Runtime intra-op threads on the CPU (default: ONNX Runtime's choice); at most
            :data:`ganaug.threads.MAX_THREADS_PER_CPU` times the CPUs this process may use.
        label_smoothing: ``e`` in [0, 1) [default: 0: int64 labels, with or without a ``share``]. With ``e > 0`` the
            returned labels are float32 [N', num_classes] probability targets: one-hot for the real items,
            ``(1 - e) * one_hot + e / num_classes`` for the synthetic ones (:func:`ganaug.data.labels.smooth_labels`),
            so ``F.cross_entropy(logits, labels)`` trains the generated items on smoothed labels and the real
            ones as before. 0: int64 labels. Where the recipe paid and where it did not: :mod:`ganaug.train.recipe`.
        temperature: latents are ``temperature * N(0, I)`` (> 0), as in :class:`ganaug.sample.resample.Sampling`.
            Default: the model's own (its preset's ``sampling``; 1, plain, for models without one).
        label_check: a :class:`ganaug.sample.resample.LabelCheck` (``LabelCheck(classifier, input_range=...,
            normalize=...)`` or ``LabelCheck.load(folder)``) or an evaluator folder: a synthetic item the check
            assigns to another class is drawn again from its own latent stream, up to the check's ``rounds``
            tries, as everywhere else a check is used (:mod:`ganaug.sample.resample`); item ``k`` of step ``s`` is sample
            ``s * n + k`` of that law, so it still depends only on ``(seed, s)`` and the batch size. Each block of
            steps then goes through the host once, for the check (a synchronisation on CUDA). Default: the
            model's own check when its preset asks for one (``label_check.onnx`` beside it).
        sampling: ``"model"`` (default: the model's temperature and label check where none is given) or
            ``"plain"`` (temperature 1, no check, unless given), as :class:`ganaug.feed.dataset.GeneratedDataset`.
        lookahead: steps whose synthetic items are generated in one generator call. Step ``s`` belongs to
            the block of steps ``[s // lookahead * lookahead, ... + lookahead)``; the first call in a block
            generates (and keeps, on the device) the whole block, later calls only scatter their share into
            the batch. That amortises the per-call cost of generating (the host's work, kernel launches,
            small-batch inefficiency) over the block: a block's plans and latents are one vectorised draw and
            two host-to-device copies, and the other calls of the block do no host work but two
            ``index_copy`` launches (no sync, no new index tensors). On CUDA a worker thread draws the next
            block's plans and latents while the current one is used. Items do not depend on the call order;
            they can differ in the last float bits between two ``lookahead`` values (the generator sees other
            batch sizes). ``classes="same"`` generates at every call (the labels come with the batch). A
            ``lookahead`` whose block cannot fit in memory (:meth:`block_memory`) is refused before anything is
            allocated: here if even one synthetic item a step cannot, else at the call that would make the block.

    Call ``mix(images, labels, step=None, return_mask=False)``:

    - ``images``: float [N, 1, H, W] (any float dtype) or uint8 [N, 1, H, W] (then synthetic images are
      uint8 in [0, 255], and ``value_range`` / ``normalize`` must be left unset); ``labels``: int64 [N]
      class indices in ``[0, num_classes)`` on the same device (not range-checked: that would sync a GPU).
    - ``step``: which step's plan to use; default the internal counter :attr:`step`, which then advances
      by one. An explicit ``step`` leaves the counter alone.
    - Returns new ``(images, labels)`` of the same dtype and device ([N] items for ``replace``, [N + m] for
      ``extend``; labels int64 [N'], or float32 [N', num_classes] with ``label_smoothing``), and with
      ``return_mask=True`` a bool [N'] mask of the synthetic items too (to weight their loss, for example).
      The inputs are not modified.

    The counter travels in :meth:`state_dict` / :meth:`load_state_dict` (save it with the model to resume).

    DataLoader workers (a ``collate_fn`` such as ``lambda b: mix(*default_collate(b))``; under ``spawn`` it must
    be picklable: a module-level function or class, or ``functools.partial``): each worker (see
    ``torch.utils.data.get_worker_info()``) has its own copy of the mix, started from the main process's
    :attr:`step` ``s0``. Worker ``w`` of ``W`` adds ``w`` to its counter at its first counted call and ``W`` after
    each, so its ``k``-th batch is step ``s0 + k * W + w``; as the DataLoader hands batch ``i`` to worker
    ``i % W``, batch ``i`` of an epoch is step ``s0 + i`` whatever ``num_workers`` (0 included), and each worker
    generates only its own steps (its blocks of ``lookahead`` steps are strided by ``W``). In a worker :attr:`step`
    (and :meth:`state_dict`) is the next step that worker uses. The main process's copy is never called, so its
    :attr:`step` stays at ``s0``:

    - ``persistent_workers=True``: the workers' copies live on, and each epoch continues their streams (no
      epoch replays another; the steps are those of ``num_workers=0`` when every epoch has a multiple of ``W``
      batches, else still distinct, with gaps).
    - otherwise the workers are new copies of the main process's mix each epoch, which would replay the same
      steps: set ``mix.step = epoch * len(loader)`` (or :meth:`load_state_dict` the batches done so far) before
      each epoch, as resuming does, to continue the stream as ``num_workers=0`` does.
    - ``in_order=False`` lets the DataLoader hand a batch to whichever worker is free: items stay distinct (every
      worker has its own steps) but which batch gets which step then depends on timing.

    An explicit ``step=`` is used as given, in a worker too.

    Raises:
        InputError: bad arguments (a one-line message says what is valid); at call time a batch of the
            wrong shape, dtype or device, or labels that are not int64 class indices.

    Example:
        >>> mix = SyntheticMix("runs/mnist", share=0.5, normalize=(0.1307, 0.3081))      # doctest: +SKIP
        >>> images, labels = mix(images, labels)                                       # doctest: +SKIP
    """

    _PREFETCH_ON = ("cuda",)  # device types whose next block's host arrays a worker thread draws ahead

    def __init__(
        self,
        generator: str | Path,
        *,
        share: float | None = None,
        mode: Mode = "replace",
        classes: Literal["uniform", "same"] | Sequence[float] = "uniform",
        value_range: tuple[float, float] | None = None,
        normalize: tuple[float | Sequence[float], float | Sequence[float]] | None = None,
        quantize: bool = True,
        seed: int = 0,
        backend: Backend = "onnx",
        threads: int | None = None,
        lookahead: int = 16,
        label_smoothing: float | None = None,
        temperature: float | None = None,
        label_check: str | Path | LabelCheck | None = None,
        sampling: str = "model",
    ) -> None:
        if share is None:
            share = MIX_SHARE
        if mode not in ("replace", "extend"):
            raise InputError(f"mode must be 'replace' or 'extend', got {mode!r}")
        if backend not in ("onnx", "torch"):
            raise InputError(f"backend must be 'onnx' or 'torch', got {backend!r}")
        top = 1.0 if mode == "replace" else math.nextafter(1.0, 0.0)
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= top:
            bound = "<= 1" if mode == "replace" else "< 1"
            raise InputError(f"share must be a number with 0 <= share {bound} for mode={mode!r}, got {share!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InputError(f"seed must be a whole number >= 0, got {seed!r}")
        if isinstance(lookahead, bool) or not isinstance(lookahead, (int, np.integer)) or lookahead < 1:
            raise InputError(f"lookahead must be a whole number >= 1, got {lookahead!r}")
        self.lookahead = int(lookahead)
        self.label_smoothing = check_smoothing(0.0 if label_smoothing is None else label_smoothing)
        self.share = float(share)
        self.mode: Mode = mode
        self.seed = int(seed)
        self.backend: Backend = backend
        self.threads = check_threads(threads, name="threads")
        self.quantize = bool(quantize)
        self.value_range = _check_range(value_range)
        self.normalize = _check_normalize(normalize)
        self._uint8_ok = value_range is None and normalize is None
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float, type(None)))
            or not (temperature is None or temperature > 0)
        ):
            raise InputError(f"temperature must be a number > 0, got {temperature!r}")
        if temperature is not None and not math.isfinite(temperature):
            raise InputError(f"temperature must be finite, got {temperature!r}")
        self.path, self.z_dim, self.class_names, own = _open(Path(generator), backend)
        # the model's default sampling where none is given, as `ganaug generate` and GeneratedDataset use it
        drawn = model_sampling(
            own, self.path, sampling=sampling, temperature=temperature, label_check=label_check, threads=self.threads
        )
        self.temperature = float(drawn.temperature)
        self.label_check = drawn.check
        if self.label_check is not None:
            self.label_check.check_classes(self.class_names, IMAGE_SHAPE)
        self._sampling = Sampling(self.temperature, self.label_check)
        if self.share > 0:  # the host's share of one synthetic item a step: a lower bound, checked up front
            self._check_block_room(1, 1, torch.float32, torch.device("cpu"), least=True)
        self.classes = _check_classes(classes, mode, len(self.class_names))
        words = np.random.SeedSequence([self.seed, _MIX_PURPOSE]).generate_state(3, np.uint64) >> np.uint64(1)
        self._latent_seed, self._position_key, self._label_key = (int(w) for w in words)
        self.step = 0
        self._lane: int | None = None  # the pid of the DataLoader worker whose counter was offset by its id
        self._onnx: dict[tuple[int, str], OnnxGenerator] = {}  # (pid, device) -> session
        self._torch: dict[tuple[int, str], torch.nn.Module] = {}
        self._block: _Block | None = None  # the last block of steps generated ahead
        # the next block's host arrays, being drawn: ((first step, batch size), stride, future)
        self._ahead: tuple[tuple[int, int], int, Future] | None = None
        self._worker: tuple[int, ThreadPoolExecutor] | None = None  # (pid, one thread) drawing them

    # ---- the plan -------------------------------------------------------------------------------

    def synthetic_count(self, batch_size: int) -> int:
        """How many synthetic items a batch of ``batch_size`` real items gets."""
        if self.mode == "replace":
            return math.floor(self.share * batch_size + 0.5)
        return math.floor(self.share * batch_size / (1.0 - self.share) + 0.5)

    def plan(self, batch_size: int, *, step: int) -> MixPlan:
        """The synthetic items of ``step`` for a batch of ``batch_size`` real items (see :class:`MixPlan`).

        Three 63-bit words of ``SeedSequence([seed, 10])`` are the latent seed and the keys of two Philox
        streams. With ``n`` synthetic items: the latents are rows ``[step * n, step * n + n)`` of
        ``latents(latent_seed, ...)``; the positions are the first ``n`` of a stable argsort of the first
        ``batch_size`` words of step ``step``'s stretch of the position stream, sorted; label ``k`` comes from
        word ``k`` of the step's stretch of the label stream (uniform in (0, 1) from its top 53 bits, then
        the class whose cumulative weight it falls under). Step ``s`` owns counter blocks
        ``[s * c, (s + 1) * c)`` of a stream, with ``c = ceil(words per step / 4)`` (Philox gives 4 words a
        block), so a block of steps is one draw.
        """
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise InputError(f"step must be a whole number >= 0, got {step!r}")
        n = self.synthetic_count(batch_size)
        positions, labels = self._draw(int(step), 1, batch_size)
        return MixPlan(
            step=int(step),
            n=n,
            latent_seed=self._latent_seed,
            latent_start=int(step) * n,
            positions=None if positions is None else positions[0],
            labels=None if labels is None else labels[0],
        )

    def _draw(
        self, first: int, steps: int, batch_size: int, stride: int = 1
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Positions and labels of steps ``first, first + stride, .. first + (steps - 1) * stride``: int64
        [steps, n] each (or ``None``)."""
        n = self.synthetic_count(batch_size)
        positions = None
        if self.mode == "replace":
            keys = _stream_words(self._position_key, first, steps, batch_size, stride)
            positions = np.sort(np.argsort(keys, axis=1, kind="stable")[:, :n], axis=1).astype(np.int64)
        labels = None
        if not isinstance(self.classes, str) or self.classes == "uniform":
            raw = _stream_words(self._label_key, first, steps, n, stride)
            u = ((raw >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53  # uniform in (0, 1)
            if isinstance(self.classes, str):
                labels = np.minimum((u * len(self.class_names)).astype(np.int64), len(self.class_names) - 1)
            else:
                labels = np.searchsorted(self.classes, u, side="right").astype(np.int64)
        return positions, labels

    # ---- mixing ---------------------------------------------------------------------------------

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor, *, step: int | None = None, return_mask: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self._check_batch(images, labels)
        counted, stride = step is None, 1
        if counted:
            stride = self._worker_stride()
            step = self.step
        elif isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise InputError(f"step must be a whole number >= 0, got {step!r}")
        step, n = int(step), self.synthetic_count(len(images))
        if isinstance(self.classes, str) and self.classes == "same":
            self._check_block_room(len(images), n, images.dtype, images.device, steps=1)
            ints, z = self._host_arrays(step, 1, len(images))
            block = self._make_block(
                step, len(images), images.dtype, images.device, ints=ints, z=z, batch_labels=labels
            )
        else:
            block = self._block_of(step, len(images), images.dtype, images.device, stride)
        if counted:  # only now: a refused call (a block that cannot fit) leaves the counter where it was
            self.step = step + stride
        k = (step - block.first) // block.stride
        syn, syn_labels = block.step_images[k], block.step_labels[k]
        if self.mode == "replace":
            where = block.step_positions[k]
            out_images, out_labels = images.index_copy(0, where, syn), labels.index_copy(0, where, syn_labels)
        else:
            out_images, out_labels = torch.cat([images, syn]), torch.cat([labels, syn_labels])
        if not (return_mask or self.label_smoothing):
            return out_images, out_labels
        mask = block.mask(k, len(images), n)
        if self.label_smoothing:
            out_labels = smooth_labels(out_labels, len(self.class_names), self.label_smoothing, mask)
        return (out_images, out_labels, mask) if return_mask else (out_images, out_labels)

    def _worker_stride(self) -> int:
        """How far a counted call moves the counter: the DataLoader's worker count in a worker, else 1.

        At the first counted call in a worker process, the counter (copied from the main process) moves on by the
        worker's id, so worker ``w`` of ``W`` takes steps ``s0 + w, s0 + w + W, ...``: its share of the batches."""
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        if info is None:
            return 1
        if getattr(self, "_lane", None) != os.getpid():  # a fresh copy in this worker (forked or unpickled)
            self._lane = os.getpid()
            self.step += int(info.id)
        return max(1, int(info.num_workers))

    def _block_of(
        self, step: int, batch_size: int, dtype: torch.dtype, device: torch.device, stride: int = 1
    ) -> _Block:
        """The block of steps holding ``step`` for this batch size, dtype and device: generated on first use.

        A block is ``lookahead`` steps ``stride`` apart (``stride`` > 1 in a DataLoader worker, which uses only
        every ``stride``-th step): steps ``first + j * stride`` with ``first`` the block's start in ``step``'s
        lane (``step % stride``). On CUDA the next block's host arrays (plans and latents: the host's share of
        the work, which grows with the batch) are drawn meanwhile on a worker thread, so a training loop that
        goes step by step finds them ready; numpy releases the GIL for that work. Nothing else changes: they are
        the same arrays."""
        span = self.lookahead * stride
        first = step // span * span + step % stride
        key = (first, stride, batch_size, dtype, str(device))
        if self._block is None or self._block.key != key:
            self._check_block_room(batch_size, self.synthetic_count(batch_size), dtype, device)
            self._block = None  # let the old block's memory go before the new one is made
            ahead, self._ahead = self._ahead, None
            if ahead is not None and ahead[:2] == ((first, batch_size), stride):
                ints, z = ahead[2].result()
            else:
                ints, z = self._host_arrays(first, self.lookahead, batch_size, stride)
            if device.type in self._PREFETCH_ON:
                following = first + span
                work = self._pool().submit(
                    self._host_arrays, following, self.lookahead, batch_size, stride, pin=device.type == "cuda"
                )
                self._ahead = ((following, batch_size), stride, work)
            self._block = self._make_block(first, batch_size, dtype, device, ints=ints, z=z, stride=stride)
            self._block.key, self._block.stride = key, stride
        return self._block

    def _host_arrays(
        self, first: int, steps: int, batch_size: int, stride: int = 1, *, pin: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The host's part of a block of steps ``first + j * stride``: int64 [2 or 1, L, n] (positions in
        ``replace`` mode, then labels) and the latents float32 [L * n, z_dim] (rows ``s * n .. s * n + n - 1`` of
        the latent stream for each step ``s``), in pinned memory with ``pin`` (the worker thread pins too, off the
        training thread). A pure function of its arguments."""
        n = self.synthetic_count(batch_size)
        positions, labels = self._draw(first, steps, batch_size, stride)
        ints = torch.from_numpy(np.stack([a for a in (positions, labels) if a is not None]))
        if stride == 1:
            z = latents(self._latent_seed, first * n, (first + steps) * n, self.z_dim)
        else:  # one step at a time: only the rows this lane uses are drawn
            starts = [(first + j * stride) * n for j in range(steps)]
            z = np.concatenate([latents(self._latent_seed, s, s + n, self.z_dim) for s in starts])
        if self.temperature != 1.0 and self.label_check is None:  # with a check, Sampling scales them itself
            z = z * np.float32(
                self.temperature
            )  # as ganaug.sample.resample.Sampling does: float32 latents times float32 t
        z = torch.from_numpy(z)
        return (ints.pin_memory(), z.pin_memory()) if pin else (ints, z)

    def _pool(self) -> ThreadPoolExecutor:
        if self._worker is None or self._worker[0] != os.getpid():  # a forked child has no copy of the thread
            self._worker = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="ganaug-mix"))
        return self._worker[1]

    def _make_block(
        self,
        first: int,
        batch_size: int,
        dtype: torch.dtype,
        device: torch.device,
        *,
        ints: torch.Tensor,
        z: torch.Tensor,
        batch_labels: torch.Tensor | None = None,
        stride: int = 1,
    ) -> _Block:
        """Generate a block's items on ``device`` from its host arrays (:meth:`_host_arrays`), with two
        host-to-device copies in all. With ``batch_labels`` (``classes="same"``, one step) ``ints`` holds only
        the positions and the replaced items keep their labels."""
        steps, n = ints.shape[1], ints.shape[2]
        ints_on_device = _upload(ints, device)
        where = ints_on_device[0] if self.mode == "replace" else None
        if batch_labels is not None:
            syn_labels = batch_labels.index_select(0, where.view(-1)).view(steps, n)
        else:
            syn_labels = ints_on_device[-1]
        if n:
            if self.label_check is not None:
                generated = self._checked(first, stride, n, z, syn_labels, device)
            else:
                generated = self.generate(_upload(z, device), syn_labels.reshape(-1))
            images = self._normalised(generated, dtype).view(steps, n, *IMAGE_SHAPE)
        else:
            images = torch.empty((steps, 0, *IMAGE_SHAPE), dtype=dtype, device=device)
        return _Block(None, first, images, syn_labels, where)

    def _checked(
        self, first: int, stride: int, n: int, z: torch.Tensor, labels: torch.Tensor, device: torch.device
    ) -> torch.Tensor:
        """A block's items drawn through the label check: item ``k`` of step ``s`` is sample ``s * n + k`` of
        :class:`ganaug.sample.resample.Sampling` (the temperature and the check) with the latent seed; ``z`` holds their
        unscaled first latents. Returns float32 [L * n, 1, 28, 28] in [-1, 1] on ``device``."""
        steps = labels.shape[0]
        indices = ((first + np.arange(steps, dtype=np.int64) * stride)[:, None] * n + np.arange(n)[None, :]).reshape(-1)

        def run(latent: np.ndarray, y: np.ndarray) -> np.ndarray:
            out = self.generate(_upload(torch.from_numpy(latent), device), _upload(torch.from_numpy(y), device))
            return out.float().cpu().numpy()

        images = self._sampling.images(
            run, labels.reshape(-1).cpu().numpy(), indices, seed=self._latent_seed, z_dim=self.z_dim, z=z.numpy()
        )
        return _upload(torch.from_numpy(images), device)

    def block_memory(self, batch_size: int, n: int, dtype: torch.dtype, *, steps: int | None = None) -> tuple[int, int]:
        """(host bytes, device bytes) a block of ``steps`` (default :attr:`lookahead`) steps of ``n`` synthetic
        items for batches of ``batch_size`` needs at its peak: on the host the position and label draws
        (uint64 words, their argsort and sorts), the int64 plans and the latents (float32, from float64
        draws); on the device the plans, the generator's float32 output, :meth:`_normalised`'s float32
        intermediates and the kept images in ``dtype``, and the masks. On a CPU batch both are the same memory."""
        steps = self.lookahead if steps is None else steps
        pixels = math.prod(IMAGE_SHAPE)
        size = torch.empty((), dtype=dtype).element_size()
        positions = 8 * (2 * (batch_size + 3) + 2 * n) if self.mode == "replace" else 0
        host = steps * (positions + 6 * 8 * n + 16 * n + 40 * self.z_dim * n)
        device = steps * (16 * n + (3 * 4 + size) * pixels * n + batch_size + n)
        return host, device

    def _check_block_room(
        self,
        batch_size: int,
        n: int,
        dtype: torch.dtype,
        device: torch.device,
        *,
        steps: int | None = None,
        least: bool = False,
    ) -> None:
        """Refuse, before any of it is allocated, a block (:meth:`block_memory`) that cannot fit: host memory
        through :func:`ganaug.outputs.check_room`, and on CUDA the device's free memory. ``least``: the
        constructor's check, the host's part of one item a step (a lower bound for any batch and device)."""
        from ganaug.outputs import check_room

        steps = self.lookahead if steps is None else steps
        host, on_device = self.block_memory(batch_size, n, dtype, steps=steps)
        if least:  # the batches' device is not known yet: only what is on the host whatever it is
            on_device = 0
        elif device.type == "cpu":
            host, on_device = host + on_device, 0
        if least:
            what = f"lookahead={steps:,} (at least one synthetic image a step, {steps:,} steps generated at once)"
        elif steps > 1:
            what = (
                f"lookahead={steps:,} ({n:,} synthetic images a step for batches of {batch_size:,}, {steps:,} steps "
                "generated at once)"
            )
        else:
            what = f"a batch of {batch_size:,} ({n:,} synthetic images)"
        fix = "choose a smaller lookahead (the default is 16)" if steps > 1 else "use smaller batches"
        check_room(what=what, memory=host, fix=fix)
        if on_device and device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if on_device > free:
                raise InputError(
                    f"{what} needs about {on_device / 2**30:.1f} GB of memory on {device} and "
                    f"{free / 2**30:.1f} GB is free there; {fix}"
                )

    def generate(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``G(z, labels)`` with this object's backend on ``z``'s device: float32 [n, 1, 28, 28] in [-1, 1].

        On CUDA with ``backend="onnx"`` the result is ONNX Runtime's reused output buffer (valid until the
        next call of the same size); :meth:`__call__` consumes it at once.
        """
        device = z.device
        # Per process: a forked DataLoader worker inherits the parent's ONNX Runtime session, whose thread pool
        # does not survive a fork (its first run would wait forever on a lock held by a thread that was not copied).
        key = (os.getpid(), str(device))
        if self.backend == "torch":
            if key not in self._torch:
                from ganaug.train.export import fold_for_inference, load_checkpoint_generator

                generator, _ = load_checkpoint_generator(self.path)
                self._torch[key] = fold_for_inference(generator).eval().to(device)
            with torch.no_grad():
                return self._torch[key](z, labels)
        if key not in self._onnx:
            self._onnx[key] = self._open_onnx(device)
        return self._onnx[key].run_device(z, labels)

    def state_dict(self) -> dict[str, Any]:
        """``{"step": ..., "seed": ...}``: what resuming needs."""
        return {"step": self.step, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s step.

        Raises:
            InputError: not a mapping, no ``step``, a ``step`` that is not a whole number >= 0, or a ``seed``
                other than this object's; the counter is then left as it was.
        """
        if not isinstance(state, Mapping):
            raise InputError(f"state must be the dict SyntheticMix.state_dict() returned, got {type(state).__name__}")
        if "step" not in state:
            raise InputError("state has no 'step'; give what SyntheticMix.state_dict() returned")
        step = state["step"]
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise InputError(
                f"state's step must be a whole number >= 0, got {step!r}; give what SyntheticMix.state_dict() returned"
            )
        if state.get("seed", self.seed) != self.seed:
            raise InputError(f"state was saved with seed={state['seed']} but this SyntheticMix has seed={self.seed}")
        self.step = int(step)

    def __repr__(self) -> str:
        classes = self.classes if isinstance(self.classes, str) else "weights"
        return (
            f"SyntheticMix({str(self.path)!r}, share={self.share}, mode={self.mode!r}, classes={classes!r}, "
            f"backend={self.backend!r}, lookahead={self.lookahead}, label_smoothing={self.label_smoothing}, "
            f"seed={self.seed}, step={self.step})"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_onnx"], state["_torch"], state["_block"] = {}, {}, None  # rebuilt where unpickled
        state["_ahead"], state["_worker"] = None, None  # _lane stays: it names the process whose lane was taken
        return state

    # ---- helpers --------------------------------------------------------------------------------

    def _open_onnx(self, device: torch.device) -> OnnxGenerator:
        from ganaug.sample.runtime import OnnxGenerator

        if device.type == "cpu":
            return OnnxGenerator(self.path, provider="cpu", threads=self.threads)
        if device.type != "cuda":
            raise InputError(f"backend='onnx' runs on cpu or cuda batches, got {device}; use backend='torch'")
        try:
            return OnnxGenerator(self.path, provider="cuda", device_id=device.index or 0)
        except InputError as e:
            raise InputError(f"{e}; or use SyntheticMix(..., backend='torch')") from None

    def _normalised(self, generated: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """[-1, 1] generator output -> the real batch's scale and dtype (8-bit rounded if ``quantize``)."""
        if dtype == torch.uint8:
            return ((generated + 1.0) * 127.5 + 0.5).clamp_(0, 255).to(torch.uint8)
        low, high = self.value_range
        mean, std = self.normalize if self.normalize is not None else (0.0, 1.0)
        if self.quantize:
            levels = torch.floor((generated + 1.0) * 127.5 + 0.5).clamp_(0, 255)  # as to_uint8
            scale, shift = (high - low) / 255.0 / std, (low - mean) / std
            return (levels * scale + shift).to(dtype)
        scale, shift = (high - low) / 2.0 / std, (low + (high - low) / 2.0 - mean) / std
        return (generated * scale + shift).to(dtype)

    def _check_batch(self, images: Any, labels: Any) -> None:
        if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
            raise InputError(
                f"give images and labels as torch tensors, got {type(images).__name__}, {type(labels).__name__}"
            )
        shape = IMAGE_SHAPE
        if images.ndim != 4 or tuple(images.shape[1:]) != shape:
            raise InputError(
                f"images must be [N, {', '.join(map(str, shape))}] like the generator's, got {list(images.shape)}"
            )
        if images.dtype == torch.uint8:
            if not self._uint8_ok:
                raise InputError(
                    "uint8 images are handed out as uint8 in [0, 255]: leave value_range and normalize unset"
                )
        elif not images.dtype.is_floating_point:
            raise InputError(f"images must be a float or uint8 tensor, got {images.dtype}")
        if labels.dtype != torch.int64 or labels.shape != (len(images),):
            raise InputError(
                f"labels must be int64 class indices [{len(images)}], got {labels.dtype} {list(labels.shape)} "
                "(apply CutMix/MixUp after SyntheticMix)"
            )
        if labels.device != images.device:
            raise InputError(f"images are on {images.device} but labels on {labels.device}; move both to one device")


@dataclass
class _Block:
    """Synthetic items of steps ``first + k * stride`` for ``k`` in ``[0, L)``: images [L, n, 1, 28, 28]
    (normalised, the batch's dtype), labels int64 [L, n] and, in ``replace`` mode, positions int64 [L, n], all
    on the device."""

    key: tuple[Any, ...] | None
    first: int
    images: torch.Tensor
    labels: torch.Tensor
    positions: torch.Tensor | None
    _masks: torch.Tensor | None = None
    stride: int = 1  # the block's steps are ``first + k * stride``

    def __post_init__(self) -> None:
        # One view per step, made once: a call then indexes a tuple instead of making three tensor views.
        self.step_images = self.images.unbind(0)
        self.step_labels = self.labels.unbind(0)
        self.step_positions = self.positions.unbind(0) if self.positions is not None else None

    def mask(self, k: int, batch_size: int, n: int) -> torch.Tensor:
        """Bool [N'] mask of step ``first + k * stride``'s synthetic items; all L masks are made at the first
        request."""
        if self._masks is None:
            steps, device = len(self.images), self.images.device
            if self.positions is not None:
                masks = torch.zeros((steps, batch_size), dtype=torch.bool, device=device)
                self._masks = masks.scatter_(1, self.positions, True)
            else:
                self._masks = (torch.arange(batch_size + n, device=device) >= batch_size).expand(steps, -1)
        return self._masks[k]


def _stream_words(key: int, first: int, steps: int, per_step: int, stride: int = 1) -> np.ndarray:
    """uint64 [steps, per_step]: words of the Philox stream ``key`` for steps ``first + j * stride``, ``j`` in
    ``[0, steps)``.

    Step ``s`` owns counter blocks ``[s * c, (s + 1) * c)`` with ``c = ceil(per_step / 4)`` (4 words a block)
    and takes the first ``per_step`` words of them, so any run of steps is one draw (and a strided one a draw a
    step, skipping the other steps' blocks)."""
    c = -(-per_step // 4)
    bits = np.random.Philox(key=key)
    bits.advance(first * c)
    if stride == 1:
        return bits.random_raw(steps * c * 4).reshape(steps, c * 4)[:, :per_step]
    words = np.empty((steps, c * 4), np.uint64)
    for j in range(steps):
        words[j] = bits.random_raw(c * 4)
        bits.advance((stride - 1) * c)
    return words[:, :per_step]


def _upload(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device``; to CUDA through pinned memory, so the copy does not stall the stream."""
    if device.type != "cuda":
        return tensor.to(device)
    if not tensor.is_pinned():
        tensor = tensor.pin_memory()  # torch's caching host allocator reuses the block
    return tensor.to(device, non_blocking=True)


def _open(path: Path, backend: Backend) -> tuple[Path, int, list[str], dict[str, Any]]:
    """(the file the backend loads, z_dim, class names, the model's default sampling) of a run folder, ``.onnx``
    or checkpoint."""
    if backend == "onnx":
        from ganaug.sample.runtime import ONNX_FILE, OnnxGenerator, warn_uncorrected

        onnx_path = path / ONNX_FILE if path.is_dir() else path
        if path.suffix == ".pt":
            raise InputError(f"{path} is a checkpoint; give backend='torch', or the run's generator.onnx")
        probe = OnnxGenerator(onnx_path, provider="cpu")  # metadata only: the session is made on first use
        warn_uncorrected(probe, unflatten=False)  # SyntheticMix samples plain: no correction of density weighting
        return onnx_path, probe.z_dim, probe.classes, probe.sampling
    from ganaug.train.export import load_checkpoint_generator

    source = path.parent if path.suffix == ".onnx" else path
    generator, meta = load_checkpoint_generator(source)
    return source, generator.config.z_dim, list(meta["classes"]), dict((meta.get("config") or {}).get("sampling") or {})


def _check_range(value_range: tuple[float, float] | None) -> tuple[float, float]:
    if value_range is None:
        return (0.0, 1.0)
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise InputError(f"value_range must be (low, high), got {value_range!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise InputError(f"value_range must be finite (low, high) with low < high, got {value_range!r}")
    return (low, high)


def _check_normalize(normalize: Any) -> tuple[float, float] | None:
    if normalize is None:
        return None
    try:
        mean, std = (_one_channel(v) for v in normalize)
    except (TypeError, ValueError):
        raise InputError(
            f"normalize must be (mean, std) for one channel, e.g. (0.1307, 0.3081), got {normalize!r}"
        ) from None
    if not (math.isfinite(mean) and math.isfinite(std)):  # NaN or inf would make every synthetic pixel NaN
        raise InputError(f"normalize must be finite numbers (mean, std), e.g. (0.1307, 0.3081), got {normalize!r}")
    if not std > 0:
        raise InputError(f"normalize std must be > 0, got {std}")
    return (mean, std)


def _one_channel(value: Any) -> float:
    if isinstance(value, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(value, str):
        if len(value) != 1:
            raise ValueError
        value = value[0]
    return float(value)


def _check_classes(classes: Any, mode: Mode, num_classes: int) -> str | np.ndarray:
    if isinstance(classes, str):
        if classes not in ("uniform", "same"):
            raise InputError(f"classes must be 'uniform', 'same' or {num_classes} weights, got {classes!r}")
        if classes == "same" and mode != "replace":
            raise InputError("classes='same' needs mode='replace' (extended items replace nothing)")
        return classes
    weights = np.asarray(classes, dtype=np.float64)
    if weights.shape != (num_classes,) or not np.all(np.isfinite(weights)) or weights.min() < 0 or weights.sum() <= 0:
        raise InputError(
            f"classes weights must be {num_classes} finite numbers >= 0 with a positive sum, got {classes!r}"
        )
    cumulative = np.cumsum(weights / weights.sum())
    cumulative[-1] = 1.0
    return cumulative
