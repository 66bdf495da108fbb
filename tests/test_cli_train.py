import errno
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganaug.cli import main

TINY = ["--g-width", "8", "--d-width", "8", "--batch-size", "32", "--quiet", "--no-export"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_train_digits_writes_a_run_and_says_where(tmp_path):
    out = tmp_path / "run"
    result = run("train", "--real-per-class", "10", "--epochs", "2", "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    assert str(out) in result.output and "samples.png" in result.output
    assert json.loads((out / "config.json").read_text())["config"]["per_class"] == 10
    assert (out / "samples.gif").is_file()


def test_train_resume_continues_to_a_new_total(tmp_path):
    out = tmp_path / "run"
    assert run("train", "--real-per-class", "10", "--epochs", "1", "--out", out, *TINY).exit_code == 0
    result = run("train", "--resume", out, "--epochs", "2", "--quiet")
    assert result.exit_code == 0, result.output
    assert "(2 epochs)" in result.output and (out / "samples" / "epoch_0002.png").is_file()
    # the run was started with --no-export: the message lists what is there, not what a fresh run would write
    assert "generator.onnx" not in result.output and not (out / "generator.onnx").exists()


def test_train_on_fake_mnist(tmp_path, fake_mnist_root):
    result = run(
        "train", "--dataset", "mnist", "--data-root", fake_mnist_root, "--epochs", "1", "--out", tmp_path / "run", *TINY,
        "--preset", "digits",  # noise is not centred as MNIST's digits are (the mnist preset places samples so)
    )  # fmt: skip
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "mnist", "--data-root", "{tmp}/empty"], r"MNIST/raw.*--download"),
        (["--dataset", "mnist"], "needs --data-root"),
        (["--dataset", "cifar"], "Invalid value for '--dataset'"),
        (["--real-per-class", "5000"], "larger than class"),
        (["--real-per-class", "0"], "Invalid value for '--real-per-class'"),
        (["--per-class", "10"], "train's --per-class is now --real-per-class"),
        (["--mbstd"], "No such option '--mbstd'"),
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


def _one_line_exit_2(result, pattern):
    assert result.exit_code == 2, result.output
    assert re.search(pattern, result.output), result.output
    # One error line (click's usage errors add their "Usage:/Try --help" preamble before it).
    lines = [x for x in result.output.strip().splitlines() if x and not x.startswith(("Usage:", "Try '"))]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seed", "-1", "--real-per-class", "5"], r"Invalid value for '--seed'"),
        (["--seed", str(2**63)], r"Invalid value for '--seed'"),
        (["--seed", str(2**128)], r"Invalid value for '--seed'"),
        (["--lr-g", "-0.001"], r"lr_g must be a finite number > 0"),
        (["--lr-d", "nan"], r"lr_d must be a finite number > 0"),
        (["--lr-g", "inf"], r"lr_g must be a finite number > 0"),
        (["--real-per-class", str(10**30)], r"--real-per-class 10{30} is larger than class"),
        (["--real-per-class", "2", "--batch-size", "32"], r"--batch-size 32 is larger than the 20 training images"),
    ],
)
def test_bad_numbers_are_refused_before_any_work(tmp_path, args, message):
    result = run("train", "--out", tmp_path / "run", *TINY, *args)
    _one_line_exit_2(result, message)
    assert not (tmp_path / "run").exists()


def test_library_config_rejects_bad_seeds_and_learning_rates():
    from ganaug.config import TrainConfig

    for bad in ({"seed": -1}, {"seed": 2**63}, {"lr_g": float("nan")}, {"lr_d": -1e-4}, {"lr_d": 0.0}):
        with pytest.raises(ValueError, match="seed|lr_"):
            TrainConfig(**bad)


def test_unwritable_out_is_found_before_training(tmp_path, monkeypatch):
    import ganaug.train.trainer

    loaded = []
    monkeypatch.setattr(ganaug.train.trainer, "load_training_data", lambda *a, **k: loaded.append(1))
    (tmp_path / "file.txt").write_text("x")
    _one_line_exit_2(run("train", "--out", tmp_path / "file.txt" / "run", *TINY), r"file.txt is a file, not a folder")
    monkeypatch.setattr("ganaug.train.runfolder.os.access", lambda path, mode: False)
    _one_line_exit_2(run("train", "--out", tmp_path / "new" / "run", *TINY), r"cannot write to .*choose another --out")
    assert not loaded and not (tmp_path / "new").exists()


def test_corrupt_checkpoint_or_config_on_resume_is_one_line(tmp_path):
    out = tmp_path / "run"
    assert run("train", "--real-per-class", "10", "--epochs", "1", "--out", out, *TINY).exit_code == 0
    checkpoint = (out / "checkpoint.pt").read_bytes()
    (out / "checkpoint.pt").write_bytes(checkpoint[: len(checkpoint) // 3])
    _one_line_exit_2(run("train", "--resume", out, "--epochs", "2"), r"corrupt or truncated")
    (out / "checkpoint.pt").write_bytes(checkpoint)
    (out / "config.json").write_text("{not json")
    _one_line_exit_2(run("train", "--resume", out, "--epochs", "2"), r"config.json is corrupt")


def test_resume_takes_a_moved_data_root_and_says_what_it_ignores(tmp_path, fake_mnist_root, monkeypatch):
    monkeypatch.chdir(fake_mnist_root.parent)
    out = tmp_path / "run"
    args = ["--dataset", "mnist", "--data-root", fake_mnist_root.name, "--epochs", "1", "--out", out, *TINY]
    assert run("train", *args, "--preset", "digits").exit_code == 0
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["data_root"] == str(fake_mnist_root.resolve())  # stored absolute

    moved = tmp_path / "elsewhere"
    fake_mnist_root.rename(moved)
    result = run("train", "--resume", out, "--epochs", "2", "--data-root", moved, "--lr-g", "0.1", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "ignoring --lr-g, --seed" in result.output and "--epochs" not in result.output.split("ignoring")[1][:20]
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["data_root"] == str(moved.resolve()) and meta["config"]["lr_g"] == 2e-4


def _image_folder(root, n_classes, per_class):
    from PIL import Image

    for c in range(n_classes):
        (root / f"class_{c:02d}").mkdir(parents=True)
        for i in range(per_class):
            pixels = bytes((c * 20 + i * 7 + j) % 256 for j in range(28 * 28))
            Image.frombytes("L", (28, 28), pixels).save(root / f"class_{c:02d}" / f"{i}.png")
    return root


@pytest.mark.parametrize("n_classes, per_class", [(3, 12), (12, 3)])
def test_an_image_folder_of_other_than_ten_classes_trains(tmp_path, n_classes, per_class):
    root = _image_folder(tmp_path / "images", n_classes, per_class)
    out = tmp_path / "run"
    result = run("train", "--dataset", "imagefolder", "--data-root", root, "--epochs", "1", "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["model"]["num_classes"] == n_classes and len(meta["classes"]) == n_classes
    from ganaug.train.checkpoint import load_generator

    assert load_generator(out)[0].embed.num_embeddings == n_classes


def test_a_run_folder_inside_the_image_folder_it_reads_is_refused(tmp_path):
    root = _image_folder(tmp_path / "images", 3, 4)
    before = sorted(root.rglob("*"))
    result = run("train", "--dataset", "imagefolder", "--data-root", root, "--out", root / "run", *TINY)
    assert result.exit_code == 2 and "which is being read" in result.output  # its grids would become a class
    assert sorted(root.rglob("*")) == before


def test_full_disk_at_overwrite_is_one_line_and_keeps_the_old_run(tmp_path, monkeypatch):
    from ganaug import outputs

    out = tmp_path / "run"
    assert run("train", "--real-per-class", "10", "--epochs", "1", "--out", out, *TINY).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.os, "pwrite", full)  # the lock file's pid: the run's first write
    result = run("train", "--real-per-class", "10", "--epochs", "1", "--out", out, "--overwrite", *TINY)
    assert result.exit_code == 1
    assert re.fullmatch(r"Error: no space left on the device while writing \S+run\.lock: .* and rerun\n", result.output)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not outputs.lock_path(out).exists()


def test_a_full_disk_anywhere_is_one_line(tmp_path, monkeypatch):
    from ganaug.train.trainer import Trainer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "x.bin"))

    monkeypatch.setattr(Trainer, "new", full)
    result = run("train", "--real-per-class", "10", "--epochs", "1", "--out", tmp_path / "run", *TINY)
    assert result.exit_code == 1
    assert re.fullmatch(r"Error: no space left on the device while writing \S+x\.bin: .* and rerun\n", result.output)


def test_old_per_class_on_train_is_one_line_naming_the_new_option(tmp_path):
    result = run("train", "--per-class", "10", "--out", tmp_path / "run", *TINY)
    _one_line_exit_2(result, r"--per-class is now --real-per-class .*use --real-per-class 10")
    assert not (tmp_path / "run").exists()


def test_train_help_lists_at_most_30_options_each_with_a_help():
    from ganaug.cli.train import train

    shown = [p for p in train.params if isinstance(p, __import__("click").Option) and not p.hidden]
    assert len(shown) + 1 <= 30  # + --help
    assert all(p.help for p in shown), [p.name for p in shown if not p.help]
    lines = [line for line in run("train", "--help").output.splitlines() if line.startswith("  -")]
    assert len(lines) <= 30, lines
