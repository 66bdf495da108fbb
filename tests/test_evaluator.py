"""The evaluation CNN: input contract, determinism, save/load, training on fake MNIST files."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from ganaug.data import load_source, to_model_range
from ganaug.errors import InputError
from ganaug.evaluator import (
    EvaluatorConfig,
    EvaluatorTraining,
    load_evaluator,
    random_affine,
    train_evaluator,
    train_evaluator_on,
)
from tests.conftest import make_fake_mnist

TINY = EvaluatorConfig(width=4, hidden=16)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run faster on one thread, and a shared CPU makes two threads stall at every OpenMP barrier."""
    torch.set_num_threads(1)
    yield


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
