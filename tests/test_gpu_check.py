"""The GPU check's Python paths on the CPU: throughput.py's GPU suite and gpu_check.sh's summary of what was not measured."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ganaug.cli.bench import _load_benchmark


@pytest.fixture(scope="module")
def throughput():
    return _load_benchmark("throughput")


@pytest.fixture(scope="module")
def gpu_bench():
    return _load_benchmark("gpu_bench")


def test_gpu_suite_runs_on_the_cpu_and_reports_what_needs_cuda(throughput, tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)  # the suite exports generator.onnx into the run folder
    args = ["--suite", "gpu", "--device", "cpu", "--threads", "1", "--model", str(run), "--batch-sizes", "4,8"]
    args += [
        "--repeats",
        "1",
        "--min-time",
        "0.01",
        "--mix-batches",
        "8",
        "--mix-steps",
        "2",
        "--out-dir",
        str(tmp_path),
    ]
    report = throughput.main(args)
    backends = {row["backend"] for row in report["results"]}
    assert {"onnxruntime cpu fp32 (strict)", "onnxruntime cpu fp16", "torch cpu fp32", "torch cpu bf16"} <= backends
    assert report["parity"]["onnxruntime cpu fp32 (strict)"]["meets_bar"]
    assert set(report["fp16_decision"]) == {"4", "8"}
    assert report["not_measured"] == {
        "onnxruntime tensorrt": "needs a CUDA GPU",
        "torch CUDA graph": "needs a CUDA GPU",
    }
    steps = report["mixing"]["training_step"]
    assert {(r["backend"], r["batch"]) for r in steps} == {("onnx", 8), ("torch", 8)}
    assert all(r["ratio"] > 0 for r in report["mixing"]["per_image_vs_bulk"])
    written = json.loads((tmp_path / "throughput_cpu.json").read_text())
    assert written["not_measured"] == report["not_measured"]
    assert "Not measured:" in (tmp_path / "throughput_cpu.md").read_text()


def test_check_summary_lists_everything_not_measured_or_below_its_bar(gpu_bench, tmp_path: Path) -> None:
    eager = {
        "variant": "eager",
        "command": "python benchmarks/gpu_bench.py --variant eager",
        "device": "NVIDIA H100",
        "torch": "2.11",
        "recipe": {"dataset": "mnist", "batch_size": 2048, "lr_g": 1.5e-3, "amp": "bf16", "epochs": 80},
        "training": {
            "median_epoch_seconds": 0.2,
            "first_epoch_seconds": 1.5,
            "mfu_vs_bf16_peak": 0.04,
            "meets_epoch_bar": False,
        },
        "class_fidelity": {"overall": 0.992, "per_class": [0.99, 0.995], "meets_bar": True},
    }
    (tmp_path / "gpu_bench_eager.json").write_text(json.dumps(eager))
    throughput = {
        "settings": {"device": "cuda"},
        "results": [{"backend": "onnxruntime cuda fp32 (TF32)", "batch": 65536, "images_per_s": 1.5e6}],
        "parity": {"onnxruntime cuda fp16": {"max_abs_err": 2e-3, "bar": 1e-3, "meets_bar": False}},
        "mixing": {"training_step": [{"backend": "onnx", "batch": 64, "added": 0.25, "meets_bar": False}]},
        "not_measured": {"onnxruntime tensorrt fp32": "InputError: no TensorRT"},
    }
    (tmp_path / "throughput_gpu.json").write_text(json.dumps(throughput))
    (tmp_path / "throughput_gpu.md").write_text("# Generation throughput\n")
    stages = tmp_path / "stages.tsv"
    stages.write_text(
        "versions\tok\t3s\ngpu_bench compile\ttimed out after 200s\t200s\nevaluator (train)\tnot needed\tx\n"
    )
    text, missing = gpu_bench.check_summary(tmp_path, stages)
    expected = [
        "stage 'gpu_bench compile': timed out after 200s",
        "eager: median epoch 0.2 s, bar 0.15 s NOT met",
        "training epoch time and fidelity, compile: no gpu_bench_compile.json",
        "onnxruntime tensorrt fp32: not measured: InputError: no TensorRT",
        "onnxruntime cuda fp16: parity 2.00e-03 > 0.001 (NOT met)",
        "SyntheticMix (onnx) at batch 64: +25.0% per step, bar 10% NOT met",
        "ONNX Runtime CUDA best 1,500,000 images/s",
        "throughput_tensorrt: no throughput_tensorrt.json",
    ]
    for item in expected:
        assert any(line.startswith(item) for line in missing), item
    assert len(missing) == len(expected)
    assert "| eager | 0.200 | 1.500 | 4.00% |" in text
    assert text.split("## Not measured, or measured below the bar")[1].count("\n- ") == len(expected)
