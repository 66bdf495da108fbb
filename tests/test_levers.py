"""The training levers the results kept (hinge loss, lazy R1, Adam betas, EMA warm-up, density weighting), how a
``--config`` file sets them, and how runs of older versions read: a removed lever that was off is dropped, one
that was on is refused in one line."""

import json

import pytest
import torch
from click.testing import CliRunner

from ganaug.cli import main
from ganaug.config import (
    REMOVED_MODEL_KEYS,
    REMOVED_TRAIN_KEYS,
    ModelConfig,
    RemovedLeverError,
    TrainConfig,
    upgrade_config,
)
from ganaug.errors import InputError
from ganaug.models.dcgan import Discriminator, Generator
from ganaug.train.checkpoint import load_checkpoint, load_generator
from ganaug.train.trainer import Trainer
from ganaug.train.weighting import density_weights
from tests.conftest import TINY_MODEL, tiny_config
from tests.test_training import _assert_same_tensors, _state

#: Every key an older ganaug wrote that this one no longer has, at the value that meant "off", as its
#: config.json held them (tuples as JSON lists).
OLD_TRAIN_KEYS = {
    "r2_gamma": 0.0,
    "ac_weight": 0.0,
    "mode_seeking": 0.0,
    "coverage_weight": 0.0,
    "coverage_bank": 1024,
    "coverage_every": 1,
    "lr_decay": "none",
    "select_by": "none",
    "holdout": 0,
    "select_evaluator": None,
    "diffaugment": [],
}
OLD_MODEL_KEYS = {
    "spectral_norm": False,
    "upsample": "subpixel",
    "mbstd": False,
    "g_depth": 0,
    "d_depth": 0,
    "aux_classifier": False,
    "cond_bn": False,
    "center_of_mass": False,
    "d_coords": False,
    "d_pack": 1,
    "proj_weight": 1.0,
}


def test_the_tables_of_removed_keys_are_what_older_versions_wrote():
    assert set(OLD_TRAIN_KEYS) == set(REMOVED_TRAIN_KEYS) and set(OLD_MODEL_KEYS) == set(REMOVED_MODEL_KEYS)
    assert not set(REMOVED_TRAIN_KEYS) & {f for f in TrainConfig.__dataclass_fields__}
    assert not set(REMOVED_MODEL_KEYS) & {f for f in ModelConfig.__dataclass_fields__}


def test_the_architecture_has_only_the_tensors_of_the_kept_model():
    names = set(Generator(ModelConfig()).state_dict()) | set(Discriminator(ModelConfig()).state_dict())
    assert not any(n.startswith(("mid.", "aux.")) or "scale_shift" in n for n in names)
    assert Discriminator(ModelConfig()).linear.in_features == 2 * 64 * 49


def test_resume_equals_an_uninterrupted_run_with_the_levers_on(tmp_path):
    levers = {
        "loss": "hinge",
        "r1_gamma": 2.0,
        "r1_every": 2,
        "beta1": 0.0,
        "beta2": 0.99,
        "ema_decay": 0.9999,
        "ema_warmup": 50.0,
        "flatten_density": 1.0,
        "augment_real": True,
    }
    Trainer.new(tiny_config(epochs=3, **levers), tmp_path / "full", progress=False).fit()
    cut = Trainer.new(tiny_config(epochs=3, **levers), tmp_path / "cut", progress=False)
    end_epoch = cut._end_epoch

    def killed_after_the_first(epoch):
        end_epoch(epoch)
        raise KeyboardInterrupt

    cut._end_epoch = killed_after_the_first
    with pytest.raises(KeyboardInterrupt):
        cut.fit()
    assert load_checkpoint(tmp_path / "cut")["step"] == 6  # 200 images at batch 32
    Trainer.resume(tmp_path / "cut", progress=False).fit()
    full, cut = _state(tmp_path / "full"), _state(tmp_path / "cut")
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "rng", "aug_rng", "step"):
        _assert_same_tensors(full[key], cut[key], key)


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
    real, y, z = trainer.images[:3], trainer.labels[:3], torch.randn(3, TINY_MODEL.z_dim)
    gan.step = 0  # an R1 step: lazy every 2, weight 10 / 2 * 2 * |0.01|^2 * 784 pixels
    stats, _ = gan.d_step(real, y, z, keep_fake=False)
    hinge = torch.relu(1 - logits["real"]).mean() + torch.relu(1 + logits["fake"]).mean()
    assert torch.isclose(stats[0], hinge + 10.0 / 2 * 2 * 1e-4 * 784, rtol=1e-4)
    calls.clear()
    gan.step = 1  # not an R1 step
    stats, _ = gan.d_step(real, y, z, keep_fake=False)
    assert torch.isclose(stats[0], hinge, rtol=1e-5)
    trainer.run.release()


def test_default_levers_leave_a_run_bitwise_unchanged(tmp_path):
    # Every lever at its default is the plain code path: same weights as an explicit config.
    Trainer.new(tiny_config(epochs=1), tmp_path / "a", progress=False).fit()
    explicit = tiny_config(epochs=1, loss="bce", r1_gamma=0.0, d_label_smoothing=0.0, ema_warmup=10.0)
    Trainer.new(explicit, tmp_path / "b", progress=False).fit()
    _assert_same_tensors(_state(tmp_path / "a")["G_ema"], _state(tmp_path / "b")["G_ema"], "G_ema")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"loss": "hinge", "d_label_smoothing": 0.1}, "bce loss only"),
        ({"loss": "rpgan"}, "loss must be one of bce, hinge"),
        ({"r1_gamma": -1.0}, "r1_gamma"),
        ({"r1_every": 0}, "r1_every"),
        ({"flatten_density": -1.0}, "flatten_density"),
        ({"flatten_density": float("inf")}, "flatten_density"),
        ({"density_clip": 0.0}, "density_clip"),
        ({"ema_warmup": 1.0}, "ema_warmup"),
        ({"d_label_smoothing": 0.5}, "d_label_smoothing"),
        ({"compile": True, "r1_gamma": 1.0}, "double backward"),
    ],
)
def test_bad_lever_values_are_refused_up_front(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)


def test_a_config_file_sets_the_levers_that_have_no_option(tmp_path):
    recipe = {
        "preset": "mine",
        "base": "digits",
        "train": {
            "loss": "hinge",
            "r1_gamma": 5.0,
            "r1_every": 4,
            "beta1": 0.0,
            "beta2": 0.99,
            "ema_decay": 0.998,
            "ema_warmup": 100.0,
            "model": {"z_dim": 8, "embed_dim": 4},
        },
    }
    (tmp_path / "mine.json").write_text(json.dumps(recipe))
    args = ["train", "--config", str(tmp_path / "mine.json"), "--out", str(tmp_path / "run"), "--real-per-class", "10"]
    args += ["--epochs", "1", "--batch-size", "20", "--device", "cpu", "--no-export", "--quiet", "--g-width", "8"]
    args += ["--d-width", "8"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert (cfg["loss"], cfg["r1_gamma"], cfg["r1_every"], cfg["beta1"], cfg["beta2"]) == ("hinge", 5.0, 4, 0.0, 0.99)
    assert (cfg["ema_decay"], cfg["ema_warmup"], cfg["preset"]) == (0.998, 100.0, "mine@1")
    assert cfg["model"] == {"num_classes": 10, "z_dim": 8, "embed_dim": 4, "g_width": 8, "d_width": 8}
    # the bce loss's one-sided smoothing, under its one name
    smooth = {"preset": "smooth", "train": {"d_label_smoothing": 0.1, "flatten_density": 2.0, "density_clip": 0.8}}
    (tmp_path / "smooth.json").write_text(json.dumps(smooth))
    res = CliRunner().invoke(main, [*args[:2], str(tmp_path / "smooth.json"), "--out", str(tmp_path / "s"), *args[5:]])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "s" / "config.json").read_text())["config"]
    assert (cfg["d_label_smoothing"], cfg["flatten_density"], cfg["density_clip"]) == (0.1, 2.0, 0.8)


@pytest.mark.parametrize(
    "train, message",
    [
        ({"label_smoothing": 0.1}, "train.label_smoothing is now train.d_label_smoothing"),
        ({"lr_decay": "cosine"}, "train.lr_decay is a lever ganaug no longer has"),
        ({"model": {"mbstd": True}}, "train.model.mbstd is a lever ganaug no longer has"),
        ({"loss": "rpgan"}, "loss must be one of bce, hinge"),
    ],
)
def test_a_config_file_with_an_old_key_is_one_line(tmp_path, train, message):
    (tmp_path / "old.json").write_text(json.dumps({"preset": "old", "train": train}))
    res = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "old.json"), "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "run").exists()


def _as_an_older_version_wrote_it(run, **changes):
    """Rewrite ``run``'s config.json and checkpoint as an older ganaug wrote them: every removed key at its "off"
    value, ``label_smoothing`` under its old name; ``changes`` (``model.NAME`` for a model key) on top."""

    def old(config):
        config = dict(config)
        config["label_smoothing"] = config.pop("d_label_smoothing")
        config |= OLD_TRAIN_KEYS | {k: v for k, v in changes.items() if not k.startswith("model.")}
        config["model"] = {**config["model"], **OLD_MODEL_KEYS}
        config["model"] |= {k[len("model.") :]: v for k, v in changes.items() if k.startswith("model.")}
        return config

    meta = json.loads((run / "config.json").read_text())
    meta["config"] = old(meta["config"])
    (run / "config.json").write_text(json.dumps(meta))
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["config"] = old(state["config"])
    torch.save(state, run / "checkpoint.pt")


def test_a_run_of_an_older_version_with_the_removed_levers_off_resumes_and_exports(tmp_path):
    Trainer.new(tiny_config(epochs=1, d_label_smoothing=0.1), tmp_path / "run", progress=False).fit()
    _as_an_older_version_wrote_it(tmp_path / "run")
    g, meta = load_generator(tmp_path / "run")
    assert meta["config"]["label_smoothing"] == 0.1 and not g.center_of_mass
    res = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "run"), "--epochs", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["d_label_smoothing"] == 0.1
    _as_an_older_version_wrote_it(tmp_path / "run")
    res = CliRunner().invoke(main, ["export", str(tmp_path / "run")])
    assert res.exit_code == 0 and (tmp_path / "run" / "generator.onnx").is_file(), res.output
    upgraded = upgrade_config({"label_smoothing": 0.2, **OLD_TRAIN_KEYS, "model": OLD_MODEL_KEYS})
    assert upgraded == {"d_label_smoothing": 0.2, "model": {}}


@pytest.mark.parametrize(
    "lever, said",
    [
        ({"model.mbstd": True}, "minibatch standard deviation (--mbstd)"),
        ({"model.upsample": "deconv"}, "--upsample deconv"),
        ({"model.center_of_mass": True}, "--center-of-mass train"),
        ({"coverage_weight": 0.1}, "--coverage-weight"),
        ({"diffaugment": ["translation"]}, "DiffAugment"),
        ({"select_by": "fd", "holdout": 3, "select_evaluator": "ev"}, "checkpoint selection"),
        ({"loss": "rpgan", "r2_gamma": 10.0}, "R2 penalty"),
        ({"loss": "rpgan"}, "relativistic pairing loss"),
    ],
)
def test_a_run_trained_with_a_removed_lever_is_refused_in_one_line(tmp_path, lever, said):
    Trainer.new(tiny_config(epochs=1), tmp_path / "run", progress=False).fit()
    _as_an_older_version_wrote_it(tmp_path / "run", **lever)
    for args in (["train", "--resume", str(tmp_path / "run"), "--epochs", "2"], ["export", str(tmp_path / "run")]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2, res.output
        assert res.output.strip().count("\n") == 0, res.output
        assert f"{tmp_path / 'run'} was trained with" in res.output and said in res.output, res.output
        assert "a lever ganaug no longer has" in res.output and "git commit" in res.output
    with pytest.raises(InputError, match="no longer has"):
        load_generator(tmp_path / "run")
    with pytest.raises(RemovedLeverError):
        TrainConfig.from_dict(json.loads((tmp_path / "run" / "config.json").read_text())["config"])


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
