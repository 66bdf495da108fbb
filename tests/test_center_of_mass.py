"""Centre-of-mass placement (`sample_center_of_mass`, the mnist preset's; `ganaug export --center-of-mass`): the
samples are moved by whole pixels to MNIST's centre-of-mass placement."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from ganaug.cli import main
from ganaug.config import ModelConfig
from ganaug.errors import InputError
from ganaug.models.dcgan import CenterOfMass, Generator
from ganaug.train.trainer import check_centred
from tests.conftest import write_idx

SMALL = ModelConfig(z_dim=8, embed_dim=4, g_width=8)


def bars(n: int, *, seed: int = 0) -> torch.Tensor:
    """Images [n, 1, 28, 28] in [-1, 1]: a bar of random size, centred by its centre of mass at (14, 14)."""
    rng = np.random.default_rng(seed)
    x = -torch.ones(n, 1, 28, 28)
    for i in range(n):
        h, w = 2 * rng.integers(2, 6), 2 * rng.integers(1, 4)  # even sides: the centre of mass is 14 - 0.5 + 0.5
        x[i, 0, 14 - h // 2 : 14 + h // 2 + 1, 14 - w // 2 : 14 + w // 2 + 1] = 1.0
    return x


class OffCentre(torch.nn.Module):
    """Keeps the ink of rows 5-20 and columns 3-20 only: images whose centre of mass is up and to the left."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = torch.zeros(28, 28, dtype=torch.bool)
        keep[5:21, 3:21] = True
        return torch.where(keep, x, -1.0)


def wild_generator(seed: int = 0) -> Generator:
    """A small centre-of-mass G whose images are dark with bright blobs, off centre (so they need moving)."""
    torch.manual_seed(seed)
    g = Generator(SMALL, center_of_mass=True)
    with torch.no_grad():
        for p in g.up.parameters():
            p.normal_(0, 0.5)
        g.up[-2].bias.fill_(-1.0)
    g.up.append(OffCentre())
    return g.eval()


def test_off_centre_images_come_back_whole_and_centred_ones_stay():
    centred = bars(32)
    assert torch.equal(CenterOfMass()(centred), centred)
    moves = [(dy, dx) for dy in (-3, 0, 2) for dx in (-1, 0, 3)]
    shifted = torch.cat([torch.roll(centred[i : i + 1], m, dims=(2, 3)) for i, m in enumerate(moves)])
    assert torch.equal(CenterOfMass()(shifted), centred[: len(moves)])


def test_each_image_moves_on_its_own_and_empty_images_stay():
    x = torch.roll(bars(6, seed=1), (2, -3), dims=(2, 3))
    x[3] = -1.0  # no ink: nowhere to move it to
    one_by_one = torch.cat([CenterOfMass()(x[i : i + 1]) for i in range(len(x))])
    assert torch.equal(CenterOfMass()(x), one_by_one)
    assert torch.equal(one_by_one[3], x[3])
    dy, dx = CenterOfMass().shifts(CenterOfMass()(x))
    assert not dy.any() and not dx.any()


def test_the_gradient_reaches_every_pixel_that_stays_in_the_frame():
    x = torch.roll(bars(2, seed=2), (1, 2), dims=(2, 3)).requires_grad_()
    weight = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    (CenterOfMass()(x) * weight).sum().backward()
    # moved by (-1, -2): the gradient of input pixel (i, j) is the weight at (i - 1, j - 2)
    expected = torch.zeros_like(weight)
    expected[:, :, 1:, 2:] = weight[:, :, :-1, :-2]
    torch.testing.assert_close(x.grad, expected)


def test_bf16_inputs_are_moved_in_float32_and_keep_their_dtype():
    x = torch.roll(bars(4, seed=3), (0, 2), dims=(2, 3))
    out = CenterOfMass()(x.bfloat16())
    assert out.dtype == torch.bfloat16 and torch.equal(out.float(), CenterOfMass()(x))


def test_generator_images_are_centred_and_checkpoints_keep_their_keys():
    g = wild_generator()
    z, labels = torch.randn(64, 8, generator=torch.Generator().manual_seed(1)), torch.arange(64) % 10
    with torch.no_grad():
        before = g.from_embedding(z, g.embed(labels), centre=False)
        images = g(z, labels)
    assert all(s.abs().sum() > 0 for s in CenterOfMass().shifts(before))  # the test images do need moving
    dy, dx = CenterOfMass().shifts(images)
    assert not dy.any() and not dx.any()
    plain = Generator(ModelConfig(z_dim=8, embed_dim=4, g_width=8))
    assert plain.state_dict().keys() == g.state_dict().keys()  # an older checkpoint loads into either


def test_onnx_equals_pytorch_for_a_centring_generator(tmp_path):
    from ganaug.train.export import export_generator, read_metadata

    g = wild_generator()
    out = export_generator(g, tmp_path / "g.onnx")
    z = np.random.default_rng(3).standard_normal((300, 8), dtype=np.float32)
    labels = np.arange(300, dtype=np.int64) % 10
    (images,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"z": z, "labels": labels})
    with torch.no_grad():
        expected = g(torch.from_numpy(z), torch.from_numpy(labels)).numpy()
    differs = np.abs(images - expected).reshape(300, -1).max(1) > 1e-4
    assert differs.sum() <= 1  # a half-pixel tie at most, in a few hundred images
    import onnx

    assert read_metadata(onnx.load(str(out)))["center_of_mass"] is True


def test_parity_excuses_only_one_pixel_moves_at_a_tie():
    from ganaug.train.export import _tie_moved

    g = wild_generator()
    z, labels = np.random.default_rng(4).standard_normal((8, 8), dtype=np.float32), np.arange(8, dtype=np.int64)
    with torch.no_grad():
        raw = g.from_embedding(torch.from_numpy(z), g.embed(torch.from_numpy(labels)), centre=False)
    dy, dx = CenterOfMass().shifts(raw)
    one_off = CenterOfMass.move(raw, dy + 1, dx).numpy()
    two_off = CenterOfMass.move(raw, dy, dx + 2).numpy()
    noisy = CenterOfMass.move(raw, dy, dx).numpy() + 0.5
    every = np.ones(8, dtype=bool)
    # tolerance 0.05: a 0.5 px window, every image counts as sitting at a tie
    assert _tie_moved(g, z, labels, one_off, every, 0.05).all()
    assert not _tie_moved(g, z, labels, two_off, every, 0.05).any()
    assert not _tie_moved(g, z, labels, noisy, every, 0.05).any()
    # a 1e-9 px window: no image is at a tie, so no one-pixel move is excused either
    near = CenterOfMass().near_half_pixel(raw, 1e-9)
    assert not _tie_moved(g, z, labels, one_off, every, 1e-10)[~near.numpy()].any()


def test_data_not_centred_by_mass_is_refused():
    check_centred(bars(50))
    with pytest.raises(InputError, match="is for images centred by their centre of mass"):
        check_centred(torch.roll(bars(50), 1, dims=3))


def centred_mnist(root, n_train=200, n_test=50):
    """Fake MNIST idx files whose digits are centred by mass like the real ones (a bar per class)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = ((bars(n, seed=n)[:, 0] + 1) * 127.5).round().numpy().astype(np.uint8)
        write_idx(raw / f"{split}-images-idx3-ubyte", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels.astype(np.uint8))
    return root


def test_cli_trains_and_exports_on_centred_data_and_refuses_other_data(tmp_path):
    import onnx

    from ganaug.train.checkpoint import load_generator
    from ganaug.train.export import read_metadata

    root = centred_mnist(tmp_path / "data")
    args = ["train", "--preset", "mnist", "--data-root", str(root), "--epochs", "1", "--batch-size", "20"]
    args += ["--g-width", "8", "--d-width", "8", "--device", "cpu", "--amp", "off", "--quiet"]
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert config["sample_center_of_mass"] is True and "center_of_mass" not in config["model"]
    assert read_metadata(onnx.load(str(tmp_path / "run" / "generator.onnx")))["center_of_mass"] is True
    assert load_generator(tmp_path / "run")[0].center_of_mass
    bad = CliRunner().invoke(main, [*args, "--dataset", "digits", "--out", str(tmp_path / "digits")])
    assert bad.exit_code == 2 and "is for images centred by their centre of mass" in bad.output
    assert len(bad.output.strip().splitlines()) == 1 and not (tmp_path / "digits").exists()


def test_sample_placement_moves_the_ema_samples_and_leaves_training_alone(tmp_path):
    from ganaug.train.trainer import Trainer
    from tests.conftest import TINY_MODEL, tiny_config

    root = centred_mnist(tmp_path / "data")
    config = tiny_config(
        dataset="mnist", data_root=str(root), per_class=None, batch_size=20, sample_center_of_mass=True
    )
    trainer = Trainer.new(config, tmp_path / "run", progress=False)
    gan = trainer.gan
    assert isinstance(gan.G_ema.module.centre, CenterOfMass) and not isinstance(gan.G.centre, CenterOfMass)
    assert gan.G_ema.module.state_dict().keys() == gan.G.state_dict().keys()  # the move has no weights
    trainer.fit()
    z, y = torch.randn(30, TINY_MODEL.z_dim), torch.arange(30) % 10
    grid = gan.sample(z, y)
    dy, dx = CenterOfMass().shifts(grid)
    assert (dy == 0).all() and (dx == 0).all()  # every grid image already sits where the move puts it
    with torch.no_grad():
        unplaced = gan.G_ema.module.from_embedding(z, gan.G_ema.module.embed(y), centre=False)
    torch.testing.assert_close(grid, CenterOfMass()(unplaced))


def test_a_generator_trained_without_it_can_be_exported_with_it(tiny_run, tmp_path):
    import onnx

    from ganaug.train.checkpoint import load_generator
    from ganaug.train.export import read_metadata

    res = CliRunner().invoke(main, ["export", str(tiny_run), "--center-of-mass", "--out", str(tmp_path / "c.onnx")])
    assert res.exit_code == 0, res.output
    plain = CliRunner().invoke(main, ["export", str(tiny_run), "--out", str(tmp_path / "p.onnx")])
    assert plain.exit_code == 0, plain.output
    meta = {n: read_metadata(onnx.load(str(tmp_path / f"{n}.onnx"))) for n in ("c", "p")}
    assert meta["c"]["center_of_mass"] is True and meta["p"]["center_of_mass"] is False
    g, _ = load_generator(tiny_run)
    z = np.random.default_rng(5).standard_normal((64, g.config.z_dim), dtype=np.float32)
    labels = np.arange(64, dtype=np.int64) % g.config.num_classes
    with torch.no_grad():
        expected = CenterOfMass()(g.eval()(torch.from_numpy(z), torch.from_numpy(labels))).numpy()
    (images,) = ort.InferenceSession(str(tmp_path / "c.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"z": z, "labels": labels}
    )
    assert (np.abs(images - expected).reshape(64, -1).max(1) > 1e-4).sum() <= 1  # a half-pixel tie at most
    assert not g.center_of_mass  # the run's own generator is left as it was
