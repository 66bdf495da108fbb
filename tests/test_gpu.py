"""The CUDA training path (run with -m gpu on a machine with a GPU)."""

import pytest
import torch

from ganaug.train.checkpoint import CHECKPOINT, load_generator
from ganaug.train.trainer import Trainer
from tests.conftest import tiny_config

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_cuda_bf16_training_runs_and_loads_on_cpu(tmp_path):
    result = Trainer.new(tiny_config(device="cuda", epochs=2), tmp_path / "run", progress=False).fit()
    assert result.steps == 12
    meta = (tmp_path / "run" / "config.json").read_text()
    assert '"amp": "bf16"' in meta and '"device": "cuda' in meta
    g, _ = load_generator(tmp_path / "run", device="cpu")
    out = g(torch.randn(3, g.config.z_dim), torch.arange(3))
    assert torch.isfinite(out).all()


def test_cuda_resume_continues_to_the_same_place(tmp_path):
    Trainer.new(tiny_config(device="cuda", epochs=2), tmp_path / "full", progress=False).fit()
    Trainer.new(tiny_config(device="cuda", epochs=1), tmp_path / "cut", progress=False).fit()
    Trainer.resume(tmp_path / "cut", epochs=2, progress=False).fit()
    full = torch.load(tmp_path / "full" / CHECKPOINT, weights_only=True)
    cut = torch.load(tmp_path / "cut" / CHECKPOINT, weights_only=True)
    assert full["step"] == cut["step"]
    for key, tensor in full["G"].items():  # cuDNN may pick other kernels: equal up to float rounding
        torch.testing.assert_close(tensor, cut["G"][key], atol=1e-2, rtol=1e-2)


# ---- ONNX Runtime CUDA with IO binding, and SyntheticMix on CUDA batches ------------------------------------


@pytest.fixture(scope="module")
def onnx_run(tiny_run, tmp_path_factory):
    """A copy of the tiny run with its generator.onnx."""
    import shutil

    from ganaug.train.export import export_onnx

    folder = tmp_path_factory.mktemp("gpu") / "run"
    shutil.copytree(tiny_run, folder)
    export_onnx(folder)
    return folder


def _needs_ort_cuda():
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider (install onnxruntime-gpu)")


def test_ort_cuda_run_device_writes_into_a_kept_cuda_buffer(onnx_run):
    import numpy as np

    from ganaug.sample.latents import latents
    from ganaug.sample.runtime import OnnxGenerator

    _needs_ort_cuda()
    cuda = OnnxGenerator(onnx_run, provider="cuda", tf32=False)
    cpu = OnnxGenerator(onnx_run, provider="cpu")
    z_np, y_np = latents(3, 0, 37, cuda.z_dim), np.arange(37, dtype=np.int64) % 10
    z, y = torch.from_numpy(z_np).cuda(), torch.from_numpy(y_np).cuda()
    first = cuda.run_device(z, y)
    assert first.is_cuda and first.shape == (37, 1, 28, 28) and first.dtype == torch.float32
    expected = cpu.run(z_np, y_np)
    np.testing.assert_allclose(first.cpu().numpy(), expected, atol=1e-4, rtol=0)
    again = cuda.run_device(z * 0 + z, y)
    assert again.data_ptr() == first.data_ptr()  # the binding and its output buffer are kept for N = 37
    out = torch.empty(37, 1, 28, 28, device="cuda")
    assert cuda.run_device(z, y, out=out) is out
    torch.testing.assert_close(out, first)
    np.testing.assert_allclose(cuda.run(z_np, y_np), expected, atol=1e-4, rtol=0)  # numpy path, kept binding too
    images = cuda.generate(cuda.labels(5), seed=1, dtype="float", batch_size=16, device_output=True)
    assert images.is_cuda and images.shape == (50, 1, 28, 28)
    np.testing.assert_allclose(
        images.cpu().numpy(), cpu.generate(cpu.labels(5), seed=1, dtype="float"), atol=1e-4, rtol=0
    )
    as_uint8 = cuda.generate(cuda.labels(5), seed=1, device_output=True)
    assert as_uint8.dtype == torch.uint8 and as_uint8.shape == (50, 28, 28)


def test_ort_tensorrt_or_a_clear_error(onnx_run):
    from ganaug.errors import InputError
    from ganaug.sample.runtime import OnnxGenerator

    _needs_ort_cuda()
    try:
        trt = OnnxGenerator(onnx_run, provider="tensorrt", trt_batch_range=(1, 64, 256))
        assert trt.providers[0] == "TensorrtExecutionProvider"
    except InputError as e:  # no TensorRT libraries here: the message says so in one line
        assert "\n" not in str(e) and "Tensorrt" in str(e)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_synthetic_mix_on_cuda_matches_the_cpu(onnx_run, backend, dtype):
    from ganaug import SyntheticMix

    if backend == "onnx":
        _needs_ort_cuda()
    kwargs = {"share": 0.5, "normalize": (0.1307, 0.3081), "quantize": False, "seed": 5, "backend": backend}
    images, labels = torch.rand(64, 1, 28, 28).to(dtype), torch.arange(64) % 10
    on_cpu = SyntheticMix(onnx_run, **kwargs)(images, labels, step=2)
    mix = SyntheticMix(onnx_run, **kwargs)
    on_cuda = mix(images.cuda(), labels.cuda(), step=2)
    assert on_cuda[0].is_cuda and on_cuda[0].dtype == dtype and on_cuda[0].shape == images.shape
    assert torch.equal(on_cuda[1].cpu(), on_cpu[1])
    tolerance = 1e-2 if dtype == torch.float32 else 5e-2  # TF32 convolutions; bf16 rounding
    torch.testing.assert_close(on_cuda[0].cpu().float(), on_cpu[0].float(), atol=tolerance, rtol=0)
    assert torch.equal(mix(images.cuda(), labels.cuda(), step=2)[0], on_cuda[0])  # same step, same batch
    soft_cpu = SyntheticMix(onnx_run, label_smoothing=0.2, **kwargs)(images, labels, step=2)[1]
    soft_cuda = SyntheticMix(onnx_run, label_smoothing=0.2, **kwargs)(images.cuda(), labels.cuda(), step=2)[1]
    assert soft_cuda.is_cuda and soft_cuda.dtype == torch.float32 and torch.equal(soft_cuda.cpu(), soft_cpu)


def test_cuda_compiled_training_runs_and_loads_on_cpu(tmp_path):
    result = Trainer.new(tiny_config(device="cuda", epochs=1, compile=True), tmp_path / "run", progress=False).fit()
    assert result.steps == 6
    g, _ = load_generator(tmp_path / "run", device="cpu")
    assert torch.isfinite(g(torch.randn(3, g.config.z_dim), torch.arange(3))).all()
