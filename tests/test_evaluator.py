"""The evaluation CNN: input contract, determinism, save/load, training on fake MNIST files."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from ganaug.classify.evaluator import (
    EvaluatorConfig,
    EvaluatorTraining,
    load_evaluator,
    random_affine,
    train_evaluator,
    train_evaluator_on,
)
from ganaug.data.sources import load_source, to_model_range
from ganaug.errors import InputError
from tests.conftest import make_fake_mnist

TINY = EvaluatorConfig(width=4, hidden=16)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits_small():
    src = load_source("digits", split="train")
    return src.images[:300], src.labels[:300]


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    return make_fake_mnist(tmp_path_factory.mktemp("fake"))


@pytest.fixture(scope="module")
def tiny_evaluator(fake_root):
    """Trained on 200 fake MNIST images (one blob position per class), which a tiny CNN learns in 3 epochs."""
    torch.set_num_threads(1)
    return train_evaluator_on(
        "mnist", root=fake_root, settings=EvaluatorTraining(epochs=3, batch_size=16, seed=3, model=TINY)
    )


def test_outputs_have_documented_shapes(tiny_evaluator, digits_small):
    x = to_model_range(digits_small[0][:10])
    assert tiny_evaluator.logits(x).shape == (10, 10)
    assert tiny_evaluator.predict(x).dtype == torch.int64
    assert tiny_evaluator.features(x).shape == (10, TINY.hidden)
    assert tiny_evaluator.features(x[:0]).shape == (0, TINY.hidden)


def test_batch_size_does_not_change_results(tiny_evaluator, digits_small):
    x = to_model_range(digits_small[0][:23])
    torch.testing.assert_close(tiny_evaluator.logits(x, batch_size=5), tiny_evaluator.logits(x, batch_size=23))


def test_learns_and_records_test_accuracy(tiny_evaluator):
    assert tiny_evaluator.meta["test_accuracy"] > 0.5
    assert tiny_evaluator.meta["data"]["train_size"] == 200 and tiny_evaluator.meta["data"]["test_size"] == 50
    assert len(tiny_evaluator.meta["test_accuracy_per_class"]) == 10


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.zeros(2, 28, 28, dtype=torch.uint8), "to_model_range"),
        (torch.zeros(2, 28, 28), r"\[N, 1, 28, 28\]"),
        (torch.full((2, 1, 28, 28), 255.0), r"\[-1, 1\]"),
    ],
)
def test_input_contract_is_enforced(tiny_evaluator, bad, match):
    with pytest.raises(InputError, match=match):
        tiny_evaluator.predict(bad)


def test_same_seed_same_weights(digits_small):
    images, labels = digits_small
    settings = EvaluatorTraining(epochs=1, batch_size=64, seed=7, model=TINY)
    a = train_evaluator(images[:100], labels[:100], settings=settings)
    b = train_evaluator(images[:100], labels[:100], settings=settings)
    for (name, p), q in zip(a.net.state_dict().items(), b.net.state_dict().values()):
        assert torch.equal(p, q), name


def test_training_leaves_the_global_rng_alone(digits_small):
    images, labels = digits_small
    torch.manual_seed(123)
    before = torch.get_rng_state()
    train_evaluator(images[:64], labels[:64], settings=EvaluatorTraining(epochs=1, batch_size=64, seed=7, model=TINY))
    assert torch.equal(torch.get_rng_state(), before)


def test_save_load_roundtrip_and_pickle(tiny_evaluator, digits_small, tmp_path):
    x = to_model_range(digits_small[0][:16])
    loaded = load_evaluator(tiny_evaluator.save(tmp_path / "ev"))
    assert loaded.config == tiny_evaluator.config and loaded.classes == tiny_evaluator.classes
    assert loaded.meta["training"]["seed"] == 3 and loaded.meta["test_accuracy"] == tiny_evaluator.meta["test_accuracy"]
    torch.testing.assert_close(loaded.logits(x), tiny_evaluator.logits(x))
    torch.testing.assert_close(pickle.loads(pickle.dumps(loaded)).features(x), loaded.features(x))


def test_load_missing_folder_says_how_to_train(tmp_path):
    with pytest.raises(InputError, match="ganaug evaluator train"):
        load_evaluator(tmp_path)


def test_bad_training_input_raises(digits_small):
    images, labels = digits_small
    with pytest.raises(InputError, match="uint8"):
        train_evaluator(images.float(), labels)
    with pytest.raises(InputError, match=r"\[0, 10\)"):
        train_evaluator(images[:4], torch.tensor([0, 1, 2, 10]))


def test_random_affine_keeps_range_and_background():
    gen = torch.Generator().manual_seed(0)
    x = -torch.ones(4, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0
    y = random_affine(x, gen)
    assert y.shape == x.shape and y.min() >= -1 - 1e-6 and y.max() <= 1 + 1e-6
    assert torch.allclose(y[:, :, 0, 0], torch.tensor(-1.0))


def test_cli_train_evaluate_and_help(fake_root, tmp_path, tiny_run):
    from click.testing import CliRunner

    from ganaug.cli import main

    runner = CliRunner()
    for args in (["evaluator", "train", "--help"], ["evaluate", "--help"]):
        assert runner.invoke(main, args).exit_code == 0
    out = tmp_path / "ev"
    args = [
        "evaluator",
        "train",
        "--dataset",
        "digits",
        "--out",
        str(out),
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--quiet",
    ]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "test accuracy" in res.output and (out / "model.safetensors").is_file()
    assert runner.invoke(main, args).exit_code == 2  # exists: needs --overwrite
    res = runner.invoke(
        main,
        ["evaluate", str(tiny_run), "--evaluator", str(out), "--per-class", "10", "--device", "cpu", "--json", "-"],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["dataset"] == "digits" and doc["samples"] == 100 and doc["generator"]["backend"] == "pytorch"
    res = runner.invoke(main, ["evaluate", str(tiny_run), "--evaluator", str(tmp_path), "--device", "cpu"])
    assert res.exit_code == 2 and "ganaug evaluator train" in res.output


@pytest.fixture
def saved(tiny_evaluator, tmp_path):
    return tiny_evaluator.save(tmp_path / "ev")


def test_evaluator_json_carries_a_schema_version(saved):
    from ganaug.classify.evaluator import EVALUATOR_SCHEMA, SUPPORTED_EVALUATOR_SCHEMAS

    doc = json.loads((saved / "evaluator.json").read_text())
    assert doc["schema"] == EVALUATOR_SCHEMA == 1 and SUPPORTED_EVALUATOR_SCHEMAS == (1,)
    assert load_evaluator(saved).meta["schema"] == 1


def _edit_json(folder, edit) -> None:
    path = folder / "evaluator.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d.pop("schema"),
            r"has no evaluator schema version \(written by ganaug .*\); this ganaug reads schema 1",
        ),
        (
            lambda d: d.update(schema=99),
            r"has evaluator schema 99 \(written by ganaug .*\); this ganaug reads schema 1",
        ),
        (lambda d: d.pop("config"), r"lacks config; it is damaged or not ganaug's"),
        (lambda d: d["config"].update(colour=3), r"holds a config this ganaug cannot read .*colour"),
        (lambda d: d.update(classes=["a", "b"]), r"holds a config this ganaug cannot read \(2 class names"),
        (lambda d: d["config"].update(width=8), r"model.safetensors does not match evaluator.json"),
    ],
)
def test_damaged_or_foreign_evaluator_json_is_one_line(saved, edit, message):
    # Regression (issue 10): KeyError / TypeError / RuntimeError tracebacks; no schema version at all.
    _edit_json(saved, edit)
    with pytest.raises(InputError, match=message) as e:
        load_evaluator(saved)
    assert "\n" not in str(e.value) and str(saved) in str(e.value)


@pytest.mark.parametrize("damage", ["not json", "truncated weights", "garbage weights"])
def test_corrupt_evaluator_files_are_one_line(saved, damage):
    if damage == "not json":
        (saved / "evaluator.json").write_text('{"schema": 1, "config": ')
        message = r"evaluator.json is not valid JSON"
    else:
        weights = saved / "model.safetensors"
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2] if damage == "truncated weights" else b"\x07" * 64)
        message = r"model.safetensors is not a readable safetensors file"
    with pytest.raises(InputError, match=message) as e:
        load_evaluator(saved)
    assert "\n" not in str(e.value) and "ganaug evaluator train" in str(e.value)


def _image_folder(root, classes, n):
    from PIL import Image

    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            image = Image.new("L", (28, 28), 0)
            image.paste(255, (4 + 7 * c, 4, 10 + 7 * c, 24))  # one bar per class, at its own place
            image.save(root / name / f"{i}.png")


def test_image_folder_with_three_classes_trains_an_evaluator(tmp_path):
    _image_folder(tmp_path / "train", ["ant", "bee", "cow"], 8)
    _image_folder(tmp_path / "test", ["ant", "bee", "cow"], 2)
    ev = train_evaluator_on(
        "imagefolder", root=tmp_path, settings=EvaluatorTraining(epochs=1, batch_size=8, model=TINY)
    )
    assert ev.config.num_classes == 3 and ev.classes == ["ant", "bee", "cow"]
    assert ev.meta["data"]["test_size"] == 6 and list(ev.meta["test_accuracy_per_class"]) == ["ant", "bee", "cow"]
    assert ev.meta["data"]["data_root"] == str(tmp_path.resolve())


def test_image_folder_evaluator_needs_a_test_split_with_the_same_classes(tmp_path):
    # Regression (issue 10): without test/ the "test accuracy" was measured on the training images.
    _image_folder(tmp_path / "flat", ["a", "b"], 3)
    with pytest.raises(InputError, match="has no test/ folder"):
        train_evaluator_on("imagefolder", root=tmp_path / "flat", settings=EvaluatorTraining(epochs=1, model=TINY))
    _image_folder(tmp_path / "split" / "train", ["a", "b", "c"], 2)
    _image_folder(tmp_path / "split" / "test", ["a", "c"], 1)
    with pytest.raises(InputError, match=r"test split's classes \['a', 'c'\] differ from the training split's"):
        train_evaluator_on("imagefolder", root=tmp_path / "split", settings=EvaluatorTraining(epochs=1, model=TINY))
