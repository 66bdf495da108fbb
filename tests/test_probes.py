"""Issue 12's machinery: the shift-flip classical augmentation, the classifier's soft labels, loss weights and
fine-tuning, the sampling levers, and the probes table of the downstream benchmark."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from benchmarks import downstream
from ganaug.classify.classifier import CASClassifier
from ganaug.config import TrainConfig
from ganaug.data.augment_ops import CLASSICAL, classical, classical_for, shift_flip
from ganaug.eval import cas
from ganaug.sample.latents import latents
from tests.test_downstream import TINY as PRODUCT_TINY

TINY = downstream.Profile.of(PRODUCT_TINY)  # with the lab's levers


pytestmark = pytest.mark.usefixtures("one_thread")


# ---- shift-flip ----------------------------------------------------------------------------------


def test_shift_flip_moves_a_pixel_at_most_two_places_and_mirrors_about_half():
    x = -torch.ones(400, 1, 28, 28)
    x[:, 0, 10, 6] = 1.0  # one bright pixel left of centre: a flip sends it to column 21
    out = shift_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    rows, cols = [], []
    for img in out[:, 0]:
        r, c = np.argwhere(img.numpy() == 1.0)[0]
        rows.append(r)
        cols.append(c)
    rows, cols = np.array(rows), np.array(cols)
    assert (np.abs(rows - 10) <= 2).all() and set(rows) == set(range(8, 13))
    flipped = np.abs(cols - 21) <= 2
    assert (flipped | (np.abs(cols - 6) <= 2)).all()
    assert 0.4 < flipped.mean() < 0.6  # horizontal flip with probability 1/2
    assert ((out == 1.0).sum((1, 2, 3)) == 1).all()  # a shift of at most 2 never pushes the pixel out


def test_classical_names_and_the_practitioners_choice_per_dataset():
    assert set(CLASSICAL) == {"affine", "shift-flip"}
    assert classical_for("mnist") == classical_for("digits") == "affine"
    assert classical_for("fashion-mnist") == "shift-flip"
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    assert torch.equal(
        classical(x, torch.Generator().manual_seed(1), True),
        classical(x, torch.Generator().manual_seed(1), "affine"),
    )


def test_train_config_takes_a_classical_name_for_the_real_images():
    assert TrainConfig(augment_real="shift-flip").augment_real == "shift-flip"
    assert TrainConfig.from_dict(TrainConfig(augment_real="shift-flip").to_dict()).augment_real == "shift-flip"
    with pytest.raises(ValueError, match="augment_real must be"):
        TrainConfig(augment_real="rotate")


def test_gan_of_a_fashion_profile_sees_shift_flip_and_mnist_keeps_its_key():
    fashion, mnist = downstream.PROFILES["cpu-fashion"], downstream.PROFILES["cpu"]
    f = downstream.gan_config(fashion, 10, 0, n_images=100, data_root=None, device="cpu")
    m = downstream.gan_config(mnist, 10, 0, n_images=100, data_root=None, device="cpu")
    assert f.augment_real == "shift-flip" and f.dataset == "fashion-mnist"
    assert m.augment_real is True and m.loss == "bce"  # the config (and cache key) of before issue 12
    full = downstream.gan_config(fashion, 0, 0, n_images=60000, data_root=None, device="cpu")
    assert full.augment_real is False


def test_gan_options_added_later_keep_the_cache_keys_of_gans_trained_before_them(tmp_path):
    # The key of the cpu profile's seed-0 GAN at 10/class, as cached since the levers were first probed: an option
    # added to ModelConfig or TrainConfig since must stay out of the key at its default, and one removed since
    # must come back at the value every cached GAN had (tests/test_downstream_keys.py pins the rest).
    mnist = downstream.PROFILES["cpu"]
    m = downstream.gan_config(mnist, 10, 0, n_images=100, data_root=None, device="cpu")
    assert downstream.gan_dir(m, tmp_path).name == "10_s0_31f4408a74e6"
    hinge = downstream.gan_config(
        dataclasses.replace(mnist, gan_loss="hinge"), 10, 0, n_images=100, data_root=None, device="cpu"
    )
    assert hinge.loss == "hinge" and downstream.gan_dir(hinge, tmp_path).name != "10_s0_31f4408a74e6"


# ---- the classifier's levers -----------------------------------------------------------------------


def _sources(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    real = (torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, torch.randint(10, (n,), generator=g))
    fake = (torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, torch.randint(10, (n,), generator=g))
    return real, fake


def _params(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


CLF = CASClassifier(steps=4, batch=16, width=4)


def test_one_hot_soft_labels_and_unit_weights_train_exactly_as_hard_labels():
    real, fake = _sources()
    kw = {"classifier": CLF, "num_classes": 10, "seed": 3, "classical": "shift-flip"}
    hard = cas.train_classifier([real, fake], **kw)
    soft = cas.train_classifier([real, (fake[0], torch.nn.functional.one_hot(fake[1], 10).float())], **kw)
    weighted = cas.train_classifier([real, fake], weights=[1.0, 1.0], **kw)
    torch.testing.assert_close(_params(soft), _params(hard))
    assert torch.equal(_params(weighted), _params(hard))
    down = cas.train_classifier([real, fake], weights=[1.0, 0.1], **kw)
    assert not torch.equal(_params(down), _params(hard))


def test_classical_on_no_source_is_no_augmentation_and_init_continues_a_net():
    real, fake = _sources()
    kw = {"classifier": CLF, "num_classes": 10, "seed": 3}
    plain = cas.train_classifier([real, fake], **kw)
    off = cas.train_classifier([real, fake], classical="affine", classical_on=(False, False), **kw)
    assert torch.equal(_params(plain), _params(off))
    half = cas.train_classifier([real, fake], classical="affine", classical_on=(True, False), **kw)
    assert not torch.equal(_params(plain), _params(half))
    continued = cas.train_classifier([real], init=plain, **kw)
    assert continued is plain  # fine-tuned in place, not a new network


def test_synthetic_latent_scale_and_shared_style_draw_the_documented_latents(monkeypatch):
    class Stub:
        z_dim = 4

        def run(self, z, labels):  # image value: first latent coordinate + 100 * class
            return np.broadcast_to((z[:, 0] + 100 * labels)[:, None, None, None], (len(z), 1, 28, 28)).astype(
                np.float32
            )

    monkeypatch.setattr("ganaug.sample.generators.open_generator", lambda run, backend: Stub())
    per_class, seed = 3, 5
    x, y = downstream.synthetic(None, per_class, 2, seed=seed, latent_scale=1.5, shared_style=True)
    z = latents(seed, 0, per_class, 4)
    for k in range(2):
        for j in range(per_class):
            i = k * per_class + j
            assert y[i] == k
            assert x[i, 0, 0, 0].item() == pytest.approx(1.5 * z[j, 0] + 100 * k, abs=1e-5)
    x, _ = downstream.synthetic(None, per_class, 2, seed=seed, latent_scale=0.5)
    z = latents(seed, 0, 2 * per_class, 4)
    assert x[4, 0, 0, 0].item() == pytest.approx(0.5 * z[4, 0] + 100, abs=1e-5)


def test_a_share_schedule_moves_the_generated_share_linearly_to_its_end(monkeypatch):
    real, fake = _sources()
    kw = {"classifier": CASClassifier(steps=5, batch=16, width=4), "num_classes": 10, "seed": 3}
    constant = cas.train_classifier([real, fake], real_fraction=0.5, **kw)
    same = cas.train_classifier([real, fake], real_fraction=0.5, real_fraction_end=0.5, **kw)
    assert torch.equal(_params(constant), _params(same))  # an end equal to the start is the constant share
    # the last step draws no generated item: augmenting that empty part must not fail
    cas.train_classifier([real, fake], real_fraction_end=1.0, classical="affine", classical_on=(True, True), **kw)
    drawn = []
    randint = torch.randint
    monkeypatch.setattr(torch, "randint", lambda high, size, **k: drawn.append(size[0]) or randint(high, size, **k))
    cas.train_classifier([real, fake], real_fraction=0.5, real_fraction_end=1.0, **kw)
    real_n, fake_n = drawn[0::2], drawn[1::2]
    assert [r + f for r, f in zip(real_n, fake_n)] == [16] * 5
    assert fake_n == [8, 6, 4, 2, 0]  # 50% generated at the first step, none at the last


def test_label_smoothing_and_a_share_schedule_are_checked_and_stay_out_of_old_keys():
    with pytest.raises(downstream.InputError, match="synthetic_smoothing"):
        dataclasses.replace(TINY, synthetic_smoothing=1.0)
    with pytest.raises(downstream.InputError, match="real_fraction_end"):
        dataclasses.replace(TINY, real_fraction_end=0.0)
    with pytest.raises(downstream.InputError, match="latent_source"):
        dataclasses.replace(TINY, latent_source="posterior")


class _Stub:
    """A generator whose image is its latent's first coordinate (plus 100 x the class) at every pixel."""

    z_dim = 4

    def __init__(self):
        self.z = []

    def run(self, z, labels):
        self.z.append(z.copy())
        return np.broadcast_to((z[:, 0] + 100 * labels)[:, None, None, None], (len(z), 1, 28, 28)).astype(np.float32)


def test_latent_mix_interpolates_two_inverted_latents_of_the_images_class(monkeypatch):
    stub = _Stub()
    monkeypatch.setattr("ganaug.sample.generators.open_generator", lambda run, backend: stub)
    # Every inverted latent of class c is v_c = (c + 1) * (1, 2, 3, 4): a mix of two of them is v_c scaled by
    # 1 / sqrt((1 - a)^2 + a^2), between 1 and sqrt(2).
    subset = (torch.zeros(6, 1, 28, 28), torch.tensor([0, 0, 0, 1, 1, 1]))
    bank = (subset[1][:, None].float() + 1) * torch.arange(1.0, 5.0)
    monkeypatch.setattr(downstream.levers, "invert", lambda run, x, y, seed: (bank, torch.zeros(len(y))))
    info = {}
    x, y = downstream.synthetic(None, 50, 2, seed=4, latent_source="mix", subset=subset, info=info)
    assert info == {"inversion_mse": 0.0}
    z = torch.from_numpy(stub.z[-1])
    assert y.tolist() == [0] * 50 + [1] * 50
    scale = z[:, 0] / (y + 1).float()
    assert torch.allclose(z, scale[:, None] * (y[:, None] + 1).float() * torch.arange(1.0, 5.0), atol=1e-5)
    assert scale.min() >= 1 - 1e-5 and scale.max() <= 2**0.5 + 1e-5 and scale.std() > 0.05
    again, _ = downstream.synthetic(None, 50, 2, seed=4, latent_source="mix", subset=subset)
    assert torch.equal(x, again)  # seeded


def test_far_latents_keep_the_draws_farthest_from_the_inverted_latents_in_draw_order(monkeypatch):
    stub = _Stub()
    monkeypatch.setattr("ganaug.sample.generators.open_generator", lambda run, backend: stub)
    subset = (torch.zeros(4, 1, 28, 28), torch.tensor([0, 0, 1, 1]))
    bank = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(downstream.levers, "invert", lambda run, x, y, seed: (bank, torch.zeros(len(y))))
    per_class, seed = 5, 2
    downstream.synthetic(None, per_class, 2, seed=seed, latent_source="far", far_oversample=3, subset=subset)
    z = torch.from_numpy(stub.z[-1])
    for c in range(2):
        cand = torch.from_numpy(latents(seed, c * 15, (c + 1) * 15, 4))
        far = torch.cdist(cand, bank[subset[1] == c]).min(1).values
        kept = [
            next(i for i in range(15) if torch.equal(cand[i], row)) for row in z[c * per_class : (c + 1) * per_class]
        ]
        assert kept == sorted(kept)  # in draw order
        dropped = [i for i in range(15) if i not in kept]
        assert far[kept].min() >= far[dropped].max()


def test_invert_finds_latents_that_reproduce_the_generators_own_images(probes, monkeypatch):
    from ganaug.train.checkpoint import load_generator

    root, *_ = probes
    run = next((root / "cache" / "gan").iterdir())
    g, _ = load_generator(run)
    z0 = torch.randn(20, g.config.z_dim, generator=torch.Generator().manual_seed(7))
    y = torch.arange(20) % g.config.num_classes
    with torch.no_grad():
        x = g(z0, y)
        blind = ((g(torch.randn(20, g.config.z_dim), y) - x) ** 2).flatten(1).mean(1)
    z, err = downstream.levers.invert(run, x, y, seed=0, steps=200)
    with torch.no_grad():
        again = ((g(z, y) - x) ** 2).flatten(1).mean(1)
    torch.testing.assert_close(again, err)  # the error reported is that of the latents returned
    assert err.mean() < 0.1 * blind.mean()
    calls = []
    monkeypatch.setattr(downstream.levers, "_invert", lambda *a, **k: calls.append(k) or (z, err))
    cached = downstream.levers.invert(run, x.clone(), y.clone(), seed=0, steps=200)  # the (d) cell after (b)
    assert cached[0] is z and calls == []
    downstream.levers.invert(run, x, y, seed=1, steps=200)
    downstream.levers.invert(run, x + 0.5, y, seed=0, steps=200)
    assert len(calls) == 2  # another seed or other images: inverted anew


# ---- probes --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    root = tmp_path_factory.mktemp("probes")
    base = dataclasses.replace(TINY, name="tiny-probes", cas_gan_steps=0)
    names = ["baseline", "soft-labels", "pretrain", "shared-style", "no-classical-on-synthetic", "budget-4x"]
    names += ["label-smoothing", "share-decay", "latent-mix"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        doc = downstream.probes.run_probes(
            base, names, data_root=None, cache=root / "cache", out=root / "out", command="test", log=lambda m: None
        )
    finally:
        torch.set_num_threads(threads)
    return root, base, names, doc


def test_probes_share_the_reference_cells_and_write_one_row_each(probes):
    root, base, names, doc = probes
    rows = {r["probe"]: r for r in doc["rows"]}
    assert list(rows) == names and all(r["budget"] == 3 for r in rows.values())
    same_c = {round(r["accuracy"]["c"]["mean"], 9) for n, r in rows.items() if n != "budget-4x"}
    assert len(same_c) == 1  # (c) does not depend on how generated data is used: one cached cell per seed
    assert rows["budget-4x"]["overrides"] == {"clf_steps": str(4 * base.clf_steps)}
    assert rows["pretrain"]["overrides"] == {"pretrain_steps": str(base.clf_steps)}
    agree = rows["soft-labels"]["label_agreement"]
    assert agree and all(0 <= a <= 1 for a in agree)
    for r in rows.values():
        d_c = [r["accuracy"]["d"]["mean"] - r["accuracy"]["c"]["mean"]]
        assert r["d_vs_c"]["mean"] == pytest.approx(d_c[0])  # paired mean equals the difference of means
    md = (root / "out" / "probes.md").read_text()
    assert all(f"| {n} |" in md for n in names)
    # Levers added later enter a cell's key only when set: the cells cached before them keep their keys.
    levers = {}
    for f in (root / "cache" / "cells").glob("*.json"):
        cell = json.loads(f.read_text())
        if cell["condition"] == "d":
            levers[json.dumps(cell["levers"], sort_keys=True)] = cell["levers"]
    first = {
        "synthetic_labels",
        "synthetic_weight",
        "synthetic_classical",
        "pretrain_steps",
        "latent_scale",
        "shared_style",
    }
    assert all(set(lv) >= first for lv in levers.values())
    added = sorted(tuple(sorted(set(lv) - first)) for lv in levers.values() if set(lv) != first)
    assert added == [("latent_source",), ("real_fraction_end",), ("synthetic_smoothing",)]
    assert json.loads((root / "out" / "probes.json").read_text())["rows"][0]["probe"] == "baseline"


def test_label_smoothing_hands_the_classifier_smoothed_targets_for_generated_items(probes, monkeypatch):
    root, base, _names, _doc = probes
    seen = {}

    def capture(p, condition, *, real, fake, **kw):
        seen.update(real=real, fake=fake)
        raise InterruptedError

    monkeypatch.setattr(downstream.cells, "train_classifier", capture)
    p = dataclasses.replace(base, synthetic_smoothing=0.3)
    data = downstream.cells.load_data(p, None)
    run = next((root / "cache" / "gan").iterdir())
    with pytest.raises(InterruptedError):
        downstream.cells.run_cell(
            p, data, root / "cache", budget=3, seed=0, condition="d", amount=4, gan_run=run, device="cpu", log=print
        )
    hard = torch.arange(len(data.classes)).repeat_interleave(4)
    want = 0.7 * torch.nn.functional.one_hot(hard, len(data.classes)).float() + 0.3 / len(data.classes)
    assert torch.equal(seen["fake"][1], want) and seen["real"][1].dim() == 1  # real labels stay hard


def test_probes_rerun_from_the_cache_and_unknown_names_are_errors(probes, tmp_path):
    root, base, names, doc = probes
    again = downstream.probes.run_probes(
        base, names, data_root=None, cache=root / "cache", out=tmp_path, report_only=True, log=lambda m: None
    )
    assert [r["accuracy"] for r in again["rows"]] == [r["accuracy"] for r in doc["rows"]]
    with pytest.raises(downstream.InputError, match="unknown probe 'nope'"):
        downstream.profiles.probe_profile(base, "nope")
    with pytest.raises(downstream.InputError, match="synthetic_labels"):
        dataclasses.replace(base, synthetic_labels="fuzzy")


def test_probes_never_overwrite_a_file_they_did_not_write(probes, tmp_path):
    root, base, names, _doc = probes
    (tmp_path / "probes.md").write_text("my own notes\n")
    with pytest.raises(downstream.InputError, match="not written by the probes"):
        downstream.probes.run_probes(
            base, names[:1], data_root=None, cache=root / "cache", out=tmp_path, report_only=True, log=lambda m: None
        )
    assert (tmp_path / "probes.md").read_text() == "my own notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probes.md"]
