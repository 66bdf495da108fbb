"""`ganaug evaluate`: which real data it judges against, and one-line errors for damaged inputs."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from ganaug.classify.evaluator import EvaluatorConfig, EvaluatorTraining, train_evaluator, train_evaluator_on
from ganaug.cli import main
from tests.conftest import make_fake_mnist

TINY = EvaluatorTraining(epochs=1, batch_size=64, model=EvaluatorConfig(width=4, hidden=16))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits_evaluator(tmp_path_factory):
    torch.set_num_threads(1)
    return train_evaluator_on("digits", settings=TINY).save(tmp_path_factory.mktemp("ev") / "digits")


def _evaluate(*args: str):
    return CliRunner().invoke(main, ["evaluate", *args, "--per-class", "10", "--device", "cpu"])


def _one_line_error(res, code: int = 2) -> str:
    assert res.exit_code == code, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    return lines[0]


def test_evaluate_takes_the_dataset_from_the_generator_not_mnist(tiny_run, tmp_path):
    # Regression (issue 10): an evaluator that does not record its dataset made `evaluate` assume MNIST.
    from ganaug.data.sources import load_source

    train = load_source("digits")
    anonymous = train_evaluator(train.images, train.labels, classes=train.classes, settings=TINY).save(
        tmp_path / "anon"
    )
    res = _evaluate(str(tiny_run), "--evaluator", str(anonymous), "--json", "-")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["dataset"] == "digits"
    # Recall split by class: one entry per class, each a share, beside the floor's.
    pr = doc["precision_recall"]
    assert len(pr["per_class_recall"]) == 10 and all(0 <= r <= 1 for r in pr["per_class_recall"])
    assert len(doc["precision_recall_floor"]["per_class_recall"]) == 10
    text = _evaluate(str(tiny_run), "--evaluator", str(anonymous))
    line = next(x for x in text.output.splitlines() if x.startswith("per-class recall"))
    assert line.count("/") == 1 + 10  # the header's generator/floor, then one pair a class


def test_dataset_mismatch_says_what_to_give(tiny_run, tmp_path):
    root = make_fake_mnist(tmp_path / "data")
    mnist_ev = train_evaluator_on("mnist", root=root, settings=TINY).save(tmp_path / "mnist_ev")
    line = _one_line_error(_evaluate(str(tiny_run), "--evaluator", str(mnist_ev)))
    assert "the generator was trained on digits but the evaluator on mnist" in line
    assert "ganaug evaluator train --dataset digits" in line
    line = _one_line_error(_evaluate(str(tiny_run), "--evaluator", str(mnist_ev), "--dataset", "digits"))
    assert "the evaluator was trained on mnist, not digits; pass --dataset mnist" in line


def test_missing_real_data_says_which_data_root(tiny_run, tmp_path):
    root = make_fake_mnist(tmp_path / "data")
    mnist_ev = train_evaluator_on("mnist", root=root, settings=TINY).save(tmp_path / "mnist_ev")
    onnx_free = tmp_path / "gen"
    shutil.copytree(tiny_run, onnx_free)
    config = json.loads((onnx_free / "config.json").read_text())
    config["data"] = {}  # a generator that does not say what it trained on
    (onnx_free / "config.json").write_text(json.dumps(config))
    shutil.rmtree(root)
    line = _one_line_error(_evaluate(str(onnx_free), "--evaluator", str(mnist_ev), "--backend", "pytorch"))
    assert f"the evaluator's data root {root.resolve()} is gone; pass --dataset mnist --data-root FOLDER" in line


def test_class_names_are_compared_not_counts(tiny_run, digits_evaluator, tmp_path):
    # Regression (issue 10): ten classes of any names passed the check.
    renamed = tmp_path / "renamed"
    shutil.copytree(digits_evaluator, renamed)
    doc = json.loads((renamed / "evaluator.json").read_text())
    doc["classes"] = [f"class {i}" for i in range(10)]
    (renamed / "evaluator.json").write_text(json.dumps(doc))
    line = _one_line_error(_evaluate(str(tiny_run), "--evaluator", str(renamed)))
    assert "the generator's 10 classes and the evaluator's 10 differ" in line and "'class 0'" in line


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_checkpoint_with_pytorch_backend_is_one_line(tiny_run, digits_evaluator, tmp_path, damage):
    # Regression (issue 10): torch.load's traceback.
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    ckpt = run / "checkpoint.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"not a checkpoint at all")
    line = _one_line_error(_evaluate(str(run), "--evaluator", str(digits_evaluator), "--backend", "pytorch"))
    assert "checkpoint.pt" in line or str(run) in line


def test_corrupt_run_config_is_one_line(tiny_run, digits_evaluator, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "config.json").write_text("{oops")
    line = _one_line_error(_evaluate(str(run), "--evaluator", str(digits_evaluator), "--backend", "pytorch"))
    assert "config.json" in line


def test_corrupt_evaluator_is_one_line(tiny_run, digits_evaluator, tmp_path):
    broken = tmp_path / "ev"
    shutil.copytree(digits_evaluator, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 10)
    line = _one_line_error(_evaluate(str(tiny_run), "--evaluator", str(broken)))
    assert "model.safetensors is not a readable safetensors file" in line


def test_json_target_is_checked_before_any_work_and_only_a_report_is_replaced(tiny_run, digits_evaluator, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = (run / "config.json").read_bytes()

    def evaluate_to(target):
        return _evaluate(str(run), "--evaluator", str(digits_evaluator), "--json", str(target))

    # A run's config.json (JSON, but not a report), and its checkpoint are refused, and left as they were.
    assert "not a report file written by ganaug; move it away yourself or choose another --json" in _one_line_error(
        evaluate_to(run / "config.json")
    )
    assert (run / "config.json").read_bytes() == config
    checkpoint = (run / "checkpoint.pt").read_bytes()
    assert "not a report file" in _one_line_error(evaluate_to(run / "checkpoint.pt"))
    assert (run / "checkpoint.pt").read_bytes() == checkpoint
    assert "does not exist or is not writable; create it first" in _one_line_error(
        evaluate_to(tmp_path / "missing" / "x.json")
    )
    # A new file, then the same file again: an earlier report is replaced, whole.
    out = tmp_path / "report.json"
    assert evaluate_to(out).exit_code == 0
    first = json.loads(out.read_text())
    out.write_text(json.dumps({**first, "stale": True}))
    res = evaluate_to(out)
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text()) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "run"]  # no temp left behind


def test_a_json_file_that_fails_at_the_end_costs_the_file_not_the_figures(tiny_run, digits_evaluator, tmp_path):
    # A folder that passes the check but refuses the file (as /proc does): the table is printed, then one line.
    def refuse(path, text):
        raise PermissionError(13, "Permission denied", str(path))

    with pytest.MonkeyPatch.context() as m:
        m.setattr("ganaug.cli.evaluate.write_text_whole", refuse)
        res = _evaluate(str(tiny_run), "--evaluator", str(digits_evaluator), "--json", str(tmp_path / "r.json"))
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert any(line.startswith("recall (k=3)") for line in lines)
    assert (
        lines[-1]
        == f"Error: cannot write {tmp_path / 'r.json'} (Permission denied); the figures are above; choose another --json"
    )
