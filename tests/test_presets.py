"""Presets (ganaug.train.presets): shipped as data, resolved by one function that the CLI and Python share, a step
budget without cliffs, machine-dependent choices made by a check, and one-line errors for bad preset files."""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest
from click.testing import CliRunner

import ganaug.train.hardware
from ganaug.cli import main
from ganaug.config import TrainConfig
from ganaug.errors import InputError
from ganaug.train import presets
from ganaug.train.presets import load, names, resolve
from tests.test_recipe import resolved_config


@pytest.fixture(autouse=True)
def _no_bf16_measurement(monkeypatch):
    """No preset resolution here measures the CPU: the decision is fixed to fp32 unless a test says otherwise."""
    monkeypatch.setattr(ganaug.train.hardware, "cpu_bf16_pays", lambda model, batch_size=64: False)


def test_every_shipped_preset_loads_and_trains_a_valid_config(tmp_path):
    assert {"digits", "mnist", "fashion-mnist", "few-shot", "pool"} <= set(names())
    for name in names():
        p = load(name)
        assert p.name == name and p.version >= 1 and p.about
        per_class = 10 if p.train.get("pseudo_label") else None
        config = resolve(preset=name, per_class=per_class, data_root=tmp_path).config
        assert config.preset == f"{name}@{p.version}"
        assert config.sampling == p.sampling


def _cli_args(name: str, tmp_path) -> list[str]:
    args = ["--preset", name, "--data-root", str(tmp_path), "--seed", "4"]
    return args + (["--real-per-class", "10"] if load(name).train.get("pseudo_label") else [])


@pytest.mark.parametrize("name", names())
def test_python_resolves_every_preset_as_the_cli_does_field_by_field(monkeypatch, tmp_path, name):
    cli, _ = resolved_config(monkeypatch, *_cli_args(name, tmp_path))
    per_class = 10 if load(name).train.get("pseudo_label") else None
    python = resolve(preset=name, data_root=tmp_path, seed=4, per_class=per_class).config
    for f in dataclasses.fields(TrainConfig):
        assert getattr(cli, f.name) == getattr(python, f.name), f.name
    # and with options given: they win over the preset in both, one by one
    cli, _ = resolved_config(monkeypatch, *_cli_args(name, tmp_path), "--d-width", "16", "--lr-d", "5e-4")
    python = resolve(
        preset=name, data_root=tmp_path, seed=4, per_class=per_class, lr_d=5e-4, model={"d_width": 16}
    ).config
    assert cli == python and cli.model.d_width == 16 and cli.lr_d == 5e-4


def test_the_dataset_and_budget_choose_the_preset_and_say_so(monkeypatch, tmp_path):
    cases = {
        ("mnist", None): "mnist@2",
        ("fashion-mnist", None): "fashion-mnist@1",
        ("imagefolder", None): "fashion-mnist@1",
        ("digits", None): "digits@1",
        ("mnist", 199): "few-shot@1",
        ("mnist", 200): "mnist@2",
    }
    for (dataset, per_class), tag in cases.items():
        if dataset == "imagefolder":
            (tmp_path / "train" / "a").mkdir(parents=True, exist_ok=True)
            (tmp_path / "train" / "b").mkdir(parents=True, exist_ok=True)
        args = ["--dataset", dataset, "--data-root", str(tmp_path)] + (
            ["--real-per-class", str(per_class)] if per_class else []
        )
        config, output = resolved_config(monkeypatch, *args)
        assert config.preset == tag
        said = [line for line in output.splitlines() if line.startswith("preset ")]
        assert len(said) == 1 and said[0].startswith(f"preset {tag} (") and "--preset NAME" in said[0]
    named, output = resolved_config(monkeypatch, "--preset", "mnist", "--data-root", str(tmp_path))
    assert named.dataset == "mnist" and "preset " not in output  # named: nothing to announce


def test_a_bare_mnist_command_trains_the_measured_recipe(monkeypatch, tmp_path):
    config, _ = resolved_config(monkeypatch, "--dataset", "mnist", "--data-root", str(tmp_path))
    assert (config.loss, config.r1_gamma, config.r1_every, config.beta1, config.beta2) == ("hinge", 30.0, 4, 0.0, 0.99)
    assert (config.sample_center_of_mass, config.flatten_density, config.density_clip) == (True, 3.0, 0.9)
    assert config.epochs * (60000 // config.batch_size) == load("mnist").steps == 24362


def _steps(config: TrainConfig, n_images: int) -> int:
    return config.epochs * max(1, n_images // config.batch_size)


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_no_cliff_in_steps_between_neighbouring_budgets(tmp_path, dataset):
    steps = [_steps(resolve(dataset, per_class=n, data_root=tmp_path).config, n * 10) for n in range(5, 1001)]
    jumps = [max(a, b) / min(a, b) for a, b in itertools.pairwise(steps)]
    assert max(jumps) <= 2.0, max(jumps)
    assert min(steps) >= 6000  # every budget trains at least the few-shot budget


def test_a_budget_between_few_shot_and_full_scales_smoothly(tmp_path):
    full = resolve("mnist", data_root=tmp_path).config
    half = resolve("mnist", per_class=3000, data_root=tmp_path).config
    assert _steps(half, 30000) == pytest.approx(_steps(full, 60000) / 2, rel=0.05)  # whole epochs


def test_cpu_bf16_is_a_measured_choice_never_a_flag(monkeypatch, tmp_path):
    monkeypatch.setattr(ganaug.train.hardware, "cpu_bf16_pays", lambda model, batch_size=64: True)
    fast = resolve("mnist", data_root=tmp_path, device="cpu").config
    assert (fast.amp, fast.channels_last) == ("bf16", True)
    slow = resolve("mnist", data_root=tmp_path, device="cpu", cpu_bf16=False).config
    assert (slow.amp, slow.channels_last) == ("auto", False)
    asked = resolve("mnist", data_root=tmp_path, device="cpu", amp="off").config  # the user's word wins
    assert (asked.amp, asked.channels_last) == ("off", False)


def test_no_native_bf16_means_fp32_without_measuring(monkeypatch):
    monkeypatch.undo()
    monkeypatch.setattr(ganaug.train.hardware, "cpu_flags", lambda: {"avx2", "fma"})

    def measured(*args, **kwargs):
        raise AssertionError("measured on a CPU without bf16 units")

    monkeypatch.setattr(ganaug.train.hardware, "cpu_bf16_speedup", measured)
    from ganaug.config import ModelConfig

    assert ganaug.train.hardware.cpu_bf16_pays(ModelConfig()) is False
    monkeypatch.setattr(ganaug.train.hardware, "cpu_flags", lambda: {"avx512_bf16"})
    monkeypatch.setattr(ganaug.train.hardware, "cpu_bf16_speedup", lambda model, batch_size=64: 0.8)
    assert ganaug.train.hardware.cpu_bf16_pays(ModelConfig()) is False  # a Xeon with AVX-512 BF16 but no AMX
    monkeypatch.setattr(ganaug.train.hardware, "cpu_bf16_speedup", lambda model, batch_size=64: 1.45)
    assert ganaug.train.hardware.cpu_bf16_pays(ModelConfig()) is True


def test_a_users_config_file_extends_a_preset_and_is_recorded(monkeypatch, tmp_path):
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"preset": "mine", "version": 3, "base": "mnist", "train": {"r1_gamma": 10.0}}))
    config, _ = resolved_config(monkeypatch, "--config", str(mine), "--data-root", str(tmp_path))
    assert (config.preset, config.r1_gamma, config.loss, config.dataset) == ("mine@3", 10.0, "hinge", "mnist")
    assert config == resolve(config=mine, data_root=tmp_path).config


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({"train": {"r1_gama": 3}}, "unknown train key 'r1_gama'"),
        ({"train": {"model": {"d_wdth": 3}}}, "unknown model key 'd_wdth'"),
        ({"trian": {}}, "unknown preset key(s) trian"),
        ({"train": {"r1_gamma": "high"}}, "train.r1_gamma must be like"),
        ({"train": {"r1_every": 2.5}}, "train.r1_every must be like"),
        ({"train": {"seed": 3}}, "belong to the user"),
        ({"train": []}, "'train' must be a JSON dict"),
        ({"steps": -5}, "steps must be >= 1"),
        ({"sampling": {"temperature": 0}}, "sampling temperature must be a finite number > 0"),
        ({"sampling": {"tempreature": 1.1}}, "unknown sampling key(s) 'tempreature'"),
        ({"base": "nope"}, "unknown preset 'nope'"),
        ([1, 2], "holds a JSON list"),
        ({"train": {"loss": "wasserstein"}}, "loss must be one of"),
    ],
)
def test_a_bad_config_file_is_one_line_before_any_work(monkeypatch, tmp_path, doc, says):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    result = CliRunner().invoke(main, ["train", "--config", str(bad), "--out", str(tmp_path / "run")])
    assert says in _one_line_error(result)
    assert not (tmp_path / "run").exists()


def test_bad_preset_input_is_one_line(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    for args, says in [
        (["--preset", "nope"], "Invalid value for '--preset'"),
        (["--config", str(tmp_path / "broken.json")], "is not valid JSON"),
        (["--preset", "mnist", "--config", str(tmp_path / "broken.json")], "not both"),
        (["--preset", "pool", "--dataset", "mnist", "--data-root", str(tmp_path)], "give per_class"),
    ]:
        result = CliRunner().invoke(main, ["train", *args, "--out", str(tmp_path / "run")])
        assert result.exit_code == 2 and says in result.output, result.output
        assert not (tmp_path / "run").exists()
    with pytest.raises(InputError, match="unknown preset 'nope'; choose one of"):
        load("nope")
    with pytest.raises(InputError, match="unknown option"):
        presets.resolve("digits", not_a_field=1)


def test_the_chosen_presets_line_says_the_budget_apart_from_the_few_shot_boundary():
    from ganaug.train.presets import choose

    assert choose("mnist", per_class=1000) == (
        "mnist",
        "MNIST, 1000 a class; the few-shot preset below --real-per-class 200",
    )
    assert choose("mnist") == ("mnist", "MNIST; the few-shot preset below --real-per-class 200")
    assert choose("fashion-mnist", per_class=10)[0] == "few-shot"
    assert choose("imagefolder", per_class=300)[1].startswith("an image folder, 300 a class;")
