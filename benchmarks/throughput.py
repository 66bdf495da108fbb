"""Generation throughput, side by side in one run: torch eager (NCHW and channels_last), torch.compile and
ONNX Runtime (CPU, and CUDA / TensorRT where a GPU is present), against this machine's fp32 GEMM rate.

    python benchmarks/throughput.py                      # default ModelConfig, randomly initialised
    python benchmarks/throughput.py --model runs/digits  # a run folder, its checkpoint, or a generator .onnx
    python benchmarks/throughput.py --quick              # a short smoke run (fewer sizes and repeats)

Throughput does not depend on the weights, so without ``--model`` a randomly initialised generator of the
default architecture is exported and timed. Every backend runs the same BatchNorm-folded eval-mode
generator (:func:`ganaug.export.fold_for_inference`); ONNX Runtime is timed through
:class:`ganaug.runtime.OnnxGenerator.run`, the path users call. A figure is the median over ``--repeats``
of images/s, each repeat timing back-to-back calls for at least ``--min-time`` seconds after a warm-up.
"share of GEMM" is the generator's FLOP rate (:func:`ganaug.models.generator_flops` x images/s) over the
median rate of a large square fp32 ``torch.matmul`` on the same threads.

Writes ``benchmarks/results/<name>.json`` and ``.md`` (name default: ``throughput_cpu``, or
``throughput_gpu`` when a GPU is present).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ganaug import __version__
from ganaug.config import ModelConfig
from ganaug.errors import InputError
from ganaug.export import export_generator, fold_for_inference, read_metadata
from ganaug.machine import describe
from ganaug.models import Generator, generator_flops
from ganaug.runtime import OnnxGenerator, gpu_present
from ganaug.sampling import latents

RESULTS = Path(__file__).parent / "results"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def gemm_gflops(*, n: int, repeats: int, device: str = "cpu") -> float:
    """Median fp32 GFLOP/s of ``n x n @ n x n`` (2 n^3 FLOP) with torch on ``device``."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    rates = []
    for i in range(repeats + 2):
        sync(device)
        t0 = time.perf_counter()
        torch.matmul(a, b)
        sync(device)
        if i >= 2:  # the first two are warm-up
            rates.append(2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return statistics.median(rates)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def images_per_second(
    call: Callable[[], object], batch: int, *, repeats: int, min_time: float, device: str = "cpu"
) -> float:
    """Median over ``repeats`` of images/s, each repeat running ``call`` for at least ``min_time`` s."""
    t0 = time.perf_counter()
    call()  # warm-up: the first call (and torch.compile's compilation), then min_time more
    while time.perf_counter() - t0 < min_time:
        call()
    sync(device)
    rates = []
    for _ in range(repeats):
        calls = 0
        t0 = time.perf_counter()
        while True:
            call()
            calls += 1
            sync(device)
            elapsed = time.perf_counter() - t0
            if elapsed >= min_time:
                break
        rates.append(calls * batch / elapsed)
    return statistics.median(rates)


def load_model(model: str | None, workdir: Path) -> tuple[Generator, Path, str]:
    """(torch generator, ONNX file, description): the given run/checkpoint/.onnx or a random default one."""
    if model is None:
        torch.manual_seed(0)
        generator = Generator(ModelConfig()).eval()
        return generator, export_generator(generator, workdir / "generator.onnx"), "default ModelConfig, random init"
    path = Path(model)
    if path.suffix == ".onnx":
        import onnx

        config = ModelConfig(**read_metadata(onnx.load(str(path), load_external_data=False))["model_config"])
        return Generator(config).eval(), path, f"{path} (torch backends: same architecture, random init)"
    from ganaug.training import load_generator

    generator, _ = load_generator(path)
    onnx_path = path / "generator.onnx" if path.is_dir() else path.parent / "generator.onnx"
    if not onnx_path.is_file():
        onnx_path = export_generator(generator, workdir / "generator.onnx")
    return generator, onnx_path, str(path)


def ort_profile(onnx_path: Path, z: np.ndarray, labels: np.ndarray, *, runs: int, threads: int) -> dict[str, float]:
    """Share of ONNX Runtime CPU node time per operator type at this batch size (its built-in profiler)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = str(Path(tmp) / "ort")
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        for _ in range(runs):
            session.run(None, {"z": z, "labels": labels})
        events = json.loads(Path(session.end_profiling()).read_text())
    per_op: dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"]
    total = sum(per_op.values())
    return {op: round(t / total, 4) for op, t in sorted(per_op.items(), key=lambda kv: -kv[1])}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=None, help="Run folder, checkpoint or generator .onnx (default: random default generator)."
    )
    parser.add_argument("--batch-sizes", default="1,64,256,1024,4096")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.5, help="Seconds per repeat.")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch and ONNX Runtime threads.")
    parser.add_argument(
        "--backends",
        default="eager,channels_last,compile,ort",
        help="Comma-separated subset of eager, channels_last, compile, ort (GPU backends are added when a GPU is present).",
    )
    parser.add_argument(
        "--profile-batch", type=int, default=256, help="Batch size for the ONNX Runtime op profile (0: skip)."
    )
    parser.add_argument(
        "--quick", action="store_true", help="Smoke run: batch 1,256; 3 repeats of 0.2 s; no torch.compile."
    )
    parser.add_argument("--name", default=None, help="Result file stem (default throughput_cpu / throughput_gpu).")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_sizes, args.repeats, args.min_time = "1,256", 3, 0.2
        args.backends = ",".join(b for b in args.backends.split(",") if b != "compile")
    torch.set_num_threads(args.threads)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    backends = args.backends.split(",")
    has_gpu = gpu_present() and torch.cuda.is_available()
    name = args.name or ("throughput_gpu" if has_gpu else "throughput_cpu")

    tmp = tempfile.TemporaryDirectory(prefix="ganaug-bench-")
    workdir = Path(tmp.name)
    generator, onnx_path, described = load_model(args.model, workdir)
    config = generator.config
    flops = generator_flops(config)
    folded = fold_for_inference(generator)
    log(f"model: {described}; {flops / 1e6:.2f} MFLOP/image; threads {args.threads}")
    gemm = gemm_gflops(n=2048, repeats=7 if not args.quick else 3)
    log(f"fp32 GEMM (torch.matmul 2048^3): {gemm:.1f} GFLOP/s")

    runners: dict[str, Callable[[int], Callable[[], object]]] = {}
    device_of: dict[str, str] = {}

    def torch_runner(model: torch.nn.Module, device: str, memory_format=None):
        def make(batch: int):
            z = torch.from_numpy(latents(0, 0, batch, config.z_dim)).to(device)
            labels = (torch.arange(batch) % config.num_classes).to(device)

            def call():
                with torch.inference_mode():
                    return model(z, labels)

            return call

        return make

    if "eager" in backends:
        runners["torch eager"] = torch_runner(folded, "cpu")
    if "channels_last" in backends:
        runners["torch eager channels_last"] = torch_runner(
            fold_for_inference(generator).to(memory_format=torch.channels_last), "cpu"
        )
    if "compile" in backends:
        runners["torch.compile"] = torch_runner(torch.compile(fold_for_inference(generator)), "cpu")
    onnx_cpu = OnnxGenerator(onnx_path, provider="cpu", threads=args.threads)

    def ort_runner(gen: OnnxGenerator):
        def make(batch: int):
            z = latents(0, 0, batch, config.z_dim)
            labels = np.arange(batch, dtype=np.int64) % config.num_classes
            return lambda: gen.run(z, labels)

        return make

    if "ort" in backends:
        runners["onnxruntime cpu"] = ort_runner(onnx_cpu)
    if has_gpu:
        runners["torch eager cuda"] = torch_runner(fold_for_inference(generator).cuda(), "cuda")
        device_of["torch eager cuda"] = "cuda"
        try:
            runners["onnxruntime cuda"] = ort_runner(OnnxGenerator(onnx_path, provider="cuda"))
        except InputError as e:  # onnxruntime without its CUDA provider: report and go on
            log(f"onnxruntime cuda skipped: {e}")
        try:
            trt = OnnxGenerator(onnx_path, provider="tensorrt")
            trt.run(latents(0, 0, 1, config.z_dim), np.zeros(1, np.int64))
            runners["onnxruntime tensorrt"] = ort_runner(trt)
        except (InputError, RuntimeError) as e:  # TensorRT libraries are optional: report and go on
            log(f"tensorrt skipped: {str(e).splitlines()[0]}")

    rows = []
    for backend, make in runners.items():
        for batch in batch_sizes:
            rate = images_per_second(
                make(batch), batch, repeats=args.repeats, min_time=args.min_time, device=device_of.get(backend, "cpu")
            )
            row = {
                "backend": backend,
                "batch": batch,
                "images_per_s": round(rate, 1),
                "ms_per_batch": round(1000 * batch / rate, 3),
                "gflop_per_s": round(rate * flops / 1e9, 2),
                "share_of_cpu_gemm": None if device_of.get(backend) == "cuda" else round(rate * flops / 1e9 / gemm, 4),
            }
            rows.append(row)
            share = row["share_of_cpu_gemm"]
            log(
                f"{backend:28s} batch {batch:5d}: {rate:10.1f} img/s  {row['gflop_per_s']:7.2f} GFLOP/s  "
                + (f"{100 * share:5.1f}% of GEMM" if share is not None else "")
            )

    profile = None
    if args.profile_batch and "ort" in backends:
        z = latents(0, 0, args.profile_batch, config.z_dim)
        labels = np.arange(args.profile_batch, dtype=np.int64) % config.num_classes
        profile = ort_profile(onnx_path, z, labels, runs=20 if not args.quick else 5, threads=args.threads)
        log(
            f"onnxruntime cpu op time at batch {args.profile_batch}: "
            + ", ".join(f"{k} {100 * v:.1f}%" for k, v in profile.items())
        )

    report = {
        "ganaug_version": __version__,
        "command": " ".join(["python", "benchmarks/throughput.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": describe(),
        "model": {"source": described, "config": dataclasses.asdict(config), "mflop_per_image": flops / 1e6},
        "settings": {
            "batch_sizes": batch_sizes,
            "repeats": args.repeats,
            "min_time_s": args.min_time,
            "threads": args.threads,
            "quick": args.quick,
        },
        "cpu_gemm_gflop_per_s": round(gemm, 2),
        "results": rows,
        "onnxruntime_cpu_op_share": {"batch": args.profile_batch, "share": profile} if profile else None,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out_dir / f"{name}.md").write_text(markdown(report))
    log(f"wrote {args.out_dir / name}.json and .md")
    return report


def markdown(report: dict) -> str:
    m = report["machine"]
    by_backend: dict[str, dict[int, dict]] = defaultdict(dict)
    for row in report["results"]:
        by_backend[row["backend"]][row["batch"]] = row
    sizes = report["settings"]["batch_sizes"]
    lines = [
        "# Generation throughput",
        "",
        f"`{report['command']}`",
        "",
        (
            f"- machine: {m['cpu']} ({m.get('physical_cores')} physical cores, {m['logical_cpus']} logical; "
            f"SIMD {', '.join(m.get('simd', [])) or 'unknown'}){'; GPU ' + m['gpu'] if 'gpu' in m else ''}"
        ),
        f"- torch {m['torch']}, onnxruntime {m['onnxruntime']}, ganaug {m['ganaug']}, threads {report['settings']['threads']}",
        f"- model: {report['model']['source']}; {report['model']['mflop_per_image']:.2f} MFLOP/image",
        f"- CPU fp32 GEMM (torch.matmul, 2048^3, median): {report['cpu_gemm_gflop_per_s']:.1f} GFLOP/s",
        f"- median of {report['settings']['repeats']} repeats of >= {report['settings']['min_time_s']} s after warm-up"
        + (" (quick smoke run)" if report["settings"]["quick"] else ""),
        "",
        "Images per second (share of the CPU's GEMM rate):",
        "",
        "| backend | " + " | ".join(f"batch {b}" for b in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for backend, cells in by_backend.items():
        lines.append(
            f"| {backend} | "
            + " | ".join(
                f"{cells[b]['images_per_s']:,.0f}"
                + (
                    f" ({100 * cells[b]['share_of_cpu_gemm']:.0f}%)"
                    if cells[b]["share_of_cpu_gemm"] is not None
                    else ""
                )
                for b in sizes
            )
            + " |"
        )
    at = {row["backend"]: row for row in report["results"] if row["batch"] == 256}
    if "onnxruntime cpu" in at:
        ort = at["onnxruntime cpu"]
        others = {k: v["images_per_s"] for k, v in at.items() if k.startswith("torch") and "cuda" not in k}
        lines += [
            "",
            f"At batch 256, ONNX Runtime CPU: {ort['images_per_s']:,.0f} images/s, "
            f"{100 * ort['share_of_cpu_gemm']:.1f}% of the measured GEMM rate; "
            + "; ".join(f"{v / ort['images_per_s']:.2f}x of it for {k}" for k, v in others.items())
            + ".",
        ]
    profile = report["onnxruntime_cpu_op_share"]
    if profile:
        lines += [
            "",
            f"ONNX Runtime CPU time by operator at batch {profile['batch']}: "
            + ", ".join(f"{op} {100 * s:.1f}%" for op, s in profile["share"].items()),
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
