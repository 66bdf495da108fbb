"""The low-budget recipe (ganaug.train.recipe): `ganaug train --real-per-class N` trains the downstream benchmark's tiny-budget
GAN, and `augment` / `sampler` / `SyntheticMix` without an amount mix its images in as the benchmark's winning lever."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from benchmarks import downstream
from benchmarks.downstream.profiles import probe_profile
from ganaug import SyntheticMix
from ganaug.cli import main
from ganaug.errors import InputError
from ganaug.feed.dataset import SourceDataset
from ganaug.feed.mixing import augment
from ganaug.train.presets import resolve
from ganaug.train.recipe import (
    LOW_BUDGET_BELOW,
    LOW_BUDGET_STEPS,
    MIX_PER_CLASS,
    MIX_SHARE,
    MIX_SMOOTHING,
    epochs_for_steps,
)
from ganaug.train.trainer import Trainer, with_step_budget
from tests.test_batchmix import batch
from tests.test_dataset import export_tiny_once


class Stop(Exception):
    """Raised where training would start: the stand-in for Trainer.new has recorded the resolved config."""


def resolved_config(monkeypatch, *args: str):
    """The TrainConfig `ganaug train ARGS` would train, and the command's output; nothing is trained."""
    seen = []

    class Stub:
        def __init__(self, config) -> None:
            self.config = config

        def fit(self):
            raise Stop

    def new(config, run_dir, **kwargs):
        seen.append(config)
        return Stub(config)

    monkeypatch.setattr(Trainer, "new", staticmethod(new))
    result = CliRunner().invoke(main, ["train", *args])
    assert isinstance(result.exception, Stop), result.output
    return seen[0], result.output


@pytest.mark.parametrize("profile", ["cpu", "cpu-fashion"])
def test_train_per_class_is_the_benchmarks_tiny_budget_gan(monkeypatch, tmp_path, profile):
    p = downstream.PROFILES[profile]
    cli, output = resolved_config(
        monkeypatch, "--dataset", p.dataset, "--data-root", str(tmp_path), "--real-per-class", "10", "--seed", "3"
    )
    bench = downstream.gan_config(p, 10, 3, n_images=100, data_root=str(tmp_path), device="auto")
    # The benchmark spells affine as True (its GANs' cache keys predate the name) and does not export ONNX.
    same = dataclasses.replace(
        bench, augment_real="affine" if bench.augment_real is True else bench.augment_real, export_onnx=True
    )
    # The preset's name and sampling are a record of where the config came from; what trains is the same.
    assert dataclasses.replace(cli, preset=None, sampling={}) == same
    assert cli == resolve(p.dataset, per_class=10, data_root=str(tmp_path), seed=3).config
    assert cli.epochs == 6000 and cli.augment_real == ("affine" if p.dataset == "mnist" else "shift-flip")
    assert cli.preset == "few-shot@1"
    assert "preset few-shot@1 (--real-per-class 10 is below 200): --epochs 6000 --save-every 150;" in output


def test_the_recipe_constants_are_the_benchmarks_winning_lever():
    for name in ("cpu", "cpu-fashion"):
        p = probe_profile(downstream.PROFILES[name], "smooth-share-10")
        assert (p.real_fraction, p.synthetic_smoothing) == (1 - MIX_SHARE, MIX_SMOOTHING)
        assert (p.synthetic_per_class, p.gan_steps, p.gan_small_below) == (
            MIX_PER_CLASS,
            LOW_BUDGET_STEPS,
            LOW_BUDGET_BELOW,
        )


def test_the_command_line_overrides_the_recipe_field_by_field(monkeypatch, tmp_path):
    given, output = resolved_config(monkeypatch, "--real-per-class", "5", "--epochs", "80", "--augment-real", "none")
    assert (given.epochs, given.save_every, given.augment_real, given.batch_size) == (80, 2, False, 50)
    assert "few-shot@1 (--real-per-class 5 is below 200): --batch-size 50 --save-every 2;" in output
    smaller, _ = resolved_config(monkeypatch, "--real-per-class", "5", "--batch-size", "16")
    assert (smaller.batch_size, smaller.epochs) == (16, epochs_for_steps(LOW_BUDGET_STEPS, 50, 16)) == (16, 2000)
    assert resolve(per_class=5, batch_size=16, seed=0).config == smaller
    everything, output = resolved_config(
        monkeypatch,
        "--real-per-class",
        "5",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--save-every",
        "1",
        "--augment-real",
        "--d-width",
        "16",
    )
    assert (everything.epochs, everything.augment_real, everything.model.d_width) == (3, "affine", 16)
    assert "few-shot@1 (--real-per-class 5 is below 200): as it is;" in output
    large, output = resolved_config(monkeypatch, "--real-per-class", str(LOW_BUDGET_BELOW))
    assert (large.epochs, large.augment_real, large.save_every, large.model.d_width) == (100, False, 1, 64)
    assert "preset digits@1" in output


def test_with_a_pool_the_recipe_sets_only_the_augmentation(monkeypatch, tmp_path):
    pooled, output = resolved_config(
        monkeypatch, "--dataset", "mnist", "--data-root", str(tmp_path), "--real-per-class", "10", "--pseudo-label"
    )
    assert (pooled.steps, pooled.augment_real, pooled.pseudo_label) == (6000, False, 0.95)
    assert "preset pool@1 (few labels and an unlabelled pool)" in output and pooled.model.d_width == 32
    # Once the pool is labelled (here: 2,345 images kept), the run is the benchmark's pool GAN field by field.
    p = downstream.PROFILES["cpu"]
    n = 100 + 2345
    bench = dataclasses.replace(
        downstream.gan_config(p, 10, 0, n_images=n, data_root=str(tmp_path), device="auto"),
        pseudo_label=p.pool_threshold,
        augment_real=False,
        export_onnx=True,
    )
    trained = with_step_budget(pooled, n)
    assert dataclasses.replace(trained, preset=None, sampling={}, steps=None) == bench


def test_an_image_folder_counts_its_classes_without_reading_images(monkeypatch, tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / "train" / name).mkdir(parents=True)
    folder, _ = resolved_config(
        monkeypatch, "--dataset", "imagefolder", "--data-root", str(tmp_path), "--real-per-class", "4"
    )
    assert (folder.batch_size, folder.epochs, folder.augment_real) == (12, 6000, "affine")
    many = resolve("imagefolder", per_class=40, data_root=tmp_path).config
    assert (many.epochs, many.batch_size, many.save_every, many.augment_real, many.model.d_width) == (
        6000,
        64,
        150,
        "affine",
        32,
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(
        main, ["train", "--dataset", "imagefolder", "--data-root", str(empty), "--real-per-class", "4"]
    )
    assert result.exit_code == 2 and "no class folders in" in result.output, result.output


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory, tiny_run) -> Path:
    return export_tiny_once(tmp_path_factory, tiny_run)


def test_augment_without_a_rule_is_the_recipes_pool_with_int_labels(onnx_path):
    digits = SourceDataset("digits")
    targets = np.asarray(digits.targets)
    real = torch.utils.data.Subset(
        digits, np.concatenate([np.flatnonzero(targets == c)[:3] for c in range(10)]).tolist()
    )
    recipe = augment(real, onnx_path)
    spelled = augment(real, onnx_path, per_class=MIX_PER_CLASS)
    assert recipe.mix.synthetic == [MIX_PER_CLASS] * 10 and recipe.to_dict()["recipe"] == "low-budget"
    assert spelled.to_dict()["recipe"] is None and recipe.mix.label_smoothing == 0.0
    for i in (0, 29, 30, 31, len(recipe) - 1):
        (a, ta), (b, tb) = recipe[i], spelled[i]
        assert np.array_equal(np.asarray(a), np.asarray(b)) and ta == tb
    # One label type whatever the rule: ints, as the real dataset's; probability vectors only when asked for.
    for mixed in (recipe, augment(real, onnx_path, per_class=2), augment(real, onnx_path, ratio=1.0)):
        assert {type(mixed[i][1]) for i in (0, 30)} == {int}
    smooth = augment(real, onnx_path, label_smoothing=MIX_SMOOTHING)
    assert smooth[30][1].max() == pytest.approx(1 - MIX_SMOOTHING + MIX_SMOOTHING / 10)  # the first synthetic item
    assert smooth[0][1].shape == (10,)  # the real items too: one type in a batch
    draws = [list(d.sampler(generator=torch.Generator().manual_seed(1))) for d in (recipe, spelled)]
    assert draws[0] == draws[1] == list(spelled.sampler(MIX_SHARE, generator=torch.Generator().manual_seed(1)))
    with pytest.raises(InputError, match="give one of ratio=.*or none for the low-budget recipe"):
        augment(real, onnx_path, ratio=1.0, per_class=1)
    with_tt = SourceDataset("digits", target_transform=int)
    with pytest.raises(InputError, match=r"label_smoothing=0.2 makes the targets probability vectors.*=0$"):
        augment(with_tt, onnx_path, label_smoothing=MIX_SMOOTHING)
    assert augment(with_tt, onnx_path).mix.recipe == "low-budget"


def test_synthetic_mix_labels_have_one_type_whatever_the_share(onnx_path):
    recipe = SyntheticMix(onnx_path, seed=2, threads=1)
    spelled = SyntheticMix(onnx_path, share=MIX_SHARE, seed=2, threads=1)
    images, labels = batch(30)
    out, targets = recipe(images, labels)
    same, same_targets = spelled(images, labels)
    assert torch.equal(out, same) and torch.equal(targets, same_targets)
    assert targets.dtype == SyntheticMix(onnx_path, share=0.25, threads=1)(images, labels)[1].dtype == torch.int64
    assert (recipe.share, recipe.label_smoothing) == (MIX_SHARE, 0.0)
    smooth = SyntheticMix(onnx_path, seed=2, threads=1, label_smoothing=MIX_SMOOTHING)(images, labels)[1]
    assert smooth.shape == (30, 10) and smooth.dtype == torch.float32
