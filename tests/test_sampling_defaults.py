"""Sampling travels with the model: the preset's sampling is recorded in the run, carried into the ONNX metadata,
and `ganaug generate` / `ganaug evaluate` use it unless told otherwise (as transformers' generation_config does)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from ganaug.cli import main
from ganaug.errors import InputError
from ganaug.sample.runtime import OnnxGenerator
from ganaug.train.export import export_onnx
from ganaug.train.trainer import Trainer
from tests.conftest import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def hot_run(tmp_path_factory):
    """A tiny run whose preset samples at temperature 1.3, exported."""
    run_dir = tmp_path_factory.mktemp("hot") / "run"
    config = tiny_config(sampling={"temperature": 1.3}, preset="test@1")
    Trainer.new(config, run_dir, overwrite=True, progress=False).fit()
    export_onnx(run_dir)
    return run_dir


def _generate(model, out, *extra):
    result = CliRunner().invoke(
        main,
        ["generate", str(model), "--per-class", "3", "--format", "npz", "--out", str(out), "--threads", "1", *extra],
    )
    assert result.exit_code == 0, result.output
    with np.load(out) as f:
        images = f["images"]
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    return images, manifest


def test_the_run_and_its_onnx_file_carry_the_presets_sampling(hot_run):
    config = json.loads((hot_run / "config.json").read_text())["config"]
    assert config["sampling"] == {"temperature": 1.3} and config["preset"] == "test@1"
    assert OnnxGenerator(hot_run / "generator.onnx").sampling == {"temperature": 1.3}


def test_generate_uses_the_models_sampling_unless_told_otherwise(hot_run, tmp_path):
    default, manifest = _generate(hot_run, tmp_path / "default.npz")
    spelled, _ = _generate(hot_run, tmp_path / "spelled.npz", "--temperature", "1.3")
    plain, plain_manifest = _generate(hot_run, tmp_path / "plain.npz", "--temperature", "1")
    assert np.array_equal(default, spelled) and not np.array_equal(default, plain)
    assert manifest["sampling"]["temperature"] == 1.3 and plain_manifest["sampling"]["temperature"] == 1.0


def test_a_model_exported_before_presets_samples_plain(onnx_path, tmp_path):
    """The tiny run of conftest has no sampling: plain sampling, as before."""
    assert OnnxGenerator(onnx_path).sampling == {}
    default, _ = _generate(onnx_path, tmp_path / "a.npz")
    plain, _ = _generate(onnx_path, tmp_path / "b.npz", "--temperature", "1")
    assert np.array_equal(default, plain)


def test_bad_sampling_metadata_is_one_line(hot_run, tmp_path):
    proto = onnx.load(hot_run / "generator.onnx")
    for p in proto.metadata_props:
        if p.key == "ganaug.sampling":
            p.value = json.dumps({"temperature": -1})
    bad = tmp_path / "bad.onnx"
    onnx.save(proto, bad)
    with pytest.raises(InputError, match="sampling metadata"):
        OnnxGenerator(bad)


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory, tiny_run):
    from tests.test_dataset import export_tiny_once

    return export_tiny_once(tmp_path_factory, tiny_run)


def test_generated_dataset_yields_what_generate_writes_on_both_defaults(hot_run, tmp_path):
    from ganaug.feed.dataset import GeneratedDataset

    written, _ = _generate(hot_run, tmp_path / "g.npz", "--seed", "5")
    with np.load(tmp_path / "g.npz") as f:
        labels = f["labels"]
    ds = GeneratedDataset(hot_run, per_class=3, seed=5, order="sorted", output="tensor", value_range=(0, 1))
    assert ds.sampling.temperature == 1.3
    items = [ds[i] for i in range(len(ds))]
    assert [int(y) for _, y in items] == labels.tolist()
    mine = np.stack([(x.numpy()[0] * 255).round().astype(np.uint8) for x, _ in items])
    assert np.array_equal(mine, written.reshape(mine.shape))
    plain = GeneratedDataset(hot_run, per_class=3, seed=5, order="sorted", temperature=1.0)
    assert plain.sampling.temperature == 1.0


def test_synthetic_mix_and_augment_apply_the_models_sampling(hot_run):
    import torch

    from ganaug import SyntheticMix, augment
    from ganaug.feed.dataset import GeneratedDataset, SourceDataset

    images, labels = torch.zeros(16, 1, 28, 28), torch.arange(16) % 10
    mixes = {t: SyntheticMix(hot_run, share=0.5, seed=1, threads=1, temperature=t) for t in (None, 1.3, 1.0)}
    assert mixes[None].temperature == 1.3
    out = {t: mix(images, labels)[0] for t, mix in mixes.items()}
    assert torch.equal(out[None], out[1.3]) and not torch.equal(out[None], out[1.0])
    real = torch.utils.data.Subset(SourceDataset("digits"), list(range(20)))
    default = augment(real, hot_run, per_class=2)
    spelled = augment(real, GeneratedDataset(hot_run, per_class=2, order="sorted", temperature=1.3), per_class=2)
    for i in range(20, len(default)):
        assert np.array_equal(np.asarray(default[i][0]), np.asarray(spelled[i][0]))


@pytest.fixture(scope="module")
def weighted_run(tmp_path_factory):
    """A tiny run trained with density weighting, exported."""
    run_dir = tmp_path_factory.mktemp("weighted") / "run"
    Trainer.new(tiny_config(flatten_density=3.0), run_dir, overwrite=True, progress=False).fit()
    export_onnx(run_dir)
    return run_dir


def test_a_density_weighted_run_warns_once_when_sampled_without_its_correction(weighted_run, onnx_path, tmp_path):
    import warnings

    import ganaug.sample.runtime
    from ganaug import SyntheticMix
    from ganaug.feed.dataset import GeneratedDataset

    assert OnnxGenerator(weighted_run / "generator.onnx").density_weighting == 3.0
    ganaug.sample.runtime._WARNED.clear()
    with pytest.warns(UserWarning, match=r"density weighting \(flatten_density 3\).*--unflatten 8"):
        GeneratedDataset(weighted_run, per_class=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process and file: no second warning
        GeneratedDataset(weighted_run, per_class=2)
        SyntheticMix(weighted_run, share=0.5, threads=1)
        GeneratedDataset(onnx_path, per_class=2)  # not weighted: nothing to say
    ganaug.sample.runtime._WARNED.clear()
    result = CliRunner().invoke(
        main, ["generate", str(weighted_run), "--per-class", "2", "--out", str(tmp_path / "g.npz"), "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if line.startswith("Warning: ")]
    assert len(warned) == 1 and "--unflatten 8" in warned[0]
