import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganaug.cli import main

TINY = ["--z-dim", "8", "--g-width", "8", "--d-width", "8", "--batch-size", "32", "--quiet", "--no-export"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_train_digits_writes_a_run_and_says_where(tmp_path):
    out = tmp_path / "run"
    result = run("train", "--per-class", "10", "--epochs", "2", "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    assert str(out) in result.output and "samples.png" in result.output
    assert json.loads((out / "config.json").read_text())["config"]["per_class"] == 10
    assert (out / "samples.gif").is_file()


def test_train_resume_continues_to_a_new_total(tmp_path):
    out = tmp_path / "run"
    assert run("train", "--per-class", "10", "--epochs", "1", "--out", out, *TINY).exit_code == 0
    result = run("train", "--resume", out, "--epochs", "2", "--quiet")
    assert result.exit_code == 0, result.output
    assert "(2 epochs)" in result.output and (out / "samples" / "epoch_0002.png").is_file()


def test_train_on_fake_mnist(tmp_path, fake_mnist_root):
    result = run(
        "train", "--dataset", "mnist", "--data-root", fake_mnist_root, "--epochs", "1", "--out", tmp_path / "run", *TINY
    )
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "mnist", "--data-root", "{tmp}/empty"], r"MNIST/raw.*--download"),
        (["--dataset", "mnist"], "needs --data-root"),
        (["--dataset", "cifar"], "Invalid value for '--dataset'"),
        (["--per-class", "5000"], "larger than class"),
        (["--per-class", "0"], "Invalid value for '--per-class'"),
        (["--diffaugment", "flip"], "unknown DiffAugment policy"),
        (["--resume", "{tmp}/nothing"], "not a ganaug run folder"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = run("train", "--out", tmp_path / "run", "--epochs", "1", *TINY, *args)
    assert result.exit_code == 2, result.output
    assert re.search(message, result.output), result.output
    assert not (tmp_path / "run").exists()


def test_non_empty_out_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    result = run("train", "--out", out, *TINY)
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_every_command_has_help_and_is_in_the_readme():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name, command in main.commands.items():
        assert run(name, "--help").exit_code == 0
        assert f"ganaug {name}" in readme, f"README does not document `ganaug {name}`"
        assert command.help, f"`ganaug {name}` has no help text"


def test_python_m_ganaug_and_version():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "ganaug", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ganaug, version")
