"""ganaug.data.labels: the one per-class count parser and safe class folder names."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganaug.data.labels import class_folders, parse_counts, smooth_labels
from ganaug.errors import InputError

CLASSES = ["cat", "dog", "T-shirt/top"]


def test_parse_counts_forms() -> None:
    assert parse_counts(CLASSES, 2) == {0: 2, 1: 2, 2: 2}
    assert parse_counts(CLASSES, 1, select=["dog", 0]) == {1: 1, 0: 1}
    assert list(parse_counts(CLASSES, {"T-shirt/top": 2, "1": 1}).items()) == [(2, 2), (1, 1)]
    assert parse_counts(CLASSES, [0, 3, 1]) == {0: 0, 1: 3, 2: 1}


@pytest.mark.parametrize(
    ("counts", "select", "match"),
    [
        (0, None, r"^per_class must be a whole number >= 1, got 0$"),
        (2.5, None, "per_class must be a whole number"),
        (True, None, "per_class must be a whole number"),
        ({"cat": 0}, None, r"per_class\['cat'\] must be a whole number >= 1"),
        ({0: 1, "cat": 1}, None, "given twice"),
        ([1, 2], None, "per_class has 2 counts but the generator has 3 classes"),
        ([1, -1, 0], None, r"per_class\[1\] must be a whole number >= 0"),
        ({0: 1}, [0], "not both"),
        (1, [], "no classes"),
        (1, ["bird"], "unknown class 'bird'"),
    ],
)
def test_parse_counts_bad_input(counts, select, match) -> None:
    with pytest.raises(InputError, match=match):
        parse_counts(CLASSES, counts, select=select)


def test_class_folders_are_safe_and_distinct() -> None:
    names = class_folders(["..", ".", "", "a/b", "A", "a", "../x", "c\\d", ".h", "x" * 200, "ok"])
    assert names == ["_.", "_", "class_2", "a_b", "A_4", "a_5", "_._x", "c_d", "_h", "class_9", "ok"]
    assert class_folders(["T-shirt/top", "Trouser"]) == ["T-shirt_top", "Trouser"]
    with pytest.raises(InputError, match="map to the same folder"):
        class_folders(["a", "A", "a_1"])


def test_a_class_named_like_the_manifest_gets_a_folder_of_its_own() -> None:
    assert class_folders(["manifest.json", "Manifest.JSON", "b"]) == ["manifest.json_0", "Manifest.JSON_1", "b"]
    assert class_folders(["manifest.json"], reserved=()) == ["manifest.json"]


def test_smoothed_targets_give_torch_label_smoothing_loss_row_by_row() -> None:
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(12, 10, generator=g), torch.randint(0, 10, (12,), generator=g)
    where = torch.arange(12) % 3 == 0
    targets = smooth_labels(labels, 10, 0.2, where)
    mixed = F.cross_entropy(logits, targets, reduction="none")
    assert torch.allclose(
        mixed[where], F.cross_entropy(logits[where], labels[where], label_smoothing=0.2, reduction="none")
    )
    assert torch.allclose(mixed[~where], F.cross_entropy(logits[~where], labels[~where], reduction="none"))
    assert torch.allclose(
        smooth_labels(labels, 10, 0.2), smooth_labels(labels, 10, 0.2, torch.ones(12, dtype=torch.bool))
    )
    assert torch.equal(smooth_labels(labels, 10, 0.0), F.one_hot(labels, 10).float())
