"""augment(): counts, item types across torchvision MNIST / ImageFolder / SourceDataset, the label check, bad input."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset, TensorDataset
from torchvision import datasets, transforms

from ganaug.errors import InputError
from ganaug.feed.dataset import GeneratedDataset, SourceDataset
from ganaug.feed.mixing import AugmentedDataset, augment, draw_synthetic
from ganaug.sample.resample import LabelCheck
from tests.test_dataset import export_tiny_once


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory, tiny_run) -> Path:
    return export_tiny_once(tmp_path_factory, tiny_run)


@pytest.fixture(scope="module")
def digits() -> SourceDataset:
    return SourceDataset("digits")


def imbalanced(real, per_class: list[int]) -> Subset:
    """The first ``per_class[c]`` items of each class ``c``."""
    targets = np.asarray(real.targets)
    return Subset(real, np.concatenate([np.flatnonzero(targets == c)[:n] for c, n in enumerate(per_class)]).tolist())


class PixelSumClassifier(torch.nn.Module):
    """A fake classifier that looks only at the image: class = round(100 * pixel sum) mod 10."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x)
        return torch.nn.functional.one_hot((x.sum(dim=(1, 2, 3)) * 100).round().long() % 10, 10).float()


def test_ratio_counts_items_and_report(onnx_path, digits):
    real_counts = [3, 5, 8, 2, 4, 6, 1, 7, 9, 10]
    real = imbalanced(digits, real_counts)
    mixed = augment(real, onnx_path, ratio=0.5, seed=4)
    expected = [int(np.floor(0.5 * r + 0.5)) for r in real_counts]
    assert isinstance(mixed, AugmentedDataset) and len(mixed) == len(real) + sum(expected)
    assert mixed.mix.real == real_counts and mixed.mix.synthetic == expected
    assert np.bincount(mixed.targets.numpy(), minlength=10).tolist() == [r + s for r, s in zip(real_counts, expected)]
    report = mixed.to_dict()
    assert report["total"] == {"real": 55, "synthetic": sum(expected)} and report["rule"] == {"ratio": 0.5}
    assert report["per_class"][digits.classes[2]] == {"real": 8, "synthetic": 4} and report["seed"] == 4
    for i in (0, len(real) - 1, len(real), len(mixed) - 1):
        image, label = mixed[i]
        assert isinstance(image, Image.Image) and image.mode == "L" and image.size == (28, 28)
        assert label == int(mixed.targets[i])
    batch = mixed.__getitems__([len(mixed) - 1, 0, len(real)])
    assert [label for _, label in batch] == [int(mixed.targets[i]) for i in (len(mixed) - 1, 0, len(real))]
    # Without a check the synthetic items are exactly GeneratedDataset(per_class=quotas, seed=seed).
    same = GeneratedDataset(onnx_path, per_class={c: n for c, n in enumerate(expected) if n}, seed=4, order="sorted")
    assert np.array_equal(
        np.stack([np.asarray(mixed[len(real) + k][0]) for k in range(len(same))]), same.arrays(range(len(same)))
    )


def test_per_class_and_balancing(onnx_path, digits):
    real = imbalanced(digits, [4, 2, 6, 1, 3, 5, 2, 2, 2, 2])
    assert augment(real, onnx_path, per_class=3).mix.synthetic == [3] * 10
    by_name = augment(real, onnx_path, per_class={digits.classes[1]: 4, 7: 1})
    assert by_name.mix.synthetic == [0, 4, 0, 0, 0, 0, 0, 1, 0, 0]
    assert by_name.targets[len(real) :].tolist() == [1, 1, 1, 1, 7]
    to_max = augment(real, onnx_path, balance_to="max")
    assert np.bincount(to_max.targets.numpy()).tolist() == [6] * 10
    to_five = augment(real, onnx_path, balance_to=5)
    assert to_five.mix.synthetic == [1, 3, 0, 4, 2, 0, 3, 3, 3, 3]
    assert augment(real, onnx_path, balance_to=1).mix.synthetic == [0] * 10


def test_one_transform_normalizes_mnist_and_synthetic(onnx_path, fake_mnist_root):
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    mnist = datasets.MNIST(str(fake_mnist_root), train=True, transform=tf)
    mixed = augment(Subset(mnist, range(20)), onnx_path, ratio=1.0)
    real_image, _ = mixed[0]
    synthetic_image, _ = mixed[len(mixed) - 1]
    assert real_image.shape == synthetic_image.shape == (1, 28, 28) and real_image.dtype == synthetic_image.dtype
    raw = np.asarray(mixed.synthetic.sources[0].arrays([mixed.synthetic.picks[-1, 1]])[0])
    assert torch.allclose(synthetic_image, tf(Image.fromarray(raw)))
    x, y = next(iter(DataLoader(mixed, batch_size=len(mixed), num_workers=2)))
    assert x.shape == (len(mixed), 1, 28, 28) and y.tolist() == mixed.targets.tolist()
    assert pickle.loads(pickle.dumps(mixed)).mix == mixed.mix


def write_image_folder(root: Path, classes: list[str], *, size: int = 28, per_class: int = 2) -> Path:
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for k in range(per_class):
            Image.new("RGB", (size, size), (c * 20, k * 50, 0)).save(root / name / f"{k}.png")
    return root


def test_image_folder_items_are_rgb_like_the_real_ones(onnx_path, digits, tmp_path):
    folder = datasets.ImageFolder(str(write_image_folder(tmp_path / "f", [str(c) for c in range(10)])))
    mixed = augment(folder, onnx_path, per_class=1, match_class_names=False)
    image, _ = mixed[len(mixed) - 1]
    assert image.mode == folder[0][0].mode == "RGB" and image.size == (28, 28)
    assert mixed.classes == folder.classes
    with pytest.raises(InputError, match="differ from the generator's"):
        augment(folder, onnx_path, per_class=1)


def test_label_check(onnx_path):
    clf = PixelSumClassifier().eval()
    check = LabelCheck(clf)
    chosen = draw_synthetic(onnx_path, 4, seed=1, label_check=check)
    assert len(chosen) == 40 and np.bincount(chosen.targets.numpy()).tolist() == [4] * 10
    # The items are those of GeneratedDataset with the same check: one law for every consumer.
    same = GeneratedDataset(onnx_path, per_class=4, seed=1, order="sorted", label_check=check)
    images = np.stack([np.asarray(image) for image, _ in (chosen[k] for k in range(len(chosen)))])
    assert np.array_equal(images, same.arrays(range(40))) and chosen.targets.tolist() == same.targets.tolist()
    plain = GeneratedDataset(onnx_path, per_class=4, seed=1, order="sorted", output="tensor", value_range=(-1, 1))
    checked = GeneratedDataset(
        onnx_path, per_class=4, seed=1, order="sorted", output="tensor", value_range=(-1, 1), label_check=check
    )
    x_plain, x_checked = plain.arrays(range(40)), checked.arrays(range(40))
    labels = plain.targets.numpy()
    assert not np.array_equal(x_plain, x_checked)  # the fake classifier does reject some
    assert check.judge(x_checked, labels)[0].sum() > check.judge(x_plain, labels)[0].sum()
    # The manifest side: what was used, and independent of the classifier's batch size.
    sampling = chosen.sampling["label_check"]
    assert sampling["rounds"] == 8 and sampling["classifier"].endswith("PixelSumClassifier")
    assert len(sampling["sha256"]) == 64 and sampling["input_range"] == [0.0, 1.0]
    again = draw_synthetic(onnx_path, 4, seed=1, label_check=LabelCheck(clf, batch_size=7))
    assert np.array_equal(again.sources[0].arrays(range(40)), same.arrays(range(40)))


def test_label_check_input_range_and_report(onnx_path, digits):
    clf = PixelSumClassifier().eval()
    real = imbalanced(digits, [2] * 10)
    check = LabelCheck(clf, input_range=(-1, 1), normalize=(0.5, 0.5), rounds=3)
    mixed = augment(real, onnx_path, per_class=2, label_check=check)
    mixed[len(mixed) - 1]
    seen = torch.cat(clf.seen)
    assert seen.min() >= -3 - 1e-6 and seen.max() <= 1 + 1e-6  # ((x in [-1, 1]) - 0.5) / 0.5
    report = mixed.to_dict()
    assert report["sampling"]["label_check"]["rounds"] == 3
    assert report["sampling"]["label_check"]["normalize"] == [0.5, 0.5]
    assert report["total"]["synthetic"] == 20 and "label_filter" not in report
    assert augment(real, onnx_path, per_class=2).to_dict()["sampling"]["label_check"] is None


def test_checked_items_are_the_same_across_workers(onnx_path, digits):
    real = imbalanced(digits, [2] * 10)
    mixed = augment(real, onnx_path, per_class=3, seed=5, label_check=LabelCheck(PixelSumClassifier().eval()))
    loader = DataLoader(
        mixed, batch_size=7, num_workers=2, collate_fn=lambda b: np.stack([np.asarray(i) for i, _ in b])
    )
    alone = np.stack([np.asarray(mixed[i][0]) for i in range(len(mixed))])
    assert np.array_equal(np.concatenate(list(loader)), alone)


def test_label_check_maps_the_generator_range_exactly():
    clf = PixelSumClassifier().eval()
    x = np.array([-1.0, 0.2, 1.0], dtype=np.float32).reshape(1, 1, 1, 3)
    LabelCheck(clf, input_range=(-1, 1), normalize=(0.5, 0.5)).judge(x, np.array([0]))
    torch.testing.assert_close(clf.seen[-1].flatten(), (torch.tensor([-1.0, 0.2, 1.0]) - 0.5) / 0.5)
    LabelCheck(clf).judge(x, np.array([0]))  # (0, 1) by default, as after ToTensor()
    torch.testing.assert_close(clf.seen[-1].flatten(), torch.tensor([0.0, 0.6, 1.0]))


def test_label_check_errors(onnx_path):
    with pytest.raises(InputError, match="training mode"):
        draw_synthetic(onnx_path, 2, label_check=LabelCheck(PixelSumClassifier()))
    with pytest.raises(InputError, match=r"scores \[N, 10\]"):
        draw_synthetic(onnx_path, 2, label_check=LabelCheck(lambda x: x.flatten(1)))
    with pytest.raises(InputError, match="input_range"):
        LabelCheck(lambda x: x, input_range=(1, 0))
    with pytest.raises(InputError, match="rounds must be a whole number >= 1"):
        LabelCheck(lambda x: x, rounds=0)
    with pytest.raises(InputError, match="must be callable"):
        LabelCheck("not a classifier")
    # A check that never agrees still fills every quota: each item is the try it liked best.
    always_zero = LabelCheck(
        lambda x: torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), 10).float(), rounds=2
    )
    drawn = draw_synthetic(onnx_path, 2, label_check=always_zero)
    assert np.bincount(drawn.targets.numpy()).tolist() == [2] * 10


def test_a_pool_keeps_its_own_sampling_under_a_check(onnx_path, digits):
    real = imbalanced(digits, [2] * 10)
    check = LabelCheck(PixelSumClassifier().eval(), rounds=3)
    pool = GeneratedDataset(onnx_path, per_class=3, seed=9, temperature=1.3)
    mixed = augment(real, pool, per_class=2, label_check=check)
    source = mixed.synthetic.sources[0]
    assert source is not pool and source.sampling.temperature == 1.3 and source.sampling.check is check
    assert pool.sampling.check is None  # the caller's dataset is left as it was
    spelled = GeneratedDataset(onnx_path, per_class=3, seed=9, temperature=1.3, label_check=check)
    picks = mixed.synthetic.picks[:, 1]
    assert np.array_equal(source.arrays(picks), spelled.arrays(picks))
    assert mixed.to_dict()["sampling"] == spelled.sampling.identity()
    assert augment(real, spelled, per_class=2, label_check=check).synthetic.sources == [spelled]
    with pytest.raises(InputError, match="label check of its own"):
        augment(real, spelled, per_class=2, label_check=LabelCheck(PixelSumClassifier().eval()))


def test_generated_dataset_as_the_pool(onnx_path, digits):
    real = imbalanced(digits, [2] * 10)
    pool = GeneratedDataset(onnx_path, per_class=3, seed=9)
    mixed = augment(real, pool, per_class=2)
    assert mixed.mix.seed == 9 and mixed.synthetic.sources == [pool]
    # The first two items of each class in the pool's own (mixed) order.
    firsts = [int(i) for c in range(10) for i in np.flatnonzero(pool.targets.numpy() == c)[:2]]
    assert mixed.synthetic.picks[:, 1].tolist() == firsts
    sorted_pool = GeneratedDataset(onnx_path, per_class=3, seed=9, order="sorted")
    assert augment(real, sorted_pool, per_class=2).synthetic.picks[:, 1].tolist() == [
        i for c in range(10) for i in (3 * c, 3 * c + 1)
    ]
    with pytest.raises(InputError, match="holds 3 items of class .* but 4 are needed"):
        augment(real, pool, per_class=4)
    with pytest.raises(InputError, match="brings its own seed"):
        augment(real, pool, per_class=1, seed=1)
    with pytest.raises(InputError, match="output='pil' and no transforms"):
        augment(real, GeneratedDataset(onnx_path, per_class=1, output="tensor"), per_class=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ratio": 1.0, "per_class": 1}, "give one of ratio="),
        ({"per_class": 1, "balance_to": 2}, "give one of ratio="),
        ({"ratio": 0}, "ratio must be a number > 0"),
        ({"ratio": -0.5}, "ratio must be a number > 0"),
        ({"per_class": 0}, "per_class must be a whole number >= 1"),
        ({"per_class": {"eleven": 3}}, "unknown class 'eleven'"),
        ({"per_class": {3: 0}}, ">= 1"),
        ({"balance_to": 0}, "balance_to"),
        ({"balance_to": "min"}, "balance_to"),
    ],
)
def test_bad_rules(onnx_path, digits, kwargs, message):
    with pytest.raises(InputError, match=message):
        augment(imbalanced(digits, [1] * 10), onnx_path, **kwargs)


def test_incompatible_real_data(onnx_path, tmp_path):
    big = datasets.ImageFolder(str(write_image_folder(tmp_path / "big", [str(c) for c in range(10)], size=32)))
    with pytest.raises(InputError, match="real images are 32x32 but the generator makes 28x28"):
        augment(big, onnx_path, ratio=1.0, match_class_names=False)
    three = datasets.ImageFolder(str(write_image_folder(tmp_path / "three", ["a", "b", "c"])))
    with pytest.raises(InputError, match="real data has 3 classes but the generator has 10"):
        augment(three, onnx_path, ratio=1.0)
    tensors = TensorDataset(torch.zeros(4, 1, 28, 28), torch.zeros(4, dtype=torch.long))
    with pytest.raises(InputError, match=r"raw items are \(PIL.Image, int\).*gives Tensor"):
        augment(tensors, onnx_path, ratio=1.0)
    with pytest.raises(InputError, match="empty"):
        augment(Subset(tensors, []), onnx_path, ratio=1.0)
    (tmp_path / "fake.onnx").write_bytes(b"\x00" * 10)
    with pytest.raises(InputError, match="not an ONNX file"):
        augment(big, tmp_path / "fake.onnx", ratio=1.0)


def test_label_smoothing_gives_probability_targets_smoothed_for_synthetic_items_only(onnx_path, fake_mnist_root):
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    real = Subset(datasets.MNIST(str(fake_mnist_root), train=True, transform=tf), range(20))
    plain = augment(real, onnx_path, ratio=1.0, seed=2)
    soft = augment(real, onnx_path, ratio=1.0, seed=2, label_smoothing=0.2)
    assert soft.to_dict()["label_smoothing"] == 0.2 and plain.to_dict()["label_smoothing"] == 0.0
    assert torch.equal(soft.targets, plain.targets)  # class indices stay, for samplers and reports
    n_real = len(real)
    for i in (0, n_real - 1, n_real, len(soft) - 1, -1):
        image, target = soft[i]
        plain_image, label = plain[i]
        assert torch.equal(image, plain_image) and target.dtype == torch.float32 and target.shape == (10,)
        assert int(target.argmax()) == label and torch.isclose(target.sum(), torch.tensor(1.0))
        synthetic = (i % len(soft)) >= n_real
        assert float(target[label]) == pytest.approx(1 - 0.2 + 0.02 if synthetic else 1.0)
        assert float(target.min()) == pytest.approx(0.02 if synthetic else 0.0)
    batch = soft.__getitems__([len(soft) - 1, 0])
    assert torch.equal(batch[0][1], soft[len(soft) - 1][1]) and torch.equal(batch[1][1], soft[0][1])
    x, y = next(iter(DataLoader(soft, batch_size=len(soft), num_workers=2)))
    assert x.shape == (len(soft), 1, 28, 28) and y.shape == (len(soft), 10) and y.dtype == torch.float32
    assert torch.equal(y.argmax(1), plain.targets) and torch.equal(y[: len(real)].max(1).values, torch.ones(len(real)))
    nested = augment(Subset(real, range(5, 15)), onnx_path, ratio=1.0, seed=2, label_smoothing=0.2)
    assert torch.equal(nested[0][1], soft[5][1]) and float(nested[len(nested) - 1][1].max()) == pytest.approx(0.82)


def test_label_smoothing_errors(onnx_path, fake_mnist_root, digits):
    real = imbalanced(digits, [1] * 10)
    for bad in (-0.1, 1.0, "0.2", True):
        with pytest.raises(InputError, match="label_smoothing must be a number with 0 <= label_smoothing < 1") as info:
            augment(real, onnx_path, ratio=1.0, label_smoothing=bad)
        assert "\n" not in str(info.value)
    with_tt = datasets.MNIST(str(fake_mnist_root), train=True, target_transform=lambda y: y + 0)
    with pytest.raises(InputError, match="without target_transform") as info:
        augment(Subset(with_tt, range(4)), onnx_path, ratio=1.0, label_smoothing=0.2)
    assert "\n" not in str(info.value)


def test_sampler_draws_the_synthetic_share_whatever_the_sizes(onnx_path, digits):
    real = imbalanced(digits, [4] * 10)
    mixed = augment(real, onnx_path, per_class=30, seed=1)  # 40 real, 300 synthetic
    sampler = mixed.sampler(0.1, generator=torch.Generator().manual_seed(0))
    assert len(sampler) == 45  # ceil(40 / 0.9): the real part once per epoch on average
    draws = torch.tensor([i for _ in range(40) for i in sampler])
    share = float((draws >= len(real)).double().mean())
    assert abs(share - 0.1) < 0.02  # 1,800 draws: the standard error of the share is 0.007
    again = [i for i in mixed.sampler(0.1, generator=torch.Generator().manual_seed(0))]
    assert again == draws[:45].tolist()
    assert len(mixed.sampler(0.5, num_samples=7)) == len(mixed.sampler(0.5, num_samples=np.int64(7))) == 7
    assert all(i < len(real) for i in mixed.sampler(0.0, num_samples=200))
    with pytest.raises(InputError, match="share must be a number with 0 <= share < 1"):
        mixed.sampler(1.0)
    with pytest.raises(InputError, match="num_samples must be a whole number >= 1"):
        mixed.sampler(0.1, num_samples=0)
    none_added = augment(real, onnx_path, balance_to=1)
    with pytest.raises(InputError, match="no synthetic items"):
        none_added.sampler(0.1)
    assert len(none_added.sampler(0.0)) == len(real)


@pytest.mark.parametrize("bad", [3, object(), PixelSumClassifier()])
def test_a_label_check_that_is_not_one_is_refused_in_one_line(onnx_path, digits, bad):
    with pytest.raises(InputError, match="label_check must be an evaluator folder or a ganaug.LabelCheck"):
        augment(digits, onnx_path, per_class=2, label_check=bad)
    with pytest.raises(InputError, match="label_check must be an evaluator folder or a ganaug.LabelCheck"):
        draw_synthetic(onnx_path, 2, label_check=bad)


def test_label_filter_is_now_label_check(onnx_path, digits):
    import ganaug

    for call in (
        lambda: augment(digits, onnx_path, per_class=2, label_filter="x"),
        lambda: draw_synthetic(onnx_path, 2, label_filter=None),
    ):
        with pytest.raises(InputError, match="label_filter= is now label_check=") as info:
            call()
        assert "\n" not in str(info.value)
    with pytest.raises(TypeError, match="unexpected keyword argument 'label_filtre'"):
        augment(digits, onnx_path, per_class=2, label_filtre=None)
    with pytest.raises(AttributeError, match="now ganaug.LabelCheck"):
        ganaug.LabelFilter  # noqa: B018


@pytest.mark.parametrize(
    "options",
    [{"normalize": (float("nan"), 1.0)}, {"normalize": (0.0, float("inf"))}, {"input_range": (0, float("nan"))}],
)
def test_a_label_check_refuses_non_finite_scaling(options):
    with pytest.raises(InputError, match="finite"):
        LabelCheck(lambda x: x, **options)
