"""GeneratedDataset: torchvision's dataset contract, the index law, workers (fork and spawn), bad input."""

from __future__ import annotations

import multiprocessing
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

from ganaug.errors import InputError
from ganaug.feed.dataset import GeneratedDataset, SourceDataset, epoch_seed, largest_remainder, mixed_order
from ganaug.sample.runtime import OnnxGenerator


def export_tiny_once(tmp_path_factory: pytest.TempPathFactory, run_dir: Path) -> Path:
    """The tiny run's generator exported once per test session (shared by test_dataset and test_mixing)."""
    from ganaug.train.export import export_onnx

    out = tmp_path_factory.getbasetemp() / "tiny_generator.onnx"
    if not out.exists():
        export_onnx(run_dir, out)
    return out


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory, tiny_run) -> Path:
    return export_tiny_once(tmp_path_factory, tiny_run)


SORTED_TARGETS = np.repeat(np.arange(10), 6)  # per_class=6, class by class
MIXED_TARGETS = SORTED_TARGETS[mixed_order(3, 60)]  # the default order of per_class=6, seed=3


@pytest.fixture(scope="module")
def reference(onnx_path) -> np.ndarray:
    """uint8 [60, 28, 28]: what the runtime generates for per_class=6, seed=3, class by class, in one call."""
    runtime = OnnxGenerator(onnx_path, provider="cpu")
    return runtime.generate(runtime.labels(6), seed=3)


@pytest.fixture(scope="module")
def mixed_reference(onnx_path) -> np.ndarray:
    """uint8 [60, 28, 28]: image i is G(latents(3, i, i + 1), MIXED_TARGETS[i]), made by the runtime in one call."""
    return OnnxGenerator(onnx_path, provider="cpu").generate(MIXED_TARGETS, seed=3)


def check_vision_dataset_contract(ds, *, image_size=(28, 28)) -> None:
    """The contract training code written for torchvision.datasets.MNIST relies on."""
    n = len(ds)
    assert n > 0
    assert ds.class_to_idx == {c: i for i, c in enumerate(ds.classes)}
    assert len(ds.targets) == n and torch.as_tensor(ds.targets).dtype == torch.int64
    for i in (0, n // 2, n - 1):
        image, label = ds[i]
        assert isinstance(image, Image.Image) and image.mode == "L" and image.size == image_size
        assert type(label) is int and label == int(ds.targets[i])
    assert np.array_equal(np.asarray(ds[-1][0]), np.asarray(ds[n - 1][0]))
    with pytest.raises(IndexError):
        ds[n]
    with pytest.raises(IndexError):
        ds[-n - 1]
    assert f"Number of datapoints: {n}" in repr(ds)


def test_contract_and_law(onnx_path, reference, mixed_reference):
    ds = GeneratedDataset(onnx_path, per_class=6, seed=3)
    check_vision_dataset_contract(ds)
    assert len(ds) == 60 and ds.counts == [6] * 10 and ds.classes == OnnxGenerator(onnx_path).classes
    assert ds.order == "mixed" and ds.targets.tolist() == MIXED_TARGETS.tolist()
    assert "Seed: 3, fixed samples" in repr(ds) and "Order: mixed" in repr(ds) and "Items per class" in repr(ds)
    items = [ds[i] for i in range(len(ds))]
    assert np.array_equal(np.stack([np.asarray(im) for im, _ in items]), mixed_reference)
    assert [label for _, label in items] == ds.targets.tolist()
    # order="sorted": the class-by-class layout, the very images `ganaug generate` makes with these counts and seed.
    sorted_ds = GeneratedDataset(onnx_path, per_class=6, seed=3, order="sorted")
    check_vision_dataset_contract(sorted_ds)
    assert sorted_ds.targets.tolist() == SORTED_TARGETS.tolist() and sorted_ds.counts == ds.counts
    assert np.array_equal(sorted_ds.arrays(range(60)), reference)


def test_default_order_is_mixed_like_a_real_dataset(onnx_path):
    # Regression (issue 10): items were laid out class by class, so a DataLoader without shuffle=True saw one
    # class per batch and a classifier trained on it ended at chance.
    ds = GeneratedDataset(onnx_path, per_class=600, seed=0)
    sorted_ds = GeneratedDataset(onnx_path, per_class=600, seed=0, order="sorted")
    first_batch = ds.targets[:64]
    assert len(set(first_batch.tolist())) >= 8  # 64 draws from 10 equal classes: all but astronomically rare
    assert np.bincount(first_batch.numpy(), minlength=10).max() <= 16
    assert sorted(ds.targets.tolist()) == sorted_ds.targets.tolist() and ds.counts == sorted_ds.counts == [600] * 10
    assert set(sorted_ds.targets[:64].tolist()) == {0}
    unshuffled = GeneratedDataset(onnx_path, per_class=600, seed=0, transform=transforms.PILToTensor())
    _, labels = next(iter(DataLoader(unshuffled, batch_size=64)))  # shuffle=False, as in the scripts that broke
    assert labels.tolist() == first_batch.tolist()
    # The order depends on (seed, length) only: the same for the same seed, another for another seed.
    assert torch.equal(GeneratedDataset(onnx_path, per_class=600, seed=0).targets, ds.targets)
    assert not torch.equal(GeneratedDataset(onnx_path, per_class=600, seed=1).targets, ds.targets)
    weighted = GeneratedDataset(onnx_path, length=1000, class_weights=[5] + [1] * 9)
    assert weighted.counts == largest_remainder(1000, [5] + [1] * 9)
    assert np.bincount(weighted.targets.numpy(), minlength=10).tolist() == weighted.counts


def test_run_folder_and_tensor_outputs(onnx_path, reference):
    runtime = OnnxGenerator(onnx_path, provider="cpu")
    floats = runtime.generate(runtime.labels(6), seed=3, dtype="float")
    unit = GeneratedDataset(onnx_path, per_class=6, seed=3, order="sorted", output="tensor")
    signed = GeneratedDataset(onnx_path, per_class=6, seed=3, order="sorted", output="tensor", value_range=(-1, 1))
    image, label = unit[7]
    assert image.dtype == torch.float32 and image.shape == (1, 28, 28) and label == 1
    assert torch.equal(image, torch.from_numpy((floats[7] + 1) * 0.5))
    assert torch.equal(signed[7][0], torch.from_numpy(floats[7]))
    assert 0 <= image.min() and image.max() <= 1
    image[:] = 5  # items are copies: changing one leaves the cache alone
    assert unit[7][0].max() <= 1


def test_transforms_are_applied_like_mnist(onnx_path, mixed_reference):
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    ds = GeneratedDataset(onnx_path, per_class=6, seed=3, transform=tf, target_transform=lambda y: y + 100)
    image, label = ds[13]
    assert label == MIXED_TARGETS[13] + 100
    assert torch.allclose(image, torch.from_numpy(mixed_reference[13]).float().div(255).sub(0.5).div(0.5)[None])


def test_counts_by_name_and_by_weights(onnx_path):
    classes = OnnxGenerator(onnx_path).classes
    ds = GeneratedDataset(onnx_path, per_class={classes[3]: 2, 1: 3}, order="sorted")
    assert ds.targets.tolist() == [3, 3, 1, 1, 1] and ds.counts[3] == 2 and ds.counts[1] == 3
    mixed = GeneratedDataset(onnx_path, per_class={classes[3]: 2, 1: 3})
    assert mixed.targets.tolist() == np.array([3, 3, 1, 1, 1])[mixed_order(0, 5)].tolist() and mixed.counts == ds.counts
    weighted = GeneratedDataset(onnx_path, length=23, class_weights=[2] + [1] * 9)
    assert weighted.counts == largest_remainder(23, [2] + [1] * 9) == [5] + [2] * 9
    assert sum(weighted.counts) == len(weighted) == 23
    assert GeneratedDataset(onnx_path, length=3, class_weights={classes[9]: 1.0}).targets.tolist() == [9, 9, 9]
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]


def test_set_epoch_gives_fresh_reproducible_samples(onnx_path, reference):
    ds = GeneratedDataset(onnx_path, per_class=6, seed=3, order="sorted")
    ds.set_epoch(1)
    first = ds.arrays(range(60))
    assert not np.array_equal(first, reference)
    assert ds.latent_seed == epoch_seed(3, 1) and "epoch 1" in repr(ds)
    runtime = OnnxGenerator(onnx_path, provider="cpu")
    assert np.array_equal(first, runtime.generate(runtime.labels(6), seed=epoch_seed(3, 1)))
    ds.set_epoch(2)
    assert not np.array_equal(ds.arrays(range(60)), first)
    ds.set_epoch(None)
    assert np.array_equal(ds.arrays(range(60)), reference)
    assert ds.targets.tolist() == SORTED_TARGETS.tolist()


def test_set_epoch_keeps_the_mixed_labels(onnx_path, mixed_reference):
    ds = GeneratedDataset(onnx_path, per_class=6, seed=3)
    ds.set_epoch(4)
    assert ds.targets.tolist() == MIXED_TARGETS.tolist()
    fresh = OnnxGenerator(onnx_path, provider="cpu").generate(MIXED_TARGETS, seed=epoch_seed(3, 4))
    assert np.array_equal(ds.arrays(range(60)), fresh)
    ds.set_epoch(None)
    assert np.array_equal(ds.arrays(range(60)), mixed_reference)


@settings(max_examples=8, deadline=None)
@given(order=st.permutations(range(60)), batch=st.integers(1, 17), chunk=st.sampled_from([1, 7, 64, 1024]))
def test_items_do_not_depend_on_order_batch_or_chunk(onnx_path, mixed_reference, order, batch, chunk):
    ds = GeneratedDataset(onnx_path, per_class=6, seed=3, chunk_size=chunk)
    got = np.zeros_like(mixed_reference)
    for start in range(0, 60, batch):
        part = order[start : start + batch]
        items = ds.__getitems__(part) if batch > 1 else [ds[part[0]]]
        for i, (image, label) in zip(part, items):
            got[i] = np.asarray(image)
            assert label == MIXED_TARGETS[i]
    assert np.array_equal(got, mixed_reference)


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")  # 4 workers on 2 cores, on purpose
@pytest.mark.parametrize(("start_method", "workers"), [("fork", 2), ("fork", 4), ("spawn", 2)])
def test_dataloader_workers(onnx_path, mixed_reference, start_method, workers):
    if start_method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{start_method} is not available here")
    ds = GeneratedDataset(onnx_path, per_class=6, seed=3, transform=transforms.PILToTensor())
    order = torch.randperm(60, generator=torch.Generator().manual_seed(0)).tolist()
    loader = DataLoader(ds, batch_size=8, sampler=order, num_workers=workers, multiprocessing_context=start_method)
    images, labels = zip(*loader)
    assert torch.equal(torch.cat(images)[:, 0], torch.from_numpy(mixed_reference)[order])
    assert torch.cat(labels).tolist() == MIXED_TARGETS[order].tolist()


def test_workers_use_cpu_and_split_the_cores(onnx_path, monkeypatch):
    import os

    import torch.utils.data

    ds = GeneratedDataset(onnx_path, per_class=1)
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: type("Info", (), {"num_workers": 4})())
    runtime = ds._runtime()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert runtime.requested_provider == "cpu" and runtime.threads == max(1, cores // 4)
    assert GeneratedDataset(onnx_path, per_class=1, threads=3)._runtime().threads == 3


def test_pickles_without_a_session_and_keeps_the_cache(onnx_path, mixed_reference):
    ds = GeneratedDataset(onnx_path, per_class=6, seed=3).materialize()
    assert not any(isinstance(v, OnnxGenerator) for v in vars(ds).values())
    copy = pickle.loads(pickle.dumps(ds))
    assert copy._have.all() and np.array_equal(copy.arrays(range(60)), mixed_reference)
    fresh = pickle.loads(pickle.dumps(GeneratedDataset(onnx_path, per_class=6, seed=3)))
    assert np.array_equal(fresh.arrays(range(60)), mixed_reference)
    assert torch.equal(fresh.targets, copy.targets)


def test_source_dataset_contract():
    ds = SourceDataset("digits", split="test")
    check_vision_dataset_contract(ds)
    assert ds.data.dtype == torch.uint8 and ds.data.shape == (len(ds), 28, 28)
    assert np.array_equal(np.asarray(ds[5][0]), ds.data[5].numpy())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"per_class": 0}, "per_class must be a whole number >= 1"),
        ({"per_class": -3}, "per_class must be a whole number >= 1"),
        ({"per_class": {"no such class": 2}}, "unknown class 'no such class'"),
        ({"per_class": {1: 0}}, ">= 1"),
        ({"per_class": {12: 1}}, "unknown class 12"),
        ({}, "exactly one of per_class"),
        ({"per_class": 2, "length": 10}, "exactly one of per_class"),
        ({"per_class": 2, "class_weights": [1] * 10}, "class_weights= goes with length="),
        ({"length": 0}, "length must be a whole number >= 1"),
        ({"length": 5, "class_weights": [1, 2]}, "class_weights has 2 entries"),
        ({"length": 5, "class_weights": [-1] + [1] * 9}, "class_weights must be finite"),
        ({"per_class": 1, "output": "numpy"}, "unknown output 'numpy'"),
        ({"per_class": 1, "value_range": (0, 1)}, "value_range= applies to output='tensor'"),
        ({"per_class": 1, "output": "tensor", "value_range": (0, 255)}, "unknown value_range"),
        ({"per_class": 1, "seed": -1}, "seed must be"),
        ({"per_class": 1, "seed": 2**63}, "seed must be a whole number from 0 to"),
        ({"per_class": 1, "seed": 2**128}, "seed must be a whole number from 0 to"),
        ({"per_class": 1, "order": "shuffled"}, "unknown order 'shuffled'; choose 'mixed' or 'sorted'"),
    ],
)
def test_bad_arguments(onnx_path, kwargs, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GeneratedDataset(onnx_path, **kwargs)


def test_bad_files(tmp_path, onnx_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph), tmp_path / "identity.onnx")
    with pytest.raises(InputError, match="not a ganaug generator"):
        GeneratedDataset(tmp_path / "identity.onnx", per_class=1)
    (tmp_path / "notes.onnx").write_text("not a model")
    with pytest.raises(InputError, match="not an ONNX file"):
        GeneratedDataset(tmp_path / "notes.onnx", per_class=1)
    with pytest.raises(InputError, match="no ONNX model"):
        GeneratedDataset(tmp_path, per_class=1)
    ds = GeneratedDataset(onnx_path, per_class=1)
    with pytest.raises(TypeError):
        ds["0"]
    with pytest.raises(InputError, match="epoch must be"):
        ds.set_epoch(-1)


def test_data_attribute_is_every_image_like_mnist(onnx_path, mixed_reference):
    ds = GeneratedDataset(onnx_path, per_class=6, seed=3)
    assert ds.data.dtype == torch.uint8 and ds.data.shape == (60, 28, 28)
    assert np.array_equal(ds.data.numpy(), mixed_reference)
    for value_range in ((0, 1), (-1, 1)):
        tensors = GeneratedDataset(onnx_path, per_class=6, seed=3, output="tensor", value_range=value_range)
        assert np.abs(tensors.data.numpy().astype(int) - mixed_reference.astype(int)).max() <= 1
