"""ONNX export: one self-contained verified file, folded BatchNorm, metadata, parity with PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from ganaug import __version__
from ganaug.errors import InputError
from ganaug.train.checkpoint import load_generator
from ganaug.train.export import ExportParityError, export_onnx, fold_for_inference, read_metadata


@pytest.fixture(scope="module")
def exported(tiny_run: Path, tmp_path_factory) -> Path:
    return export_onnx(tiny_run, tmp_path_factory.mktemp("export") / "g.onnx")


@pytest.fixture(scope="module")
def session(exported: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])


def test_one_self_contained_file_with_folded_graph(exported: Path) -> None:
    assert [p.name for p in exported.parent.iterdir()] == ["g.onnx"]  # no .onnx.data sidecar, no temp file
    model = onnx.load(str(exported))
    onnx.checker.check_model(model, full_check=True)
    assert "BatchNormalization" not in {n.op_type for n in model.graph.node}
    assert [i.name for i in model.graph.input] == ["z", "labels"]
    assert [o.name for o in model.graph.output] == ["images"]
    assert model.graph.input[1].type.tensor_type.elem_type == onnx.TensorProto.INT64
    for value in (*model.graph.input, *model.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param  # the batch axis is symbolic


def test_metadata_round_trip(exported: Path, tiny_run: Path, session: ort.InferenceSession) -> None:
    meta = read_metadata(onnx.load(str(exported)))
    _, ckpt = load_generator(tiny_run)
    run_config = json.loads((tiny_run / "config.json").read_text())
    assert meta["kind"] == "ganaug.conditional-generator" and meta["schema"] == 1
    assert meta["z_dim"] == ckpt["config"]["model"]["z_dim"] == 8
    assert meta["classes"] == ckpt["classes"] and meta["num_classes"] == len(ckpt["classes"])
    assert meta["image_shape"] == [1, 28, 28] and meta["output_range"] == [-1.0, 1.0]
    assert meta["data"] == run_config["data"] and len(meta["data"]["indices_sha256"]) == 64
    assert meta["ganaug_version"] == __version__ and meta["precision"] == "fp32"
    assert meta["opset"] == next(o.version for o in onnx.load(str(exported)).opset_import if o.domain == "")
    assert set(meta["parity"]["max_abs_err"]) == {"1", "7", "256", "4096"}
    assert max(meta["parity"]["max_abs_err"].values()) <= 1e-4
    # onnxruntime hands the same strings back as custom_metadata_map
    custom = session.get_modelmeta().custom_metadata_map
    assert json.loads(custom["ganaug.classes"]) == meta["classes"]


@settings(max_examples=8, deadline=None)
@given(batch=st.integers(1, 300), seed=st.integers(0, 2**31))
def test_parity_with_pytorch(tiny_run: Path, session: ort.InferenceSession, batch: int, seed: int) -> None:
    generator, _ = load_generator(tiny_run)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((batch, 8), dtype=np.float32)
    labels = rng.integers(0, 10, batch, dtype=np.int64)
    (out,) = session.run(None, {"z": z, "labels": labels})
    with torch.no_grad():
        expected = generator(torch.from_numpy(z), torch.from_numpy(labels)).numpy()
    assert out.shape == (batch, 1, 28, 28) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-4, rtol=0)


def test_fold_removes_batchnorm() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 32),
        nn.BatchNorm1d(32),
        nn.ReLU(),
        nn.Unflatten(1, (2, 4, 4)),
        nn.ConvTranspose2d(2, 3, 4, 2, 1, bias=False),
        nn.BatchNorm2d(3),
    )
    model.train()(torch.randn(64, 6))  # move the running statistics away from their initial values
    model.eval()
    folded = fold_for_inference(model)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in folded.modules())
    x = torch.randn(5, 6)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-5)


def test_parity_failure_leaves_no_file(tiny_run: Path, tmp_path: Path, monkeypatch) -> None:
    from ganaug.train import export

    def broken(generator):
        model = fold_for_inference(generator)
        with torch.no_grad():
            last = [m for m in model.modules() if getattr(m, "bias", None) is not None][-1]
            last.bias.add_(0.1)  # the output layer: outputs move far beyond 1e-4
        return model

    monkeypatch.setattr(export, "fold_for_inference", broken)
    with pytest.raises(ExportParityError, match="nothing was written"):
        export_onnx(tiny_run, tmp_path / "g.onnx")
    assert list(tmp_path.iterdir()) == []


def test_bad_source_or_out_is_input_error(tiny_run: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no checkpoint"):
        export_onnx(tmp_path)
    with pytest.raises(InputError, match="does not exist or is not writable"):
        export_onnx(tiny_run, tmp_path / "missing" / "g.onnx")
    with pytest.raises(InputError, match="is a folder"):
        export_onnx(tiny_run, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_existing_out_is_refused_before_work_unless_a_ganaug_onnx(
    exported: Path, tiny_run: Path, tmp_path: Path, monkeypatch
) -> None:
    from ganaug.train import export

    monkeypatch.setattr(export, "fold_for_inference", lambda g: pytest.fail("the refusal must come before work"))
    mine = tmp_path / "mine.onnx"
    mine.write_text("mine")
    with pytest.raises(InputError, match="already exists; pass --overwrite"):
        export_onnx(tiny_run, mine)
    with pytest.raises(InputError, match="not a onnx file written by ganaug"):
        export_onnx(tiny_run, mine, overwrite=True)
    with pytest.raises(InputError, match="refusing to replace"):
        export_onnx(tiny_run, tiny_run / "checkpoint.pt", overwrite=True)
    assert mine.read_text() == "mine"
    theirs = tmp_path / "data.json"  # onnx.load would read a .json name as JSON and raise its own error
    theirs.write_text('{"a": 1}')
    with pytest.raises(InputError, match="not a onnx file written by ganaug"):
        export_onnx(tiny_run, theirs, overwrite=True)
    assert theirs.read_text() == '{"a": 1}'


def test_full_disk_is_one_line_and_leaves_no_file(tiny_run: Path, tmp_path: Path, monkeypatch) -> None:
    import errno

    from ganaug.errors import GanaugError

    def full(proto, path, **kwargs):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(onnx, "save_model", full)
    with pytest.raises(GanaugError, match=r"^no space left on the device while writing .*g.onnx: free at least 1 MB"):
        export_onnx(tiny_run, tmp_path / "g.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_leaves_a_training_generator_in_training_mode(tmp_path: Path) -> None:
    from ganaug.config import ModelConfig
    from ganaug.models.dcgan import Generator
    from ganaug.train.export import export_generator

    g = Generator(ModelConfig(z_dim=8, embed_dim=4, g_width=8)).train()
    export_generator(g, tmp_path / "g.onnx", classes=[str(i) for i in range(10)])
    assert g.training and (tmp_path / "g.onnx").is_file()


def test_provenance_cannot_override_the_contract(tmp_path: Path) -> None:
    from ganaug.config import ModelConfig
    from ganaug.models.dcgan import Generator
    from ganaug.train.export import export_generator

    g = Generator(ModelConfig(z_dim=8, embed_dim=4, g_width=8))
    with pytest.raises(InputError, match="provenance may not set output_range, z_dim"):
        export_generator(g, tmp_path / "g.onnx", provenance={"z_dim": 64, "output_range": [0, 1], "step": 3})
    assert list(tmp_path.iterdir()) == []


def test_fp16_export_passes_its_parity_check(tiny_run: Path, tmp_path: Path) -> None:
    out = export_onnx(tiny_run, tmp_path / "g16.onnx", fp16=True)
    assert read_metadata(onnx.load(str(out)))["precision"] == "fp16"
