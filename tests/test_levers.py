"""Coverage levers (issue 11): minibatch std, depth, hinge, R1, learning-rate decay, betas, EMA warm-up and
checkpoint selection on a held-out part of the training split."""

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganaug.checkpoint import load_checkpoint, load_generator
from ganaug.cli import main
from ganaug.config import ModelConfig, TrainConfig
from ganaug.data import load_source, split_holdout, stratified_subset
from ganaug.errors import InputError
from ganaug.evaluator import Evaluator, EvaluatorConfig, EvaluatorNet
from ganaug.models import (
    ClassAffine,
    CoordinateMaps,
    Discriminator,
    Generator,
    MinibatchStd,
    discriminator_flops,
    generator_flops,
)
from ganaug.training import FakeBank, Trainer, density_weights, mode_seeking_term, same_label_pairs
from tests.conftest import TINY_MODEL, tiny_config
from tests.test_training import _assert_same_tensors, _state

LEVER_MODEL = ModelConfig(z_dim=8, embed_dim=4, g_width=8, d_width=8, mbstd=True, g_depth=1, d_depth=1, cond_bn=True)


@pytest.fixture(scope="module")
def evaluator_dir(tmp_path_factory):
    """An untrained tiny evaluator for digits (selection only needs a fixed feature map)."""
    cfg = EvaluatorConfig(width=4, hidden=16)
    torch.manual_seed(0)
    ev = Evaluator(EvaluatorNet(cfg), cfg, classes=load_source("digits").classes, meta={"data": {"dataset": "digits"}})
    return ev.save(tmp_path_factory.mktemp("ev") / "digits")


def test_minibatch_std_is_the_group_std_and_works_at_any_batch_size():
    x = torch.randn(8, 3, 7, 7)
    out = MinibatchStd(4)(x)
    assert out.shape == (8, 4, 7, 7) and torch.equal(out[:, :3], x)
    # groups are images i, i + 2, i + 4, i + 6: image 0's group is {0, 2, 4, 6}
    expected = x[[0, 2, 4, 6]].var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
    assert torch.allclose(out[0, 3], expected.expand(7, 7)) and torch.allclose(out[6, 3], expected.expand(7, 7))
    assert not torch.allclose(out[1, 3], out[0, 3])  # the other group
    for n in (1, 3, 6):  # not a multiple of 4: the largest divisor up to 4
        assert MinibatchStd(4)(torch.randn(n, 2, 7, 7)).shape == (n, 3, 7, 7)


def test_mbstd_feature_changes_d_with_the_batch_but_g_stays_batch_independent():
    d = Discriminator(LEVER_MODEL).eval()
    x, y = torch.randn(8, 1, 28, 28), torch.arange(8) % 10
    with torch.no_grad():
        alone, in_batch = d(x[:4], y[:4]), d(x, y)[:4]
    assert not torch.allclose(alone, in_batch)  # D sees the batch (what the lever is for)
    g = Generator(LEVER_MODEL).eval()
    z = torch.randn(6, 8)
    with torch.no_grad():
        assert torch.allclose(g(z, y[:6])[:1], g(z[:1], y[:1]), atol=1e-6)


@pytest.mark.parametrize(
    "cfg",
    [
        LEVER_MODEL,
        ModelConfig(g_depth=2, d_depth=1, mbstd=True),
        ModelConfig(upsample="deconv", cond_bn=True, mbstd=True),
        ModelConfig(mbstd=True, d_coords=True, center_of_mass=True, g_depth=1),
        ModelConfig(mbstd=True, d_coords=True, d_pack=2, g_depth=1),
    ],
)
def test_flop_formulas_count_the_extra_blocks(cfg):
    from torch.utils.flop_counter import FlopCounterMode

    g, d = Generator(cfg).eval(), Discriminator(cfg).eval()
    y = torch.zeros(4, dtype=torch.long)
    with FlopCounterMode(display=False) as fc:
        g(torch.randn(4, cfg.z_dim), y)
    assert fc.get_total_flops() == 4 * generator_flops(cfg)
    assert generator_flops(cfg) > generator_flops(ModelConfig(**{**cfg.__dict__, "g_depth": 0, "cond_bn": False}))
    with FlopCounterMode(display=False) as fc:
        d(torch.randn(4, 1, 28, 28), y)
    # the counter leaves out the projection head's product: one per forward pass (per pack of d_pack images)
    assert fc.get_total_flops() == 4 * discriminator_flops(cfg) - 4 // cfg.d_pack * 2 * (2 * cfg.d_width + 1) * 49


def test_coordinate_maps_give_d_each_pixels_row_and_column():
    x = torch.randn(3, 1, 28, 28)
    out = CoordinateMaps()(x)
    assert out.shape == (3, 3, 28, 28) and torch.equal(out[:, :1], x)
    assert torch.equal(out[1, 1, :, 5], torch.linspace(-1, 1, 28)) and torch.equal(
        out[2, 2, 7], torch.linspace(-1, 1, 28)
    )
    assert (out[:, 1, :, 0] == out[:, 1, :, 27]).all() and (out[:, 2, 0] == out[:, 2, 27]).all()
    # a plain first layer answers a dot the same wherever it lies; with the maps the answer says where
    a, b = -torch.ones(1, 1, 28, 28), -torch.ones(1, 1, 28, 28)
    a[0, 0, 6, 6], b[0, 0, 20, 20] = 1.0, 1.0  # the same dot, 14 pixels apart: output cells (3, 3) and (10, 10)
    for coords in (False, True):
        torch.manual_seed(0)
        d = Discriminator(ModelConfig(z_dim=8, embed_dim=4, d_width=8, d_coords=coords)).eval()
        assert d.features[1 if coords else 0].in_channels == (3 if coords else 1)
        first = d.features[: 2 if coords else 1]
        with torch.no_grad():
            same = torch.allclose(
                first(a)[0, :, 3, 3] - first(a)[0, :, 0, 0], first(b)[0, :, 10, 10] - first(b)[0, :, 0, 0]
            )
        assert same is not coords


def test_packed_d_judges_each_pack_alone_with_all_its_labels_in_their_slots():
    torch.manual_seed(0)
    cfg = ModelConfig(**{**TINY_MODEL.__dict__, "d_pack": 2})
    d = Discriminator(cfg).eval()
    assert d.features[0].in_channels == 2 and d.embed.num_embeddings == 2 * cfg.num_classes
    x, y = torch.rand(6, 1, 28, 28) * 2 - 1, torch.tensor([1, 2, 3, 3, 7, 0])
    with torch.no_grad():
        out = d(x, y)
        assert out.shape == (3,)  # one logit per pack of two consecutive images
        for k in range(3):  # pack k depends on images 2k and 2k + 1 only
            torch.testing.assert_close(d(x[2 * k : 2 * k + 2], y[2 * k : 2 * k + 2]), out[k : k + 1])
        # each slot's label counts, and in its slot: changing either label, or swapping the two, moves the logit
        for other in (torch.tensor([1, 5]), torch.tensor([4, 2]), torch.tensor([2, 1])):
            assert not torch.allclose(d(x[:2], other), out[:1])
        # the images are ordered channels too
        assert not torch.allclose(d(x[[1, 0]], y[[1, 0]]), out[:1])
    with pytest.raises(ValueError, match="not a multiple of 2"):
        d(x[:5], y[:5])
    with pytest.raises(ValueError, match="d_pack must be >= 1"):
        ModelConfig(d_pack=0)
    with pytest.raises(ValueError, match="aux_classifier"):
        ModelConfig(d_pack=2, aux_classifier=True)
    assert Generator(cfg).state_dict().keys() == Generator(TINY_MODEL).state_dict().keys()  # G and export unchanged


def test_packed_d_trains_and_its_batch_must_split_into_packs(tmp_path):
    cfg = ModelConfig(**{**TINY_MODEL.__dict__, "d_pack": 4})
    with pytest.raises(InputError, match="not a multiple of --d-pack 4"):
        Trainer.new(tiny_config(model=cfg, batch_size=30), tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()
    for extra, message in ((["--ac-weight", "0.5"], "--d-pack with --ac-weight"), ([], "not a multiple of --d-pack")):
        res = CliRunner().invoke(main, ["train", "--d-pack", "3", *extra, "--out", str(tmp_path / "cli"), "--quiet"])
        assert isinstance(res.exception, SystemExit) and res.exit_code != 0 and message in res.output, res.output
        assert not (tmp_path / "cli").exists()
    trainer = Trainer.new(
        tiny_config(model=cfg, loss="hinge", r1_gamma=1.0, r1_every=2), tmp_path / "run", progress=False
    )
    before = {n: t.clone() for n, t in trainer.gan.G.state_dict().items()}
    trainer.fit()
    assert all(torch.isfinite(t).all() for net in (trainer.gan.G, trainer.gan.D) for t in net.state_dict().values())
    assert any(not torch.equal(t, trainer.gan.G.state_dict()[n]) for n, t in before.items())  # G learned from D


def test_class_affine_is_a_per_class_per_channel_scale_and_shift():
    affine = ClassAffine(embed_dim=3, channels=2)
    e = torch.randn(4, 3)
    gamma_beta = affine.scale_shift(e)  # [4, 4]: gamma (2 channels), then beta
    for h in (torch.randn(4, 2), torch.randn(4, 2, 5, 5)):
        out = affine(h, e)
        for c in range(2):
            expected = h[:, c] * (1 + gamma_beta[:, c].view(-1, *[1] * (h.dim() - 2))) + gamma_beta[:, 2 + c].view(
                -1, *[1] * (h.dim() - 2)
            )
            torch.testing.assert_close(out[:, c], expected)


def test_cond_bn_lets_the_label_scale_g_features_and_starts_near_plain_batchnorm():
    torch.manual_seed(0)
    g = Generator(LEVER_MODEL).eval()
    affines = [m for m in g.modules() if isinstance(m, ClassAffine)]
    assert len(affines) == 1 + LEVER_MODEL.g_depth + 1  # after every BatchNorm of G
    z, y = torch.randn(5, 8), torch.full((5,), 3)
    with torch.no_grad():
        before = g(z, y)
        for m in affines:
            m.scale_shift.weight.zero_()
            m.scale_shift.bias.zero_()
        plain = g(z, y)  # zero scale and shift: plain BatchNorm, label still enters through the input
        affines[-1].scale_shift.bias[0] = 1.0  # gamma of channel 0 of the last stage, for every class
        assert not torch.allclose(g(z, y), plain)
    assert (before - plain).abs().max() < 0.5  # the DCGAN init keeps the class term small at the start


def test_default_config_keeps_the_old_architecture():
    # Checkpoints written before the levers existed must still load: no new tensors at the defaults.
    names = set(Generator(ModelConfig()).state_dict()) | set(Discriminator(ModelConfig()).state_dict())
    assert not any(n.startswith("mid.") or "scale_shift" in n for n in names)
    assert Discriminator(ModelConfig()).linear.in_features == 2 * 64 * 49


@pytest.mark.parametrize("loss, r2_gamma", [("hinge", 0.0), ("rpgan", 3.0)])
def test_resume_equals_an_uninterrupted_run_with_the_levers_on(tmp_path, evaluator_dir, loss, r2_gamma):
    levers = {
        "model": LEVER_MODEL,
        "loss": loss,
        "r2_gamma": r2_gamma,
        "r1_gamma": 2.0,
        "r1_every": 2,
        "lr_decay": "cosine",
        "beta1": 0.0,
        "beta2": 0.99,
        "ema_decay": 0.9999,
        "ema_warmup": 50.0,
        "select_by": "fd",
        "holdout": 3,
        "select_evaluator": str(evaluator_dir),
        "diffaugment": ("translation", "cutout"),
        "mode_seeking": 1.0,
        "coverage_weight": 0.5,
        "coverage_bank": 40,  # smaller than the 5 steps before the cut: it has wrapped when the checkpoint is written
        "coverage_every": 2,
        "flatten_density": 1.0,
    }
    Trainer.new(tiny_config(epochs=3, **levers), tmp_path / "full", progress=False).fit()
    # the same run killed after its first epoch's checkpoint (the decay targets the configured total)
    cut = Trainer.new(tiny_config(epochs=3, **levers), tmp_path / "cut", progress=False)
    end_epoch = cut._end_epoch

    def killed_after_the_first(epoch):
        end_epoch(epoch)
        raise KeyboardInterrupt

    cut._end_epoch = killed_after_the_first
    with pytest.raises(KeyboardInterrupt):
        cut.fit()
    assert load_checkpoint(tmp_path / "cut")["step"] == 5  # 170 images (30 held out) at batch 32
    Trainer.resume(tmp_path / "cut", progress=False).fit()
    full, cut = _state(tmp_path / "full"), _state(tmp_path / "cut")
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "rng", "step", "selected", "coverage_bank"):
        _assert_same_tensors(full[key], cut[key], key)
    # the learning rate followed the cosine to (nearly) zero, the same in both
    assert full["opt_d"]["param_groups"][0]["lr"] < 0.05 * 2e-4


def test_lr_decay_is_a_function_of_the_step(tmp_path):
    trainer = Trainer.new(tiny_config(lr_decay="linear", lr_g=1e-3, lr_d=4e-4), tmp_path / "run", progress=False)
    gan = trainer.gan
    gan.at_step(0, 100)
    assert gan.opt_g.param_groups[0]["lr"] == 1e-3 and gan.opt_d.param_groups[0]["lr"] == 4e-4
    gan.at_step(75, 100)
    assert math.isclose(gan.opt_g.param_groups[0]["lr"], 2.5e-4) and math.isclose(gan.opt_d.param_groups[0]["lr"], 1e-4)
    trainer = Trainer.new(tiny_config(lr_decay="cosine"), tmp_path / "cos", progress=False)
    trainer.gan.at_step(50, 100)
    assert math.isclose(trainer.gan.opt_g.param_groups[0]["lr"], 1e-4)
    trainer.run.release()


def test_hinge_and_r1_losses_are_what_they_say(tmp_path, monkeypatch):
    trainer = Trainer.new(tiny_config(loss="hinge", r1_gamma=10.0, r1_every=2), tmp_path / "run", progress=False)
    gan = trainer.gan
    logits = {"real": torch.tensor([2.0, 0.5, -1.0]), "fake": torch.tensor([-2.0, 0.0, 1.5])}
    calls, scale = [], torch.tensor(0.01, requires_grad=True)

    def fake_d(x, y):  # D(x) = a fixed logit whose gradient with respect to every pixel is 0.01
        which = "real" if not calls else "fake"
        calls.append(which)
        s = x.flatten(1).sum(1) * scale
        return s - s.detach() + logits[which]

    monkeypatch.setattr(gan, "D_train", fake_d)
    monkeypatch.setattr(gan, "opt_d", type("NoOpt", (), {"zero_grad": lambda *a, **k: None, "step": lambda *a: 0})())
    monkeypatch.setattr(gan.scaler_d, "step", lambda opt: None)
    real, y, z = trainer.images[:3], trainer.labels[:3], torch.randn(3, 8)
    gan.step = 0  # an R1 step: lazy every 2, weight 10 / 2 * 2 * |0.01|^2 * 784 pixels
    stats, _ = gan.d_step(real, y, z, keep_fake=False)
    hinge = torch.relu(1 - logits["real"]).mean() + torch.relu(1 + logits["fake"]).mean()
    assert torch.isclose(stats[0], hinge + 10.0 / 2 * 2 * 1e-4 * 784, rtol=1e-4)
    calls.clear()
    gan.step = 1  # not an R1 step
    stats, _ = gan.d_step(real, y, z, keep_fake=False)
    assert torch.isclose(stats[0], hinge, rtol=1e-5)
    trainer.run.release()


def test_rpgan_and_r2_losses_are_what_they_say(tmp_path, monkeypatch):
    trainer = Trainer.new(tiny_config(loss="rpgan", r2_gamma=4.0, r1_every=2), tmp_path / "run", progress=False)
    gan = trainer.gan
    logits = {"real": torch.tensor([2.0, 0.5, -1.0]), "fake": torch.tensor([-2.0, 0.0, 1.5])}
    scale = torch.tensor(0.01, requires_grad=True)

    def fake_d(x, y):  # D(x) = a fixed logit per kind whose gradient with respect to every pixel is 0.01
        which = "real" if torch.equal(x.detach(), real) else "fake"
        s = x.flatten(1).sum(1) * scale
        return s - s.detach() + logits[which]

    for name in ("D_train", "D_g"):
        monkeypatch.setattr(gan, name, fake_d)
    monkeypatch.setattr(gan, "opt_d", type("NoOpt", (), {"zero_grad": lambda *a, **k: None, "step": lambda *a: 0})())
    monkeypatch.setattr(gan.scaler_d, "step", lambda opt: None)
    real, y, z = trainer.images[:3], trainer.labels[:3], torch.randn(3, 8)
    pairs = torch.nn.functional.softplus(logits["fake"] - logits["real"]).mean()  # fake i against real i
    gan.step = 0  # an R2 step: lazy every 2, weight 4 / 2 * 2 * |0.01|^2 * 784 pixels on the fakes
    stats, batch = gan.d_step(real, y, z, keep_fake=True)
    assert torch.isclose(stats[0], pairs + 4.0 / 2 * 2 * 1e-4 * 784, rtol=1e-4)
    gan.step = 1
    stats, batch = gan.d_step(real, y, z, keep_fake=True)
    assert torch.isclose(stats[0], pairs, rtol=1e-5)
    g_loss = gan.g_step(batch)  # the reverse pairing, against the D step's reals
    assert torch.isclose(g_loss, torch.nn.functional.softplus(logits["real"] - logits["fake"]).mean(), rtol=1e-5)
    trainer.run.release()


def test_default_levers_leave_a_run_bitwise_unchanged(tmp_path):
    # Every lever at its default is the old code path: same weights as an explicit old-style config.
    Trainer.new(tiny_config(epochs=1), tmp_path / "a", progress=False).fit()
    explicit = tiny_config(epochs=1, loss="bce", r1_gamma=0.0, lr_decay="none", ema_warmup=10.0)
    Trainer.new(explicit, tmp_path / "b", progress=False).fit()
    _assert_same_tensors(_state(tmp_path / "a")["G_ema"], _state(tmp_path / "b")["G_ema"], "G_ema")


def test_selection_exports_the_best_snapshot_and_never_trains_on_the_holdout(tmp_path, evaluator_dir):
    config = tiny_config(epochs=3, model=TINY_MODEL, select_by="recall", holdout=4, select_evaluator=str(evaluator_dir))
    Trainer.new(config, tmp_path / "run", progress=False).fit()
    state = load_checkpoint(tmp_path / "run")
    sel = state["selected"]
    assert sel["metric"] == "recall" and 1 <= sel["epoch"] <= 3 and 0 <= sel["score"] <= 1
    g, _ = load_generator(tmp_path / "run")
    weights = {k.removeprefix("module."): v for k, v in sel["G_ema"].items() if k.startswith("module.")}
    _assert_same_tensors(g.state_dict(), weights, "G")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    history = summary["selected"].pop("history")
    assert summary["selected"] == {"metric": "recall", "score": sel["score"], "epoch": sel["epoch"]}
    assert [e for e, _ in history] == [1, 2, 3] and max(s for _, s in history) == sel["score"]
    assert dict(history)[sel["epoch"]] == sel["score"] and history == sel["history"]
    meta = json.loads((tmp_path / "run" / "config.json").read_text())
    trained = np.load(tmp_path / "run" / "indices.npy")
    assert meta["data"]["size"] == 200 - 40 == len(trained) and meta["data"]["holdout_per_class"] == 4
    # the held-out images are those split_holdout draws from the 20-per-class subset, and none was trained on
    labels = load_source("digits").labels.numpy()
    subset = stratified_subset(labels, 20, seed=0)
    keep, held = split_holdout(labels[subset], 4, seed=0)
    assert np.array_equal(subset[keep], trained) and not set(subset[held]) & set(trained)
    assert np.bincount(labels[subset[held]]).tolist() == [4] * 10


def test_evaluate_rebuilds_the_training_images_of_a_holdout_run(tmp_path, evaluator_dir):
    from ganaug.metrics import training_images

    config = tiny_config(select_by="fd", holdout=2, select_evaluator=str(evaluator_dir))
    Trainer.new(config, tmp_path / "run", progress=False).fit()
    data = json.loads((tmp_path / "run" / "config.json").read_text())["data"]
    assert training_images(data, root=None).shape == (180, 1, 28, 28)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"select_by": "fd"}, "go together"),
        ({"holdout": 5}, "go together"),
        ({"loss": "hinge", "label_smoothing": 0.1}, "bce loss only"),
        ({"loss": "wasserstein"}, "loss must be one of"),
        ({"r1_gamma": -1.0}, "r1_gamma"),
        ({"mode_seeking": -1.0}, "mode_seeking"),
        ({"coverage_weight": -0.1}, "coverage_weight"),
        ({"coverage_bank": 0}, "coverage_bank"),
        ({"coverage_every": 0}, "coverage_every"),
        ({"flatten_density": -1.0}, "flatten_density"),
        ({"density_clip": 0.0}, "density_clip"),
        ({"r2_gamma": -1.0}, "r2_gamma"),
        ({"loss": "rpgan", "label_smoothing": 0.1}, "bce loss only"),
        ({"compile": True, "r2_gamma": 1.0}, "double backward"),
        ({"mode_seeking": float("inf")}, "mode_seeking"),
        ({"ema_warmup": 1.0}, "ema_warmup"),
        ({"compile": True, "r1_gamma": 1.0}, "double backward"),
    ],
)
def test_bad_lever_combinations_are_refused_up_front(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)


def test_a_holdout_that_leaves_a_class_empty_is_one_line(tmp_path, evaluator_dir):
    res = CliRunner().invoke(
        main,
        ["train", "--per-class", "3", "--holdout", "3", "--select-by", "fd", "--select-evaluator", str(evaluator_dir)]
        + ["--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--no-export"],
    )
    assert res.exit_code == 2 and "choose --holdout < 3" in res.output, res.output


def test_cli_levers_reach_the_config(tmp_path):
    args = ["train", "--out", str(tmp_path / "run"), "--per-class", "10", "--epochs", "1", "--batch-size", "20"]
    args += ["--device", "cpu", "--no-export", "--quiet", "--z-dim", "8", "--g-width", "8", "--d-width", "8"]
    args += [
        "--mbstd",
        "--cond-bn",
        "--d-coords",
        "--d-pack",
        "2",
        "--g-depth",
        "1",
        "--d-depth",
        "2",
        "--loss",
        "hinge",
        "--spectral-norm",
        "--r1-gamma",
        "1",
    ]
    args += ["--r1-every", "4", "--lr-decay", "linear", "--betas", "0.0,0.99", "--ema-warmup", "100"]
    args += ["--mode-seeking", "0.5", "--r2-gamma", "2", "--coverage-weight", "0.3", "--coverage-bank", "64"]
    args += ["--coverage-every", "2", "--flatten-density", "3", "--density-clip", "0.8"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    model = cfg["model"]
    assert (model["mbstd"], model["g_depth"], model["d_depth"], model["spectral_norm"]) == (True, 1, 2, True)
    assert model["cond_bn"] is True and model["d_coords"] is True and model["d_pack"] == 2
    assert (cfg["loss"], cfg["r1_gamma"], cfg["r1_every"], cfg["lr_decay"]) == ("hinge", 1.0, 4, "linear")
    assert (cfg["beta1"], cfg["beta2"], cfg["ema_warmup"], cfg["mode_seeking"]) == (0.0, 0.99, 100.0, 0.5)
    assert cfg["r2_gamma"] == 2.0
    assert (cfg["coverage_weight"], cfg["coverage_bank"], cfg["coverage_every"]) == (0.3, 64, 2)
    assert (cfg["flatten_density"], cfg["density_clip"]) == (3.0, 0.8)
    bad = CliRunner().invoke(main, [*args[:2], str(tmp_path / "other"), "--betas", "0.5"])
    assert bad.exit_code == 2 and "--betas" in bad.output


def test_aux_classifier_head_shapes_and_the_weight_that_goes_with_it():
    cfg = ModelConfig(**{**TINY_MODEL.__dict__, "aux_classifier": True})
    d = Discriminator(cfg).eval()
    logit, classes = d(torch.rand(5, 1, 28, 28) * 2 - 1, torch.arange(5))
    assert logit.shape == (5,) and classes.shape == (5, cfg.num_classes)
    assert isinstance(Discriminator(TINY_MODEL)(torch.zeros(2, 1, 28, 28), torch.arange(2)), torch.Tensor)
    assert Generator(cfg).state_dict().keys() == Generator(TINY_MODEL).state_dict().keys()  # G and export unchanged
    with pytest.raises(ValueError, match="go together"):
        tiny_config(ac_weight=1.0)  # a class term without a class head
    with pytest.raises(ValueError, match="go together"):
        tiny_config(model=cfg)  # a class head nothing trains
    with pytest.raises(ValueError, match="ac_weight must be"):
        tiny_config(model=cfg, ac_weight=float("nan"))


def test_ac_term_teaches_the_class_head_the_real_labels_and_reaches_g(tmp_path):
    cfg = ModelConfig(**{**TINY_MODEL.__dict__, "aux_classifier": True})
    trainer = Trainer.new(tiny_config(model=cfg, ac_weight=1.0, lr_d=2e-3), tmp_path / "run", progress=False)
    gan = trainer.gan
    real, y = trainer.images[:32], trainer.labels[:32]

    def head_loss():
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(gan.D(real, y)[1], y).item()

    before = head_loss()
    g0 = [p.detach().clone() for p in gan.G.parameters()]
    for _ in range(30):
        z = torch.randn(32, cfg.z_dim)
        _, batch = gan.d_step(real, y, z, keep_fake=True)
    gan.g_step(batch)
    assert head_loss() < 0.5 * before  # the class head learns the real labels
    assert any(not torch.equal(a, b) for a, b in zip(g0, gan.G.parameters()))
    res = CliRunner().invoke(
        main,
        ["train", "--out", str(tmp_path / "cli"), "--per-class", "10", "--epochs", "1", "--batch-size", "20"]
        + ["--device", "cpu", "--no-export", "--quiet", "--z-dim", "8", "--g-width", "8", "--d-width", "8"]
        + ["--ac-weight", "0.5"],
    )
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "cli" / "config.json").read_text())["config"]
    assert saved["ac_weight"] == 0.5 and saved["model"]["aux_classifier"] is True


@pytest.mark.parametrize("seed", range(5))
def test_same_label_pairs_pair_distinct_items_of_one_label(seed):
    labels = torch.randint(0, 4, (33,), generator=torch.Generator().manual_seed(seed))
    a, b = same_label_pairs(labels)
    assert torch.equal(labels[a], labels[b])
    used = torch.cat([a, b])
    assert len(set(used.tolist())) == used.numel()  # no item in two pairs, none paired with itself
    # neighbours in label order: each class of n items gives at least floor(n / 2) - 1 pairs, at most floor(n / 2)
    counts = torch.bincount(labels, minlength=4)
    assert (counts // 2 - 1).clamp(min=0).sum() <= a.numel() <= (counts // 2).sum()
    assert same_label_pairs(torch.full((6,), 2))[0].numel() == 3
    assert same_label_pairs(torch.arange(6))[0].numel() == 0


def test_mode_seeking_term_is_msgan_s_ratio_over_same_label_pairs():
    z = torch.tensor([[0.0, 0.0], [1.0, 2.0], [5.0, 5.0], [3.0, 1.0]])
    y = torch.tensor([1, 0, 1, 0])  # pairs (1, 3) of class 0 and (0, 2) of class 1
    fake = torch.stack([torch.full((1, 2, 2), v) for v in (0.0, 0.5, 1.0, -0.5)])
    # mean |x_a - x_b| = (1 + 1) / 2 = 1; mean |z_a - z_b| = (2 + 1 + 5 + 5) / 4 = 3.25 (pairs in label order)
    assert torch.isclose(mode_seeking_term(fake, y, z), torch.tensor(1 / (1 / 3.25 + 1e-5)))
    # a generator that ignores z pays the most; no repeated label: no term
    assert mode_seeking_term(torch.zeros(4, 1, 2, 2), y, z) > 1e4
    assert mode_seeking_term(fake, torch.arange(4), z) == 0


def test_mode_seeking_adds_its_term_to_g_s_loss_and_reaches_g(tmp_path):
    runs = {}
    for w in (0.0, 2.0):
        trainer = Trainer.new(tiny_config(loss="hinge", mode_seeking=w), tmp_path / str(w), progress=False)
        real, y = trainer.images[:32], trainer.labels[:32]
        z = torch.randn(32, 8, generator=torch.Generator().manual_seed(0))
        _, batch = trainer.gan.d_step(real, y, z, keep_fake=True)
        term = mode_seeking_term(batch.fakes.detach(), batch.labels, z)
        runs[w] = trainer.gan.g_step(batch), term, [p.detach().clone() for p in trainer.gan.G.parameters()]
        trainer.run.release()
    (loss0, term, g0), (loss2, _, g2) = runs[0.0], runs[2.0]
    assert term > 0 and torch.isclose(loss2 - loss0, 2.0 * term, rtol=1e-4)
    assert any(not torch.equal(a, b) for a, b in zip(g0, g2))


def test_fake_bank_finds_the_nearest_fake_of_the_same_class_and_overwrites_the_oldest():
    bank = FakeBank(4, z_dim=2, device=torch.device("cpu"))
    real, y = torch.zeros(2, 1, 2, 2), torch.tensor([0, 1])
    _, found = bank.nearest(real, y)
    assert not found.any()  # empty: nothing to pull
    fakes = torch.tensor([0.1, 0.5, 0.05, 0.0]).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    bank.add(fakes, torch.tensor([0, 0, 1, 2]), torch.arange(8.0).view(4, 2))
    z, found = bank.nearest(real, y)
    # class 0: fake 0 (0.1) beats fake 1 (0.5); class 1's only fake is 2; fake 3 (exactly 0) is class 2's
    assert found.tolist() == [True, True] and z.tolist() == [[0.0, 1.0], [4.0, 5.0]]
    bank.add(torch.full((2, 1, 2, 2), 0.9), torch.tensor([3, 3]), torch.full((2, 2), -1.0))  # slots 0 and 1 go
    z, found = bank.nearest(real, torch.tensor([0, 3]))
    assert found.tolist() == [False, True] and z[1].tolist() == [-1.0, -1.0]
    assert bank.next == 2


def test_coverage_term_is_the_pixel_error_to_the_nearest_bank_fake_and_reaches_g(tmp_path):
    runs = {}
    for w in (0.0, 3.0):
        trainer = Trainer.new(tiny_config(loss="hinge", coverage_weight=w or 1.0), tmp_path / str(w), progress=False)
        gan, gen = trainer.gan, torch.Generator().manual_seed(0)
        for _ in range(3):  # fill the bank with three batches of fakes
            gan.d_step(trainer.images[:32], trainer.labels[:32], torch.randn(32, 8, generator=gen), keep_fake=False)
        real, y = trainer.images[32:64], trainer.labels[32:64]
        _, batch = gan.d_step(real, y, torch.randn(32, 8, generator=gen), keep_fake=True)
        z, found = gan.bank.nearest(real, y)
        assert found.all()
        with torch.no_grad():  # the expected term, computed from the bank by hand
            term = (gan.G(z, y) - real).square().mean()
        object.__setattr__(gan.config, "coverage_weight", w)
        if not w:
            gan.bank = None  # the term off: the same G step without it
        runs[w] = gan.g_step(batch), term, [p.detach().clone() for p in gan.G.parameters()]
        trainer.run.release()
    (loss0, term, g0), (loss3, _, g3) = runs[0.0], runs[3.0]
    assert term > 0 and torch.isclose(loss3 - loss0, 3.0 * term, rtol=1e-3)
    assert any(not torch.equal(a, b) for a, b in zip(g0, g3))


def test_density_weights_favour_the_sparse_images_and_keep_each_class_s_share():
    # class 0: three images near 0 and one far away; class 1: two images
    pixels = torch.tensor([0.0, 0.1, 0.2, 5.0, 1.0, 1.0])
    images, labels = pixels.view(6, 1, 1, 1), torch.tensor([0, 0, 0, 0, 1, 1])
    w = density_weights(images, labels, 1.0, k=1)
    assert torch.isclose(w.sum(), torch.tensor(1.0)) and torch.isclose(w[:4].sum(), torch.tensor(4 / 6))
    d = torch.tensor([0.1, 0.1, 0.1, 4.8])  # each class-0 image's nearest other image
    assert torch.allclose(w[:4], d / d.sum() * 4 / 6)
    assert torch.allclose(w[4:], torch.full((2,), 1 / 6))  # identical images: equal weights
    assert density_weights(images, labels, 0.0, k=1) is None  # off: each image once an epoch
    assert torch.allclose(density_weights(images, labels, 1e-9, k=1), torch.full((6,), 1 / 6), atol=1e-6)
    squared = density_weights(images, labels, 2.0, k=1)
    assert squared[3] > w[3] and torch.allclose(squared[:4], d**2 / (d**2).sum() * 4 / 6)
    clipped = density_weights(images, labels, 1.0, k=1, clip=0.5)  # distances capped at the class median
    assert torch.allclose(clipped[:4], torch.full((4,), 1 / 6))


def test_flatten_density_draws_an_epoch_with_those_weights(tmp_path):
    trainer = Trainer.new(tiny_config(flatten_density=4.0), tmp_path / "run", progress=False)
    expected = density_weights(trainer.images, trainer.labels, 4.0, clip=0.9)
    assert torch.equal(trainer.weights, expected) and expected.max() > 2 * expected.min()
    trainer.run.release()
    uniform = Trainer.new(tiny_config(), tmp_path / "uniform", progress=False)
    assert uniform.weights is None
    uniform.run.release()
