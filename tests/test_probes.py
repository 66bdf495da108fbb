"""Issue 12's machinery: the shift-flip classical augmentation, the classifier's soft labels, loss weights and
fine-tuning, the sampling levers, and the probes table of the downstream benchmark."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from ganaug import cas
from ganaug.augment_ops import CLASSICAL, classical, classical_for, shift_flip
from ganaug.cas import CASClassifier
from ganaug.cli.bench import _load_benchmark
from ganaug.config import TrainConfig
from ganaug.sampling import latents
from tests.test_downstream import TINY

downstream = _load_benchmark("downstream")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
    # The key of the cpu profile's seed-0 GAN at 10/class, as cached since issue 12 began (sessions 4-6 trained
    # it): an option added to ModelConfig or TrainConfig since must stay out of the key at its default.
    mnist = downstream.PROFILES["cpu"]
    m = downstream.gan_config(mnist, 10, 0, n_images=100, data_root=None, device="cpu")
    assert downstream.gan_dir(m, tmp_path).name == "10_s0_31f4408a74e6"
    cond_bn = downstream.gan_config(
        downstream.profiles.probe_profile(mnist, "cond-bn"), 10, 0, n_images=100, data_root=None, device="cpu"
    )
    assert cond_bn.model.cond_bn and downstream.gan_dir(cond_bn, tmp_path).name != "10_s0_31f4408a74e6"


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

    monkeypatch.setattr("ganaug.metrics.open_generator", lambda run, backend: Stub())
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


# ---- probes --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    root = tmp_path_factory.mktemp("probes")
    base = dataclasses.replace(TINY, name="tiny-probes", cas_gan_steps=0)
    names = ["baseline", "soft-labels", "pretrain", "shared-style", "no-classical-on-synthetic", "budget-4x"]
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
    assert json.loads((root / "out" / "probes.json").read_text())["rows"][0]["probe"] == "baseline"


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
