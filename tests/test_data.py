import numpy as np
import pytest
import torch
from PIL import Image

from ganaug.data import MNIST_CLASSES, indices_hash, load_source, load_training_data, stratified_subset
from ganaug.errors import InputError


def test_fake_mnist_loads_in_model_range(fake_mnist_root):
    data = load_training_data("mnist", root=fake_mnist_root)
    assert data.images.shape == (200, 1, 28, 28) and data.images.dtype == torch.float32
    assert data.images.min() >= -1 and data.images.max() <= 1
    assert data.labels.dtype == torch.int64 and data.classes == MNIST_CLASSES
    assert data.identity["size"] == 200 and data.identity["per_class"] is None


def test_per_class_subset_is_exact_seeded_and_recorded(fake_mnist_root):
    a = load_training_data("mnist", root=fake_mnist_root, per_class=7, seed=1)
    b = load_training_data("mnist", root=fake_mnist_root, per_class=7, seed=1)
    c = load_training_data("mnist", root=fake_mnist_root, per_class=7, seed=2)
    assert torch.bincount(a.labels).tolist() == [7] * 10
    assert np.array_equal(a.indices, b.indices) and not np.array_equal(a.indices, c.indices)
    assert a.identity["indices_sha256"] == indices_hash(a.indices) != c.identity["indices_sha256"]
    src = load_source("mnist", root=fake_mnist_root)
    assert torch.equal(src.labels[torch.from_numpy(a.indices)], a.labels)


def test_stratified_subset_rejects_budget_larger_than_a_class():
    labels = np.array([0] * 5 + [1] * 3)
    with pytest.raises(InputError, match="larger than class 1, which has 3"):
        stratified_subset(labels, 4, seed=0)


def test_digits_are_embedded_28x28_with_disjoint_splits():
    train, test = load_source("digits", split="train"), load_source("digits", split="test")
    assert train.images.shape[1:] == (28, 28) and train.images.dtype == torch.uint8
    assert len(train.labels) + len(test.labels) == 1797
    assert train.images[:, :3, :].max() == 0  # the digit is centred like MNIST, borders empty
    assert sorted(set(train.labels.tolist())) == list(range(10))


def test_missing_mnist_files_say_where_and_what_to_do(tmp_path):
    with pytest.raises(InputError, match=r"MNIST/raw.*--download"):
        load_source("mnist", root=tmp_path)


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(InputError, match="choose one of: digits, mnist"):
        load_source("cifar", root=".")


def test_imagefolder_becomes_grayscale_28x28(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 32), (i * 40, 100, 200)).save(tmp_path / cls / f"{i}.png")
    src = load_source("imagefolder", root=tmp_path)
    assert src.images.shape == (6, 28, 28) and src.classes == ["cat", "dog"]
    assert src.labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_imagefolder_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_source("imagefolder", root=tmp_path / "nope")


def test_fashion_mnist_reads_its_own_folder(tmp_path):
    from tests.conftest import make_fake_mnist

    make_fake_mnist(tmp_path, folder="FashionMNIST")
    src = load_source("fashion-mnist", root=tmp_path, split="test")
    assert src.images.shape == (50, 28, 28) and src.classes[0] == "T-shirt/top"
    with pytest.raises(InputError, match="FashionMNIST/raw"):
        load_source("fashion-mnist", root=tmp_path / "elsewhere")
