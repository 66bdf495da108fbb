"""The machine a run trains on: which device (:func:`resolve_device`), whether the CPU computes bf16 natively
(:func:`cpu_has_bf16`), cuDNN's algorithm search (:func:`cudnn_autotune`), and choices made at start by a
capability check and a short measurement (:func:`cpu_bf16_pays`), never by a flag a user on another CPU must know
to remove."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from ganaug.config import ModelConfig
from ganaug.errors import InputError

#: CPU flags (``/proc/cpuinfo``) of native bf16 arithmetic; without one oneDNN emulates bf16, about 15x slower.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
#: bf16 autocast with channels-last is chosen when it trains at least this much faster than fp32 (a margin, so
#: that a noisy measurement on a machine where the two are close does not flip the choice from run to run).
BF16_MIN_SPEEDUP = 1.2


def cpu_flags() -> set[str] | None:
    """The CPU's flags from ``/proc/cpuinfo``; ``None`` where there is no such file (not Linux)."""
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        return None
    for line in info.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_bf16_speedup(model: ModelConfig, batch_size: int = 64, *, steps: int = 3) -> float:
    """fp32 time over bf16-autocast-with-channels-last time of a G and D training step on this CPU (medians of
    ``steps`` steps after one warm-up each, interleaved): above 1, bf16 is faster. Takes a few seconds."""
    import torch.nn.functional as F

    from ganaug.models.dcgan import Discriminator, Generator

    gen = torch.Generator().manual_seed(0)
    z = torch.randn(batch_size, model.z_dim, generator=gen)
    labels = torch.randint(0, model.num_classes, (batch_size,), generator=gen)
    real = torch.rand(batch_size, 1, 28, 28, generator=gen) * 2 - 1
    nets = {}
    for name, fast in (("fp32", False), ("bf16", True)):
        G, D = Generator(model), Discriminator(model)
        if fast:
            G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        nets[name] = (G, D, fast)

    def step(G, D, fast: bool) -> float:
        x = real.contiguous(memory_format=torch.channels_last) if fast else real
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            fake = G(z, labels)
            out_real, out_fake = D(x, labels), D(fake, labels)
            out_real = out_real[0] if isinstance(out_real, tuple) else out_real
            out_fake = out_fake[0] if isinstance(out_fake, tuple) else out_fake
            loss = F.relu(1 - out_real).mean() + F.relu(1 + out_fake).mean()
        loss.backward()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for name in times:
        step(*nets[name])  # warm-up: oneDNN picks its kernels
    for _ in range(steps):
        for name, spent in times.items():
            spent.append(step(*nets[name]))
    return statistics.median(times["fp32"]) / statistics.median(times["bf16"])


def cpu_bf16_pays(model: ModelConfig, batch_size: int = 64) -> bool:
    """Whether this CPU trains ``model`` faster in bf16 autocast with channels-last than in fp32.

    No native bf16 unit (:data:`BF16_FLAGS` absent from ``/proc/cpuinfo``): no, without measuring. Otherwise a
    short measurement (:func:`cpu_bf16_speedup`) decides, with a margin of :data:`BF16_MIN_SPEEDUP`: some CPUs
    with AVX-512 BF16 but no AMX run bf16 slower than fp32 (0.8x measured on a 2-core Xeon), others 1.45x faster.
    """
    flags = cpu_flags()
    if flags is not None and not flags & set(BF16_FLAGS):
        return False
    return cpu_bf16_speedup(model, batch_size) >= BF16_MIN_SPEEDUP


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU is an :class:`InputError`.
    Under torchrun a CUDA device is the rank's ``cuda:LOCAL_RANK``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise InputError(f"unknown device {device!r}; choose auto, cpu or cuda")
    return torch.device(device)


@contextmanager
def cudnn_autotune(device: torch.device) -> Iterator[None]:
    """cuDNN's algorithm search (``torch.backends.cudnn.benchmark``) on inside the block when ``device`` is
    CUDA (fixed batch shapes, so the search pays off); the caller's setting is restored afterwards."""
    if device.type != "cuda":
        yield
        return
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (oneDNN's check: AVX-512 BF16 or AMX); True when torch cannot tell."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True
