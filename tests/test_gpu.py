"""The CUDA training path (run with -m gpu on a machine with a GPU)."""

import pytest
import torch

from ganaug.training import CHECKPOINT, Trainer, load_generator
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
