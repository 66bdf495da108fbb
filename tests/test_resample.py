"""Temperature and label-checked resampling (`ganaug.sample.resample`): the law of which latent each sample gets, and
its plumbing through `ganaug evaluate`, `ganaug generate`, GeneratedDataset and CAS."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganaug.classify.evaluator import EvaluatorConfig, EvaluatorTraining, train_evaluator_on
from ganaug.classify.manifold import Manifold
from ganaug.cli import main
from ganaug.errors import InputError
from ganaug.sample.generators import open_generator
from ganaug.sample.latents import latents
from ganaug.sample.resample import LabelCheck, Sampling, latent_rows, round_seed

TINY = EvaluatorTraining(epochs=1, batch_size=64, model=EvaluatorConfig(width=4, hidden=16))


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    """Two tiny digits evaluators (seeds 0 and 1): one scores, the other checks labels."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("checks")
    return [
        train_evaluator_on("digits", settings=dataclasses.replace(TINY, seed=s)).save(root / f"ev{s}") for s in (0, 1)
    ]  # fmt: skip


@pytest.fixture(scope="module")
def exported_run(tiny_run, tmp_path_factory):
    """The tiny run with its generator exported to ONNX."""
    from ganaug.train.export import export_onnx

    run = tmp_path_factory.mktemp("exported") / "run"
    shutil.copytree(tiny_run, run)
    export_onnx(run)
    return run


def _expected(run, check: LabelCheck, labels, indices, *, seed, t):
    """Sample i by the documented law, one candidate at a time: the first accepted round, else the best."""
    out = []
    for y, i in zip(labels.tolist(), indices.tolist()):
        best = None
        for r in range(check.rounds):
            z = latents(round_seed(seed, r), i, i + 1, 8) * np.float32(t)
            image = np.asarray(run(z, np.array([y])))
            ok, p = check.judge(image, np.array([y]))
            if ok[0]:
                best = (np.inf, image)
                break
            if best is None or p[0] > best[0]:
                best = (p[0], image)
        out.append(best[1])
    return np.concatenate(out)


def test_sample_i_is_the_first_accepted_round_else_the_best(tiny_run, checks):
    gen = open_generator(tiny_run, backend="pytorch")
    assert gen.z_dim == 8
    check = LabelCheck.load(checks[1], rounds=3)
    labels = np.arange(40, dtype=np.int64) % 10
    idx = np.arange(5, 45, dtype=np.int64)
    got = Sampling(1.3, check).images(gen.run, labels, idx, seed=7, z_dim=gen.z_dim)
    want = _expected(gen.run, check, labels, idx, seed=7, t=1.3)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # The check changed something (the tiny check disagrees often), and it never lowers agreement.
    plain = Sampling(1.3).images(gen.run, labels, idx, seed=7, z_dim=gen.z_dim)
    assert not np.allclose(got, plain)
    assert check.judge(got, labels)[0].sum() >= check.judge(plain, labels)[0].sum()


def test_sample_i_does_not_depend_on_batching_or_order(tiny_run, checks):
    gen = open_generator(tiny_run, backend="pytorch")
    sampling = Sampling(1.1, LabelCheck.load(checks[1], rounds=4))
    labels = np.arange(60, dtype=np.int64) % 10
    whole = sampling.images(gen.run, labels, np.arange(60), seed=3, z_dim=8)
    order = np.random.default_rng(0).permutation(60)
    parts = np.empty_like(whole)
    for chunk in np.array_split(order, 7):  # scattered indices, uneven batches
        parts[chunk] = sampling.images(gen.run, labels[chunk], chunk, seed=3, z_dim=8)
    np.testing.assert_allclose(parts, whole, atol=1e-5)


class _ZeroOne(torch.nn.Module):
    """A classifier of your own: an evaluator's network taking [0, 1] images, as after ``ToTensor()``."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


def test_a_classifier_of_your_own_is_a_check_with_the_same_law(tiny_run, checks):
    from ganaug.classify.evaluator import load_evaluator

    gen = open_generator(tiny_run, backend="pytorch")
    ev = load_evaluator(checks[1])
    own = LabelCheck(_ZeroOne(ev.net).eval(), rounds=3)  # input_range (0, 1) by default
    folder = LabelCheck.load(checks[1], rounds=3)
    labels = np.arange(40, dtype=np.int64) % 10
    idx = np.arange(40, dtype=np.int64)
    x = Sampling(1.3).images(gen.run, labels, idx, seed=7, z_dim=8)
    np.testing.assert_array_equal(own.judge(x, labels)[0], folder.judge(x, labels)[0])
    got = Sampling(1.3, own).images(gen.run, labels, idx, seed=7, z_dim=8)
    np.testing.assert_allclose(got, _expected(gen.run, own, labels, idx, seed=7, t=1.3), atol=1e-5)
    np.testing.assert_allclose(got, Sampling(1.3, folder).images(gen.run, labels, idx, seed=7, z_dim=8), atol=1e-5)
    # What manifests record: the weights' sha256 and rounds, and for your own classifier its type and mapping.
    mine = Sampling(1.3, own).identity()["label_check"]
    assert mine["rounds"] == 3 and len(mine["sha256"]) == 64 and mine["classifier"].endswith("_ZeroOne")
    assert mine["input_range"] == [0.0, 1.0] and mine["normalize"] is None
    assert set(Sampling(1.3, folder).identity()["label_check"]) == {"sha256", "rounds"}
    in_python = LabelCheck(ev)  # an Evaluator object: its classes, its own [-1, 1], its weights hashed
    assert in_python.classes == ev.classes and in_python.input_range == (-1.0, 1.0)
    assert set(in_python.identity()) == {"sha256", "rounds"} and len(in_python.identity()["sha256"]) == 64
    with pytest.raises(InputError, match="takes images in \\[-1, 1\\] itself"):
        LabelCheck(ev, input_range=(0, 1))
    with pytest.raises(InputError, match="check must be a ganaug.LabelCheck"):
        Sampling(1.0, str(checks[1]))


def test_plain_sampling_and_temperature_are_the_documented_latents(tiny_run):
    gen = open_generator(tiny_run, backend="pytorch")
    labels = np.arange(12, dtype=np.int64) % 10
    idx = np.arange(12)
    np.testing.assert_array_equal(
        Sampling().images(gen.run, labels, idx, seed=2, z_dim=8), gen.run(latents(2, 0, 12, 8), labels)
    )
    hot = Sampling(1.5).images(gen.run, labels, idx, seed=2, z_dim=8)
    np.testing.assert_allclose(hot, gen.run(latents(2, 0, 12, 8) * np.float32(1.5), labels), atol=1e-6)
    np.testing.assert_array_equal(latent_rows(2, np.array([3, 1]), 8), latents(2, 0, 4, 8)[[3, 1]])


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True])
def test_bad_temperature_is_refused(bad):
    with pytest.raises(InputError, match="temperature must be a number > 0"):
        Sampling(bad)


def test_bad_rounds_and_folders_are_refused(checks, tmp_path):
    with pytest.raises(InputError, match="rounds must be a whole number >= 1"):
        LabelCheck.load(checks[1], rounds=0)
    with pytest.raises(InputError, match="is not an evaluator folder"):
        LabelCheck.load(tmp_path)


def _evaluate(*args):
    return CliRunner().invoke(main, ["evaluate", *args, "--per-class", "10", "--device", "cpu", "--threads", "1"])


def test_evaluate_reports_the_sampling_and_refuses_the_judge_as_check(tiny_run, checks, tmp_path):
    ev, check = (str(c) for c in checks)
    res = _evaluate(str(tiny_run), "--evaluator", ev, "--temperature", "1.2", "--label-check", check, "--json", "-")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["sampling"]["temperature"] == 1.2 and len(doc["sampling"]["label_check"]["sha256"]) == 64
    plain = json.loads(_evaluate(str(tiny_run), "--evaluator", ev, "--json", "-").output)
    assert plain["sampling"] == {"temperature": 1.0, "label_check": None}
    assert plain["frechet_distance"] != doc["frechet_distance"]
    text = _evaluate(str(tiny_run), "--evaluator", ev, "--temperature", "1.2", "--label-check", check)
    assert "temperature 1.2, label-checked" in text.output
    # The scoring evaluator as its own check (same weights under another name) is one line, exit 2.
    twin = tmp_path / "twin"
    shutil.copytree(ev, twin)
    res = _evaluate(str(tiny_run), "--evaluator", ev, "--label-check", str(twin))
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "the label check is the evaluator that scores the samples" in res.output
    res = _evaluate(str(tiny_run), "--evaluator", ev, "--temperature", "0")
    assert res.exit_code == 2 and "--temperature" in res.output


def test_generate_dataset_and_library_agree_and_the_manifest_says_how(exported_run, checks, tmp_path):
    from ganaug.feed.dataset import GeneratedDataset
    from ganaug.sample.runtime import OnnxGenerator

    check = str(checks[1])
    out = tmp_path / "synth.npz"
    res = CliRunner().invoke(
        main,
        ["generate", str(exported_run), "--per-class", "6", "--seed", "4", "--out", str(out), "--quiet"]
        + ["--temperature", "1.25", "--label-check", check, "--batch-size", "7"],
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert manifest["sampling"]["temperature"] == 1.25 and manifest["sampling"]["label_check"]["rounds"] == 8
    written = np.load(out)["images"]
    gen = OnnxGenerator(exported_run)
    labels = gen.labels(6)
    sampling = Sampling(1.25, LabelCheck.load(check))
    np.testing.assert_array_equal(written, gen.generate(labels, seed=4, sampling=sampling))
    ds = GeneratedDataset(exported_run, per_class=6, seed=4, order="sorted", temperature=1.25, label_check=check)
    np.testing.assert_array_equal(ds.data.numpy(), written)
    assert "Sampling: temperature 1.25, label-checked" in repr(ds)
    with pytest.raises(InputError, match="device_output=True takes plain sampling only"):
        gen.generate(labels, seed=4, sampling=sampling, device_output=True)


def test_cas_caches_checked_samples_apart_from_plain_ones(tiny_run, checks, tmp_path):
    from ganaug.data.sources import load_source
    from ganaug.eval.cas import CASData, cas_score

    data = CASData.from_sources(*(load_source("digits", split=s) for s in ("train", "test")))
    options = {"per_class": 5, "classifier": "smoke", "cache_dir": tmp_path}
    plain = cas_score(tiny_run, data, **options)
    checked = cas_score(tiny_run, data, sampling=Sampling(1.0, LabelCheck.load(checks[1])), **options)
    assert len(list(tmp_path.glob("*.json"))) == 2  # two keys, two files
    assert cas_score(tiny_run, data, sampling=Sampling(), **options) == plain  # plain sampling: the old key
    assert checked["train_images"] == plain["train_images"] == 50


def test_a_narrow_check_can_be_trained_from_the_cli(tmp_path):
    out = tmp_path / "check"
    args = ["evaluator", "train", "--dataset", "digits", "--epochs", "1", "--width", "4", "--seed", "1"]
    res = CliRunner().invoke(main, [*args, "--out", str(out), "--threads", "1", "--quiet", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "evaluator.json").read_text())
    assert doc["config"]["width"] == 4 and doc["training"]["seed"] == 1
    assert LabelCheck.load(out).evaluator.net.body[0].out_channels == 4


def test_dataset_items_are_the_same_across_workers_and_batches(exported_run, checks):
    from torch.utils.data import DataLoader

    from ganaug.feed.dataset import GeneratedDataset

    options = {"per_class": 5, "seed": 9, "output": "tensor", "temperature": 1.2, "label_check": str(checks[1])}
    whole = GeneratedDataset(exported_run, **options).materialize()
    loaded = torch.cat(
        [x for x, _ in DataLoader(GeneratedDataset(exported_run, **options), batch_size=7, num_workers=2)]
    )
    torch.testing.assert_close(loaded, torch.from_numpy(whole.arrays(np.arange(len(whole)))), atol=1e-5, rtol=0)
    assert "Output: tensor in [0.0, 1.0]" in repr(whole) and "Sampling: temperature 1.2, label-checked" in repr(whole)


# ---- the manifold: a check that also redraws images off the real manifold of their class ----------------------


def _brute_realism(manifold: Manifold, features: torch.Tensor, labels: np.ndarray) -> np.ndarray:
    out = []
    for f, y in zip(features, labels.tolist()):
        mine = (manifold.labels == y).nonzero().flatten().tolist()
        out.append(max(float(manifold.radii[j]) / max(float(torch.dist(f, manifold.features[j])), 1e-12) for j in mine))
    return np.array(out)


@pytest.fixture(scope="module")
def manifold_check(checks, tmp_path_factory):
    """The check of ``checks[1]`` trained again from the CLI with a 20-per-class manifold."""
    out = tmp_path_factory.mktemp("manifold") / "check"
    args = ["evaluator", "train", "--dataset", "digits", "--epochs", "1", "--width", "4", "--seed", "1"]
    res = CliRunner().invoke(
        main, [*args, "--manifold-per-class", "20", "--out", str(out), "--threads", "1", "--quiet", "--device", "cpu"]
    )
    assert res.exit_code == 0, res.output
    return out


def test_the_manifold_is_per_class_balls_to_the_kth_neighbour(manifold_check):
    from ganaug.data.sources import load_source, to_model_range

    check = LabelCheck.load(manifold_check)
    m = check.manifold
    assert (
        m is not None
        and m.features.shape == (200, check.evaluator.config.hidden)
        and torch.equal(m.labels.bincount(), torch.full((10,), 20))
    )
    # Each radius is the distance to the 3rd nearest other image of the same class.
    for i in (0, 57, 199):
        same = (m.labels == m.labels[i]).nonzero().flatten()
        d = torch.cdist(m.features[i : i + 1], m.features[same]).flatten().sort().values
        assert float(m.radii[i]) == pytest.approx(float(d[3]), rel=1e-5)
    # Realism is the largest radius/distance over the label's balls; the manifold's own points score >= 1.
    src = load_source("digits", split="train")
    x = to_model_range(src.images[:60])
    labels = src.labels[:60].numpy()
    f = check.evaluator.features(x)
    np.testing.assert_allclose(m.realism(f, labels), _brute_realism(m, f, labels), rtol=1e-5)
    assert (m.realism(m.features, m.labels.numpy()) >= 1).all()
    # A wrong label is judged against the wrong class's balls: fewer accepted.
    accepted, _ = check.judge(x.numpy(), labels)
    wrong, _ = check.judge(x.numpy(), (labels + 1) % 10)
    assert accepted.sum() > wrong.sum()


def test_a_manifold_check_rejects_off_manifold_images_and_keeps_the_law(tiny_run, manifold_check):
    gen = open_generator(tiny_run, backend="pytorch")
    check = LabelCheck.load(manifold_check, rounds=3)
    label_only = dataclasses.replace(check, manifold=None)
    labels = np.arange(30, dtype=np.int64) % 10
    idx = np.arange(30, dtype=np.int64)
    x = Sampling(1.0).images(gen.run, labels, idx, seed=3, z_dim=gen.z_dim)
    on = check.manifold.realism(check.evaluator.features(torch.from_numpy(x)), labels) >= 1
    agrees = label_only.judge(x, labels)[0]
    np.testing.assert_array_equal(check.judge(x, labels)[0], agrees & on)
    assert (agrees & ~on).any()  # the manifold rejects some images the label alone accepts
    got = Sampling(1.2, check).images(gen.run, labels, idx, seed=3, z_dim=gen.z_dim)
    np.testing.assert_allclose(got, _expected(gen.run, check, labels, idx, seed=3, t=1.2), atol=1e-5)
    split = np.concatenate(
        [
            Sampling(1.2, check).images(gen.run, labels[s], idx[s], seed=3, z_dim=gen.z_dim)
            for s in (slice(0, 11), slice(11, 30))
        ]
    )
    np.testing.assert_allclose(split, got, atol=1e-5)
    # The manifold is part of the sampling's identity (manifests, reports, cache keys).
    assert Sampling(1.2, check).identity()["label_check"]["manifold_sha256"] == check.manifold.sha256()
    assert "manifold_sha256" not in Sampling(1.2, label_only).identity()["label_check"]


def test_a_manifold_of_other_weights_is_refused_and_overwrite_drops_it(manifold_check, tmp_path):
    from ganaug.classify.manifold import MANIFOLD

    copy = tmp_path / "check"
    shutil.copytree(manifold_check, copy)
    manifold = LabelCheck.load(copy).manifold
    (copy / MANIFOLD).write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="is not a readable manifold"):
        LabelCheck.load(copy)
    manifold.save(copy / MANIFOLD, weights_sha256="0" * 64)  # bound to other weights
    with pytest.raises(InputError, match="built for other weights"):
        LabelCheck.load(copy)
    args = ["evaluator", "train", "--dataset", "digits", "--epochs", "1", "--width", "4", "--out", str(copy)]
    res = CliRunner().invoke(main, [*args, "--overwrite", "--threads", "1", "--quiet", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert not (copy / MANIFOLD).exists() and LabelCheck.load(copy).manifold is None
    res = CliRunner().invoke(
        main, [*args, "--manifold-per-class", "500", "--overwrite", "--threads", "1", "--device", "cpu"]
    )
    assert res.exit_code == 2 and "--manifold-per-class 500 is larger than the smallest class" in res.output


def test_a_foreign_manifold_file_is_never_replaced(tmp_path):
    from ganaug.classify.manifold import MANIFOLD

    out = tmp_path / "mine"
    out.mkdir()
    (out / MANIFOLD).write_bytes(b"someone else's file")
    args = ["evaluator", "train", "--dataset", "digits", "--epochs", "1", "--width", "4", "--out", str(out)]
    res = CliRunner().invoke(main, [*args, "--manifold-per-class", "20", "--threads", "1", "--device", "cpu"])
    assert res.exit_code == 2 and "did not write (manifold.safetensors)" in res.output
    assert not (out / "evaluator.json").exists()
    res = CliRunner().invoke(main, [*args, "--threads", "1", "--quiet", "--device", "cpu", "--overwrite"])
    assert res.exit_code == 2 and "did not write" in res.output  # nor are the evaluator's files added beside it
    assert not (out / "evaluator.json").exists()
    assert (out / MANIFOLD).read_bytes() == b"someone else's file"


def test_an_evaluator_is_not_written_into_a_run_folder(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    args = ["evaluator", "train", "--dataset", "digits", "--epochs", "1", "--width", "4", "--threads", "1"]
    for out in (run, run / "samples", run / "new"):
        res = CliRunner().invoke(main, [*args, "--out", str(out), "--manifold-per-class", "20"])
        assert res.exit_code == 2 and "inside ganaug's run folder" in res.output
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
