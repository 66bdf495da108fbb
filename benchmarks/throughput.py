"""Generation throughput side by side in one run, and what batch mixing (SyntheticMix) costs.

    python benchmarks/throughput.py                       # CPU: torch eager, channels_last, torch.compile, ONNX Runtime
    python benchmarks/throughput.py --device cuda         # GPU: ONNX Runtime CUDA fp32/fp16, TensorRT, torch fp32/bf16/CUDA graph
    python benchmarks/throughput.py --model runs/digits   # a run folder (or its checkpoint, or a generator .onnx)
    python benchmarks/throughput.py --quick               # a short smoke run (fewer sizes and repeats)
    python benchmarks/throughput.py --suite gpu --device cpu --quick   # the GPU suite's code on the CPU (smoke test)

Every backend runs the same BatchNorm-folded eval-mode generator (:func:`ganaug.train.export.fold_for_inference`).
ONNX Runtime is timed through :class:`ganaug.sample.runtime.OnnxGenerator`, the path users call: ``run`` (numpy) on
the CPU; on a GPU ``run_device``, the IO-bound path that writes into torch CUDA tensors (the one
:class:`ganaug.SyntheticMix` uses). A figure is the median over ``--repeats`` of images/s, each repeat timing
back-to-back calls for at least ``--min-time`` seconds after a warm-up.

CPU suite: "share of GEMM" is the generator's FLOP rate (:func:`ganaug.models.dcgan.generator_flops` x images/s)
over the median rate of a large square fp32 ``torch.matmul`` on the same threads.

GPU suite: ONNX Runtime CUDA fp32 (TF32, the provider's default, and strict fp32), fp16 (the fp16 export),
TensorRT fp32/fp16 where the provider can really be created (else "not measured" and why), PyTorch eager
fp32, bf16 autocast and bf16 replayed from a CUDA graph. Parity: max abs difference from PyTorch strict
fp32 (TF32 off) at one batch (bars: 1e-4 for fp32, 1e-3 for fp16). The fp16 model is worth keeping only at
batches where it beats fp32: the report says where.

Mixing cost (``--no-mix`` skips it): on the suite's device, one training step of the README's ``Net``
(Adadelta, NLL) on a device-resident batch, with and without ``SyntheticMix(share=0.5)`` before it (same
warm-up, whole lookahead blocks, a device synchronisation before each clock reading, entries interleaved); on a
GPU the bar is <= 10% added per step. Beside it, what generating alone costs a step (one block's generator call
on device-resident inputs, synchronised, over the block's steps) and its share of the added time. On the CPU the cost per synthetic image of a mixing call against bulk
generation (``OnnxGenerator.generate``, batches of 1024); the bar is <= 1.2x.

Writes ``<out-dir>/<name>.json`` and ``.md`` (name default: ``throughput_cpu`` or ``throughput_gpu``).
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
import torch.nn.functional as F
from torch import nn

from ganaug import __version__
from ganaug.config import ModelConfig
from ganaug.downstream.machine import describe
from ganaug.models.dcgan import Generator, generator_flops
from ganaug.sample.latents import latents
from ganaug.sample.runtime import OnnxGenerator, gpu_present
from ganaug.train.export import export_generator, fold_for_inference, read_metadata

RESULTS = Path("runs") / "benchmarks"  # the default --out-dir
PARITY_BARS = {"fp32": 1e-4, "fp16": 1e-3}
MIX_GPU_BAR = 0.10  # added share of a training step
MIX_CPU_BAR = 1.2  # per-image cost of mixing over bulk generation
MNIST_NORMALIZE = (0.1307, 0.3081)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


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


class Net(nn.Module):
    """The README's classifier (pytorch/examples' MNIST network): float [N, 1, 28, 28] -> log-probabilities [N, 10]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)  # [N, 32, 26, 26]
        self.conv2 = nn.Conv2d(32, 64, 3, 1)  # [N, 64, 24, 24] -> max-pool [N, 64, 12, 12]
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        return F.log_softmax(self.fc2(F.relu(self.fc1(torch.flatten(x, 1)))), dim=1)


@dataclasses.dataclass
class Model:
    generator: Generator  # the torch generator (random init of the same architecture for a bare .onnx)
    onnx: Path
    run_dir: Path | None  # a folder with checkpoint.pt and generator.onnx (for SyntheticMix's torch backend)
    source: str


def load_model(model: str | None, workdir: Path) -> Model:
    """The given run / checkpoint / .onnx, or (default) a run of the default architecture trained for two steps."""
    from ganaug.train.export import export_onnx, load_checkpoint_generator

    if model is None:
        from ganaug.config import TrainConfig
        from ganaug.train.trainer import Trainer

        run_dir = workdir / "run"
        config = TrainConfig(dataset="digits", per_class=10, epochs=1, batch_size=50, device="cpu", export_onnx=True)
        Trainer.new(config, run_dir, overwrite=True, progress=False).fit()
        generator, _ = load_checkpoint_generator(run_dir)
        return Model(generator.eval(), run_dir / "generator.onnx", run_dir, "default ModelConfig, 2 training steps")
    path = Path(model)
    if path.suffix == ".onnx":
        import onnx

        meta = read_metadata(onnx.load(str(path), load_external_data=False))
        known = {k: v for k, v in meta["model_config"].items() if k in ModelConfig.__dataclass_fields__}
        placed = bool(meta.get("center_of_mass", meta["model_config"].get("center_of_mass", False)))
        generator = Generator(ModelConfig(**known), center_of_mass=placed).eval()
        return Model(generator, path, None, f"{path} (torch backends: same architecture, random init)")
    generator, _ = load_checkpoint_generator(path)
    run_dir = path if path.is_dir() else path.parent
    onnx_path = run_dir / "generator.onnx"
    if not onnx_path.is_file():  # SyntheticMix reads the ONNX file from the run folder
        onnx_path = export_onnx(path)
    return Model(generator.eval(), onnx_path, run_dir, str(path))


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


def first_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"[:300]


# ---- the CPU suite ------------------------------------------------------------------------------


def cpu_suite(model: Model, args: argparse.Namespace) -> dict:
    config = model.generator.config
    flops = generator_flops(config)
    gemm = gemm_gflops(n=2048, repeats=7 if not args.quick else 3)
    log(f"fp32 GEMM (torch.matmul 2048^3): {gemm:.1f} GFLOP/s")
    backends = args.backends.split(",")
    runners: dict[str, Callable[[int], Callable[[], object]]] = {}

    def torch_runner(module: nn.Module):
        def make(batch: int):
            z = torch.from_numpy(latents(0, 0, batch, config.z_dim))
            labels = torch.arange(batch) % config.num_classes

            def call():
                with torch.inference_mode():
                    return module(z, labels)

            return call

        return make

    if "eager" in backends:
        runners["torch eager"] = torch_runner(fold_for_inference(model.generator))
    if "channels_last" in backends:
        runners["torch eager channels_last"] = torch_runner(
            fold_for_inference(model.generator).to(memory_format=torch.channels_last)
        )
    if "compile" in backends:
        runners["torch.compile"] = torch_runner(torch.compile(fold_for_inference(model.generator)))
    if "ort" in backends:
        onnx_cpu = OnnxGenerator(model.onnx, provider="cpu", threads=args.threads)

        def make_ort(batch: int):
            z = latents(0, 0, batch, config.z_dim)
            labels = np.arange(batch, dtype=np.int64) % config.num_classes
            return lambda: onnx_cpu.run(z, labels)

        runners["onnxruntime cpu"] = make_ort
    rows = []
    for backend, make in runners.items():
        for batch in args.batch_list:
            rate = images_per_second(make(batch), batch, repeats=args.repeats, min_time=args.min_time)
            row = {
                "backend": backend,
                "batch": batch,
                "images_per_s": round(rate, 1),
                "ms_per_batch": round(1000 * batch / rate, 3),
                "gflop_per_s": round(rate * flops / 1e9, 2),
                "share_of_cpu_gemm": round(rate * flops / 1e9 / gemm, 4),
            }
            rows.append(row)
            log(f"{backend:28s} batch {batch:5d}: {rate:10.1f} img/s  {100 * row['share_of_cpu_gemm']:5.1f}% of GEMM")
    profile = None
    if args.profile_batch and "ort" in backends:
        z = latents(0, 0, args.profile_batch, config.z_dim)
        labels = np.arange(args.profile_batch, dtype=np.int64) % config.num_classes
        profile = ort_profile(model.onnx, z, labels, runs=20 if not args.quick else 5, threads=args.threads)
        log(f"onnxruntime cpu op time at batch {args.profile_batch}: {profile}")
    return {
        "cpu_gemm_gflop_per_s": round(gemm, 2),
        "results": rows,
        "onnxruntime_cpu_op_share": {"batch": args.profile_batch, "share": profile} if profile else None,
    }


# ---- the GPU suite ------------------------------------------------------------------------------


def gpu_suite(model: Model, args: argparse.Namespace, workdir: Path) -> dict:
    """ONNX Runtime CUDA/TensorRT and PyTorch paths on ``args.device`` (on a CPU only the paths that exist there)."""
    device = args.device
    on_cuda = device == "cuda"
    config = model.generator.config
    flops = generator_flops(config)
    provider = "cuda" if on_cuda else "cpu"
    dev = torch.device("cuda", 0) if on_cuda else torch.device("cpu")
    not_measured: dict[str, str] = {}
    # backend -> (precision, make(z, labels) -> call() -> images float32 [N, 1, 28, 28])
    runners: dict[str, tuple[str, Callable[[torch.Tensor, torch.Tensor], Callable[[], torch.Tensor]]]] = {}

    def ort_make(gen: OnnxGenerator):
        return lambda z, y: lambda: gen.run_device(z, y)

    def add_ort(name: str, precision: str, build: Callable[[], OnnxGenerator]) -> None:
        try:
            gen = build()
            warm = min(args.batch_list)  # inside TensorRT's profile (its engine is built here)
            gen.run_device(
                torch.zeros(warm, config.z_dim, device=dev), torch.zeros(warm, dtype=torch.int64, device=dev)
            )
            if on_cuda and gen.device != "cuda":
                raise RuntimeError(f"the session runs on {gen.providers}, not on the GPU")
            runners[name] = (precision, ort_make(gen))
            log(f"{name}: providers {gen.providers}")
        except Exception as e:  # noqa: BLE001 - a provider that cannot start here is a result to report
            not_measured[name] = first_line(e)
            log(f"{name}: not measured: {not_measured[name]}")

    wanted = set(args.gpu_backends.split(","))
    low, high = min(args.batch_list), max(args.batch_list)
    trt_range = (low, high, high)
    if "ort" in wanted:
        add_ort(
            f"onnxruntime {provider} fp32 (TF32)", "fp32-tf32", lambda: OnnxGenerator(model.onnx, provider=provider)
        )
        add_ort(
            f"onnxruntime {provider} fp32 (strict)",
            "fp32",
            lambda: OnnxGenerator(model.onnx, provider=provider, tf32=False),
        )
        fp16_path = workdir / "generator_fp16.onnx"
        try:
            export_generator(model.generator, fp16_path, fp16=True)
            add_ort(f"onnxruntime {provider} fp16", "fp16", lambda: OnnxGenerator(fp16_path, provider=provider))
        except Exception as e:  # noqa: BLE001 - reported, and the fp32 paths still run
            not_measured[f"onnxruntime {provider} fp16"] = f"fp16 export failed: {first_line(e)}"
    if "tensorrt" in wanted and on_cuda:
        add_ort(
            "onnxruntime tensorrt fp32",
            "fp32-tf32",
            lambda: OnnxGenerator(model.onnx, provider="tensorrt", trt_batch_range=trt_range),
        )
        add_ort(
            "onnxruntime tensorrt fp16",
            "fp16",
            lambda: OnnxGenerator(model.onnx, provider="tensorrt", trt_batch_range=trt_range, trt_fp16=True),
        )
    elif "tensorrt" in wanted:
        not_measured["onnxruntime tensorrt"] = "needs a CUDA GPU"
        log("onnxruntime tensorrt: not measured: needs a CUDA GPU")

    folded = fold_for_inference(model.generator).to(dev)

    def torch_make(z: torch.Tensor, y: torch.Tensor) -> Callable[[], torch.Tensor]:
        def call():
            with torch.inference_mode():
                return folded(z, y)

        return call

    def bf16_make(z: torch.Tensor, y: torch.Tensor) -> Callable[[], torch.Tensor]:
        def call():
            with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16):
                return folded(z, y).float()

        return call

    def graph_make(z: torch.Tensor, y: torch.Tensor) -> Callable[[], torch.Tensor]:
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    folded(z, y)
            torch.cuda.current_stream().wait_stream(stream)
            with torch.cuda.graph(graph):
                out = folded(z, y).float()

        def call():
            graph.replay()
            return out

        return call

    if "torch" in wanted:
        runners[f"torch {device} fp32" + (" (TF32 conv)" if on_cuda else "")] = ("fp32-tf32", torch_make)
        runners[f"torch {device} bf16"] = ("bf16", bf16_make)
        if on_cuda:
            runners["torch cuda bf16 CUDA graph"] = ("bf16", graph_make)
        else:
            not_measured["torch CUDA graph"] = "needs a CUDA GPU"

    rows: list[dict] = []
    parity: dict[str, dict] = {}
    parity_batch = min(args.batch_list)
    zp = torch.from_numpy(latents(1, 0, parity_batch, config.z_dim)).to(dev)
    yp = (torch.arange(parity_batch) % config.num_classes).to(dev)
    reference = strict_reference(folded, zp, yp)
    for backend, (precision, make) in runners.items():
        try:
            out = make(zp, yp)()
            error = float((out.float() - reference).abs().max())
            bar = PARITY_BARS.get(precision)
            parity[backend] = {
                "precision": precision,
                "batch": parity_batch,
                "max_abs_err": error,
                "bar": bar,
                "meets_bar": None if bar is None else error <= bar,
            }
            log(f"parity {backend:34s}: max |diff| {error:.2e}" + (f" (bar {bar:g})" if bar else ""))
            for batch in args.batch_list:
                z = torch.from_numpy(latents(0, 0, batch, config.z_dim)).to(dev)
                y = (torch.arange(batch) % config.num_classes).to(dev)
                rate = images_per_second(
                    make(z, y), batch, repeats=args.repeats, min_time=args.min_time, device=dev.type
                )
                rows.append(
                    {
                        "backend": backend,
                        "precision": precision,
                        "batch": batch,
                        "images_per_s": round(rate, 1),
                        "ms_per_batch": round(1000 * batch / rate, 4),
                        "tflop_per_s": round(rate * flops / 1e12, 3),
                    }
                )
                log(f"{backend:34s} batch {batch:6d}: {rate:14,.0f} img/s")
                del z, y
        except Exception as e:  # noqa: BLE001 - one failing path must not cost the others' figures
            not_measured[backend] = first_line(e)
            log(f"{backend}: not measured: {not_measured[backend]}")
        if on_cuda:
            torch.cuda.empty_cache()

    rate = {(r["backend"], r["batch"]): r["images_per_s"] for r in rows}
    fp32_name, fp16_name = f"onnxruntime {provider} fp32 (TF32)", f"onnxruntime {provider} fp16"
    graph_name = "torch cuda bf16 CUDA graph"
    fp16 = {}
    for batch in args.batch_list:
        a, b = rate.get((fp32_name, batch)), rate.get((fp16_name, batch))
        if a and b:
            fp16[str(batch)] = {"fp16_over_fp32": round(b / a, 3), "keep_fp16": b > a}
    ratio = {}
    for batch in args.batch_list:
        a, b = rate.get((fp32_name, batch)), rate.get((graph_name, batch))
        best_ort = max((v for (k, n), v in rate.items() if n == batch and k.startswith("onnxruntime")), default=None)
        if a and b:
            ratio[str(batch)] = {
                "ort_cuda_fp32_over_graph": round(a / b, 3),
                "best_ort_over_graph": round(best_ort / b, 3),
            }
    return {
        "results": rows,
        "parity": parity,
        "fp16_decision": fp16,
        "ort_over_cuda_graph": ratio,
        "tensorrt_batch_range": list(trt_range),
        "not_measured": not_measured,
    }


def strict_reference(folded: nn.Module, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """PyTorch fp32 output with TF32 off (the parity reference)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.inference_mode():
            return folded(z, labels).float().clone()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# ---- batch mixing cost --------------------------------------------------------------------------


def mixing_cost(model: Model, args: argparse.Namespace) -> dict:
    """Training-step time of the README's Net with and without SyntheticMix(share) on the suite's device,
    and (CPU) the cost per synthetic image of a mixing call against bulk generation."""
    from ganaug.feed.batchmix import SyntheticMix

    dev = torch.device("cuda", 0) if args.device == "cuda" else torch.device("cpu")
    backends = ["onnx"] + (["torch"] if model.run_dir is not None else [])
    source = model.run_dir if model.run_dir is not None else model.onnx
    steps_rows: list[dict] = []
    not_measured: dict[str, str] = {}
    if model.run_dir is None:
        not_measured["SyntheticMix backend torch"] = "--model is a bare .onnx (no checkpoint for the torch backend)"
    for batch in args.mix_batch_list:
        calls, images, labels = training_step_calls(batch, dev)
        mixes: dict[str, SyntheticMix] = {}
        for backend in backends:
            try:
                mix = SyntheticMix(
                    source, share=args.mix_share, normalize=MNIST_NORMALIZE, backend=backend, threads=args.threads
                )
                mix(images, labels, step=10**9)  # session / module on the device; the counter stays at 0
                calls[backend] = lambda mix=mix, train=calls["plain"]: train.step(*mix(train.images, train.labels))
                mixes[backend] = mix
            except Exception as e:  # noqa: BLE001 - reported; the other backend still runs
                not_measured[f"SyntheticMix backend {backend}"] = first_line(e)
                log(f"SyntheticMix backend {backend}: not measured: {first_line(e)}")
        per_step = time_steps(calls, steps=args.mix_steps, repeats=args.repeats, device=dev.type)
        for backend in backends:
            if backend in per_step:
                added = per_step[backend] / per_step["plain"] - 1.0
                generation = generation_per_step(mixes[backend], batch, dev, repeats=args.repeats)
                added_s = per_step[backend] - per_step["plain"]
                steps_rows.append(
                    {
                        "batch": batch,
                        "backend": backend,
                        "share": args.mix_share,
                        "step_ms": round(1000 * per_step["plain"], 4),
                        "step_ms_with_mix": round(1000 * per_step[backend], 4),
                        "added": round(added, 4),
                        "generation_ms_per_step": round(1000 * generation, 4),
                        "generation_share_of_added": round(generation / added_s, 3) if added_s > 0 else None,
                        "bar": MIX_GPU_BAR if dev.type == "cuda" else None,
                        "meets_bar": (added <= MIX_GPU_BAR) if dev.type == "cuda" else None,
                    }
                )
                log(
                    f"Net step batch {batch:5d}: {1000 * per_step['plain']:.3f} ms, with SyntheticMix({backend}, "
                    f"share {args.mix_share}) {1000 * per_step[backend]:.3f} ms: +{100 * added:.1f}% "
                    f"(generating alone {1000 * generation:.3f} ms a step)"
                )
    per_image = mixing_per_image(model, args, backends, source) if dev.type == "cpu" else []
    return {"training_step": steps_rows, "per_image_vs_bulk": per_image, "not_measured": not_measured}


class TrainStep:
    """One training step of the README's Net on a fixed batch: ``step(x, y)`` trains on any batch, ``()`` on its own."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        torch.manual_seed(0)
        self.net = Net().to(images.device)
        self.optimizer = torch.optim.Adadelta(self.net.parameters(), lr=1.0)
        self.images, self.labels = images, labels

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        F.nll_loss(self.net(x), y).backward()
        self.optimizer.step()

    def __call__(self) -> None:
        self.step(self.images, self.labels)


def training_step_calls(batch: int, dev: torch.device) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """``{"plain": TrainStep}`` on a device-resident batch normalised like MNIST, and that batch."""
    images = ((torch.rand(batch, 1, 28, 28, device=dev) - MNIST_NORMALIZE[0]) / MNIST_NORMALIZE[1]).contiguous()
    labels = torch.randint(0, 10, (batch,), device=dev)
    return {"plain": TrainStep(images, labels)}, images, labels


def time_steps(calls: dict[str, Callable[[], None]], *, steps: int, repeats: int, device: str) -> dict[str, float]:
    """Median seconds per call of each entry, timed ``steps`` calls at a time between two device synchronisations,
    entries interleaved per repeat (in turn first). Every entry gets the same 16 warm-up calls; those and ``steps``
    (a multiple of 16) keep SyntheticMix's default lookahead blocks whole, so each repeat of a mixing entry
    generates the same number of blocks."""
    for call in calls.values():
        for _ in range(16):
            call()
    sync(device)
    samples: dict[str, list[float]] = defaultdict(list)
    names = list(calls)
    for repeat in range(repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            call = calls[name]
            sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                call()
            sync(device)
            samples[name].append((time.perf_counter() - t0) / steps)
    return {name: statistics.median(values) for name, values in samples.items()}


def generation_per_step(mix, batch: int, dev: torch.device, *, repeats: int) -> float:
    """Seconds per training step that generating alone costs: one lookahead block's generator call on
    device-resident latents and labels (``mix.generate``), synchronised, median of ``repeats``, over the block's steps.
    The rest of what mixing adds is host work, copies and the scatter."""
    n = mix.lookahead * mix.synthetic_count(batch)
    if n == 0:
        return 0.0
    z = torch.from_numpy(latents(0, 0, n, mix.z_dim)).to(dev)
    y = (torch.arange(n) % len(mix.class_names)).to(dev)
    mix.generate(z, y)  # warm-up at this size (ONNX Runtime's buffers, cuDNN's algorithms)
    samples = []
    for _ in range(max(repeats, 5)):
        sync(dev.type)
        t0 = time.perf_counter()
        mix.generate(z, y)
        sync(dev.type)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) / mix.lookahead


def mixing_per_image(model: Model, args: argparse.Namespace, backends: list[str], source: Path) -> list[dict]:
    """CPU: seconds per synthetic image of SyntheticMix calls vs the same backend generating in bulk (batches of
    1024, latents included: what ``OnnxGenerator.generate(dtype="float")`` does)."""
    from ganaug.feed.batchmix import SyntheticMix

    bulk_n = 2048 if args.quick else 8192
    bulk_labels = torch.arange(bulk_n) % 10
    rows = []
    for batch in args.mix_batch_list:
        images = torch.rand(batch, 1, 28, 28)
        targets = torch.randint(0, 10, (batch,))
        for backend in backends:
            mix = SyntheticMix(
                source, share=args.mix_share, normalize=MNIST_NORMALIZE, backend=backend, threads=args.threads
            )
            n = mix.synthetic_count(batch)
            calls = -(-max(1, bulk_n // max(n, 1)) // mix.lookahead) * mix.lookahead  # whole blocks
            mix(images, targets, step=10**9)  # session or module made, outside the timed steps

            def bulk(mix: SyntheticMix = mix) -> None:
                for lo in range(0, bulk_n, 1024):
                    hi = min(lo + 1024, bulk_n)
                    mix.generate(torch.from_numpy(latents(0, lo, hi, mix.z_dim)), bulk_labels[lo:hi])

            bulk_s, mixed_s = [], []
            for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
                t0 = time.perf_counter()
                bulk()
                bulk_s.append((time.perf_counter() - t0) / bulk_n)
                t0 = time.perf_counter()
                for _ in range(calls):
                    mix(images, targets)
                mixed_s.append((time.perf_counter() - t0) / (calls * n))
            b, m = statistics.median(bulk_s), statistics.median(mixed_s)
            rows.append(
                {
                    "batch": batch,
                    "backend": backend,
                    "synthetic_per_call": n,
                    "lookahead": mix.lookahead,
                    "bulk_us_per_image": round(1e6 * b, 2),
                    "mix_us_per_image": round(1e6 * m, 2),
                    "ratio": round(m / b, 3),
                    "bar": MIX_CPU_BAR,
                    "meets_bar": m / b <= MIX_CPU_BAR,
                }
            )
            log(
                f"CPU mixing batch {batch} ({n} synthetic, {backend}): {1e6 * m:.1f} us/image vs bulk "
                f"{1e6 * b:.1f} ({backend}): {m / b:.2f}x"
            )
    return rows


# ---- main and report ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=None, help="Run folder, checkpoint or generator .onnx (default: a 2-step default-size run)."
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: cuda if present.")
    parser.add_argument("--suite", choices=("auto", "cpu", "gpu"), default="auto", help="auto: gpu on cuda, else cpu.")
    parser.add_argument("--batch-sizes", default=None, help="Default: cpu 1,64,256,1024,4096; gpu 4096,16384,65536.")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.5, help="Seconds per repeat.")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch and ONNX Runtime threads.")
    parser.add_argument(
        "--backends",
        default="eager,channels_last,compile,ort",
        help="CPU suite: comma-separated subset of eager, channels_last, compile, ort.",
    )
    parser.add_argument(
        "--gpu-backends",
        default="ort,tensorrt,torch",
        help="GPU suite: comma-separated subset of ort (CUDA fp32/fp16), tensorrt, torch (fp32/bf16/CUDA graph).",
    )
    parser.add_argument(
        "--profile-batch", type=int, default=256, help="CPU suite: ONNX Runtime op profile batch (0: skip)."
    )
    parser.add_argument("--no-mix", dest="mix", action="store_false", help="Skip the batch-mixing cost.")
    parser.add_argument("--mix-share", type=float, default=0.5)
    parser.add_argument("--mix-batches", default="64,256", help="Training batch sizes for the mixing cost.")
    parser.add_argument(
        "--mix-steps", type=int, default=64, help="Training steps per timing repeat (a multiple of 16: whole blocks)."
    )
    parser.add_argument(
        "--quick", action="store_true", help="Smoke run: small batches, 3 repeats of 0.2 s, no torch.compile."
    )
    parser.add_argument("--name", default=None, help="Result file stem (default throughput_cpu / throughput_gpu).")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if gpu_present() and torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda needs a CUDA GPU that torch can see")
    if args.suite == "auto":
        args.suite = "gpu" if args.device == "cuda" else "cpu"
    if args.batch_sizes is None:
        args.batch_sizes = "4096,16384,65536" if args.suite == "gpu" else "1,64,256,1024,4096"
    if args.quick:
        args.repeats, args.min_time, args.mix_steps = 3, 0.2, 16
        if args.suite == "cpu":
            args.batch_sizes = "1,256"
        elif args.device == "cpu":
            args.batch_sizes = "64,256"
        args.backends = ",".join(b for b in args.backends.split(",") if b != "compile")
    args.batch_list = [int(b) for b in args.batch_sizes.split(",")]
    args.mix_batch_list = [int(b) for b in args.mix_batches.split(",")]
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    name = args.name or ("throughput_gpu" if args.device == "cuda" else "throughput_cpu")
    tmp = tempfile.TemporaryDirectory(prefix="ganaug-bench-")
    workdir = Path(tmp.name)
    model = load_model(args.model, workdir)
    flops = generator_flops(model.generator.config)
    log(f"model: {model.source}; {flops / 1e6:.2f} MFLOP/image; device {args.device}; threads {args.threads}")
    suite = cpu_suite(model, args) if args.suite == "cpu" else gpu_suite(model, args, workdir)
    mixing = mixing_cost(model, args) if args.mix else None
    not_measured = dict(suite.get("not_measured", {}))
    if mixing:
        not_measured.update(mixing["not_measured"])
    report = {
        "ganaug_version": __version__,
        "command": " ".join(["python", "benchmarks/throughput.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": describe(),
        "model": {
            "source": model.source,
            "config": dataclasses.asdict(model.generator.config),
            "mflop_per_image": flops / 1e6,
        },
        "settings": {
            "suite": args.suite,
            "device": args.device,
            "batch_sizes": args.batch_list,
            "repeats": args.repeats,
            "min_time_s": args.min_time,
            "threads": args.threads,
            "quick": args.quick,
            "mix_share": args.mix_share,
            "mix_batches": args.mix_batch_list,
        },
        **{k: v for k, v in suite.items() if k != "not_measured"},
        "mixing": {k: v for k, v in mixing.items() if k != "not_measured"} if mixing else None,
        "not_measured": not_measured,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out_dir / f"{name}.md").write_text(markdown(report))
    log(f"wrote {args.out_dir / name}.json and .md")
    for what, why in not_measured.items():
        log(f"NOT MEASURED: {what}: {why}")
    tmp.cleanup()
    return report


def markdown(report: dict) -> str:
    m = report["machine"]
    s = report["settings"]
    by_backend: dict[str, dict[int, dict]] = defaultdict(dict)
    for row in report["results"]:
        by_backend[row["backend"]][row["batch"]] = row
    sizes = s["batch_sizes"]
    lines = [
        f"# Generation throughput ({s['suite']} suite on {s['device']})",
        "",
        f"`{report['command']}`",
        "",
        (
            f"- machine: {m['cpu']} ({m.get('physical_cores')} physical cores, {m['logical_cpus']} logical; "
            f"SIMD {', '.join(m.get('simd', [])) or 'unknown'}){'; GPU ' + m['gpu'] if 'gpu' in m else ''}"
        ),
        f"- torch {m['torch']}, onnxruntime {m.get('onnxruntime')}, ganaug {m['ganaug']}, threads {s['threads']}",
        f"- model: {report['model']['source']}; {report['model']['mflop_per_image']:.2f} MFLOP/image",
        f"- median of {s['repeats']} repeats of >= {s['min_time_s']} s after warm-up"
        + (" (quick smoke run)" if s["quick"] else ""),
    ]
    if "cpu_gemm_gflop_per_s" in report:
        lines.append(f"- CPU fp32 GEMM (torch.matmul, 2048^3, median): {report['cpu_gemm_gflop_per_s']:.1f} GFLOP/s")
    gemm = "cpu_gemm_gflop_per_s" in report
    lines += [
        "",
        "Images per second" + (" (share of the CPU's GEMM rate):" if gemm else ":"),
        "",
        "| backend | " + " | ".join(f"batch {b}" for b in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for backend, cells in by_backend.items():
        cells_text = []
        for b in sizes:
            if b not in cells:
                cells_text.append("-")
                continue
            share = cells[b].get("share_of_cpu_gemm")
            cells_text.append(
                f"{cells[b]['images_per_s']:,.0f}" + (f" ({100 * share:.0f}%)" if share is not None else "")
            )
        lines.append(f"| {backend} | " + " | ".join(cells_text) + " |")
    if report.get("parity"):
        lines += [
            "",
            "Parity with PyTorch strict fp32 (TF32 off):",
            "",
            "| backend | batch | max abs diff | bar |",
            "|---|---:|---:|---|",
        ]
        for backend, p in report["parity"].items():
            verdict = "-" if p["bar"] is None else f"{p['bar']:g}: {'met' if p['meets_bar'] else 'NOT met'}"
            lines.append(f"| {backend} | {p['batch']} | {p['max_abs_err']:.2e} | {verdict} |")
    if report.get("fp16_decision"):
        lines += [
            "",
            "ONNX Runtime fp16 vs fp32 (TF32): "
            + "; ".join(
                f"batch {b}: {d['fp16_over_fp32']:.2f}x ({'keep fp16' if d['keep_fp16'] else 'fp32 is faster'})"
                for b, d in report["fp16_decision"].items()
            ),
        ]
    if report.get("ort_over_cuda_graph"):
        lines += [
            "",
            "ONNX Runtime CUDA over PyTorch bf16 CUDA graph: "
            + "; ".join(
                f"batch {b}: fp32 {d['ort_cuda_fp32_over_graph']:.2f}x, best ONNX Runtime {d['best_ort_over_graph']:.2f}x"
                for b, d in report["ort_over_cuda_graph"].items()
            ),
        ]
    at = {row["backend"]: row for row in report["results"] if row["batch"] == 256}
    if "onnxruntime cpu" in at and gemm:
        ort = at["onnxruntime cpu"]
        others = {k: v["images_per_s"] for k, v in at.items() if k.startswith("torch")}
        lines += [
            "",
            f"At batch 256, ONNX Runtime CPU: {ort['images_per_s']:,.0f} images/s, "
            f"{100 * ort['share_of_cpu_gemm']:.1f}% of the measured GEMM rate; "
            + "; ".join(f"{v / ort['images_per_s']:.2f}x of it for {k}" for k, v in others.items())
            + ".",
        ]
    profile = report.get("onnxruntime_cpu_op_share")
    if profile:
        lines += [
            "",
            f"ONNX Runtime CPU time by operator at batch {profile['batch']}: "
            + ", ".join(f"{op} {100 * v:.1f}%" for op, v in profile["share"].items()),
        ]
    mixing = report.get("mixing")
    if mixing and mixing["training_step"]:
        lines += [
            "",
            (
                f"Batch mixing: one training step of the README's Net (Adadelta) with "
                f"SyntheticMix(share={s['mix_share']}) on {s['device']}:"
            ),
            "",
            "| batch | backend | step (ms) | step with mix (ms) | added | generating alone (ms/step) | of the added | bar |",
            "|---:|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in mixing["training_step"]:
            bar = "-" if r["bar"] is None else f"<= {100 * r['bar']:.0f}%: {'met' if r['meets_bar'] else 'NOT met'}"
            gen, share = r.get("generation_ms_per_step"), r.get("generation_share_of_added")
            lines.append(
                f"| {r['batch']} | {r['backend']} | {r['step_ms']:.3f} | {r['step_ms_with_mix']:.3f} | "
                f"{100 * r['added']:+.1f}% | {'-' if gen is None else f'{gen:.3f}'} | "
                f"{'-' if share is None else f'{100 * share:.0f}%'} | {bar} |"
            )
    if mixing and mixing["per_image_vs_bulk"]:
        lines += [
            "",
            "Batch mixing on the CPU, cost per synthetic image vs the same backend generating in batches of 1024:",
            "",
            "| batch | backend | synthetic per call | mix (us/image) | bulk (us/image) | ratio | bar |",
            "|---:|---|---:|---:|---:|---:|---|",
        ]
        for r in mixing["per_image_vs_bulk"]:
            lines.append(
                f"| {r['batch']} | {r['backend']} | {r['synthetic_per_call']} | {r['mix_us_per_image']:.1f} | "
                f"{r['bulk_us_per_image']:.1f} | {r['ratio']:.2f}x | <= {r['bar']}x: {'met' if r['meets_bar'] else 'NOT met'} |"
            )
    if report["not_measured"]:
        lines += ["", "Not measured:", ""] + [f"- {k}: {v}" for k, v in report["not_measured"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
