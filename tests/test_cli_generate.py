"""``ganaug export | generate | interpolate | info`` through CliRunner, incl. every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import TensorProto, helper
from torchvision.datasets import ImageFolder

from ganaug.cli import main
from ganaug.sample.runtime import OnnxGenerator, gpu_present

COMMANDS = ("export", "generate", "interpolate", "info")


@pytest.fixture(scope="module")
def model(tiny_run: Path, tmp_path_factory) -> Path:
    """The tiny run exported through the CLI into a temporary folder."""
    out = tmp_path_factory.mktemp("cli") / "g.onnx"
    result = CliRunner().invoke(main, ["export", str(tiny_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {out} (max abs difference from PyTorch")
    return out


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0 and f"Usage: main {command}" in result.output


def test_info(model: Path) -> None:
    result = invoke("info", model)
    assert result.exit_code == 0, result.output
    assert "z: float32 ['batch', 8]" in result.output and "CPUExecutionProvider" in result.output
    report = json.loads(invoke("info", model, "--json").stdout)
    assert report["metadata"]["z_dim"] == 8 and report["outputs"]["images"]["shape"] == ["batch", 1, 28, 28]


def test_generate_png_is_an_imagefolder(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "synth"
    result = invoke(
        "generate", model, "--per-class", 3, "--classes", "3,5 - five,8", "--seed", 7, "--out", out, "--batch-size", 2
    )
    assert result.exit_code == 0, result.output
    gen = OnnxGenerator(model)
    names = [gen.classes[c] for c in (3, 5, 8)]
    ds = ImageFolder(str(out))
    assert ds.classes == sorted(names) and len(ds) == 9
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == dict.fromkeys(names, 3) and manifest["seed"] == 7
    assert manifest["model_sha256"] and manifest["ganaug_version"]
    expected = gen.generate(gen.labels(3, select=[3, 5, 8]), seed=7)
    for k, (path, target) in enumerate(ds.samples):
        assert ds.classes[target] == names[k // 3]
        assert Path(path).name == f"{k:07d}.png"
        np.testing.assert_array_equal(np.asarray(ds.loader(path).convert("L")), expected[k])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth"]  # no temporary leftovers


@pytest.mark.parametrize("fmt", ["npz", "pt"])
def test_generate_file_formats(model: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"synth.{fmt}"
    result = invoke("generate", model, "--per-class", 2, "--out", out)
    assert result.exit_code == 0, result.output
    if fmt == "npz":
        with np.load(out) as f:
            images, labels = f["images"], f["labels"]
    else:
        data = torch.load(out, weights_only=True)
        images, labels = data["images"].numpy(), data["labels"].numpy()
    assert images.dtype == np.uint8 and images.shape == (20, 28, 28)
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 2))
    np.testing.assert_array_equal(images, OnnxGenerator(model).generate(labels, seed=0))
    manifest = json.loads((tmp_path / "synth.manifest.json").read_text())
    assert manifest["format"] == fmt and sum(manifest["counts"].values()) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, "synth.manifest.json"])


def test_overwrite_is_refused_then_allowed(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "synth.npz"
    assert invoke("generate", model, "--per-class", 2, "--out", out).exit_code == 0
    result = invoke("generate", model, "--per-class", 1, "--out", out)
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert np.load(out)["images"].shape == (20, 28, 28)
    assert invoke("generate", model, "--per-class", 1, "--out", out, "--overwrite").exit_code == 0
    assert np.load(out)["images"].shape == (10, 28, 28)


@pytest.mark.parametrize("fmt", ["npz", "png"])
def test_overwrite_never_replaces_the_users_files(model: Path, tmp_path: Path, fmt: str) -> None:
    mine = tmp_path / ("synth.npz" if fmt == "npz" else "photos")
    if fmt == "npz":
        mine.write_bytes(b"keep me")
    else:
        mine.mkdir()
        (mine / "holiday.jpg").write_bytes(b"keep me")
    result = invoke("generate", model, "--per-class", 1, "--format", fmt, "--out", mine, "--overwrite")
    assert result.exit_code == 2 and "refusing to replace" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert (mine if fmt == "npz" else mine / "holiday.jpg").read_bytes() == b"keep me"


def test_overwrite_refuses_dot_dotdot_and_the_model_folder(model: Path, tmp_path: Path, monkeypatch) -> None:
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(model, run / "generator.onnx")
    (run / "checkpoint.pt").write_bytes(b"weights")
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    monkeypatch.chdir(work)
    cases = [
        (["generate", run, "--per-class", 1, "--out", ".", "--overwrite"], "working folder"),
        (["generate", run, "--per-class", 1, "--out", "..", "--overwrite"], "working folder"),
        (["generate", run, "--per-class", 1, "--out", run, "--overwrite"], "being read"),
        (["generate", run / "generator.onnx", "--per-class", 1, "--out", run, "--overwrite"], "being read"),
        (["generate", run, "--per-class", 1, "--format", "pt", "--out", run / "checkpoint.pt", "--overwrite"], ""),
        (["generate", run, "--per-class", 1, "--out", "../work/..", "--overwrite"], "working folder"),
    ]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "generator.onnx"]
    assert (run / "checkpoint.pt").read_bytes() == b"weights" and (work / "notes.txt").read_text() == "mine"


def test_png_tree_is_marked_and_replaced_with_overwrite(model: Path, tmp_path: Path) -> None:
    from ganaug.outputs import MARKER

    out = tmp_path / "synth"
    assert invoke("generate", model, "--per-class", 2, "--out", out).exit_code == 0
    assert json.loads((out / MARKER).read_text())["kind"] == "images"
    result = invoke("generate", model, "--per-class", 1, "--classes", "3", "--out", out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert len(ImageFolder(str(out))) == 1 and (out / MARKER).is_file()


@pytest.mark.parametrize(
    "added, named",
    [
        ("notes.txt", "notes.txt"),  # beside the class folders
        ("{c}/real_0001.png", "{c}/real_0001.png"),  # a real image mixed into a class folder
        ("{c}/9999999.png", "{c}/ (3 images, the manifest lists 2)"),  # one named like ganaug's
        ("extra/0000000.png", "extra"),  # a folder the manifest does not list
    ],
)
def test_png_overwrite_refuses_a_folder_holding_files_ganaug_did_not_write(
    model: Path, tmp_path: Path, added: str, named: str
) -> None:
    out = tmp_path / "synth"
    assert invoke("generate", model, "--per-class", 2, "--out", out).exit_code == 0
    c = json.loads((out / "manifest.json").read_text())["folders"]["3 - three"]
    added, named = added.format(c=c), named.format(c=c)
    (out / added).parent.mkdir(exist_ok=True)
    (out / added).write_bytes(b"mine")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    result = invoke("generate", model, "--per-class", 1, "--out", out, "--overwrite")
    assert result.exit_code == 2
    assert f"ganaug did not write there ({named}); move them out" in result.output
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before and (out / added).read_bytes() == b"mine"


def _with_classes(model: Path, out: Path, classes: list[str]) -> Path:
    proto = onnx.load(str(model))
    for prop in proto.metadata_props:
        if prop.key == "ganaug.classes":
            prop.value = json.dumps(classes)
    onnx.save(proto, str(out))
    return out


def test_class_names_become_safe_distinct_folders(model: Path, tmp_path: Path) -> None:
    classes = ["..", ".", "", "a/b", "A", "a", "../../evil", "c\\d", ".hidden", "ok"]
    bad = _with_classes(model, tmp_path / "bad.onnx", classes)
    out = tmp_path / "inside" / "synth"
    result = invoke("generate", bad, "--per-class", 1, "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx", "inside"]  # nothing written outside --out
    assert sorted(p.name for p in (tmp_path / "inside").iterdir()) == ["synth"]
    folders = json.loads((out / "manifest.json").read_text())["folders"]
    assert list(folders) == classes
    assert folders["a"] == "a_5" and folders["A"] == "A_4" and folders[".."] == "_." and folders[""] == "class_2"
    assert len({f.casefold() for f in folders.values()}) == 10
    assert len(ImageFolder(str(out))) == 10 and len(ImageFolder(str(out)).classes) == 10
    for name in folders.values():
        assert (out / name).resolve().parent == out.resolve() and len(list((out / name).iterdir())) == 1


_HOLD = """
import sys, time
from pathlib import Path
from ganaug.outputs import exclusive_lock
with exclusive_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(30)
"""


def test_a_second_writer_of_the_same_output_fails(model: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "synth"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = invoke("generate", model, "--per-class", 1, "--out", out)
        assert result.exit_code == 2 and f"another ganaug process (pid {holder.pid}) is writing" in result.output
    finally:
        holder.kill()
        holder.wait()
    assert not out.exists()


def test_a_killed_runs_temporaries_are_removed_by_the_next_run(model: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "synth"
    stale = tmp_path / f".synth.tmp-{dead.pid}"
    (stale / "3").mkdir(parents=True)
    (stale / "3" / "0000000.png").write_bytes(b"x" * 1000)
    assert invoke("generate", model, "--per-class", 1, "--out", out).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth"]
    stale.mkdir()  # another target's temporaries are left alone
    for name in (f".synth.npz.tmp-{dead.pid}", f".synth.manifest.json.tmp-{dead.pid}"):
        (tmp_path / name).write_bytes(b"partial")
    assert invoke("generate", model, "--per-class", 1, "--out", tmp_path / "synth.npz").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [stale.name, "synth", "synth.manifest.json", "synth.npz"]


@pytest.mark.parametrize("fmt", ["png", "npz"])
def test_full_disk_is_one_line_and_leaves_nothing(model: Path, tmp_path: Path, monkeypatch, fmt: str) -> None:
    import errno

    import PIL.Image

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PIL.Image.Image, "save", full)
    monkeypatch.setattr(np, "savez", full)
    out = tmp_path / ("synth" if fmt == "png" else "synth.npz")
    result = invoke("generate", model, "--per-class", 1, "--quiet", "--out", out)
    assert result.exit_code == 1, result.output
    assert (
        result.output.strip() == f"Error: no space left on the device while writing {out}: free at least 1 MB and rerun"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("seed", ["-1", str(2**63), str(2**128)])
def test_seeds_outside_the_rng_range_exit_2_before_work(model: Path, tiny_run: Path, tmp_path: Path, seed: str) -> None:
    result = invoke("generate", model, "--per-class", 1, "--seed", seed, "--out", tmp_path / "s.npz")
    assert result.exit_code == 2 and "--seed" in result.output and "Traceback" not in result.output
    result = invoke("interpolate", tiny_run, "--from", 1, "--to", 2, "--seed", seed, "--out", tmp_path / "w.png")
    assert result.exit_code == 2 and "--seed" in result.output
    assert list(tmp_path.iterdir()) == []


def test_export_never_silently_overwrites(model: Path, tiny_run: Path, tmp_path: Path) -> None:
    import hashlib

    checkpoint = tiny_run / "checkpoint.pt"
    before = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    notes = tmp_path / "notes.onnx"
    notes.write_text("mine")
    for out, flags, message in [
        (checkpoint, [], "already exists"),
        (checkpoint, ["--overwrite"], "refusing to replace"),
        (notes, [], "already exists"),
        (notes, ["--overwrite"], "not a onnx file written by ganaug"),
    ]:
        result = invoke("export", tiny_run, "--out", out, *flags)
        assert result.exit_code == 2 and message in result.output, (out, flags, result.output)
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() == before and notes.read_text() == "mine"
    ours = tmp_path / "g.onnx"
    ours.write_bytes(model.read_bytes())
    assert invoke("export", tiny_run, "--out", ours).exit_code == 2
    result = invoke("export", tiny_run, "--out", ours, "--overwrite")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx", "notes.onnx"]


def test_interpolate_overwrite_replaces_only_its_own_pictures(tiny_run: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "walk.png"
    assert invoke("interpolate", tiny_run, "--from", 4, "--to", 8, "--out", out, "--gif").exit_code == 0
    result = invoke("interpolate", tiny_run, "--from", 1, "--to", 2, "--out", out, "--gif", "--overwrite")
    assert result.exit_code == 0, result.output
    photo = tmp_path / "photo.png"
    Image.new("L", (4, 4)).save(photo)
    result = invoke("interpolate", tiny_run, "--from", 1, "--to", 2, "--out", photo, "--overwrite")
    assert result.exit_code == 2 and "refusing to replace" in result.output
    assert Image.open(photo).size == (4, 4)


def test_interpolate(tiny_run: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "walk.png"
    result = invoke("interpolate", tiny_run, "--from", 4, "--to", 8, "--steps", 6, "--out", out, "--gif")
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (6 * 30 + 2, 32)  # one row of 28x28 frames with 2-pixel padding
    assert Image.open(tmp_path / "walk.gif").n_frames == 10  # there and back
    again = invoke("interpolate", tiny_run, "--from", 4, "--to", 8, "--out", out)
    assert again.exit_code == 2 and "already exists" in again.output


def _not_ganaug_onnx(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])), path)
    return path


BAD_GENERATE = {
    "not ONNX": (
        lambda m, d: [(d / "x.onnx").write_text("hello") and d / "x.onnx", "--per-class", 1],
        "not an ONNX file",
    ),
    "not ganaug": (lambda m, d: [_not_ganaug_onnx(d / "y.onnx"), "--per-class", 1], "not a ganaug generator"),
    "class out of range": (lambda m, d: [m, "--per-class", 1, "--classes", "3,10"], "unknown class '10'"),
    "unknown class name": (lambda m, d: [m, "--per-class", 1, "--classes", "cat"], "unknown class 'cat'"),
    "count 0": (lambda m, d: [m, "--per-class", 0], "0 is not in the range"),
    "count < 0": (lambda m, d: [m, "--per-class", -3], "-3 is not in the range"),
    "bad class list": (lambda m, d: [m, "--per-class", 1, "--classes", "3,3"], "given twice"),
    "unknown provider": (lambda m, d: [m, "--per-class", 1, "--provider", "npu"], "'npu' is not one of"),
}


@pytest.mark.parametrize("case", list(BAD_GENERATE))
def test_generate_bad_input_exits_2_and_writes_nothing(model: Path, tmp_path: Path, case: str) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    make_args, message = BAD_GENERATE[case]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = invoke("generate", *make_args(model, inputs), "--out", out_dir / "synth.npz")
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error:")
    assert list(out_dir.iterdir()) == []


@pytest.mark.skipif(gpu_present(), reason="checks the message on a machine without a GPU")
@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_gpu_provider_without_gpu(model: Path, tmp_path: Path, provider: str) -> None:
    result = invoke("generate", model, "--per-class", 1, "--provider", provider, "--out", tmp_path / "s.npz")
    assert result.exit_code == 2 and "no NVIDIA GPU is visible" in result.output and "pip install" in result.output
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output(model: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke("generate", model, "--per-class", 1, "--out", blocker / "synth")
    assert result.exit_code == 2 and "not a writable folder" in result.output
    result = invoke("interpolate", model, "--from", 1, "--to", 2, "--out", blocker / "walk.png")
    assert result.exit_code == 2 and "not a writable folder" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_other_bad_input(model: Path, tiny_run: Path, tmp_path: Path) -> None:
    cases = [
        (["export", tmp_path], "no checkpoint"),
        (["info", _not_ganaug_onnx(tmp_path / "y.onnx")], "not a ganaug generator"),
        (["interpolate", tiny_run, "--from", 4, "--to", "cat", "--out", tmp_path / "w.png"], "unknown class 'cat'"),
        (["interpolate", tiny_run, "--from", 4, "--to", 8, "--out", tmp_path / "w.jpg"], "expected a .png"),
        (["interpolate", model.parent, "--from", 4, "--to", 8, "--out", tmp_path / "w.png"], "no checkpoint"),
    ]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y.onnx"]


def test_export_of_a_file_that_is_not_a_checkpoint_exits_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    torch.save({"hello": 1}, junk)
    result = invoke("export", junk, "--out", tmp_path / "g.onnx")
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "g.onnx").exists()


def test_interpolate_into_a_new_folder(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "new" / "walk.png"
    result = invoke("interpolate", tiny_run, "--from", "4", "--to", "8", "--steps", "5", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.is_file()


def test_png_overwrite_does_not_replace_a_users_file(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("old")
    result = invoke("generate", model, "--per-class", "1", "--format", "png", "--out", out, "--overwrite")
    assert result.exit_code == 2 and "refusing to replace" in result.output, result.output
    assert out.read_text() == "old"


def test_fractional_counts_are_refused() -> None:
    from ganaug.errors import InputError
    from ganaug.sample.runtime import make_labels

    with pytest.raises(InputError):
        make_labels([str(i) for i in range(10)], {0: 2.5})


@pytest.mark.parametrize("fmt", ["npz", "png"])
def test_a_count_that_cannot_fit_is_refused_before_work(model: Path, tmp_path: Path, monkeypatch, fmt: str) -> None:
    import shutil

    from ganaug import outputs

    out = tmp_path / ("synth.npz" if fmt == "npz" else "synth")
    # npz holds every image in memory (784 bytes each, twice while saving); png takes a 4 KB block a file.
    # 10**7 a class: the 800 MB of labels fit the 1 GB said to be available, the images do not.
    monkeypatch.setattr(outputs, "available_memory", lambda: 10**9)
    free = shutil.disk_usage(tmp_path)._replace(free=10**9)
    monkeypatch.setattr(outputs.shutil, "disk_usage", lambda path: free)
    result = invoke("generate", model, "--per-class", 10**7 if fmt == "npz" else 10**6, "--out", out)
    assert result.exit_code == 2, result.output
    needs = "of memory" if fmt == "npz" else "of disk"
    assert result.output.count("\n") == 1 and needs in result.output and "ask for fewer images" in result.output
    assert list(tmp_path.iterdir()) == []


def test_labels_beyond_memory_are_refused_before_allocating() -> None:
    from ganaug.data.labels import labels_from_counts
    from ganaug.errors import InputError

    with pytest.raises(InputError, match="of memory"):
        labels_from_counts({0: 10**15})


def test_nothing_is_written_inside_the_run_folder_being_read(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    run = shutil.copytree(tiny_run, tmp_path / "run")
    assert invoke("export", run).exit_code == 0  # the run's own generator.onnx
    before = sorted(p.name for p in run.iterdir())
    for args in (
        ("generate", run, "--per-class", 1, "--out", run / "synth.npz"),
        ("generate", run, "--per-class", 1, "--out", run / "synth"),
        ("interpolate", run, "--from", 0, "--to", 1, "--out", run / "walk.png"),
    ):
        result = invoke(*args)
        assert result.exit_code == 2 and "which is being read" in result.output, result.output
    assert sorted(p.name for p in run.iterdir()) == before
