"""SyntheticMix: batch mixing on the batch's device (CPU here; the CUDA paths are in test_gpu.py)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from ganaug import SyntheticMix
from ganaug.errors import InputError
from ganaug.sample.latents import latents
from ganaug.sample.runtime import OnnxGenerator, to_uint8
from tests.conftest import exported_copy

MEAN, STD = 0.1307, 0.3081


@pytest.fixture(scope="module")
def run(tiny_run: Path, tmp_path_factory) -> Path:
    """A copy of the tiny run with its generator.onnx (the shared tiny run has none)."""
    return exported_copy(tiny_run, tmp_path_factory.mktemp("batchmix") / "run")


def batch(n: int = 16, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    images = torch.rand(n, 1, 28, 28, generator=g)
    images = (images * 255).to(torch.uint8) if dtype == torch.uint8 else images.to(dtype)
    return images, torch.arange(n) % 10


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.uint8])
def test_replace_keeps_shape_dtype_device_and_the_share_is_exact(run: Path, dtype: torch.dtype) -> None:
    normalize = None if dtype == torch.uint8 else (MEAN, STD)
    mix = SyntheticMix(run, share=0.25, normalize=normalize, seed=3, threads=1)
    images, labels = batch(16, dtype)
    before = images.clone(), labels.clone()
    out, out_labels, mask = mix(images, labels, return_mask=True)
    assert out.shape == images.shape and out.dtype == dtype and out.device == images.device
    assert out_labels.dtype == torch.int64 and out_labels.shape == (16,)
    assert int(mask.sum()) == 4 == mix.synthetic_count(16)
    assert torch.equal(out[~mask], images[~mask]) and torch.equal(out_labels[~mask], labels[~mask])
    assert not torch.equal(out[mask], images[mask])
    assert torch.equal(images, before[0]) and torch.equal(labels, before[1])  # inputs untouched
    assert mask.nonzero().flatten().tolist() == mix.plan(16, step=0).positions.tolist()


@pytest.mark.parametrize(("share", "n", "m"), [(0.5, 16, 16), (0.2, 16, 4), (0.0, 16, 0), (0.75, 4, 12)])
def test_extend_appends_the_share(run: Path, share: float, n: int, m: int) -> None:
    mix = SyntheticMix(run, share=share, mode="extend", seed=0, threads=1)
    images, labels = batch(n)
    out, out_labels, mask = mix(images, labels, return_mask=True)
    assert out.shape == (n + m, 1, 28, 28) and out_labels.shape == (n + m,)
    assert torch.equal(out[:n], images) and torch.equal(out_labels[:n], labels)
    assert mask.tolist() == [False] * n + [True] * m


def test_replaced_items_are_the_generator_output_normalised(run: Path) -> None:
    mix = SyntheticMix(run, share=0.5, normalize=(MEAN, STD), seed=7, threads=1)
    images, labels = batch(10)
    out, out_labels = mix(images, labels, step=5)
    plan = mix.plan(10, step=5)
    generator = OnnxGenerator(run, provider="cpu", threads=1)
    assert plan.latent_start == 5 * plan.n == 25
    z = latents(plan.latent_seed, plan.latent_start, plan.latent_start + plan.n, generator.z_dim)
    raw = generator.run(z, plan.labels)
    expected = (to_uint8(raw).astype(np.float32) / 255.0 - MEAN) / STD
    np.testing.assert_allclose(out[plan.positions, 0].numpy(), expected, atol=1e-5, rtol=0)
    assert out_labels[plan.positions].tolist() == plan.labels.tolist()


def test_value_range_without_quantize_is_an_affine_map_of_the_output(run: Path) -> None:
    mix = SyntheticMix(run, share=1.0, value_range=(-1, 1), quantize=False, seed=1, threads=1)
    images, labels = batch(6)
    out, _ = mix(images, labels, step=0)
    plan = mix.plan(6, step=0)
    generator = OnnxGenerator(run, provider="cpu", threads=1)
    raw = generator.run(latents(plan.latent_seed, 0, 6, generator.z_dim), plan.labels)  # step 0: rows 0..5
    np.testing.assert_allclose(out.numpy(), raw, atol=1e-6, rtol=0)


def test_deterministic_by_seed_and_step_whatever_the_order(run: Path) -> None:
    images, labels = batch(12)
    counted = SyntheticMix(run, share=0.5, seed=11, threads=1)
    in_order = [counted(images, labels) for _ in range(3)]
    assert counted.step == 3
    shuffled = SyntheticMix(run, share=0.5, seed=11, threads=1)
    for step in (2, 0, 1):
        again = shuffled(images, labels, step=step)
        assert torch.equal(again[0], in_order[step][0]) and torch.equal(again[1], in_order[step][1])
    assert shuffled.step == 0  # an explicit step leaves the counter alone
    assert not torch.equal(in_order[0][0], in_order[1][0])  # steps differ
    other_seed = SyntheticMix(run, share=0.5, seed=12, threads=1)(images, labels, step=0)
    assert not torch.equal(other_seed[0], in_order[0][0])


def test_lookahead_generates_blocks_ahead_without_changing_the_items(run: Path) -> None:
    images, labels = batch(12)
    kwargs = {"share": 0.5, "quantize": False, "seed": 8, "threads": 1}
    every_call = SyntheticMix(run, lookahead=1, **kwargs)
    expected = {s: every_call(images, labels, step=s) for s in range(7)}
    ahead = SyntheticMix(run, lookahead=3, **kwargs)
    for step in (5, 0, 6, 1, 2, 4, 3):  # across blocks [0, 3), [3, 6), [6, 9), in any order
        got = ahead(images, labels, step=step)
        assert torch.equal(got[1], expected[step][1])
        torch.testing.assert_close(got[0], expected[step][0], atol=1e-5, rtol=0)
        assert torch.equal(got[0], SyntheticMix(run, lookahead=3, **kwargs)(images, labels, step=step)[0])
    smaller = ahead(images[:6], labels[:6], step=4)  # a short last batch inside a block
    reference = SyntheticMix(run, lookahead=1, **kwargs)(images[:6], labels[:6], step=4)
    assert torch.equal(smaller[1], reference[1])
    torch.testing.assert_close(smaller[0], reference[0], atol=1e-5, rtol=0)


def test_a_block_costs_one_draw_per_stream_and_later_steps_none(run: Path, monkeypatch) -> None:
    from ganaug.feed import batchmix

    calls = {"latents": 0, "words": 0, "uploads": 0}

    def counting(name, function):
        def wrapped(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(batchmix, "latents", counting("latents", batchmix.latents))
    monkeypatch.setattr(batchmix, "_stream_words", counting("words", batchmix._stream_words))
    monkeypatch.setattr(batchmix, "_upload", counting("uploads", batchmix._upload))
    mix = SyntheticMix(run, share=0.5, seed=1, lookahead=4, threads=1)
    images, labels = batch(12)
    for _ in range(8):  # two blocks of four steps
        mix(images, labels, return_mask=True)
    assert calls == {"latents": 2, "words": 4, "uploads": 4}  # per block: 1 latent draw, 2 streams, 2 copies


def test_blocks_drawn_ahead_on_a_worker_thread_are_the_same(run: Path, monkeypatch) -> None:
    images, labels = batch(10)
    kwargs = {"share": 0.5, "seed": 6, "lookahead": 2, "threads": 1}
    expected = [SyntheticMix(run, **kwargs)(images, labels, step=s, return_mask=True) for s in range(7)]
    monkeypatch.setattr(SyntheticMix, "_PREFETCH_ON", ("cpu",))  # what CUDA batches get
    mix = SyntheticMix(run, **kwargs)
    got = [mix(images, labels, return_mask=True) for _ in range(5)] + [mix(images, labels, step=6, return_mask=True)]
    assert mix._ahead is not None and mix._ahead[0] == (8, 10)  # the block after step 6's, being drawn
    got.insert(5, mix(images, labels, step=5, return_mask=True))  # back to an earlier block: drawn in place
    for a, b in zip(got, expected, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert pickle.loads(pickle.dumps(mix))._ahead is None


def test_state_dict_resumes_the_counter(run: Path) -> None:
    images, labels = batch(8)
    full = SyntheticMix(run, share=0.5, seed=2, threads=1)
    outputs = [full(images, labels)[0] for _ in range(3)]
    cut = SyntheticMix(run, share=0.5, seed=2, threads=1)
    cut(images, labels)
    resumed = SyntheticMix(run, share=0.5, seed=2, threads=1)
    resumed.load_state_dict(pickle.loads(pickle.dumps(cut.state_dict())))
    assert torch.equal(resumed(images, labels)[0], outputs[1])
    assert torch.equal(pickle.loads(pickle.dumps(resumed))(images, labels)[0], outputs[2])
    with pytest.raises(InputError, match="seed=9"):
        resumed.load_state_dict({"step": 1, "seed": 9})


def test_a_block_drawn_at_once_equals_the_plans_of_its_steps(run: Path) -> None:
    for mode, batch_size in (("replace", 13), ("extend", 6), ("replace", 1)):
        mix = SyntheticMix(run, share=0.5, mode=mode, seed=3, threads=1)
        positions, labels = mix._draw(5, 7, batch_size)  # steps 5..11 in one draw per stream
        for i, step in enumerate(range(5, 12)):
            plan = mix.plan(batch_size, step=step)
            assert plan.labels.tolist() == labels[i].tolist() and plan.latent_start == step * plan.n
            if mode == "replace":
                assert plan.positions.tolist() == positions[i].tolist()
                assert len(set(plan.positions.tolist())) == plan.n and plan.positions.max() < batch_size
            else:
                assert positions is None and plan.positions is None
    plans = [SyntheticMix(run, share=0.5, seed=0, threads=1).plan(32, step=s) for s in range(40)]
    assert len({tuple(p.positions) for p in plans}) == 40 and len({tuple(p.labels) for p in plans}) == 40
    other_seed = SyntheticMix(run, share=0.5, seed=1, threads=1).plan(32, step=0)
    assert plans[0].latent_seed == plans[1].latent_seed != other_seed.latent_seed


def test_classes_weights_and_same(run: Path) -> None:
    images, labels = batch(20)
    weights = [0.0] * 10
    weights[3] = 2.0
    _, out_labels, mask = SyntheticMix(run, share=0.5, classes=weights, threads=1)(images, labels, return_mask=True)
    assert set(out_labels[mask].tolist()) == {3}
    out, same_labels, mask = SyntheticMix(run, share=0.5, classes="same", threads=1)(images, labels, return_mask=True)
    assert torch.equal(same_labels, labels) and not torch.equal(out[mask], images[mask])
    uniform = SyntheticMix(run, share=1.0, threads=1).plan(4000, step=0).labels
    counts = np.bincount(uniform, minlength=10)
    assert counts.min() > 330 and counts.max() < 470  # 400 expected per class


def test_onnx_and_torch_backends_agree(run: Path) -> None:
    images, labels = batch(24)
    kwargs = {"share": 0.5, "normalize": (MEAN, STD), "quantize": False, "seed": 4}
    onnx_out = SyntheticMix(run, backend="onnx", threads=1, **kwargs)(images, labels, step=3)
    torch_out = SyntheticMix(run, backend="torch", **kwargs)(images, labels, step=3)
    assert torch.equal(onnx_out[1], torch_out[1])
    torch.testing.assert_close(onnx_out[0], torch_out[0], atol=1e-4 / STD, rtol=0)  # 1e-4 in the [-1, 1] range


def test_run_device_and_device_output_match_the_numpy_path(run: Path) -> None:
    generator = OnnxGenerator(run, provider="cpu", threads=1)
    labels = generator.labels(3)
    expected = generator.generate(labels, seed=5, dtype="float", batch_size=7)
    got = generator.generate(labels, seed=5, dtype="float", batch_size=7, device_output=True)
    assert isinstance(got, torch.Tensor) and got.device.type == "cpu"
    np.testing.assert_array_equal(got.numpy(), expected)
    as_uint8 = generator.generate(labels, seed=5, batch_size=7, device_output=True)
    np.testing.assert_array_equal(as_uint8.numpy(), generator.generate(labels, seed=5))
    out = torch.empty(len(labels), 1, 28, 28)
    z = torch.from_numpy(latents(5, 0, len(labels), generator.z_dim))
    assert generator.run_device(z, torch.from_numpy(labels), out=out) is out
    np.testing.assert_array_equal(out.numpy(), expected)
    kept = generator.run_device(z, torch.from_numpy(labels))  # written by ONNX Runtime into a kept buffer
    np.testing.assert_array_equal(kept.numpy(), expected)
    assert generator.run_device(z.flip(0), torch.from_numpy(labels)).data_ptr() == kept.data_ptr()
    np.testing.assert_array_equal(out.numpy(), expected)  # the earlier out= target is not written again
    with pytest.raises(InputError, match="z must be float32"):
        generator.run_device(z.double(), torch.from_numpy(labels))
    with pytest.raises(InputError, match=r"labels must lie in \[0, 10\)"):
        generator.run_device(z, torch.from_numpy(labels) + 5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"share": 1.5}, "share must be a number with 0 <= share <= 1"),
        ({"share": 1.0, "mode": "extend"}, "share < 1 for mode='extend'"),
        ({"share": 0.5, "mode": "append"}, "mode must be 'replace' or 'extend'"),
        ({"share": 0.5, "backend": "jax"}, "backend must be 'onnx' or 'torch'"),
        ({"share": 0.5, "classes": "random"}, "classes must be 'uniform', 'same' or 10 weights"),
        ({"share": 0.5, "classes": [1, 2]}, "10 finite numbers"),
        ({"share": 0.5, "classes": "same", "mode": "extend"}, "needs mode='replace'"),
        ({"share": 0.5, "value_range": (1, 0)}, "low < high"),
        ({"share": 0.5, "normalize": (0.1, 0.0)}, "std must be > 0"),
        ({"share": 0.5, "normalize": ((0.1, 0.2), (0.3, 0.3))}, "one channel"),
        ({"share": 0.5, "seed": -1}, "seed must be a whole number >= 0"),
        ({"share": 0.5, "lookahead": 0}, "lookahead must be a whole number >= 1"),
        ({"share": 0.5, "label_smoothing": 1.0}, "0 <= label_smoothing < 1"),
    ],
)
def test_bad_arguments_are_one_line_errors(run: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        SyntheticMix(run, threads=1, **kwargs)
    assert "\n" not in str(info.value)


def test_bad_sources_and_batches_are_one_line_errors(run: Path, tmp_path: Path) -> None:
    mix = SyntheticMix(run, share=0.5, normalize=(MEAN, STD), threads=1)
    images, labels = batch(4)
    cases = [
        (lambda: SyntheticMix(tmp_path, share=0.5), "no ONNX model"),
        (lambda: SyntheticMix(run / "checkpoint.pt", share=0.5), "backend='torch'"),
        (lambda: mix(images[:, :, :14], labels), r"images must be \[N, 1, 28, 28\]"),
        (lambda: mix(images, labels.int()), "labels must be int64 class indices"),
        (lambda: mix(images, torch.nn.functional.one_hot(labels, 10)), "apply CutMix/MixUp after"),
        (lambda: mix(images.to(torch.uint8), labels), "leave value_range and normalize unset"),
        (lambda: mix(images.int(), labels), "float or uint8"),
        (lambda: mix(images, labels, step=-1), "step must be a whole number >= 0"),
        (lambda: mix(images.numpy(), labels), "torch tensors"),
    ]
    for call, match in cases:
        with pytest.raises(InputError, match=match) as info:
            call()
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(("mode", "classes"), [("replace", "uniform"), ("replace", "same"), ("extend", "uniform")])
def test_label_smoothing_smooths_the_synthetic_items_labels_only(run: Path, mode: str, classes: str) -> None:
    plain = SyntheticMix(run, share=0.25, mode=mode, classes=classes, seed=5, threads=1)
    soft = SyntheticMix(run, share=0.25, mode=mode, classes=classes, seed=5, threads=1, label_smoothing=0.2)
    images, labels = batch(16)
    out, hard, mask = plain(images, labels, return_mask=True)
    soft_out, targets, soft_mask = soft(images, labels, return_mask=True)
    assert torch.equal(soft_out, out) and torch.equal(soft_mask, mask)  # the same items, only the labels differ
    assert targets.dtype == torch.float32 and targets.shape == (len(hard), 10)
    assert torch.equal(targets.argmax(1), hard)
    assert torch.equal(targets[~mask], torch.nn.functional.one_hot(hard[~mask], 10).float())
    assert torch.allclose(targets[mask].max(1).values, torch.full((int(mask.sum()),), 0.82))
    assert torch.allclose(targets.sum(1), torch.ones(len(hard)))
    _, no_mask_targets = soft(images, labels, step=0)
    assert torch.equal(no_mask_targets, targets)
    assert "label_smoothing=0.2" in repr(soft)


class _PixelSum(torch.nn.Module):
    """A fake classifier: class = round(100 * pixel sum) mod 10, so it rejects about nine images in ten."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot((x.sum(dim=(1, 2, 3)) * 100).round().long() % 10, 10).float()


@pytest.mark.parametrize("classes", ["uniform", "same"])
def test_a_label_check_draws_item_k_of_step_s_as_sample_s_n_plus_k(run: Path, classes: str) -> None:
    from ganaug.sample.resample import LabelCheck, Sampling

    check = LabelCheck(_PixelSum().eval())
    kwargs = {"share": 0.5, "classes": classes, "quantize": False, "value_range": (-1, 1), "seed": 2, "threads": 1}
    mix = SyntheticMix(run, temperature=1.2, label_check=check, lookahead=3, **kwargs)
    images, labels = batch(12)
    generator = OnnxGenerator(run, provider="cpu", threads=1)
    redrawn = 0
    for step in (4, 0):
        out, out_labels = mix(images, labels, step=step)
        plan = mix.plan(12, step=step)
        syn_labels = labels[plan.positions].numpy() if classes == "same" else plan.labels
        rows = plan.latent_start + np.arange(plan.n)
        want = Sampling(1.2, check).images(
            generator.run, syn_labels, rows, seed=plan.latent_seed, z_dim=generator.z_dim
        )
        np.testing.assert_allclose(out[plan.positions].numpy(), want, atol=1e-5, rtol=0)
        assert out_labels[plan.positions].tolist() == syn_labels.tolist()
        plain = SyntheticMix(run, temperature=1.2, **kwargs)(images, labels, step=step)[0]
        redrawn += int((out != plain).flatten(1).any(1).sum())
        one = SyntheticMix(run, temperature=1.2, label_check=check, lookahead=1, **kwargs)(images, labels, step=step)
        torch.testing.assert_close(one[0], out, atol=1e-5, rtol=0)
    assert redrawn > 0  # the check redrew some (the fake classifier rejects about nine images in ten)
    assert (
        pickle.loads(pickle.dumps(mix))(images, labels, step=0)[1].tolist() == mix(images, labels, step=0)[1].tolist()
    )
    with pytest.raises(InputError, match=r"scores \[N, 10\]"):
        SyntheticMix(run, share=0.5, threads=1, label_check=LabelCheck(lambda x: x.flatten(1)))
    with pytest.raises(InputError, match="label_check must be an evaluator folder or a ganaug.LabelCheck"):
        SyntheticMix(run, share=0.5, threads=1, label_check=_PixelSum().eval())
