"""Issue 12's pool protocol: the teacher's pseudo-labels (ganaug.train.pseudo), a GAN trained on the labelled subset
plus the pseudo-labelled pool (``ganaug train --pseudo-label``), and the downstream benchmark's ``--pool``."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganaug.classify.classifier import CASClassifier
from ganaug.cli import main
from ganaug.data.sources import indices_hash, load_source, load_unlabelled, stratified_subset
from ganaug.errors import InputError
from ganaug.train import pseudo
from ganaug.train.pseudo import PseudoLabels, label_rest_of_split
from ganaug.train.trainer import Trainer
from tests.conftest import tiny_config
from tests.test_cli_train import TINY as CLI_TINY
from tests.test_downstream import TINY, downstream
from tests.test_training import _assert_same_tensors, _state

QUICK = CASClassifier(steps=100, batch=32, width=8, lr=3e-3)  # a teacher that trains in seconds


@pytest.fixture(autouse=True)
def _quick_teacher(monkeypatch):
    monkeypatch.setattr(pseudo, "TEACHER", QUICK)


@pytest.fixture(scope="module")
def split():
    return load_source("digits", split="train")


def _label(split, labelled, threshold, seed=0):
    return label_rest_of_split(
        split.images,
        labelled,
        split.labels[torch.from_numpy(labelled)],
        threshold=threshold,
        num_classes=10,
        classical="affine",
        seed=seed,
    )


def test_pseudo_labels_are_confident_unlabelled_images_and_a_higher_threshold_keeps_a_subset(split):
    labelled = stratified_subset(split.labels.numpy(), 5, seed=0)
    low, high = _label(split, labelled, 0.5), _label(split, labelled, 0.9)
    assert low.pool == len(split.labels) - len(labelled)
    assert not np.intersect1d(low.indices, labelled).size  # never a labelled image
    assert (low.confidence >= 0.5).all() and (high.confidence >= 0.9).all()
    assert set(high.indices) < set(low.indices)  # same teacher, stricter threshold: strictly fewer
    assert np.array_equal(low.indices, np.sort(low.indices))
    # The teacher learnt from 50 labels: its kept labels are mostly right (the truth is read here only).
    assert (split.labels.numpy()[low.indices] == low.labels).mean() > 0.7
    same = _label(split, labelled, 0.5)
    assert np.array_equal(same.indices, low.indices) and np.array_equal(same.labels, low.labels)  # seeded


def test_pseudo_labels_round_trip_and_bad_files_or_thresholds_are_one_line_errors(split, tmp_path):
    pl = PseudoLabels(np.array([3, 9]), np.array([1, 2]), np.array([0.97, 0.99], np.float32), 0.95, 100)
    pl.save(tmp_path / "p.npz")
    back = PseudoLabels.load(tmp_path / "p.npz")
    assert back.threshold == 0.95 and back.pool == 100 and np.array_equal(back.labels, pl.labels)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not readable pseudo-labels"):
        PseudoLabels.load(tmp_path / "bad.npz")
    with pytest.raises(InputError, match=r"probability in \(0, 1\]"):
        _label(split, np.arange(10), 0.0)


def test_config_and_cli_want_a_probability_and_a_pool_and_bare_means_0_95(tmp_path):
    with pytest.raises(ValueError, match="needs a pool: per_class"):
        tiny_config(per_class=None, pseudo_label=0.9)
    with pytest.raises(ValueError, match="unlabelled needs pseudo_label"):
        tiny_config(unlabelled=str(tmp_path))
    with pytest.raises(ValueError, match="probability"):
        tiny_config(pseudo_label=1.5)
    res = CliRunner().invoke(main, ["train", "--pseudo-label", "0.9", "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and "needs a pool" in res.output
    assert not (tmp_path / "run").exists()
    tiny = ["--epochs", "1", *CLI_TINY]
    res = CliRunner().invoke(
        main, ["train", "--real-per-class", "5", "--pseudo-label", "--out", str(tmp_path / "run"), *tiny]
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["pseudo_label"] == 0.95  # bare


def test_a_pool_gan_trains_on_subset_then_kept_images_and_resume_equals_an_uninterrupted_run(tmp_path):
    Trainer.new(tiny_config(per_class=5, pseudo_label=0.5, epochs=2), tmp_path / "full", progress=False).fit()
    Trainer.new(tiny_config(per_class=5, pseudo_label=0.5, epochs=1), tmp_path / "cut", progress=False).fit()
    Trainer.resume(tmp_path / "cut", epochs=2, progress=False).fit()
    full, cut = _state(tmp_path / "full"), _state(tmp_path / "cut")
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "rng", "step"):
        _assert_same_tensors(full[key], cut[key], key)

    run = tmp_path / "full"
    data = json.loads((run / "config.json").read_text())["data"]
    stored = PseudoLabels.load(run / pseudo.FILE)
    subset = stratified_subset(load_source("digits").labels.numpy(), 5, seed=0)
    assert data["labelled"] == 50 and data["labelled_indices_sha256"] == indices_hash(subset)
    assert data["pseudo_labelled"] == len(stored.indices) > 0 and data["size"] == 50 + len(stored.indices)
    assert np.array_equal(np.load(run / "indices.npy"), np.concatenate([subset, stored.indices]))


def test_resume_trains_on_the_stored_pseudo_labels_not_new_ones(tmp_path):
    run = tmp_path / "run"
    Trainer.new(tiny_config(per_class=5, pseudo_label=0.5, epochs=1), run, progress=False).fit()
    stored = PseudoLabels.load(run / pseudo.FILE)
    changed = dataclasses.replace(stored, labels=(stored.labels + 1) % 10)  # no teacher would give these
    changed.save(run / pseudo.FILE)
    trainer = Trainer.resume(run, epochs=2, progress=False)
    assert torch.equal(trainer.labels[50:].cpu(), torch.from_numpy(changed.labels))
    trainer.run.release()
    given = dataclasses.replace(stored, threshold=0.7)
    with pytest.raises(InputError, match="kept at 0.7"):
        Trainer.new(tiny_config(per_class=5, pseudo_label=0.5), tmp_path / "other", pseudo=given, progress=False)
    assert not (tmp_path / "other").exists()


# ---- the downstream benchmark's --pool ---------------------------------------------------------------


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    p = dataclasses.replace(
        TINY, name="tiny-pool", budgets=(5,), cas_gan_steps=0, clf_steps=100, clf_lr=3e-3, pool_threshold=0.5
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        doc = downstream.pool.run_pool(
            p, data_root=None, cache=root / "cache", out=root / "out", command="test", log=lambda m: None
        )
    finally:
        torch.set_num_threads(threads)
    return root, p, doc


def test_pool_conditions_use_the_pool_gans_pseudo_labels_and_pair_q_with_p(pool):
    root, p, doc = pool
    cells = {(c["condition"], c["seed"]): c for c in doc["raw_cells"]}
    assert set(cells) == {(c, s) for c in "cdpq" for s in range(p.seeds)}
    for s in range(p.seeds):
        kept = cells[("p", s)]["pseudo_labelled"]
        assert kept > 0 and cells[("q", s)]["pseudo_labelled"] == kept  # (p) and (q) train on the same pool
        assert cells[("p", s)]["gan"] == cells[("q", s)]["gan"] != cells[("d", s)]["gan"]
        assert cells[("p", s)]["honesty"]["gan_labels_only_the_subset"]
    q = doc["table"]["5/q/5"]
    diffs = [cells[("q", s)]["accuracy"] - cells[("p", s)]["accuracy"] for s in range(p.seeds)]
    assert q["vs_p"]["mean"] == pytest.approx(np.mean(diffs))
    md = (root / "out" / "pool.md").read_text()
    assert md.startswith("# Pool protocol") and "| 5 | 2 |" in md and "Honesty:" in md


def test_pool_reruns_from_the_cache_and_never_overwrites_a_file_it_did_not_write(pool, tmp_path):
    root, p, doc = pool
    logs: list[str] = []
    again = downstream.pool.run_pool(p, data_root=None, cache=root / "cache", out=tmp_path / "a", log=logs.append)
    assert not logs and again["table"] == doc["table"]  # nothing trained again
    (tmp_path / "pool.md").write_text("my notes\n")
    with pytest.raises(InputError, match="not written by the pool protocol"):
        downstream.pool.run_pool(p, data_root=None, cache=root / "cache", out=tmp_path, report_only=True)
    assert (tmp_path / "pool.md").read_text() == "my notes\n" and not (tmp_path / "pool.json").exists()
    with pytest.raises(InputError, match="leaves no pool"):
        downstream.pool.run_pool(dataclasses.replace(p, budgets=(0,)), data_root=None, cache=tmp_path, out=tmp_path)
    with pytest.raises(InputError, match="nothing to report"):
        downstream.pool.run_pool(p, data_root=None, cache=tmp_path / "empty", out=tmp_path / "b", report_only=True)


def test_pseudo_labels_are_made_in_one_process_not_one_teacher_per_torchrun_rank(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(InputError, match="under torchrun"):
        Trainer.new(tiny_config(per_class=5, pseudo_label=0.5), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def _unlabelled_folder(folder, n=120):
    """``n`` digits of the test split as PNG files in nested folders; their true labels, in sorted-file order."""
    from PIL import Image

    test = load_source("digits", split="test")
    for i in range(n):
        sub = folder / f"batch{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(test.images[i].numpy()).save(sub / f"img{i:04d}.png")
    order = sorted(range(n), key=lambda i: (f"batch{i % 3}", f"img{i:04d}"))
    return test.labels.numpy()[order]


def test_an_unlabelled_folder_is_the_pool_and_a_changed_folder_stops_resume(tmp_path):
    truth = _unlabelled_folder(tmp_path / "pool")
    (tmp_path / "pool" / "notes.txt").write_text("not an image")  # skipped: not an image extension
    images, digest = load_unlabelled(tmp_path / "pool")
    assert images.shape == (120, 28, 28) and images.dtype == torch.uint8 and len(digest) == 64
    run = tmp_path / "run"
    config = tiny_config(per_class=5, pseudo_label=0.5, unlabelled=str(tmp_path / "pool"), epochs=1)
    Trainer.new(config, run, progress=False).fit()
    stored = PseudoLabels.load(run / pseudo.FILE)
    data = json.loads((run / "config.json").read_text())["data"]
    assert stored.pool == 120 and data["unlabelled_sha256"] == digest and data["labelled"] == 50
    assert 0 < len(stored.indices) <= 120 and (truth[stored.indices] == stored.labels).mean() > 0.7
    assert (np.load(run / "indices.npy")[50:] == data["source_size"] + stored.indices).all()
    Trainer.resume(run, epochs=2, progress=False).fit()  # same folder: resumes
    (tmp_path / "pool").rename(tmp_path / "moved")
    with pytest.raises(InputError, match="does not exist; point --unlabelled"):
        Trainer.resume(run, epochs=3, progress=False)
    res = CliRunner().invoke(
        main, ["train", "--resume", str(run), "--epochs", "3", "--unlabelled", str(tmp_path / "moved"), "--quiet"]
    )
    assert res.exit_code == 0 and "ignoring" not in res.output, res.output  # a moved folder, same images: resumes
    assert json.loads((run / "config.json").read_text())["config"]["unlabelled"] == str((tmp_path / "moved").resolve())
    (tmp_path / "moved" / "batch0" / "img0000.png").write_bytes(
        (tmp_path / "moved" / "batch1" / "img0001.png").read_bytes()
    )
    with pytest.raises(InputError, match="differ from those this run pseudo-labelled"):
        Trainer.resume(run, epochs=4, progress=False)
    (tmp_path / "moved" / "batch0" / "extra.png").write_bytes(
        (tmp_path / "moved" / "batch2" / "img0002.png").read_bytes()
    )
    with pytest.raises(InputError, match="differ from those this run pseudo-labelled"):  # one image more: same message
        Trainer.resume(run, epochs=4, progress=False)


def test_an_unlabelled_folder_alone_pseudo_labels_at_the_default_threshold(tmp_path):
    _unlabelled_folder(tmp_path / "pool", n=30)
    args = ["train", "--real-per-class", "5", "--unlabelled", str(tmp_path / "pool"), "--epochs", "1", *CLI_TINY]
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["pseudo_label"] == 0.95
    res = CliRunner().invoke(main, [*args, "--pseudo-label", "0.6", "--out", str(tmp_path / "run6")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "run6" / "config.json").read_text())["config"]["pseudo_label"] == 0.6


def test_an_unlabelled_folder_without_images_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images under"):
        load_unlabelled(tmp_path / "empty")
    res = CliRunner().invoke(
        main, ["train", "--pseudo-label", "0.9", "--unlabelled", str(tmp_path / "empty"), "--out", str(tmp_path / "r")]
    )
    assert res.exit_code == 2 and "no images under" in res.output and not (tmp_path / "r").exists()


def test_a_run_folder_inside_the_unlabelled_folder_is_refused_before_anything_is_written(tmp_path):
    _unlabelled_folder(tmp_path / "pool", n=6)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for out in (tmp_path / "pool" / "run", tmp_path / "pool", tmp_path):
        config = tiny_config(per_class=5, pseudo_label=0.5, unlabelled=str(tmp_path / "pool"))
        with pytest.raises(InputError, match="which is being read"):
            Trainer.new(config, out, progress=False, overwrite=True)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
