"""What a benchmark ran on: the one machine description every report under ``benchmarks/results`` records."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")


def describe() -> dict[str, Any]:
    """CPU model, physical and logical cores, SIMD flags, GPU (if torch sees one), library versions, and the
    load average (1, 5, 15 min) when it was taken: a benchmark on a shared machine says how busy it was."""
    import torch

    from ganaug import __version__

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ganaug": __version__,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    try:
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
    except ImportError:  # pragma: no cover - a hard dependency, but a description should not fail
        pass
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        text = cpuinfo.read_text()
        fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in text.splitlines() if ":" in line)}
        info["cpu"] = fields.get("model name", platform.processor())
        flags = set(fields.get("flags", "").split())
        info["simd"] = [f for f in SIMD_FLAGS if f in flags]
        cores = {
            (b.split("physical id")[1].split("\n")[0], b.split("core id")[1].split("\n")[0])
            for b in text.split("\n\n")
            if "core id" in b and "physical id" in b
        }
        info["physical_cores"] = len(cores) or None
    else:
        info["cpu"] = platform.processor() or platform.machine()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info
