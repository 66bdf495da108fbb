import csv
import json

import numpy as np
import pytest
import torch

from ganaug.errors import InputError, TrainingDiverged
from ganaug.train.checkpoint import CHECKPOINT, load_generator
from ganaug.train.trainer import Trainer
from tests.conftest import tiny_config


def _state(run_dir):
    return torch.load(run_dir / CHECKPOINT, weights_only=True)


def _assert_same_tensors(a, b, path=""):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"differs at {path}"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_same_tensors(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_tensors(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"differs at {path}: {a} != {b}"


def test_run_folder_has_everything(tiny_run):
    for name in (
        "config.json",
        "metrics.csv",
        "checkpoint.pt",
        "samples.png",
        "samples.gif",
        "losses.png",
        "summary.json",
        "indices.npy",
        "samples/epoch_0001.png",
        "samples/epoch_0002.png",
    ):
        assert (tiny_run / name).is_file(), name
    meta = json.loads((tiny_run / "config.json").read_text())
    assert meta["config"]["epochs"] == 2 and meta["ganaug_version"]
    assert meta["data"]["dataset"] == "digits" and meta["data"]["size"] == 200
    assert np.load(tiny_run / "indices.npy").shape == (200,)
    with open(tiny_run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "wall_time"]
    assert int(rows[-1]["step"]) == 12 and 0 < float(rows[-1]["d_real"]) < 1


def test_resume_equals_an_uninterrupted_run_bitwise(tmp_path):
    config = tiny_config(epochs=3, d_steps=2, augment_real=True)
    Trainer.new(config, tmp_path / "full", progress=False).fit()
    Trainer.new(tiny_config(epochs=1, d_steps=2, augment_real=True), tmp_path / "cut", progress=False).fit()
    Trainer.resume(tmp_path / "cut", epochs=3, progress=False).fit()
    full, cut = _state(tmp_path / "full"), _state(tmp_path / "cut")
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "rng", "step"):
        _assert_same_tensors(full[key], cut[key], key)


def test_augment_real_transforms_only_the_real_images_d_sees(tmp_path, monkeypatch):
    trainer = Trainer.new(tiny_config(epochs=1, augment_real=True), tmp_path / "run", progress=False)
    seen = []
    d = trainer.gan.D_train
    monkeypatch.setattr(trainer.gan, "D_train", lambda x, y: seen.append(x.detach().clone()) or d(x, y))
    real, y = trainer.images[:8], trainer.labels[:8]
    z = torch.randn(8, trainer.config.model.z_dim)
    trainer.gan.d_step(real, y, z, keep_fake=False)
    real_seen, fake_seen = seen
    assert real_seen.shape == real.shape and not torch.equal(real_seen, real)  # moved, rotated or scaled
    assert real_seen.min() >= -1 - 1e-6 and real_seen.max() <= 1 + 1e-6  # background stays -1: same range
    with torch.no_grad():
        assert torch.equal(fake_seen, trainer.gan.G_train(z, y))  # the fakes are not augmented


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        Trainer.new(tiny_config(seed=seed), tmp_path / name, progress=False).fit()
    a, b, c = (_state(tmp_path / n)["G"] for n in "abc")
    _assert_same_tensors(a, b)
    assert not torch.equal(a["project.0.weight"], c["project.0.weight"])


def test_ema_generator_loads_in_eval_mode(tiny_run):
    g, meta = load_generator(tiny_run)
    assert not g.training and meta["step"] == 12 and len(meta["classes"]) == 10
    raw, _ = load_generator(tiny_run, ema=False)
    assert not torch.equal(g.project[0].weight, raw.project[0].weight)


def test_non_empty_run_folder_is_refused_and_kept(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="--resume .* or --overwrite"):
        Trainer.new(tiny_config(), run, progress=False)
    assert (run / "notes.txt").read_text() == "mine"


def test_resume_of_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(InputError, match="not a ganaug run folder"):
        Trainer.resume(tmp_path)


def test_budget_larger_than_a_class_is_refused_before_writing(tmp_path):
    with pytest.raises(InputError, match="--real-per-class 500 is larger than class"):
        Trainer.new(tiny_config(per_class=500), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_non_finite_losses_stop_and_keep_the_last_good_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "run"
    Trainer.new(tiny_config(epochs=1), run, progress=False).fit()
    good = (run / CHECKPOINT).read_bytes()
    trainer = Trainer.resume(run, epochs=3, progress=False)
    real_step = trainer.gan.d_step

    def poisoned(*args, **kwargs):
        loss, *rest = real_step(*args, **kwargs)
        return (loss * float("nan"), *rest)

    monkeypatch.setattr(trainer.gan, "d_step", poisoned)
    with pytest.raises(TrainingDiverged, match="non-finite.*last good checkpoint"):
        trainer.fit()
    assert (run / CHECKPOINT).read_bytes() == good


def test_bf16_on_the_cpu_trains_resumes_bitwise_and_differs_from_fp32(tmp_path):
    """--amp bf16 on the CPU: autocast really engages (the weights differ from an fp32 run's), R1 under it stays
    finite, and a resumed run equals an uninterrupted one."""
    options = {"amp": "bf16", "channels_last": True, "loss": "hinge", "r1_gamma": 1.0, "r1_every": 2}
    Trainer.new(tiny_config(epochs=2, **options), tmp_path / "full", progress=False).fit()
    Trainer.new(tiny_config(epochs=1, **options), tmp_path / "cut", progress=False).fit()
    Trainer.resume(tmp_path / "cut", epochs=2, progress=False).fit()
    fp32 = {**options, "amp": "off"}
    Trainer.new(tiny_config(epochs=2, **fp32), tmp_path / "fp32", progress=False).fit()
    full, cut, ref = _state(tmp_path / "full"), _state(tmp_path / "cut"), _state(tmp_path / "fp32")
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "step"):
        _assert_same_tensors(full[key], cut[key], key)
    assert all(torch.isfinite(v).all() for v in full["G"].values())
    assert json.loads((tmp_path / "full" / "config.json").read_text())["amp"] == "bf16"
    assert any(not torch.equal(full["G"][k], ref["G"][k]) for k in full["G"])


def test_fp16_on_the_cpu_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="fp16 needs CUDA"):
        Trainer.new(tiny_config(amp="fp16"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_bf16_units_warns(tmp_path, monkeypatch, native):
    import warnings

    import ganaug.train.gan

    monkeypatch.setattr(ganaug.train.gan, "cpu_has_bf16", lambda: native)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trainer.new(tiny_config(amp="bf16"), tmp_path / "run", progress=False)
        Trainer.new(tiny_config(amp="off"), tmp_path / "fp32", progress=False)
    slow = [w for w in caught if "without bf16 units" in str(w.message)]
    assert len(slow) == (0 if native else 1)


def test_cuda_without_gpu_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(InputError, match="no CUDA GPU"):
        Trainer.new(tiny_config(device="cuda"), tmp_path / "run", progress=False)


def test_save_every_writes_fewer_grids_but_always_the_last(tmp_path):
    Trainer.new(tiny_config(epochs=5, save_every=2), tmp_path / "run", progress=False).fit()
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == [
        "epoch_0002.png",
        "epoch_0004.png",
        "epoch_0005.png",
    ]
    assert _state(tmp_path / "run")["step"] == 30


def _imports(module_file):
    import ast

    tree = ast.parse(module_file.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_export_and_checkpoint_io_do_not_import_training():
    from pathlib import Path

    package = Path(__file__).parents[1] / "ganaug"
    for name in (
        "train/export.py",
        "train/checkpoint.py",
        "train/runfolder.py",
        "train/distributed.py",
        "eval/metrics.py",
        "sample/runtime.py",
    ):
        assert "ganaug.train.trainer" not in _imports(package / name), name


def test_trainer_class_stays_short():
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parents[1] / "ganaug" / "train" / "trainer.py").read_text())
    (trainer,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Trainer"]
    assert trainer.end_lineno - trainer.lineno + 1 < 200


def test_training_leaves_the_global_rng_alone(tmp_path):
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    Trainer.new(tiny_config(), tmp_path / "run", progress=False).fit()
    assert torch.equal(torch.get_rng_state(), before)


def test_weights_come_from_the_seed_not_the_global_rng(tmp_path):
    torch.manual_seed(1)
    a = Trainer.new(tiny_config(), tmp_path / "a", progress=False).gan.G.state_dict()
    torch.manual_seed(2)
    b = Trainer.new(tiny_config(), tmp_path / "b", progress=False).gan.G.state_dict()
    _assert_same_tensors(a, b)


def test_cudnn_autotune_is_scoped():
    from ganaug.train.hardware import cudnn_autotune

    previous = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = False
        with cudnn_autotune(torch.device("cuda")):
            assert torch.backends.cudnn.benchmark is True
        assert torch.backends.cudnn.benchmark is False
        with cudnn_autotune(torch.device("cpu")):
            assert torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = previous


def test_loss_plot_does_not_switch_the_matplotlib_backend(tiny_run, tmp_path):
    import matplotlib

    from ganaug import viz

    previous = matplotlib.get_backend()
    try:
        matplotlib.use("svg")
        viz.plot_losses(tiny_run / "metrics.csv", tmp_path / "losses.png")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(previous)
    assert (tmp_path / "losses.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compile_routes_the_training_calls_through_torch_compile_and_saves_plain_modules(tmp_path):
    # Compilation itself is lazy (and slow on CPU); the compiled steps run in tests/test_gpu.py.
    trainer = Trainer.new(tiny_config(compile=True), tmp_path / "run", progress=False)
    gan = trainer.gan
    compiled = torch._dynamo.eval_frame.OptimizedModule
    assert isinstance(gan.G_train, compiled) and isinstance(gan.D_train, compiled) and isinstance(gan.D_g, compiled)
    assert gan.D_g._orig_mod is gan.D and gan.G_train._orig_mod is gan.G
    assert not any(k.startswith("_orig_mod") for k in gan.state_dict()["G"])
    plain = Trainer.new(tiny_config(), tmp_path / "plain", progress=False).gan
    assert plain.G_train is plain.G and plain.D_g is plain.D
