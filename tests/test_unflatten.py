"""Undoing `flatten_density` when sampling (`ganaug.sample.unflatten.Unflatten`, `--unflatten K`): the law of which
candidate each sample keeps, that it leans towards the real density, and its plumbing through the CLI and
GeneratedDataset."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganaug.classify.evaluator import EvaluatorConfig, EvaluatorTraining, train_evaluator_on
from ganaug.cli import main
from ganaug.data.sources import load_source, to_model_range
from ganaug.errors import InputError
from ganaug.sample.generators import open_generator
from ganaug.sample.resample import LabelCheck, Sampling, candidate_seed, pick_uniforms
from ganaug.sample.unflatten import Unflatten
from tests.conftest import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def flat_run(tmp_path_factory):
    """A tiny digits run trained with flatten_density 3, exported to ONNX."""
    from ganaug.train.trainer import Trainer

    run = tmp_path_factory.mktemp("flat") / "run"
    config = tiny_config(epochs=1, flatten_density=3.0, density_clip=0.9, export_onnx=True)
    Trainer.new(config, run, overwrite=True, progress=False).fit()
    return run


@pytest.fixture(scope="module")
def check(tmp_path_factory):
    settings = EvaluatorTraining(epochs=1, batch_size=64, model=EvaluatorConfig(width=4, hidden=16), seed=1)
    return train_evaluator_on("digits", settings=settings).save(tmp_path_factory.mktemp("check") / "ev1")


def _train(run) -> tuple[torch.Tensor, torch.Tensor]:
    """The run's training images (flattened, [-1, 1]) and labels, rebuilt here from its indices."""
    src = load_source("digits", split="train")
    idx = torch.from_numpy(np.load(run / "indices.npy"))
    return to_model_range(src.images[idx]).flatten(1).float(), src.labels[idx]


def test_unflatten_reads_the_runs_density(flat_run):
    u = Unflatten.for_run(flat_run, candidates=4)
    flat, y = _train(flat_run)
    torch.testing.assert_close(u.images, flat)
    assert torch.equal(u.labels, y) and u.exponent == 3.0 and u.candidates == 4
    for c in range(10):  # the cap: the 0.9 quantile of each image's distance to its 5th nearest other
        mine = flat[y == c]
        d = torch.cdist(mine.double(), mine.double()).sort(dim=1).values[:, 5]
        assert u.caps[c] == pytest.approx(float(torch.quantile(d, 0.9)), rel=1e-4)


def test_sample_i_is_the_candidate_its_uniform_picks_by_inverse_density(flat_run, check):
    gen = open_generator(flat_run, backend="pytorch")
    u = Unflatten.for_run(flat_run, candidates=5)
    base = Sampling(1.1, LabelCheck.load(check, rounds=3))
    labels = np.arange(30, dtype=np.int64) % 10
    idx = np.arange(11, 41, dtype=np.int64)
    got = dataclasses.replace(base, unflatten=u).images(gen.run, labels, idx, seed=6, z_dim=gen.z_dim)
    # By the documented law, written out with a brute-force distance: candidate j is the sample of
    # candidate_seed(6, j); weight d^-3 with d the 5th nearest training image of the label, capped.
    cands = np.stack([base.images(gen.run, labels, idx, seed=candidate_seed(6, j), z_dim=8) for j in range(5)])
    flat, y = _train(flat_run)
    w = np.empty((30, 5))
    for n, c in enumerate(labels):
        d = torch.cdist(torch.from_numpy(cands[:, n]).flatten(1).double(), flat[y == c].double())
        w[n] = np.minimum(d.sort(dim=1).values[:, 4].numpy(), u.caps[c]) ** -3.0
    cdf = np.cumsum(w / w.sum(1, keepdims=True), 1)
    want = cands[np.minimum((cdf < pick_uniforms(6, idx)[:, None]).sum(1), 4), np.arange(30)]
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert len({tuple(np.flatnonzero((got[n] == cands[:, n]).all(axis=(1, 2, 3)))) for n in range(30)}) > 1
    # candidate 0 is the sample without resampling: one candidate changes nothing
    one = dataclasses.replace(base, unflatten=dataclasses.replace(u, candidates=1))
    np.testing.assert_array_equal(
        one.images(gen.run, labels, idx, seed=6, z_dim=8), base.images(gen.run, labels, idx, seed=6, z_dim=8)
    )


def test_sample_i_does_not_depend_on_batching_or_order(flat_run, check):
    gen = open_generator(flat_run, backend="pytorch")
    sampling = Sampling(1.2, LabelCheck.load(check, rounds=2), Unflatten.for_run(flat_run, candidates=3))
    labels = np.arange(50, dtype=np.int64) % 10
    whole = sampling.images(gen.run, labels, np.arange(50), seed=2, z_dim=8)
    order = np.random.default_rng(1).permutation(50)
    parts = np.empty_like(whole)
    for chunk in np.array_split(order, 6):
        parts[chunk] = sampling.images(gen.run, labels[chunk], chunk, seed=2, z_dim=8)
    np.testing.assert_allclose(parts, whole, atol=1e-6)


def test_a_candidates_weight_does_not_depend_on_what_else_is_weighed(flat_run):
    """Sampling weighs all K candidates of a batch in one call; each weight must be what it is in a call of its own
    (up to the matrix product's rounding, which can change with the number of rows on some CPUs)."""
    u = Unflatten.for_run(flat_run, candidates=4)
    flat, y = _train(flat_run)  # images near the training images, so that few weights sit at their class's cap
    noise = 0.05 * torch.randn(120, flat.shape[1], generator=torch.Generator().manual_seed(0))
    images, labels = (flat[:120] + noise).reshape(120, 1, 28, 28).numpy(), y[:120].numpy()
    whole = u.weights(images, labels)
    parts = np.concatenate([u.weights(images[i : i + 30], labels[i : i + 30]) for i in range(0, 120, 30)])
    np.testing.assert_allclose(whole, parts, rtol=1e-4)  # d ** -3 of a near neighbour: the product cancels
    assert np.all(whole > 0) and len(np.unique(whole)) > 60


def test_kept_samples_lie_where_the_training_images_are_denser(flat_run):
    u = Unflatten.for_run(flat_run, candidates=8)
    flat, y = _train(flat_run)
    noise = torch.Generator().manual_seed(0)
    pattern = torch.randn(784, generator=noise).numpy().astype(np.float32)

    def run(z, labels):  # a training image of the label, half of them (z_0 < 0) with noise: off the data
        out = np.empty((len(labels), 784), np.float32)
        for n, (row, c) in enumerate(zip(z, labels)):
            mine = flat[y == c].numpy()
            out[n] = mine[int(abs(row[1]) * 1000) % len(mine)] + 0.3 * (row[0] < 0) * pattern
        return out.reshape(-1, 1, 28, 28)

    labels = np.arange(400, dtype=np.int64) % 10
    idx = np.arange(400)
    plain = Sampling(1.0).images(run, labels, idx, seed=0, z_dim=8)
    kept = Sampling(1.0, None, u).images(run, labels, idx, seed=0, z_dim=8)

    def noisy(x):  # bool [N]: not a training image itself
        return torch.cdist(torch.from_numpy(x).flatten(1), flat).min(dim=1).values.numpy() > 0.5

    assert 0.4 < noisy(plain).mean() < 0.6
    assert noisy(kept).mean() < 0.75 * noisy(plain).mean()  # clean ones weigh about twice as much here


def test_runs_it_cannot_undo_are_refused(tiny_run, flat_run, check, tmp_path):
    with pytest.raises(
        InputError,
        match=r"trained without density weighting \(flatten_density, the mnist preset\'s\): --unflatten has nothing to undo",
    ):
        Unflatten.for_run(tiny_run, candidates=2)
    with pytest.raises(InputError, match="--unflatten needs the run folder"):
        Unflatten.for_run(flat_run / "generator.onnx", candidates=2)
    with pytest.raises(InputError, match="whole number of candidates >= 1"):
        Unflatten.for_run(flat_run, candidates=0)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="config.json is corrupt"):
        Unflatten.for_run(broken, candidates=2)
    ev = str(check)
    res = CliRunner().invoke(
        main, ["evaluate", str(tiny_run), "--evaluator", ev, "--unflatten", "2", "--per-class", "5", "--threads", "1"]
    )
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "nothing to undo" in res.output, res.output
    out = tmp_path / "x.npz"
    res = CliRunner().invoke(
        main, ["generate", str(flat_run / "generator.onnx"), "--per-class", "2", "--unflatten", "2", "--out", str(out)]
    )
    assert res.exit_code == 2 and "--unflatten needs the run folder" in res.output, res.output
    assert not out.exists()


def test_generate_evaluate_and_dataset_agree_and_say_how(flat_run, check, tmp_path):
    from ganaug.feed.dataset import GeneratedDataset
    from ganaug.sample.runtime import OnnxGenerator

    out = tmp_path / "synth.npz"
    args = ["generate", str(flat_run), "--per-class", "4", "--seed", "3", "--out", str(out), "--quiet"]
    res = CliRunner().invoke(main, [*args, "--temperature", "1.1", "--unflatten", "3", "--batch-size", "7"])
    assert res.exit_code == 0, res.output
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    u = Unflatten.for_run(flat_run, candidates=3)
    assert manifest["sampling"]["unflatten"] == {"sha256": u.sha256, "candidates": 3, "exponent": 3.0}
    gen = OnnxGenerator(flat_run)
    labels = gen.labels(4)
    written = np.load(out)["images"]
    np.testing.assert_array_equal(written, gen.generate(labels, seed=3, sampling=Sampling(1.1, None, u)))
    assert not np.array_equal(written, gen.generate(labels, seed=3, sampling=Sampling(1.1)))
    ds = GeneratedDataset(flat_run, per_class=4, seed=3, order="sorted", temperature=1.1, unflatten=3)
    np.testing.assert_array_equal(ds.data.numpy(), written)
    assert "unflattened (3 candidates)" in repr(ds)
    res = CliRunner().invoke(
        main,
        ["evaluate", str(flat_run), "--evaluator", str(check), "--unflatten", "3", "--per-class", "12"]
        + ["--threads", "1", "--device", "cpu", "--json", "-"],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["sampling"]["unflatten"]["candidates"] == 3
    res = CliRunner().invoke(
        main,
        ["evaluate", str(flat_run), "--evaluator", str(check), "--unflatten", "3", "--per-class", "12"]
        + ["--threads", "1", "--device", "cpu"],
    )
    assert res.exit_code == 0 and "temperature 1, unflattened (3 candidates)" in res.output, res.output


def test_sampling_cost_times_the_unflattening_beside_the_check(flat_run, check, tmp_path):
    from benchmarks import sampling_cost

    args = [str(flat_run), "--label-check", str(check), "--unflatten", "2", "--images", "30", "--repeats", "1"]
    result = sampling_cost.main([*args, "--threads", "1", "--out", str(tmp_path / "cost.json")])
    rows = result["rows"]
    assert list(rows)[-1] == "temperature 1.15 + label check + unflatten 2" and len(rows) == 4
    assert all(r["images_per_second"] > 0 for r in rows.values()) and result["unflatten_build_seconds"] > 0
    assert json.loads((tmp_path / "cost.json").read_text())["rows"].keys() == rows.keys()


def test_chain_speed_compares_two_versions_image_for_image(flat_run, check, tmp_path):
    """The chain benchmark against this very checkout as the baseline: the same images, and a report that says so."""
    from benchmarks.chain_speed import REPO
    from benchmarks.chain_speed import main as chain_speed

    out = tmp_path / "out"
    argv = [str(flat_run), "--check", str(check), "--baseline", str(REPO), "--unflatten", "3", "--images", "40"]
    result = chain_speed([*argv, "--repeats", "1", "--threads", "1", "--out", str(out)])
    (row,) = result["rows"]
    assert row["identical"] and row["differing_images"] == 0 and row["now_images_per_second"] > 0
    assert "| identical |" in out.with_suffix(".md").read_text()
    assert (tmp_path / "out.profile-now-ev1.txt").read_text().startswith("40 images in")
    assert json.loads(out.with_suffix(".json").read_text())["machine"]["torch_threads"] >= 1
    theirs = tmp_path / "theirs.profile-now-ev1.txt"  # a file beside a stem this benchmark never wrote: refused
    theirs.write_text("keep me")
    with pytest.raises(SystemExit):
        chain_speed([*argv, "--repeats", "1", "--threads", "1", "--out", str(tmp_path / "theirs")])
    assert theirs.read_text() == "keep me"
