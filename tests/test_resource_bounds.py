"""Resource bounds, checked up front: thread counts the machine cannot use and sizes whose memory will not fit
are one-line errors before any work (exit 2 in the CLI), leaving nothing behind; and SyntheticMix's other
arguments (threads, normalize, value_range, load_state_dict) are refused as one-line InputErrors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ganaug import outputs
from ganaug import threads as threads_module
from ganaug.cli import main
from ganaug.errors import InputError
from ganaug.feed.batchmix import SyntheticMix
from ganaug.sample.unflatten import check_unflatten_room, unflatten_memory
from ganaug.threads import MAX_THREADS_PER_CPU, check_threads, configure_torch, resolve_threads
from tests.conftest import exported_copy

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tiny_run: Path, tmp_path_factory) -> Path:
    """A copy of the tiny run folder with its generator.onnx (the shared tiny run has none)."""
    return exported_copy(tiny_run, tmp_path_factory.mktemp("bounds") / "run")


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_refused(result, *needles: str) -> None:
    """Exit 2 with one line ``Error: ...`` naming each needle, and no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)


def assert_empty(folder: Path) -> None:
    """Nothing was created: no output, no manifest, no temporary, no lock file."""
    assert sorted(p.name for p in folder.iterdir()) == []


# ---- --threads --------------------------------------------------------------------------------------------


def _commands(run: Path, out: Path) -> dict[str, list]:
    return {
        "export": ["export", run, "--out", out / "g.onnx"],
        "generate": ["generate", run, "--per-class", 1, "--out", out / "synth.npz"],
        "interpolate": ["interpolate", run, "--from", 0, "--to", 1, "--out", out / "walk.png", "--gif"],
    }


@pytest.mark.parametrize("command", ["export", "generate", "interpolate"])
def test_threads_beyond_the_machine_are_refused_before_work(run: Path, tmp_path: Path, command: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    before = sorted(p.name for p in run.iterdir())
    result = invoke(*_commands(run, out)[command], "--threads", 100000)
    limit = MAX_THREADS_PER_CPU * threads_module.available_cpus()
    assert_refused(result, "--threads 100000 is more than this machine can use", f"at most {limit}")
    assert_empty(out)
    assert sorted(p.name for p in run.iterdir()) == before


@pytest.mark.parametrize("command", ["export", "generate", "interpolate"])
def test_the_thread_limit_follows_the_usable_cpus(run: Path, tmp_path: Path, monkeypatch, command: str) -> None:
    monkeypatch.setattr(threads_module, "available_cpus", lambda **_: 1)
    result = invoke(*_commands(run, tmp_path)[command], "--threads", MAX_THREADS_PER_CPU + 1)
    assert_refused(result, f"at most {MAX_THREADS_PER_CPU}", "the 1 CPUs", "choose --threads 1 or fewer")
    assert_empty(tmp_path)


def test_check_threads() -> None:
    assert check_threads(None) is None
    assert check_threads(8, cpus=2) == 8 and type(check_threads(torch.tensor(3).item(), cpus=1)) is int
    import numpy as np

    assert check_threads(np.int64(2), cpus=1) == 2
    for bad, match in [
        (9, "at most 8: 4 x the 2 CPUs"),
        (0, "threads must be >= 1"),
        (-3, "threads must be >= 1"),
        ("x", "whole number"),
        (2.0, "whole number"),
        (True, "whole number"),
    ]:
        with pytest.raises(InputError, match=match) as info:
            check_threads(bad, cpus=2)
        assert "\n" not in str(info.value)


def test_resolve_and_configure_refuse_counts_beyond_the_machine(monkeypatch) -> None:
    assert resolve_threads(8, cpus=2, idle=0.0, environ={}) == 8
    with pytest.raises(InputError, match="more than this machine can use"):
        resolve_threads(9, cpus=2, idle=0.0, environ={})
    monkeypatch.setattr(threads_module, "available_cpus", lambda **_: 1)
    before = torch.get_num_threads()
    with pytest.raises(InputError, match="at most 4"):
        configure_torch(5)
    assert torch.get_num_threads() == before  # refused before torch was told anything


# ---- generate --unflatten ---------------------------------------------------------------------------------


def test_unflatten_beyond_memory_is_refused_before_work(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    before = sorted(p.name for p in run.iterdir())
    for fmt in ("synth.npz", "synth"):
        result = invoke("generate", run, "--per-class", 1, "--unflatten", 1_000_000_000, "--out", out / fmt)
        assert_refused(result, "--unflatten 1,000,000,000", "of memory", "choose a smaller --unflatten or --batch-size")
    assert_empty(out)
    assert sorted(p.name for p in run.iterdir()) == before


def test_unflatten_room_counts_the_batch(run: Path, tmp_path: Path, monkeypatch) -> None:
    # 1,000 candidates of 1,000 images (100 a class) are about 6 GB: refused with 100 MB said to be available;
    # with --batch-size 10 they are 63 MB, so the command goes on to the next check (the run has no
    # density weighting to undo).
    monkeypatch.setattr(outputs, "available_memory", lambda: 10**8)
    args = ("generate", run, "--per-class", 100, "--unflatten", 1000, "--out", tmp_path / "synth.npz")
    assert_refused(invoke(*args), "of each of a batch's 1,000 images", "of memory")
    assert_refused(invoke(*args, "--batch-size", 10), "trained without density weighting")
    assert_empty(tmp_path)


def test_unflatten_memory() -> None:
    assert unflatten_memory(0, batch=1024, image_shape=(1, 28, 28)) == 0
    assert unflatten_memory(1, batch=1024, image_shape=(1, 28, 28)) == 0  # one candidate is the plain sample
    two = unflatten_memory(2, batch=1024, image_shape=(1, 1, 28, 28))
    assert two >= 2 * 1024 * 784 * 4 * 2 and unflatten_memory(4, batch=1024, image_shape=(1, 28, 28)) == 2 * two
    check_unflatten_room(1, batch=10**12, image_shape=(1, 28, 28))  # nothing to hold: never refused
    with pytest.raises(InputError, match="choose a smaller --unflatten or --batch-size"):
        check_unflatten_room(10**9, batch=1024, image_shape=(1, 28, 28))


# ---- interpolate --steps ----------------------------------------------------------------------------------


def test_steps_beyond_memory_are_refused_before_work(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("interpolate", run, "--from", 0, "--to", 1, "--steps", 100_000_000, "--out", out / "walk.png")
    for extra in ((), ("--gif",)):
        assert_refused(invoke(*args, *extra), "--steps 100,000,000", "of memory", "ask for fewer --steps")
    assert not out.exists()  # not even the folder --out would have been written in
    assert_empty(tmp_path)


def test_steps_room_follows_the_available_memory(run: Path, tmp_path: Path, monkeypatch) -> None:
    # 100,000 frames of the tiny generator need a few GB at once (the walk, the strip); 100 MB is said to be there.
    monkeypatch.setattr(outputs, "available_memory", lambda: 10**8)
    args = ("interpolate", run, "--from", 0, "--to", 1, "--out", tmp_path / "walk.png")
    assert_refused(invoke(*args, "--steps", 100_000), "--steps 100,000", "is available")
    assert_empty(tmp_path)
    result = invoke(*args, "--steps", 3)  # a small walk fits and is written
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk.png"]


# ---- SyntheticMix -----------------------------------------------------------------------------------------


def _batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(n)), torch.arange(n) % 10


def test_lookahead_beyond_memory_is_refused_up_front(run: Path, monkeypatch) -> None:
    # Even one synthetic item a step for 10**7 steps needs GBs on the host: refused when the mix is made.
    monkeypatch.setattr(outputs, "available_memory", lambda: 10**9)
    with pytest.raises(InputError, match=r"lookahead=10,000,000 .* of memory .*choose a smaller lookahead") as info:
        SyntheticMix(run, share=0.5, lookahead=10**7, threads=1)
    assert "\n" not in str(info.value)


def test_lookahead_beyond_memory_unpatched(run: Path) -> None:
    # On this machine, whatever its memory: refused at the latest by the first call, before allocating.
    with pytest.raises(InputError, match=r"lookahead=10,000,000 .* of memory") as info:
        SyntheticMix(run, share=0.5, lookahead=10**7, threads=1)(*_batch())
    assert "\n" not in str(info.value)


def test_a_block_that_cannot_fit_is_refused_at_the_call_and_the_counter_stays(run: Path, monkeypatch) -> None:
    mix = SyntheticMix(run, share=0.5, lookahead=1000, threads=1)  # the lower bound (host, one item) fits
    host, device = mix.block_memory(16, 8, torch.float32)
    assert device >= 1000 * 8 * 784 * 4 and host > 0
    monkeypatch.setattr(outputs, "available_memory", lambda: 10**7)
    with pytest.raises(InputError, match=r"lookahead=1,000 \(8 synthetic images a step for batches of 16") as info:
        mix(*_batch())
    assert "\n" not in str(info.value) and "choose a smaller lookahead" in str(info.value)
    assert mix.step == 0 and mix._block is None  # nothing generated, the counter did not move
    monkeypatch.undo()
    images, _ = mix(*_batch())
    assert images.shape == (16, 1, 28, 28) and mix.step == 1


def test_classes_same_checks_each_batch(run: Path, monkeypatch) -> None:
    mix = SyntheticMix(run, share=0.5, classes="same", threads=1)
    monkeypatch.setattr(outputs, "available_memory", lambda: 10**4)
    with pytest.raises(InputError, match="a batch of 16 .* use smaller batches"):
        mix(*_batch())
    assert mix.step == 0


@pytest.mark.parametrize("threads", ["x", 0, -1, 2.5, True, 10**6])
def test_syntheticmix_threads_are_checked(run: Path, threads) -> None:
    with pytest.raises(InputError, match="threads") as info:
        SyntheticMix(run, share=0.5, threads=threads)
    assert "\n" not in str(info.value)


def test_syntheticmix_threads_within_the_machine_are_kept(run: Path) -> None:
    import numpy as np

    assert SyntheticMix(run, share=0.5, threads=np.int64(1)).threads == 1
    assert SyntheticMix(run, share=0.5).threads is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"normalize": (math.nan, 1.0)}, "normalize must be finite"),
        ({"normalize": (0.1, math.nan)}, "normalize must be finite"),
        ({"normalize": (0.1, math.inf)}, "normalize must be finite"),
        ({"normalize": (-math.inf, 0.3)}, "normalize must be finite"),
        ({"value_range": (0.0, math.inf)}, "value_range must be finite"),
        ({"value_range": (math.nan, 1.0)}, "value_range must be finite"),
    ],
)
def test_non_finite_scales_are_refused(run: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        SyntheticMix(run, share=0.5, threads=1, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "state, match",
    [
        (None, "state must be the dict SyntheticMix.state_dict\\(\\) returned, got NoneType"),
        ([("step", 3)], "got list"),
        ({"step": -1}, "step must be a whole number >= 0, got -1"),
        ({"step": 1.5}, "step must be a whole number >= 0"),
        ({"step": "3"}, "step must be a whole number >= 0"),
        ({"step": True}, "step must be a whole number >= 0"),
        ({"step": None}, "step must be a whole number >= 0"),
        ({}, "state has no 'step'"),
    ],
)
def test_load_state_dict_refuses_bad_states(run: Path, state, match: str) -> None:
    mix = SyntheticMix(run, share=0.5, threads=1)
    mix.step = 5
    with pytest.raises(InputError, match=match) as info:
        mix.load_state_dict(state)
    assert "\n" not in str(info.value)
    assert mix.step == 5


def test_load_state_dict_takes_numpy_steps(run: Path) -> None:
    import numpy as np

    mix = SyntheticMix(run, share=0.5, threads=1)
    mix.load_state_dict({"step": np.int64(7), "seed": 0})
    assert mix.step == 7 and type(mix.step) is int
