"""Metric laws: FD(x, x) = 0 and symmetry, precision/recall of identical sets, fidelity, memorization."""

from __future__ import annotations

import pickle
from dataclasses import astuple

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ganaug.data.density import Neighbours, nearest_distances
from ganaug.data.labels import check_same_classes
from ganaug.data.sources import training_images
from ganaug.errors import InputError
from ganaug.eval.metrics import (
    class_fidelity,
    frechet_distance,
    frechet_distance_from_stats,
    memorization,
    precision_recall,
)
from ganaug.eval.report import evaluate_generator
from ganaug.sample.generators import generate, open_generator

pytestmark = pytest.mark.usefixtures("one_thread")


def _features(seed: int, n: int = 200, d: int = 8, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, 1.0, size=(n, d))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), shift=st.floats(0.0, 3.0))
def test_frechet_distance_is_zero_on_itself_symmetric_and_grows_with_shift(seed, shift):
    a, b = _features(seed), _features(seed + 1, shift=shift)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6, abs=1e-6)
    assert frechet_distance(a, b + 5.0) > frechet_distance(a, b)


def test_frechet_distance_of_shifted_gaussians_is_the_squared_shift():
    a = torch.randn(20000, 4, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(a, a + 2.0) == pytest.approx(4 * 4.0, rel=1e-6)


def test_frechet_distance_of_two_known_gaussians_is_the_closed_form():
    # N(m1, diag(s1)) vs N(m2, diag(s2)): |m1 - m2|^2 + sum (sqrt(s1) - sqrt(s2))^2 = 5 + 1 + 1 = 7; a common
    # rotation of both changes nothing.
    mu1, mu2 = np.zeros(2), np.array([1.0, 2.0])
    s1, s2 = np.diag([1.0, 4.0]), np.diag([4.0, 9.0])
    assert frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(7.0, rel=1e-12)
    c, s = np.cos(0.3), np.sin(0.3)
    q = np.array([[c, -s], [s, c]])
    assert frechet_distance_from_stats(q @ mu1, q @ s1 @ q.T, q @ mu2, q @ s2 @ q.T) == pytest.approx(7.0, rel=1e-9)
    # Fitted to samples, the estimate converges to it.
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200_000, 2)) * [1.0, 2.0]
    b = rng.normal(size=(200_000, 2)) * [2.0, 3.0] + mu2
    assert frechet_distance(a, b) == pytest.approx(7.0, rel=0.01)


def test_frechet_distance_survives_singular_covariances():
    a = np.zeros((50, 6))
    a[:, 0] = np.arange(50)  # five dead dimensions
    assert frechet_distance(a, a + 1.0) == pytest.approx(6.0, abs=1e-4)  # the squared shift, |(1, ..., 1)|^2


def test_precision_recall_of_identical_sets_is_one_and_of_disjoint_sets_zero():
    a = _features(0)
    assert precision_recall(a, a, k=3) == precision_recall(a.copy(), a, k=3)
    pr = precision_recall(a, a, k=3)
    assert (pr.precision, pr.recall) == (1.0, 1.0)
    far = precision_recall(a, a + 100.0, k=3)
    assert (far.precision, far.recall) == (0.0, 0.0)


def test_mode_collapse_keeps_precision_and_loses_recall():
    real = _features(0, n=400)
    collapsed = _features(1, n=400) * 0.05  # every sample near the centre of the real cloud
    pr = precision_recall(real, collapsed, k=3)
    assert pr.precision > 0.9 and pr.recall < 0.5


def test_per_class_precision_recall_splits_the_overall_figures():
    # Three well-separated classes; the fake set copies classes 0 and 1 and misses class 2 (its points sit
    # on class 0's cloud, under class 2's label): recall splits 1 / 1 / 0, precision 1 / 1 / 1.
    real = np.concatenate([_features(c, n=60) + 50.0 * c for c in range(3)])
    real_labels = np.repeat(np.arange(3), 60)
    fake = np.concatenate([real[:120], _features(9, n=60)])
    fake_labels = np.repeat(np.arange(3), 60)
    pr = precision_recall(real, fake, k=3, real_labels=real_labels, fake_labels=fake_labels, num_classes=3)
    assert pr.per_class_recall == [1.0, 1.0, 0.0]
    assert pr.per_class_precision[:2] == [1.0, 1.0]
    # Weighted by class size, the split is the overall figure, which labels do not change.
    assert pr.recall == pytest.approx(np.mean(pr.per_class_recall))
    assert pr.precision == pytest.approx(np.mean(pr.per_class_precision))
    assert (pr.precision, pr.recall) == astuple(precision_recall(real, fake, k=3))[:2]
    with pytest.raises(InputError, match="together"):
        precision_recall(real, fake, k=3, real_labels=real_labels)
    with pytest.raises(InputError, match=r"\[0, 3\)"):
        precision_recall(real, fake, k=3, real_labels=real_labels + 1, fake_labels=fake_labels, num_classes=3)
    with pytest.raises(InputError, match="180 points"):
        precision_recall(real, fake, k=3, real_labels=real_labels[:5], fake_labels=fake_labels, num_classes=3)


def test_nearest_distances_matches_brute_force():
    q, r = _features(0, n=7, d=3), _features(1, n=11, d=3)
    brute = np.sort(np.linalg.norm(q[:, None] - r[None], axis=2), axis=1)[:, 1]
    np.testing.assert_allclose(nearest_distances(q, r, k=2, batch_size=3).numpy(), brute, rtol=1e-5)


@pytest.mark.parametrize(("m", "n", "d"), [(300, 70, 784), (300, 3, 16), (20, 10, 5)])
def test_neighbours_equal_torch_cdist_and_do_not_depend_on_the_call(m, n, d):
    """Each query's k-th distance is what torch.cdist + topk gives (bit for bit for sets of more than 25 rows, where
    cdist takes the same matrix product) and, up to the matrix product's rounding, whatever else is measured in the
    call (--unflatten measures all candidates at once)."""
    g = torch.Generator().manual_seed(m + n)
    r, q = torch.rand(m, d, generator=g) * 2 - 1, torch.rand(n, d, generator=g) * 2 - 1
    near = Neighbours(r)
    for k in (1, 5):
        want = torch.cdist(q, r).topk(k, dim=1, largest=False).values[:, k - 1]
        got = near.kth(q, k=k)
        assert torch.equal(got, want) if m > 25 else torch.allclose(got, want, rtol=1e-5)
        together = near.kth(torch.cat([torch.rand(50, d, generator=g), q, torch.rand(9, d, generator=g)]), k=k)
        assert torch.allclose(together[50 : 50 + n], got, rtol=1e-6)
        alone = torch.cat([near.kth(q[i : i + 1], k=k) for i in range(n)])
        assert torch.allclose(alone, want, rtol=1e-5)
    with pytest.raises(InputError, match="k must be in"):
        near.kth(q, k=m + 1)
    with pytest.raises(InputError, match="dimensions"):
        near.kth(q[:, :2], k=1)


def test_fidelity_of_a_perfect_fake_is_one_and_per_class_counts():
    requested = np.repeat(np.arange(3), 4)
    assert class_fidelity(requested, requested, num_classes=3).overall == 1.0
    predicted = requested.copy()
    predicted[:2] = 1  # half of class 0 wrong
    fid = class_fidelity(predicted, requested, num_classes=4)
    assert fid.overall == pytest.approx(10 / 12)
    assert fid.per_class[:3] == [0.5, 1.0, 1.0] and np.isnan(fid.per_class[3])
    again = pickle.loads(pickle.dumps(fid))
    assert again.overall == fid.overall and again.per_class[:3] == fid.per_class[:3]


def test_memorization_flags_copies():
    rng = np.random.default_rng(0)
    train = rng.uniform(-1, 1, size=(100, 1, 28, 28)).astype(np.float32)
    test = rng.uniform(-1, 1, size=(50, 1, 28, 28)).astype(np.float32)
    fresh = memorization(rng.uniform(-1, 1, size=(50, 1, 28, 28)), train, test)
    copies = memorization(train[:50] + 0.01, train, test)
    assert 0.9 < fresh.ratio < 1.1 and fresh.near_copy_share < 0.2
    assert copies.ratio < 0.1 and copies.near_copy_share == 1.0 and copies.train_size == 100


def test_bad_inputs_raise_one_line_errors():
    with pytest.raises(InputError, match="feature sizes differ"):
        frechet_distance(_features(0, d=3), _features(0, d=4))
    with pytest.raises(InputError, match="more than k"):
        precision_recall(_features(0, n=3), _features(1, n=3), k=3)
    with pytest.raises(InputError, match="equal length"):
        class_fidelity([0, 1], [0], num_classes=2)


def test_evaluate_generator_on_a_tiny_run(tiny_run):
    from ganaug.classify.evaluator import EvaluatorConfig, EvaluatorTraining, train_evaluator
    from ganaug.data.sources import load_source, to_model_range

    train, test = load_source("digits", split="train"), load_source("digits", split="test")
    ev = train_evaluator(
        train.images[:100],
        train.labels[:100],
        classes=train.classes,
        settings=EvaluatorTraining(epochs=1, model=EvaluatorConfig(width=4, hidden=16)),
    )
    gen = open_generator(tiny_run, backend="pytorch")
    gen_train = training_images(gen.data, root=None)
    assert len(gen_train) == 20 * 10  # the run's per_class subset, re-drawn and hash-checked
    real = {
        "test_images": to_model_range(test.images),
        "test_labels": test.labels,
        "train_images": to_model_range(train.images),
        "train_labels": train.labels,
    }
    settings = {"generator_train_images": gen_train, "per_class": 12, "seed": 1, "memorization_queries": 50}
    report = evaluate_generator(gen, ev, **real, **settings)
    d = report.to_dict()
    assert d["samples"] == 120 and len(d["fidelity"]["per_class"]) == 10 and report.memorization.train_size == 200
    # Each number is its metric applied to the documented inputs: sample i = G(latents(1, i, i + 1), labels[i]).
    from ganaug.data.labels import labels_from_counts
    from ganaug.data.sources import stratified_subset

    labels = labels_from_counts([12] * 10)
    fake = generate(gen, labels, seed=1)
    floor = torch.from_numpy(stratified_subset(train.labels.numpy(), 12, seed=1))
    floor_images = real["train_images"][floor]
    f_fake, f_floor, f_test = (ev.features(x) for x in (fake, floor_images, real["test_images"]))
    assert report.fidelity == class_fidelity(ev.predict(fake), labels, num_classes=10)
    assert report.fidelity_floor == ev.accuracy(floor_images, train.labels[floor])
    assert report.frechet_distance == pytest.approx(frechet_distance(f_fake, f_test), rel=1e-9)
    assert report.frechet_distance_floor == pytest.approx(frechet_distance(f_floor, f_test), rel=1e-9)
    by_class = {"real_labels": test.labels, "num_classes": 10}
    assert report.precision_recall == precision_recall(f_test, f_fake, k=3, fake_labels=labels, **by_class)
    floor_pr = precision_recall(f_test, f_floor, k=3, fake_labels=train.labels[floor], **by_class)
    assert report.precision_recall_floor == floor_pr
    assert (floor_pr.precision, floor_pr.recall) == astuple(precision_recall(f_test, f_floor, k=3))[:2]
    again = evaluate_generator(gen, ev, **real, **settings)
    assert again.to_dict() == d
    with pytest.raises(InputError, match="per-class"):
        evaluate_generator(gen, ev, **real, per_class=10_000)


def test_onnx_and_pytorch_backends_generate_the_same_images(tmp_path):
    from ganaug.train.export import export_onnx
    from ganaug.train.trainer import Trainer
    from tests.conftest import tiny_config

    Trainer.new(tiny_config(epochs=1), tmp_path, overwrite=True, progress=False).fit()
    export_onnx(tmp_path)
    onnx_gen, torch_gen = open_generator(tmp_path), open_generator(tmp_path, backend="pytorch")
    assert (onnx_gen.backend, torch_gen.backend) == ("onnx", "pytorch")
    assert onnx_gen.data == torch_gen.data and onnx_gen.data["per_class"] == 20
    labels = np.repeat(np.arange(10), 3)
    torch.testing.assert_close(
        generate(onnx_gen, labels, seed=1, batch_size=7), generate(torch_gen, labels, seed=1), atol=1e-5, rtol=0
    )


def test_class_check_compares_names_and_order():
    names = ["cat", "dog", "emu"]
    check_same_classes(names, list(names))
    with pytest.raises(InputError, match=r"only the generator has \['emu'\], only the evaluator \['eel'\]"):
        check_same_classes(names, ["cat", "dog", "eel"])
    with pytest.raises(InputError, match="the same names in another order"):
        check_same_classes(names, ["dog", "cat", "emu"])
    with pytest.raises(InputError, match="the generator's 3 classes and the evaluator's 2 differ"):
        check_same_classes(names, ["cat", "dog"])
