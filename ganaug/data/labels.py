"""Classes, per-class counts, labels and uint8 images: the helpers every generation path shares.

:func:`parse_counts` is the one place that reads a per-class count (``n`` for every class, ``{class: n}``
by index or name, or one count per class index); :func:`make_labels` lays the result out class by class.
:func:`class_folders` turns class names from model metadata into safe, distinct folder names.
:func:`smooth_labels` makes the soft targets that label smoothing trains generated items on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ganaug.errors import InputError

if TYPE_CHECKING:
    import torch

ClassKey = int | str
Counts = int | Mapping[ClassKey, int] | Sequence[int]
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
_MAX_FOLDER_CHARS = 100


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float [N, 1, H, W] in [-1, 1] -> uint8 [N, H, W] in [0, 255], rounded as torchvision's ``save_image``.

    The value is ``floor((x + 1) / 2 * 255 + 0.5)`` clipped to [0, 255], the exact inverse of
    :func:`ganaug.data.sources.to_model_range` (``u / 127.5 - 1``) on real images.
    """
    scaled = (images[:, 0] + 1.0) * 127.5 + 0.5
    return np.clip(scaled, 0, 255).astype(np.uint8)


def check_smoothing(value: Any) -> float:
    """``value`` as a label-smoothing amount in [0, 1), or a one-line :class:`InputError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise InputError(f"label_smoothing must be a number with 0 <= label_smoothing < 1 (e.g. 0.2), got {value!r}")
    return float(value)


def smooth_labels(
    labels: torch.Tensor, num_classes: int, smoothing: float, where: torch.Tensor | None = None
) -> torch.Tensor:
    """Class indices int64 [N] -> float32 probability targets [N, num_classes], smoothed where asked.

    Row ``i`` is ``(1 - e) * one_hot(labels[i]) + e / num_classes`` with ``e = smoothing`` where ``where[i]``
    (bool [N]; default every row) and the plain one-hot row elsewhere. ``F.cross_entropy(logits, targets)``
    on such rows equals ``F.cross_entropy(logits, labels, label_smoothing=e)`` row by row, so a batch that
    mixes real (one-hot) and generated (smoothed) items trains each with its own loss in one call.
    """
    import torch  # here: importing ganaug.data.labels stays as light as it was

    e = check_smoothing(smoothing)
    one_hot = torch.nn.functional.one_hot(labels, num_classes).float()
    if where is None:
        return one_hot * (1.0 - e) + e / num_classes
    w = where.to(one_hot.dtype).unsqueeze(1) * e
    return one_hot * (1.0 - w) + w / num_classes


def resolve_class(classes: Sequence[str], key: ClassKey) -> int:
    """The index of one class given by index (int, or a digit string that is not a class name) or by name.

    Raises:
        InputError: an index out of range or an unknown name (the message lists the valid ones).
    """
    if isinstance(key, str) and key in classes:
        return list(classes).index(key)
    if isinstance(key, (int, np.integer)) or (isinstance(key, str) and key.strip().lstrip("-").isdigit()):
        index = int(key)
        if 0 <= index < len(classes):
            return index
    valid = ", ".join(f"{i}={name!r}" for i, name in enumerate(classes))
    raise InputError(f"unknown class {key!r}; give an index 0..{len(classes) - 1} or a name: {valid}")


def whole(value: Any, what: str, *, minimum: int) -> int:
    """``value`` as an ``int`` if it is a whole number (not a bool) >= ``minimum``.

    Raises:
        InputError: ``{what} must be a whole number >= {minimum}, got {value!r}``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def parse_counts(
    classes: Sequence[str], counts: Counts, *, select: Sequence[ClassKey] | None = None, what: str = "per_class"
) -> dict[int, int]:
    """Per-class counts as ``{class index: count}`` in layout order; the one parser of per-class counts.

    Args:
        classes: the class names (index = label).
        counts: ``n`` (>= 1) for every selected class; ``{class (index or name): n >= 1}`` in the mapping's
            order; or a sequence of one count (>= 0) per class index.
        select: with an int ``counts``, the classes (index or name) in layout order; default all.
        what: the argument's name for messages.

    Raises:
        InputError: a count that is not a whole number in range, an unknown class, a class given twice, a
            sequence of the wrong length, ``select`` without an int, or no class selected.
    """
    if select is not None and isinstance(counts, (Mapping, Sequence)):
        raise InputError(f"give {what} either as a mapping or as one count with select, not both")
    if isinstance(counts, Mapping):
        wanted: dict[int, int] = {}
        for key, n in counts.items():
            index = resolve_class(classes, key)
            if index in wanted:
                raise InputError(f"class {key!r} is given twice in {what}")
            wanted[index] = whole(n, f"{what}[{key!r}]", minimum=1)
    elif isinstance(counts, Sequence) and not isinstance(counts, str):
        if len(counts) != len(classes):
            raise InputError(f"{what} has {len(counts)} counts but the generator has {len(classes)} classes")
        return {c: whole(n, f"{what}[{c}]", minimum=0) for c, n in enumerate(counts)}
    else:
        n = whole(counts, what, minimum=1)
        keys = range(len(classes)) if select is None else select
        indices = [resolve_class(classes, k) for k in keys]
        if len(set(indices)) != len(indices):
            raise InputError(f"a class is given twice in {list(keys)}")
        wanted = dict.fromkeys(indices, n)
    if not wanted:
        raise InputError("no classes selected; select at least one")
    return wanted


def make_labels(classes: Sequence[str], counts: Counts, *, select: Sequence[ClassKey] | None = None) -> np.ndarray:
    """int64 labels laid out class by class (as :func:`labels_from_counts`).

    Args:
        classes: the model's class names (index = label).
        counts: see :func:`parse_counts`.
        select: with an int ``counts``, the classes to generate (index or name); default all.

    Raises:
        InputError: see :func:`parse_counts`.
    """
    return labels_from_counts(parse_counts(classes, counts, select=select, what="counts"))


def class_folders(classes: Sequence[str], *, reserved: Sequence[str] = ("manifest.json",)) -> list[str]:
    """Safe, distinct folder names for ``classes`` (index = label), deterministic from the names alone.

    Path separators, control characters and ``: * ? " < > |`` become ``_`` (``T-shirt/top`` ->
    ``T-shirt_top``); a leading ``.`` becomes ``_`` (no hidden folders, no ``.``/``..``); an empty name or
    one longer than 100 characters becomes ``class_<index>``. Names that then collide, also ignoring case
    (case-insensitive file systems), all get ``_<index>`` appended, e.g. ``["a", "A"]`` -> ``["a_0", "A_1"]``;
    so does a name of ``reserved``, the files the output folder holds beside its class folders
    (``manifest.json`` -> ``manifest.json_<index>``).

    Raises:
        InputError: names that still collide after that (say which).
    """
    names = []
    for i, name in enumerate(classes):
        safe = _UNSAFE.sub("_", str(name)).strip()
        if safe.startswith("."):
            safe = "_" + safe[1:]
        if not safe or len(safe) > _MAX_FOLDER_CHARS:
            safe = f"class_{i}"
        names.append(safe)
    folded = [n.casefold() for n in names]
    taken = {r.casefold() for r in reserved}
    names = [f"{n}_{i}" if folded.count(n.casefold()) > 1 or n.casefold() in taken else n for i, n in enumerate(names)]
    folded = [n.casefold() for n in names]
    clash = sorted({names[i] for i in range(len(names)) if folded.count(folded[i]) > 1})
    if clash:
        raise InputError(f"class names {clash} map to the same folder; export the generator with distinct class names")
    return names


def check_same_classes(generator_classes: list[str], evaluator_classes: list[str]) -> None:
    """Raise :class:`InputError` unless the two lists name the same classes in the same order (label i means
    the same class to both): equal counts are not enough."""
    if list(generator_classes) == list(evaluator_classes):
        return
    only_g = [c for c in generator_classes if c not in evaluator_classes]
    only_e = [c for c in evaluator_classes if c not in generator_classes]
    if only_g or only_e:
        detail = f"only the generator has {only_g[:5]}, only the evaluator {only_e[:5]}"
    else:
        detail = "the same names in another order"
    raise InputError(
        f"the generator's {len(generator_classes)} classes and the evaluator's {len(evaluator_classes)} differ "
        f"({detail}); use an evaluator trained on the generator's dataset"
    )


def labels_from_counts(counts: Mapping[int, int] | Sequence[int]) -> np.ndarray:
    """int64 labels laid out class by class: ``{0: 2, 3: 1}`` -> ``[0, 0, 3]``; a sequence means class = position.

    Raises:
        ValueError: a negative count.
        InputError: more labels than the memory available can hold (checked before allocating).
    """
    items = counts.items() if isinstance(counts, Mapping) else enumerate(counts)
    pairs = [(int(c), int(n)) for c, n in items]
    if any(n < 0 for _, n in pairs):
        raise ValueError(f"counts must be >= 0, got {dict(pairs)}")
    from ganaug.outputs import check_room

    check_room(what=f"{sum(n for _, n in pairs):,} labels", memory=8 * sum(n for _, n in pairs))
    return np.concatenate([np.full(n, c, dtype=np.int64) for c, n in pairs] or [np.zeros(0, np.int64)])
