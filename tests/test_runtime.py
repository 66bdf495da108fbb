"""OnnxGenerator: the generation law, determinism across batch sizes, pickling, labels, bad input."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from ganaug.data.sources import to_model_range
from ganaug.errors import InputError
from ganaug.sample.latents import latents
from ganaug.sample.runtime import OnnxGenerator, gpu_present, interpolate, make_labels, to_uint8
from ganaug.train.checkpoint import load_generator
from ganaug.train.export import export_onnx


@pytest.fixture(scope="module")
def onnx_path(tiny_run: Path, tmp_path_factory) -> Path:
    return export_onnx(tiny_run, tmp_path_factory.mktemp("runtime") / "g.onnx")


@pytest.fixture
def gen(onnx_path: Path) -> OnnxGenerator:
    return OnnxGenerator(onnx_path, threads=1)


def test_properties(gen: OnnxGenerator, tiny_run: Path) -> None:
    _, meta = load_generator(tiny_run)
    assert gen.z_dim == 8 and gen.num_classes == 10 and gen.classes == meta["classes"]
    assert gen.image_shape == (1, 28, 28)
    assert gen.inputs == {
        "z": {"dtype": "float32", "shape": ["batch", 8]},
        "labels": {"dtype": "int64", "shape": ["batch"]},
    }
    assert gen.metadata["data"]["dataset"] == "digits"


def test_run_folder_is_accepted(onnx_path: Path, tiny_run: Path, tmp_path: Path) -> None:
    (tmp_path / "generator.onnx").write_bytes(onnx_path.read_bytes())
    assert OnnxGenerator(tmp_path).path == tmp_path / "generator.onnx"


def test_auto_on_cpu_is_quiet(onnx_path: Path, capfd) -> None:
    if gpu_present():
        pytest.skip("checks the CPU fallback")
    gen = OnnxGenerator(onnx_path, provider="auto")
    gen.run(np.zeros((1, 8), np.float32), np.zeros(1, np.int64))
    assert gen.providers == ["CPUExecutionProvider"] and gen.device == "cpu"
    assert capfd.readouterr().err == ""


def test_sample_i_is_g_of_latent_i(gen: OnnxGenerator, tiny_run: Path) -> None:
    generator, _ = load_generator(tiny_run)
    labels = gen.labels(3)
    images = gen.generate(labels, seed=5, dtype="float", batch_size=4)
    i = 17
    with torch.no_grad():
        expected = generator(torch.from_numpy(latents(5, i, i + 1, 8)), torch.tensor([labels[i]])).numpy()
    np.testing.assert_allclose(images[i : i + 1], expected, atol=1e-5)


def test_batch_size_and_start_do_not_change_images(gen: OnnxGenerator) -> None:
    labels = np.random.default_rng(0).integers(0, 10, 2000).astype(np.int64)
    small = gen.generate(labels, seed=3, batch_size=7, dtype="float")
    large = gen.generate(labels, seed=3, batch_size=4096, dtype="float")
    np.testing.assert_allclose(small, large, atol=1e-5, rtol=0)
    tail = gen.generate(labels[1500:], seed=3, start=1500, batch_size=64, dtype="float")
    np.testing.assert_allclose(tail, large[1500:], atol=1e-5, rtol=0)
    assert not np.allclose(gen.generate(labels[:50], seed=4, dtype="float"), large[:50])


def test_uint8_matches_torchvision_rounding(gen: OnnxGenerator) -> None:
    images = gen.generate(gen.labels(2), seed=0, dtype="uint8")
    floats = torch.from_numpy(gen.generate(gen.labels(2), seed=0, dtype="float"))
    expected = floats.add(1).div(2).mul(255).add(0.5).clamp(0, 255).to(torch.uint8)[:, 0]  # save_image's conversion
    assert images.dtype == np.uint8 and images.shape == (20, 28, 28)
    np.testing.assert_array_equal(images, expected.numpy())
    real = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16)
    np.testing.assert_array_equal(to_uint8(to_model_range(real).numpy()), real.numpy())


def test_pickle_drops_the_session(gen: OnnxGenerator) -> None:
    labels = gen.labels(1)
    before = gen.generate(labels, seed=1)
    clone = pickle.loads(pickle.dumps(gen))
    assert clone._session is None and gen._session is not None
    np.testing.assert_array_equal(clone.generate(labels, seed=1), before)


def test_empty_labels(gen: OnnxGenerator) -> None:
    assert gen.generate(np.zeros(0, np.int64), seed=0).shape == (0, 28, 28)
    assert gen.generate(np.zeros(0, np.int64), seed=0, dtype="float").shape == (0, 1, 28, 28)


def test_make_labels() -> None:
    classes = ["cat", "dog", "T-shirt/top"]
    np.testing.assert_array_equal(make_labels(classes, 2), [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(make_labels(classes, 1, select=["dog", 0]), [1, 0])
    np.testing.assert_array_equal(make_labels(classes, {"T-shirt/top": 2, "1": 1}), [2, 2, 1])
    for bad, match in [
        (lambda: make_labels(classes, 0), "counts must be a whole number >= 1"),
        (lambda: make_labels(classes, {0: 3, 1: -1}), r"counts\[1\] must be a whole number >= 1, got -1"),
        (lambda: make_labels(classes, 1, select=[3]), "unknown class 3; give an index 0..2 or a name: 0='cat'"),
        (lambda: make_labels(classes, 1, select=["bird"]), "unknown class 'bird'"),
        (lambda: make_labels(classes, 1, select=[1, "dog"]), "given twice"),
        (lambda: make_labels(classes, 1, select=[]), "no classes"),
    ]:
        with pytest.raises(InputError, match=match):
            bad()


def test_bad_run_input(gen: OnnxGenerator) -> None:
    with pytest.raises(InputError, match="float32"):
        gen.run(np.zeros((2, 8)), np.zeros(2, np.int64))
    with pytest.raises(InputError, match="int64"):
        gen.run(np.zeros((2, 8), np.float32), np.zeros(2, np.int32))
    with pytest.raises(InputError, match=r"\[0, 10\)"):
        gen.generate(np.array([10], np.int64), seed=0)


def test_bad_files_and_providers(onnx_path: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    other = tmp_path / "identity.onnx"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    onnx.save(
        helper.make_model(
            helper.make_graph(
                [helper.make_node("Identity", ["x"], ["y"])],
                "g",
                [x],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
            )
        ),
        other,
    )
    cases = [
        (text, {}, "not an ONNX file"),
        (empty, {}, "not an ONNX file"),
        (other, {}, "not a ganaug generator"),
        (tmp_path / "missing.onnx", {}, "no ONNX model"),
        (tmp_path, {}, "no ONNX model"),
        (onnx_path, {"provider": "npu"}, "unknown provider 'npu'; choose one of auto, cpu, cuda, tensorrt"),
        (onnx_path, {"threads": 0}, "threads must be >= 1"),
    ]
    if not gpu_present():
        cases += [
            (onnx_path, {"provider": "cuda"}, "onnxruntime-gpu"),
            (onnx_path, {"provider": "tensorrt"}, "tensorrt"),
        ]
    for path, kwargs, match in cases:
        with pytest.raises(InputError, match=match):
            OnnxGenerator(path, **kwargs)


def _edited(onnx_path: Path, out: Path, *, metadata: dict | None = None, drop: tuple[str, ...] = (), edit=None) -> Path:
    """A copy of ``onnx_path`` with ganaug metadata values replaced or dropped, or its graph edited."""
    import json

    proto = onnx.load(str(onnx_path))
    props = {p.key: p.value for p in proto.metadata_props}
    props.update({f"ganaug.{k}": json.dumps(v) for k, v in (metadata or {}).items()})
    for key in drop:
        props.pop(f"ganaug.{key}")
    del proto.metadata_props[:]
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)
    if edit is not None:
        edit(proto)
    onnx.save(proto, str(out))
    return out


def test_onnx_schema_version_is_checked(onnx_path: Path, tmp_path: Path) -> None:
    assert OnnxGenerator(onnx_path).metadata["schema"] == 1
    with pytest.raises(InputError, match=r"has ONNX metadata schema 99; ganaug .* reads schema 1; re-export"):
        OnnxGenerator(_edited(onnx_path, tmp_path / "future.onnx", metadata={"schema": 99}))
    with pytest.raises(InputError, match=r"no schema \(written before .*\); ganaug .* reads schema 1"):
        OnnxGenerator(_edited(onnx_path, tmp_path / "old.onnx", drop=("schema",)))


def test_metadata_that_disagrees_with_the_graph_is_refused(onnx_path: Path, tmp_path: Path) -> None:
    def rename_output(proto) -> None:
        proto.graph.output[0].name = "pictures"
        proto.graph.node[-1].output[0] = "pictures"

    cases = [
        ({"metadata": {"z_dim": 16}}, r"graph's input z is FLOAT \['batch', 8\] but the metadata says FLOAT \[N, 16\]"),
        ({"metadata": {"image_shape": [3, 32, 32]}}, r"output images is FLOAT .* says FLOAT \[N, 3, 32, 32\]"),
        ({"metadata": {"classes": ["a", "b"]}}, r"are not num_classes=10 names"),
        ({"metadata": {"num_classes": 3}}, r"are not num_classes=3 names"),
        ({"edit": rename_output}, r"output images is missing"),
        ({"drop": ("parity",)}, r"lacks the ganaug metadata parity"),
    ]
    for k, (change, match) in enumerate(cases):
        with pytest.raises(InputError, match=match):
            OnnxGenerator(_edited(onnx_path, tmp_path / f"bad{k}.onnx", **change))


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999, -40, -1])
def test_truncated_onnx_is_a_one_line_error(onnx_path: Path, tmp_path: Path, keep: float) -> None:
    data = onnx_path.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: int(len(data) * keep)] if keep > 0 else data[:keep])
    with pytest.raises(InputError) as info:
        OnnxGenerator(cut).generate(np.zeros(2, np.int64), seed=0)
    assert "\n" not in str(info.value) and str(cut) in str(info.value)


@pytest.mark.parametrize("seed", [-1, 2**63, 2**128])
def test_seeds_outside_the_rng_range_are_input_errors(gen: OnnxGenerator, seed: int) -> None:
    with pytest.raises(InputError, match="seed must be a whole number from 0 to 2\\*\\*63 - 1"):
        gen.generate(np.zeros(1, np.int64), seed=seed)


def test_interpolate_walks_from_one_class_to_the_other(tiny_run: Path) -> None:
    generator, meta = load_generator(tiny_run)
    frames, names = interpolate(tiny_run, from_class=4, to_class="8 - eight", steps=5, seed=2)
    assert frames.shape == (5, 1, 28, 28) and names == [meta["classes"][4], meta["classes"][8]]
    z = torch.from_numpy(latents(2, 0, 2, 8))
    with torch.no_grad():
        ends = generator(z, torch.tensor([4, 8]))
    torch.testing.assert_close(frames[[0, -1]], ends, atol=1e-5, rtol=0)
    with pytest.raises(InputError, match="steps must be >= 2"):
        interpolate(tiny_run, from_class=4, to_class=8, steps=1)
    with pytest.raises(InputError, match="unknown class"):
        interpolate(tiny_run, from_class=4, to_class=10, steps=3)


@pytest.mark.gpu
def test_cuda_provider_matches_cpu(onnx_path: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider (install onnxruntime-gpu)")
    if not gpu_present():
        pytest.skip("needs an NVIDIA GPU")
    cuda = OnnxGenerator(onnx_path, provider="cuda")
    labels = cuda.labels(30)
    out = cuda.generate(labels, seed=0, dtype="float", batch_size=64)
    assert cuda.device == "cuda" and cuda.providers[0] == "CUDAExecutionProvider"
    np.testing.assert_allclose(
        out, OnnxGenerator(onnx_path, provider="cpu").generate(labels, seed=0, dtype="float"), atol=1e-3, rtol=0
    )  # TF32 on by default in ONNX Runtime CUDA
    assert OnnxGenerator(onnx_path, provider="auto").device == "cuda"


def test_every_ganaug_session_runs_without_spinning_threads():
    """The generator's and the label check's sessions share one set of options: threads that spin after a call
    would take the cores of the other session, called in turns."""
    from ganaug.threads import ort_session_options

    options = ort_session_options(2)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
    assert ort_session_options(None).intra_op_num_threads == 0  # ONNX Runtime's own choice
