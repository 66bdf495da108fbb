import numpy as np
import pytest
import torch
from PIL import Image

from ganaug.data.sources import MNIST_CLASSES, indices_hash, load_source, load_training_data, stratified_subset
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


def _corrupt(raw, name: str, how: str) -> None:
    """Damage ``raw/name`` as a user's copy gets damaged."""
    import struct

    path = raw / name
    data = bytearray(path.read_bytes())
    if how == "magic":
        data[:4] = struct.pack(">I", 0x00000801 if "images" in name else 0x00000803)
    elif how == "dims":
        data[8:12] = struct.pack(">I", 32)
    elif how == "truncated":
        del data[len(data) // 2 :]
    elif how == "header":
        del data[6:]
    elif how == "count":
        data[4:8] = struct.pack(">I", struct.unpack(">I", bytes(data[4:8]))[0] - 1)
        del data[-1:]
    elif how == "label":
        data[-1] = 12
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("name", "how", "message"),
    [
        ("train-images-idx3-ubyte", "magic", r"not an MNIST images file \(idx magic 0x00000801, expected 0x00000803\)"),
        ("train-labels-idx1-ubyte", "magic", r"not an MNIST labels file"),
        ("train-images-idx3-ubyte", "dims", r"images of 32x28, not 28x28"),
        ("train-images-idx3-ubyte", "truncated", r"holds \d+ bytes but its header promises 156816 \(200 x 28 x 28\)"),
        ("train-labels-idx1-ubyte", "truncated", r"holds 104 bytes but its header promises 208 \(200\)"),
        ("train-images-idx3-ubyte", "header", r"is truncated \(6 bytes, less than an idx header\)"),
        ("train-labels-idx1-ubyte", "count", r"holds 199 labels but the images file beside it 200 images"),
        ("train-labels-idx1-ubyte", "label", r"holds label 12; MNIST labels are 0\.\.9"),
    ],
)
def test_bad_mnist_files_are_one_line_naming_the_file(fake_mnist_root, name, how, message):
    # Regression (issue 10): torchvision raised an assertion or a reshape error with a traceback.
    raw = fake_mnist_root / "MNIST" / "raw"
    _corrupt(raw, name, how)
    with pytest.raises(InputError, match=message) as e:
        load_source("mnist", root=fake_mnist_root, split="train")
    assert str(e.value).startswith(str(raw / name)) and "\n" not in str(e.value) and "--download" in str(e.value)
    assert len(load_source("mnist", root=fake_mnist_root, split="test").labels) == 50  # the other split is intact


def _image_folder(root, classes, *, n=2):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("L", (28, 28), 20 * c + i).save(root / name / f"{i}.png")
    return root


def test_corrupt_image_in_an_image_folder_is_named(tmp_path):
    root = _image_folder(tmp_path / "imgs", ["a", "b"])
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(InputError, match=r"broken\.png is not a readable image .*; remove or replace it") as e:
        load_training_data("imagefolder", root=root)
    assert str(e.value).startswith(str(root / "b" / "broken.png")) and "\n" not in str(e.value)


def test_image_folder_with_three_classes_and_its_splits(tmp_path):
    root = tmp_path / "imgs"
    _image_folder(root / "train", ["ant", "bee", "cow"], n=3)
    _image_folder(root / "test", ["ant", "bee", "cow"], n=1)
    train, test = load_source("imagefolder", root=root), load_source("imagefolder", root=root, split="test")
    assert train.classes == test.classes == ["ant", "bee", "cow"]
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and test.labels.tolist() == [0, 1, 2]
    assert int(train.images[3, 0, 0]) == 20 and int(test.images[2, 0, 0]) == 40  # the pixels survive
    data = load_training_data("imagefolder", root=root, per_class=2, seed=0)
    assert data.classes == ["ant", "bee", "cow"] and torch.bincount(data.labels).tolist() == [2, 2, 2]


def test_image_folder_without_test_split_never_tests_on_training_images(tmp_path):
    # Regression (issue 10): split="test" silently fell back to the training images.
    flat = _image_folder(tmp_path / "flat", ["a", "b"])
    assert len(load_source("imagefolder", root=flat).labels) == 4
    with pytest.raises(InputError, match=r"has no test/ folder, and ganaug never evaluates on training images"):
        load_source("imagefolder", root=flat, split="test")
    only_test = _image_folder(tmp_path / "only_test" / "test", ["a", "b"]).parent
    with pytest.raises(InputError, match=r"has test/ but no train/"):
        load_source("imagefolder", root=only_test)
    one = _image_folder(tmp_path / "one", ["a"])
    with pytest.raises(InputError, match=r"holds 1 class folder\(s\); a conditional GAN needs >= 2"):
        load_source("imagefolder", root=one)
