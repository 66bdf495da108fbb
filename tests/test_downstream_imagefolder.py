"""The downstream benchmark on your own images: ``ganaug bench downstream --dataset imagefolder``. A folder it
cannot use is one line before any work; a tiny run writes the report with conditions (a)-(d) and their CIs;
``benchmarks/export_imagefolder.py`` writes a built-in dataset as such a folder, with its classes and subsets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganaug.cli import main
from ganaug.data.sources import load_source, stratified_subset
from ganaug.downstream import cli as bench_cli
from ganaug.downstream.folders import check_image_folder
from ganaug.errors import InputError

CLASSES = ("cat", "dog", "emu")


def write_folder(root: Path, *, train: int = 6, test: int = 3, classes=CLASSES, test_classes=None) -> Path:
    """``root/train/<class>/`` and ``root/test/<class>/`` of small colour PNGs of another size than 28x28 (a
    bright band whose height gives the class, on dark noise), as a user's folder might hold."""
    rng = np.random.default_rng(0)
    for split, n, names in (("train", train, classes), ("test", test, test_classes or classes)):
        for k, name in enumerate(names):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                image = rng.integers(0, 60, size=(24, 20, 3), dtype=np.uint8)
                image[4 + 5 * k : 10 + 5 * k, 3:17] = 255
                Image.fromarray(image, "RGB").save(folder / f"{i}.png")
    return root


def snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the benchmark starts any work (it must refuse its input first)."""

    def work(*a, **k):
        raise AssertionError("the benchmark started before its input was checked")

    for name in ("run", "run_pool"):
        monkeypatch.setattr(bench_cli, name, work)


def bench(tmp_path: Path, *args: str):
    where = ["--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--threads", "1"]
    return CliRunner().invoke(main, ["bench", "downstream", *where, *map(str, args)])


def refuse(tmp_path: Path, data: Path | None, message: str, *args: str) -> str:
    """Run the benchmark on ``data``; assert it exits 2 with one line holding ``message`` and writes nothing."""
    before = snapshot(tmp_path)
    head = ["--dataset", "imagefolder", *(["--data-root", str(data)] if data is not None else [])]
    res = bench(tmp_path, *head, *args)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("Error: ") and res.output.count("\n") == 1, res.output
    assert message in res.output, res.output
    assert snapshot(tmp_path) == before
    return res.output


# ---- bad input: one line, before any work --------------------------------------------------------------------


def test_no_augment_or_no_data_root_is_refused(tmp_path, no_work):
    data = write_folder(tmp_path / "data")
    refuse(tmp_path, data, "--dataset imagefolder needs --augment")
    refuse(tmp_path, None, "needs --data-root DIR", "--augment", "affine")
    refuse(tmp_path, tmp_path / "missing", "no such folder", "--augment", "affine")


def test_a_folder_with_one_class_is_refused(tmp_path, no_work):
    data = write_folder(tmp_path / "data", classes=("cat",))
    refuse(tmp_path, data, "holds 1 class folder(s); the benchmark needs 2 or more", "--augment", "affine")


def test_fewer_training_images_than_the_largest_budget_are_refused(tmp_path, no_work):
    data = write_folder(tmp_path / "data", train=6)
    out = refuse(tmp_path, data, "fewer than the largest budget (100 per class)", "--augment", "affine")
    assert "has 6 training images" in out
    refuse(tmp_path, data, "largest budget (7 per class)", "--augment", "affine", "--budgets", "5,7")


def test_a_missing_test_split_is_refused_and_a_val_split_named(tmp_path, no_work):
    data = write_folder(tmp_path / "data")
    os.rename(data / "test", data / "val")
    refuse(tmp_path, data, "has no test/ folder (it has val/: rename it to test/", "--augment", "none")
    os.rename(data / "val", data / "elsewhere")
    refuse(tmp_path, data, "has no test/ folder; the layout is DIR/train/<class>/<images>", "--augment", "none")


def test_train_and_test_classes_that_differ_are_refused(tmp_path, no_work):
    data = write_folder(tmp_path / "data", test_classes=("cat", "dog", "fox"))
    refuse(tmp_path, data, "class(es) emu only in train/", "--augment", "affine", "--budgets", "5")


def test_an_empty_class_folder_is_refused(tmp_path, no_work):
    data = write_folder(tmp_path / "data")
    (data / "train" / "fox").mkdir()
    (data / "test" / "fox").mkdir()
    refuse(tmp_path, data, "train/fox holds no images; add some or remove it", "--augment", "affine")


def test_augment_none_leaves_no_classical_conditions_to_ask_for(tmp_path, no_work):
    data = write_folder(tmp_path / "data")
    refuse(
        tmp_path,
        data,
        "conditions (c) and (d) need a classical augmentation",
        "--augment",
        "none",
        "--conditions",
        "a,c",
    )
    refuse(tmp_path, data, "--pool compares with (c)", "--augment", "none", "--pool", "--budgets", "2")


def test_the_check_returns_the_counts_and_takes_the_whole_split_as_no_budget(tmp_path):
    data = write_folder(tmp_path / "data", train=4, test=2)
    counts = check_image_folder(data, (0, 4))
    assert counts == {"train": dict.fromkeys(CLASSES, 4), "test": dict.fromkeys(CLASSES, 2)}
    with pytest.raises(InputError, match="fewer than the largest budget"):
        check_image_folder(data, (0, 5))


def test_the_profile_an_image_folder_runs():
    args = bench_cli.build_parser().parse_args(["--dataset", "imagefolder", "--augment", "shift-flip"])
    p, shard = bench_cli.resolve(args)
    cpu = bench_cli.PROFILES["cpu"]
    assert (p.name, p.dataset, p.classical, p.conditions, p.sweep) == (
        "cpu-imagefolder",
        "imagefolder",
        "shift-flip",
        ("a", "b", "c", "d"),
        (),
    )
    assert (p.budgets, p.seeds, p.gan_steps, p.clf_steps, p.real_fraction) == (
        cpu.budgets,
        cpu.seeds,
        cpu.gan_steps,
        cpu.clf_steps,
        cpu.real_fraction,
    )
    args = bench_cli.build_parser().parse_args(["--dataset", "imagefolder", "--augment", "none", "--budgets", "10"])
    p, _ = bench_cli.resolve(args)
    assert p.conditions == ("a", "b") and p.budgets == (10,) and shard == (0, 1)
    # The built-in profiles keep their own settings (and so their figures and caches).
    builtin, _ = bench_cli.resolve(bench_cli.build_parser().parse_args(["--profile", "cpu-fashion"]))
    assert builtin == bench_cli.PROFILES["cpu-fashion"]


# ---- a tiny run ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagefolder")
    data = write_folder(root / "data", train=5, test=3)
    threads = torch.get_num_threads()
    try:
        res = bench(
            root,
            *("--profile", "smoke", "--dataset", "imagefolder", "--data-root", data, "--augment", "shift-flip"),
            *("--budgets", "3", "--seeds", "2"),
        )
    finally:
        torch.set_num_threads(threads)
    return root, data, res


def test_a_tiny_run_writes_the_report_with_conditions_a_to_d_and_their_cis(tiny_run):
    root, data, res = tiny_run
    assert res.exit_code == 0, res.output
    out = root / "out"
    assert f"wrote {out}/report.md (8 classifier runs)" in res.output
    for name in ("report.md", "results.json", "accuracy_vs_budget.png", "per_class_gain.png", "samples_3.png"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "# Downstream benchmark: `smoke-imagefolder` profile" in report
    assert f"Dataset `imagefolder` at `{data}` (3 classes: cat, dog, emu; 15 training and 9 test images" in report
    assert "ModelConfig(num_classes=3," in report and "(`shift-flip`)" in report
    header = "| budget | (a) real only | (b) real + generated | (c) real + classical aug. | (d) real + classical aug. + generated |"
    assert header in report
    row = next(line for line in report.splitlines() if line.startswith("| 3 | "))
    assert row.count("[") == 4  # mean ± std [95% CI] for each condition
    assert "## Paired differences (pp, same seeds) with 95% CI" in report
    assert "| 3 | (d) n=40 |" in report and "FAIL" not in report
    results = json.loads((out / "results.json").read_text())
    assert results["data"]["classes"] == list(CLASSES) and results["data"]["root"] == str(data)
    assert results["profile"]["classical"] == "shift-flip" and results["profile"]["dataset"] == "imagefolder"
    table = results["table"]
    assert set(table) == {"3/a/0", "3/b/40", "3/c/0", "3/d/40"}
    assert "vs_a" in table["3/b/40"] and "vs_c" in table["3/d/40"]
    assert len(table["3/a/0"]["per_class"]) == 3
    gans = sorted(p.name for p in (root / "cache" / "gan").iterdir())
    assert [g.split("_")[:2] for g in gans] == [["3", "s0"], ["3", "s1"]]
    config = json.loads((root / "cache" / "gan" / gans[0] / "config.json").read_text())
    assert config["data"]["dataset"] == "imagefolder" and config["config"]["model"]["num_classes"] == 3


def test_another_folder_never_reuses_the_cache_and_report_only_rebuilds(tiny_run, tmp_path):
    root, data, _ = tiny_run
    res = bench(
        root,
        "--profile",
        "smoke",
        "--dataset",
        "imagefolder",
        "--data-root",
        data,
        "--augment",
        "shift-flip",
        "--budgets",
        "3",
        "--seeds",
        "2",
        "--report-only",
        "--out",
        tmp_path / "again",
    )
    assert res.exit_code == 0 and "(8 classifier runs)" in res.output, res.output
    other = write_folder(tmp_path / "other", train=5, test=4)  # one more test image per class: other data
    res = bench(
        root,
        "--profile",
        "smoke",
        "--dataset",
        "imagefolder",
        "--data-root",
        other,
        "--augment",
        "shift-flip",
        "--budgets",
        "3",
        "--seeds",
        "2",
        "--report-only",
        "--out",
        tmp_path / "other-out",
    )
    assert res.exit_code == 2 and "no finished classifier runs" in res.output, res.output


# ---- the export script ------------------------------------------------------------------------------------------


def test_export_writes_a_folder_with_the_datasets_classes_and_subsets(tmp_path):
    from benchmarks.export_imagefolder import class_folders, export

    assert class_folders(["T-shirt/top", "Trouser"]) == ["0 - T-shirt-top", "1 - Trouser"]
    assert class_folders(["0 - zero", "1 - one"]) == ["0 - zero", "1 - one"]
    assert class_folders([f"c{i}" for i in range(11)])[:2] == ["00 - c0", "01 - c1"]
    written = export("digits", tmp_path / "digits")
    builtin = {s: load_source("digits", split=s) for s in ("train", "test")}
    assert written == {s: len(builtin[s].labels) for s in ("train", "test")}
    folder = {s: load_source("imagefolder", root=tmp_path / "digits", split=s) for s in ("train", "test")}
    assert folder["train"].classes == builtin["train"].classes  # the same class order
    for seed in (0, 1):  # each seed's subset holds the same images (grouped by class, not interleaved)
        picked = []
        for src in (builtin["train"], folder["train"]):
            idx = torch.from_numpy(stratified_subset(src.labels.numpy(), 5, seed=seed))
            picked.append(sorted((int(y), x.numpy().tobytes()) for x, y in zip(src.images[idx], src.labels[idx])))
        assert picked[0] == picked[1]
    images = lambda src: sorted(x.numpy().tobytes() for x in src.images)
    assert images(folder["test"]) == images(builtin["test"])  # every pixel as loaded
    with pytest.raises(InputError, match="exists; choose an empty --out"):
        export("digits", tmp_path / "digits")
