"""Distinct synthetic items in every DataLoader worker: SyntheticMix in a ``collate_fn``, GeneratedDataset, augment.

The law checked here: the synthetic items of batch ``i`` of a DataLoader are the same whatever ``num_workers``
(0, or 2 with fork or spawn), so a worker never replays another worker's part of the stream.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.utils.data
from torch.utils.data import ConcatDataset, DataLoader, TensorDataset, default_collate

from ganaug.feed.batchmix import SyntheticMix

# Spawned workers import this module to unpickle MixCollate: it imports only what that needs (torchvision,
# ganaug.feed.dataset and ganaug.feed.mixing load inside the tests that use them), so the workers start sooner.

pytestmark = pytest.mark.usefixtures("one_thread")

ITEMS, BATCH, SHARE = 512, 64, 0.25  # 8 batches of 64, 16 synthetic items in each


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory, tiny_run) -> Path:
    """The tiny run's generator.onnx, exported once per session (the file test_dataset and test_mixing share)."""
    from ganaug.train.export import export_onnx

    out = tmp_path_factory.getbasetemp() / "tiny_generator.onnx"
    if not out.exists():
        export_onnx(tiny_run, out)
    return out


@pytest.fixture(scope="module")
def real() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.rand(ITEMS, 1, 28, 28, generator=g), torch.randint(0, 10, (ITEMS,), generator=g))


class MixCollate:
    """``mix(*default_collate(batch))`` as torchvision documents CutMix / MixUp, picklable for spawn workers.

    Returns the synthetic items' hashes, their labels and the mix's counter after the call (in the process
    that ran it)."""

    def __init__(self, mix: SyntheticMix) -> None:
        self.mix = mix

    def __call__(self, batch: list) -> tuple[list[str], list[int], int]:
        images, labels, mask = self.mix(*default_collate(batch), return_mask=True)
        hashes = [hashlib.sha1(image.numpy().tobytes()).hexdigest() for image in images[mask]]
        return hashes, labels[mask].tolist(), self.mix.step


def mixed_batches(mix: SyntheticMix, real: TensorDataset, workers: int, context: str | None = None, **kwargs):
    """[(synthetic hashes, synthetic labels, step after the call)] of each batch of one epoch."""
    if context is not None and context not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{context} is not available here")
    loader = DataLoader(
        real,
        batch_size=BATCH,
        collate_fn=MixCollate(mix),
        num_workers=workers,
        multiprocessing_context=context if workers else None,
        **kwargs,
    )
    return list(loader)


def distinct(batches) -> int:
    return len({h for hashes, _, _ in batches for h in hashes})


@pytest.fixture(scope="module")
def no_workers(onnx_path, real):
    """The reference: the 8 batches of one epoch with the mix in the main process (128 distinct items)."""
    mix = SyntheticMix(onnx_path, share=SHARE, seed=0, threads=1)
    batches = mixed_batches(mix, real, 0)
    assert mix.step == ITEMS // BATCH and distinct(batches) == ITEMS // BATCH * 16
    return batches


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_two_workers_give_the_batches_of_no_workers(onnx_path, real, no_workers, context) -> None:
    mix = SyntheticMix(onnx_path, share=SHARE, seed=0, threads=1)
    batches = mixed_batches(mix, real, 2, context)
    assert distinct(batches) == distinct(no_workers) == 128  # the bar: as many distinct items as without workers
    for (hashes, labels, _), (expected, expected_labels, _) in zip(batches, no_workers, strict=True):
        assert hashes == expected and labels == expected_labels  # batch i's items, whatever num_workers
    # In worker w of 2 the counter is the next stream step of that worker: its k-th batch is batch 2 k + w.
    assert [step for _, _, step in batches] == [i + 2 for i in range(len(batches))]
    assert mix.step == 0  # the main process's copy was never called


def test_workers_are_deterministic_by_seed(onnx_path, real, no_workers) -> None:
    again = mixed_batches(SyntheticMix(onnx_path, share=SHARE, seed=0, threads=1), real, 2, "fork")
    assert again == mixed_batches(SyntheticMix(onnx_path, share=SHARE, seed=0, threads=1), real, 2, "fork")
    other = mixed_batches(SyntheticMix(onnx_path, share=SHARE, seed=1, threads=1), real, 2, "fork")
    assert not {h for hashes, _, _ in other for h in hashes} & {h for hashes, _, _ in again for h in hashes}


def test_persistent_workers_continue_the_stream_each_epoch(onnx_path, real) -> None:
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("fork is not available here")

    def two_epochs(dataset) -> list:
        mix = SyntheticMix(onnx_path, share=SHARE, seed=0, threads=1)
        loader = DataLoader(
            dataset,
            batch_size=BATCH,
            collate_fn=MixCollate(mix),
            num_workers=2,
            multiprocessing_context="fork",
            persistent_workers=True,
        )
        return list(loader) + list(loader)

    epochs = two_epochs(real)
    reference = SyntheticMix(onnx_path, share=SHARE, seed=0, threads=1)
    expected = mixed_batches(reference, real, 0) + mixed_batches(reference, real, 0)  # the counter runs on
    assert distinct(epochs) == 256  # no item of epoch 0 comes back in epoch 1
    assert [b[:2] for b in epochs] == [b[:2] for b in expected]
    # 7 batches an epoch: worker 0 does 4 and worker 1 does 3, then each restarts the round; still no repeat.
    odd = two_epochs(torch.utils.data.Subset(real, range(7 * BATCH)))
    assert distinct(odd) == 2 * 7 * 16


def test_fresh_workers_continue_from_the_main_process_step(onnx_path, real, no_workers) -> None:
    """Workers that are not persistent copy the main process's mix each epoch: setting its step to the batches
    done so far (``mix.step = epoch * len(loader)``) continues the stream as the 0-worker loop does."""
    mix = SyntheticMix(onnx_path, share=SHARE, seed=0, threads=1)
    reference = SyntheticMix(onnx_path, share=SHARE, seed=0, threads=1)
    reference.load_state_dict({"step": ITEMS // BATCH, "seed": 0})
    mix.step = 1 * (ITEMS // BATCH)  # epoch 1 of a loader of 8 batches
    second = mixed_batches(mix, real, 2, "fork")
    assert [b[:2] for b in second] == [b[:2] for b in mixed_batches(reference, real, 0)]
    assert not {h for hashes, _, _ in second for h in hashes} & {h for hashes, _, _ in no_workers for h in hashes}


# ---- indexed datasets: item i is a function of (seed, i), so workers fetch distinct items already --------


def generated_items(dataset, *, batch_size: int, workers: int, context: str | None, sampler=None):
    if context is not None and context not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{context} is not available here")
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        multiprocessing_context=context if workers else None,
    )
    images, labels = zip(*loader)
    return torch.cat(images), torch.cat(labels)


@pytest.fixture
def augmented(onnx_path) -> tuple:
    """The digits plus 50 synthetic items a class, and a generated set of 60 (tensor items in [0, 1]); new for
    each test, so that no item is cached in the main process before the workers start (the cache travels)."""
    from torchvision import transforms

    from ganaug.feed.dataset import GeneratedDataset, SourceDataset
    from ganaug.feed.mixing import augment

    digits = SourceDataset("digits", transform=transforms.ToTensor())
    return augment(digits, onnx_path, per_class=50), GeneratedDataset(onnx_path, per_class=6, seed=3, output="tensor")


@pytest.mark.parametrize(("batch_size", "workers", "context"), [(7, 2, "fork"), (16, 2, "spawn")])
def test_generated_and_augmented_items_are_the_same_whatever_the_workers(
    augmented, batch_size, workers, context
) -> None:
    train, generated = augmented
    # GeneratedDataset: item i, whatever the batch size and worker count (shuffled order, 2 vs 0 workers);
    # augment: the sampler draws in the main process, the workers only fetch. One loader over both.
    order = torch.randperm(len(generated), generator=torch.Generator().manual_seed(1)).tolist()
    draws = [i + len(generated) for i in train.sampler(0.25, generator=torch.Generator().manual_seed(2))]
    picks = order + draws[:192]
    both = ConcatDataset([generated, train])
    assert generated._cache is None and all(s._cache is None for s in train.synthetic.sources)  # workers generate
    got, targets = generated_items(both, batch_size=batch_size, workers=workers, context=context, sampler=picks)
    reference, reference_targets = generated_items(both, batch_size=5, workers=0, context=None, sampler=picks)
    assert torch.equal(got, reference) and torch.equal(targets, reference_targets)
    assert torch.equal(got[: len(order)], torch.from_numpy(generated.arrays(order)))
    synthetic = [k for k, p in enumerate(draws[:192]) if p - len(generated) >= len(train.real)]
    assert 30 < len(synthetic) < 70  # the sampler's 25% share of 192 draws
    hashes = {hashlib.sha1(got[len(order) + k].numpy().tobytes()).hexdigest() for k in synthetic}
    assert len(hashes) == len({draws[k] for k in synthetic})  # one distinct image per distinct item


def test_generated_set_epoch_reaches_fresh_workers(onnx_path) -> None:
    from ganaug.feed.dataset import GeneratedDataset

    dataset = GeneratedDataset(onnx_path, per_class=6, seed=3, output="tensor")
    epoch0 = generated_items(dataset, batch_size=8, workers=2, context="fork")[0]
    dataset.set_epoch(1)
    epoch1 = generated_items(dataset, batch_size=8, workers=2, context="fork")[0]
    assert torch.equal(epoch1, generated_items(dataset, batch_size=60, workers=0, context=None)[0])
    assert not torch.equal(epoch0, epoch1)
    hashes = {hashlib.sha1(x.numpy().tobytes()).hexdigest() for x in torch.cat([epoch0, epoch1])}
    assert len(hashes) == 120


# ---- the lanes without a DataLoader: a worker faked through get_worker_info ------------------------------


def fake_worker(monkeypatch, worker: int, workers: int) -> None:
    info = SimpleNamespace(id=worker, num_workers=workers)
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: info)


@pytest.mark.parametrize("ahead", [False, True])
def test_a_worker_takes_every_w_th_step_and_generates_only_those(onnx_path, monkeypatch, ahead) -> None:
    g = torch.Generator().manual_seed(3)
    images, labels = torch.rand(12, 1, 28, 28, generator=g), torch.randint(0, 10, (12,), generator=g)
    kwargs = {"share": 0.5, "seed": 5, "lookahead": 4, "threads": 1}
    expected = {s: SyntheticMix(onnx_path, **kwargs)(images, labels, step=s, return_mask=True) for s in range(25)}
    mix = SyntheticMix(onnx_path, **kwargs)
    mix.load_state_dict({"step": 2, "seed": 5})  # s0 = 2, as the main process's copy had it
    rows = []
    generate = mix.generate
    monkeypatch.setattr(mix, "generate", lambda z, y: rows.append(len(z)) or generate(z, y))
    fake_worker(monkeypatch, 1, 3)
    if ahead:  # what CUDA batches get: the next block's host arrays drawn on a thread, in the worker's lane
        monkeypatch.setattr(SyntheticMix, "_PREFETCH_ON", ("cpu",))
    for step in range(3, 25, 3):  # worker 1 of 3 from s0 = 2: steps 3, 6, 9, ..., 24
        got = mix(images, labels, return_mask=True)
        assert all(torch.equal(a, b) for a, b in zip(got, expected[step], strict=True))
        assert mix.step == step + 3  # the next step of this worker
    assert mix.state_dict() == {"step": 27, "seed": 5}
    # Blocks of 4 steps of its lane, 3 apart ({0, 3, 6, 9}, {12, ..}, {24, ..}), 6 synthetic items a step: never
    # another worker's steps (blocks of 4 consecutive steps would be 7 here, three quarters of them unused).
    assert rows == [4 * 6] * 3
    assert not ahead or mix._ahead[:2] == ((36, 12), 3)  # the block after {24, 27, 30, 33}, being drawn
    mix.load_state_dict({"step": 4, "seed": 5})  # in a worker: the next step of that worker, as given
    assert torch.equal(mix(images, labels)[0], expected[4][0]) and mix.step == 7
    assert torch.equal(mix(images, labels, step=5)[0], expected[5][0]) and mix.step == 7  # explicit: as given


@pytest.mark.parametrize(
    ("mode", "batch_size", "share"), [("replace", 13, 0.5), ("extend", 6, 0.5), ("replace", 8, 0.0)]
)
def test_a_strided_draw_equals_the_plans_of_its_steps(onnx_path, mode, batch_size, share) -> None:
    mix = SyntheticMix(onnx_path, share=share, mode=mode, seed=3, threads=1)
    positions, labels = mix._draw(5, 6, batch_size, 3)  # steps 5, 8, .., 20
    ints, z = mix._host_arrays(5, 6, batch_size, 3)
    n = mix.synthetic_count(batch_size)
    for j, step in enumerate(range(5, 23, 3)):
        plan = mix.plan(batch_size, step=step)
        assert labels[j].tolist() == plan.labels.tolist() == ints[-1, j].tolist()
        if mode == "replace":
            assert positions[j].tolist() == plan.positions.tolist() == ints[0, j].tolist()
        one = mix._host_arrays(step, 1, batch_size)[1]
        assert torch.equal(z[j * n : (j + 1) * n], one)
