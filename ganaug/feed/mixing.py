"""Real plus generated data in one training set, optionally drawn through a label check.

:func:`augment` returns an :class:`AugmentedDataset` (a ``ConcatDataset``): the real items first, then
synthetic ones, by ratio, per-class quota or balancing up to a per-class target. Synthetic items have the
real data's item type (a PIL image of the same size and mode, then the real dataset's own ``transform``
and ``target_transform``), so one transform normalizes both::

    real = datasets.MNIST("data", train=True, transform=transform)
    train = augment(real, "runs/mnist/generator.onnx", ratio=0.5, seed=0)
    train.mix.to_dict()  # per class: real and synthetic counts

:meth:`AugmentedDataset.sampler` draws a fixed synthetic share of every epoch instead of the share the counts
give. With no rule, ``augment`` adds the benchmark's large synthetic pool (:mod:`ganaug.train.recipe`: 500 per class,
drawn at the sampler's default 10% share). Labels are ints whatever the rule, as the real dataset's are;
``label_smoothing=e`` asks for probability targets instead, the synthetic ones smoothed by ``e`` (the benchmark's
best lever on Fashion-MNIST with 10 real images per class, 0.2; see :mod:`ganaug.train.recipe`)::

    train = augment(real, "runs/fashion", label_smoothing=0.2)  # per_class=500
    loader = DataLoader(train, batch_size=64, sampler=train.sampler())  # share=0.1
    for images, targets in loader:  # targets: float [64, 10] probabilities
        loss = F.cross_entropy(model(images), targets)

:func:`draw_synthetic` picks the synthetic items. With ``label_check=`` (a :class:`ganaug.sample.resample.LabelCheck`:
an evaluator folder, or a classifier of your own with its input range) an item the check assigns to another
class is drawn again from its own latent stream, as in every other consumer of a check (:mod:`ganaug.sample.resample`),
so item ``k`` still depends only on (generator, seed, quotas, check)::

    check = LabelCheck(classifier.eval(), input_range=(0, 1), normalize=(0.1307, 0.3081))
    train = augment(real, "runs/mnist", per_class=500, label_check=check)
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, Dataset, Subset, WeightedRandomSampler

from ganaug.data.labels import check_smoothing, parse_counts, smooth_labels, whole
from ganaug.errors import InputError
from ganaug.feed.dataset import ClassKey, GeneratedDataset
from ganaug.sample.resample import LabelCheck, as_label_check, refuse_label_filter
from ganaug.train.recipe import MIX_PER_CLASS, MIX_SHARE


class SyntheticSet(Dataset):
    """Chosen items of :class:`GeneratedDataset` s, handed out as ``(PIL image of mode `mode`, int)``.

    Item ``k`` is item ``picks[k, 1]`` of ``sources[picks[k, 0]]``, converted from mode ``"L"`` to
    ``mode`` (e.g. ``"RGB"`` for ``ImageFolder`` data) and passed through ``transform`` / ``target_transform``.

    Attributes:
        sources: the generated datasets (``output="pil"``, no transforms).
        picks: int64 [M, 2] of (source, index).
        targets: int64 [M].
        sampling: how the items are drawn (:meth:`ganaug.sample.resample.Sampling.identity`: the temperature, the label
            check, the unflattening).
    """

    def __init__(
        self,
        sources: Sequence[GeneratedDataset],
        picks: np.ndarray,
        *,
        sampling: dict[str, Any] | None = None,
        mode: str = "L",
        transform: Callable | None = None,
        target_transform: Callable | None = None,
    ) -> None:
        self.sources = list(sources)
        self.picks = np.asarray(picks, dtype=np.int64).reshape(-1, 2)
        targets = np.zeros(len(self.picks), dtype=np.int64)
        for s, source in enumerate(self.sources):
            at = self.picks[:, 0] == s
            targets[at] = source.targets.numpy()[self.picks[at, 1]]
        self.targets = torch.from_numpy(targets)
        self.sampling = (
            dict(sampling) if sampling is not None else (self.sources[0].sampling.identity() if self.sources else {})
        )
        self.mode = mode
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        return len(self.picks)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of range for {n} synthetic items")
        s, i = self.picks[index % n].tolist()
        self.sources[s]._fill_chunk(i)  # a lone item brings its source chunk in one ONNX call: loops stay batched
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, Any]]:
        """The items at ``indices``; each source generates its missing ones in one batch."""
        n = len(self)
        rows = []
        for i in indices:
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of range for {n} synthetic items")
            rows.append(i % n)
        picks = self.picks[rows]
        arrays = np.empty((len(rows), *self.sources[0].image_shape[1:]) if rows else (0,), np.uint8)
        for s in np.unique(picks[:, 0]).tolist():
            at = picks[:, 0] == s
            arrays[at] = self.sources[s].arrays(picks[at, 1])
        return [self._item(a, int(self.targets[r])) for a, r in zip(arrays, rows)]

    def _item(self, array: np.ndarray, target: int) -> tuple[Any, Any]:
        image = Image.fromarray(array)
        if self.mode != "L":
            image = image.convert(self.mode)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


@dataclass(frozen=True)
class Mix:
    """What :func:`augment` put together, per class (index = label)."""

    classes: list[str]
    real: list[int]
    synthetic: list[int]
    generator: str
    seed: int
    rule: dict[str, Any]
    label_smoothing: float = 0.0
    recipe: str | None = None  # "low-budget" when augment() was given no rule
    #: How the synthetic items are drawn (:meth:`ganaug.sample.resample.Sampling.identity`): temperature, label check.
    sampling: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: the rule, the sampling, totals and, per class name, real / synthetic counts."""
        per_class = {}
        for c, name in enumerate(self.classes):
            per_class[name] = {"real": self.real[c], "synthetic": self.synthetic[c]}
        return {
            "rule": self.rule,
            "generator": self.generator,
            "seed": self.seed,
            "sampling": self.sampling,
            "label_smoothing": self.label_smoothing,
            "recipe": self.recipe,
            "total": {"real": sum(self.real), "synthetic": sum(self.synthetic)},
            "per_class": per_class,
        }


class AugmentedDataset(ConcatDataset):
    """The real dataset followed by a :class:`SyntheticSet`: items ``0 .. len(real) - 1`` are the real ones.

    With ``mix.label_smoothing`` ``e > 0`` every item's target is a float32 [num_classes] probability vector
    instead of a class index: one-hot for real items, ``(1 - e) * one_hot + e / num_classes`` for synthetic
    ones (:func:`ganaug.data.labels.smooth_labels`), which ``F.cross_entropy`` / ``nn.CrossEntropyLoss`` take as
    they are. With ``e = 0`` the targets are the real dataset's own (class indices), as a drop-in needs.

    Attributes:
        real, synthetic: the two parts.
        mix: the :class:`Mix` (counts per class, real vs synthetic), ``to_dict()`` for reports.
        classes, class_to_idx: the real data's classes (the generator's when the real data names none).
        targets: int64 [len(self)], real labels then synthetic ones (class indices, smoothing or not).
    """

    def __init__(self, real: Dataset, synthetic: SyntheticSet, mix: Mix, real_targets: np.ndarray) -> None:
        super().__init__([real, synthetic])
        self.real, self.synthetic, self.mix = real, synthetic, mix
        self.classes: list[str] = list(mix.classes)
        self.class_to_idx: dict[str, int] = {c: i for i, c in enumerate(self.classes)}
        self.targets = torch.cat([torch.as_tensor(real_targets, dtype=torch.int64), synthetic.targets])

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        item = super().__getitem__(index)
        if not self.mix.label_smoothing:
            return item
        return self._soft([item], [(index + len(self) if index < 0 else index) >= len(self.real)])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, Any]]:
        """The items at ``indices``; the synthetic ones are generated in one batch."""
        n, n_real = len(self), len(self.real)
        rows = []
        for i in indices:
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of range for an AugmentedDataset of {n} items")
            rows.append(i % n)
        out: list[Any] = [None] * len(rows)
        synthetic_at = [k for k, r in enumerate(rows) if r >= n_real]
        for k, item in zip(synthetic_at, self.synthetic.__getitems__([rows[k] - n_real for k in synthetic_at])):
            out[k] = item
        for k, r in enumerate(rows):
            if r < n_real:
                out[k] = self.real[r]
        if not self.mix.label_smoothing:
            return out
        return self._soft(out, [r >= n_real for r in rows])

    def _soft(self, items: list[tuple[Any, Any]], synthetic: list[bool]) -> list[tuple[Any, Any]]:
        """``items`` with their class indices replaced by probability targets (smoothed where ``synthetic``)."""
        labels = torch.as_tensor([int(target) for _, target in items], dtype=torch.int64)
        where = torch.as_tensor(synthetic, dtype=torch.bool)
        targets = smooth_labels(labels, len(self.classes), self.mix.label_smoothing, where)
        return [(image, target) for (image, _), target in zip(items, targets.unbind(0))]

    def sampler(
        self,
        share: float = MIX_SHARE,
        *,
        num_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> WeightedRandomSampler:
        """A ``WeightedRandomSampler`` whose draws are synthetic items with probability ``share``.

        Every real item has weight ``(1 - share) / len(real)`` and every synthetic one ``share /
        len(synthetic)``, drawn with replacement, so a batch's synthetic share is ``share`` on average whatever
        the two parts' sizes (binomially: a batch of 64 at ``share=0.1`` holds 6.4 ± 2.4 generated items). That
        is a large synthetic pool (variety) at a small share of each batch, as the benchmark's winning levers
        train. Pass it as ``DataLoader(dataset, sampler=...)``. The sampler draws the indices in the main
        process and the workers only fetch them, and every item is a function of its index, so the items of each
        batch are the same whatever ``num_workers``.

        Args:
            share: 0 <= share < 1 [default: 0.1, the low-budget recipe's; :mod:`ganaug.train.recipe`].
            num_samples: draws per epoch [default: ``ceil(len(real) / (1 - share))``, so an epoch draws as
                many real items as the real part holds, on average].
            generator: a seeded ``torch.Generator`` for reproducible draws.

        Raises:
            InputError: a share outside [0, 1), a share > 0 with no synthetic items, or ``num_samples`` < 1.
        """
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share < 1.0:
            raise InputError(f"share must be a number with 0 <= share < 1 (e.g. 0.1), got {share!r}")
        n_real, n_synthetic = len(self.real), len(self.synthetic)
        if share > 0 and n_synthetic == 0:
            raise InputError(
                "this dataset has no synthetic items to draw; give augment() a rule that adds some, or share=0"
            )
        if num_samples is None:
            num_samples = math.ceil(n_real / (1.0 - share))
        else:
            num_samples = whole(num_samples, "num_samples", minimum=1)
        weights = torch.cat(
            [
                torch.full((n_real,), (1.0 - share) / n_real, dtype=torch.float64),
                torch.full((n_synthetic,), share / n_synthetic if n_synthetic else 0.0, dtype=torch.float64),
            ]
        )
        return WeightedRandomSampler(weights, num_samples, replacement=True, generator=generator)

    def to_dict(self) -> dict[str, Any]:
        """:meth:`Mix.to_dict` of this dataset's mix."""
        return self.mix.to_dict()


def draw_synthetic(
    generated: GeneratedDataset | str | Path,
    per_class: int | Mapping[ClassKey, int] | Sequence[int],
    *,
    seed: int | None = None,
    label_check: str | Path | LabelCheck | None = None,
    mode: str = "L",
    transform: Callable | None = None,
    target_transform: Callable | None = None,
    sampling: str = "model",
    **removed: Any,
) -> SyntheticSet:
    """Exactly ``per_class`` generated items of each class, optionally drawn through a label check.

    From a generator file: the items of ``GeneratedDataset(generated, per_class={c: n_c, ...}, seed=seed,
    order="sorted", label_check=label_check, sampling=sampling)`` (classes in index order): by default the model's
    own sampling (its temperature and label check). From
    a :class:`GeneratedDataset`: the first ``n_c`` items of each class ``c`` in its own order, drawn its own way
    (its temperature, check and unflattening), with ``label_check`` added when given. With a check, an item the
    check assigns to another class is drawn again from its own latent stream, up to the check's ``rounds``
    tries, else the try it liked best is kept (:mod:`ganaug.sample.resample`): the quotas are always met, and item
    ``k`` depends only on (generator, seed, quotas, sampling), never on batching or workers.

    Args:
        generated: a generator (``.onnx`` file or run folder) or a :class:`GeneratedDataset` with
            ``output="pil"`` and no transforms, whose seed is used.
        per_class: quota, an int for every class, ``{class (index or name): count}``, or a count per class index.
        seed: the latent seed with a generator file (default 0); not allowed with a :class:`GeneratedDataset`.
        label_check: a :class:`ganaug.sample.resample.LabelCheck` (``LabelCheck(classifier, input_range=...,
            normalize=...)`` or ``LabelCheck.load(folder)``) or an evaluator folder.
        mode, transform, target_transform: how :class:`SyntheticSet` hands the items out.
        sampling: with a generator file, ``"model"`` (default: its temperature and label check where none is given)
            or ``"plain"`` (see :class:`GeneratedDataset`).

    Raises:
        InputError: bad quotas or classes; a :class:`GeneratedDataset` with tensor output, transforms, too few
            items of a class, or a label check of its own besides ``label_check``; a ``label_check`` that is
            not one, or whose classes differ from the generator's; ``label_filter=`` (now ``label_check=``).
    """
    refuse_label_filter(removed, "draw_synthetic")
    check = as_label_check(label_check)
    pool, path, base_seed = _pool(generated, seed)
    if pool is not None:
        source = pool if check is None else _with_check(pool, check)
        quotas = _quotas(per_class, source.classes)
        picks = []
        for c, n in enumerate(quotas):
            held = np.flatnonzero(source._labels == c)
            if len(held) < n:
                raise InputError(
                    f"the GeneratedDataset holds {len(held)} items of class {source.classes[c]!r} but {n} are "
                    f"needed; build it with per_class >= {n}, or pass the generator file"
                )
            picks += [(0, int(i)) for i in held[:n]]
        sources, sampling = [source], source.sampling.identity()
    else:
        template = GeneratedDataset(path, per_class=1, seed=base_seed, label_check=check, sampling=sampling)
        quotas = _quotas(per_class, template.classes)
        wanted = {c: n for c, n in enumerate(quotas) if n}
        sources, picks = [], []
        if wanted:
            drawn = {"temperature": template.sampling.temperature, "label_check": template.sampling.check}
            options = {"provider": template.provider, "threads": template.threads, "chunk_size": template.chunk_size}
            sources = [GeneratedDataset(path, per_class=wanted, seed=base_seed, order="sorted", **drawn, **options)]
            picks = [(0, i) for i in range(sum(wanted.values()))]
        sampling = template.sampling.identity()
    return SyntheticSet(
        sources,
        np.array(picks, dtype=np.int64).reshape(-1, 2),
        sampling=sampling,
        mode=mode,
        transform=transform,
        target_transform=target_transform,
    )


def _with_check(pool: GeneratedDataset, check: LabelCheck) -> GeneratedDataset:
    """``pool`` drawn through ``check`` as well: a copy with the same seed, labels and other sampling."""
    if pool.sampling.check is check:
        return pool
    if pool.sampling.check is not None:
        raise InputError("the GeneratedDataset has a label check of its own; give label_check= there or here, not both")
    check.check_classes(pool.classes, pool.image_shape)
    checked = copy.copy(pool)
    checked.sampling = dataclasses.replace(pool.sampling, check=check)
    checked._reset_cache()
    return checked


def augment(
    real: Dataset,
    generated: GeneratedDataset | str | Path,
    *,
    ratio: float | None = None,
    per_class: int | Mapping[ClassKey, int] | None = None,
    balance_to: int | Literal["max"] | None = None,
    seed: int | None = None,
    label_check: str | Path | LabelCheck | None = None,
    match_class_names: bool = True,
    label_smoothing: float | None = None,
    sampling: str = "model",
    **removed: Any,
) -> AugmentedDataset:
    """``real`` plus synthetic items of its own item type, in one dataset that records the mix.

    At most one rule sets the synthetic count ``n_c`` of each class ``c`` (``r_c`` = its real count):

    - ``ratio=q``: ``n_c = floor(q * r_c + 0.5)`` synthetic per real, class by class;
    - ``per_class=n`` (or ``{class: n}``): ``n_c = n`` (classes left out of a mapping get none);
    - ``balance_to=t`` (or ``"max"``, the largest ``r_c``): ``n_c = max(0, t - r_c)``, so every class reaches ``t``.

    With no rule, the low-budget recipe's pool (:mod:`ganaug.train.recipe`): ``per_class=500``, to be drawn at
    :meth:`AugmentedDataset.sampler`'s default 10% share::

        train = augment(real, "runs/fashion")
        loader = DataLoader(train, batch_size=64, sampler=train.sampler())

    ``real`` is a map-style dataset of ``(PIL.Image, int)`` items: ``torchvision.datasets.MNIST``,
    ``ImageFolder``, :class:`ganaug.feed.dataset.SourceDataset`, or a ``Subset`` of one. Its transforms are found
    on the innermost dataset and applied to the synthetic items too, after converting them to the real
    images' PIL mode (``"RGB"`` for ``ImageFolder``). Labels come from its ``targets`` (read item by item
    when it has none).

    Args:
        real: the real data.
        generated: a generator (``.onnx`` file or run folder) or a :class:`GeneratedDataset`; see
            :func:`draw_synthetic`.
        ratio, per_class, balance_to: the rule (exactly one).
        seed: latent seed with a generator file (default 0).
        label_check: draw the synthetic items through a label check (:func:`draw_synthetic`): a
            :class:`ganaug.sample.resample.LabelCheck` such as ``LabelCheck(classifier, input_range=(0, 1),
            normalize=(0.1307, 0.3081))``, or an evaluator folder.
        match_class_names: require the real class names to equal the generator's (not just their number).
        label_smoothing: ``e`` in [0, 1) [default: 0: int labels, whatever the rule]. With ``e > 0`` the items'
            targets become probability vectors, smoothed by ``e`` for synthetic items only (see
            :class:`AugmentedDataset`); needs a real dataset without ``target_transform``. Where it paid and
            where it did not (Fashion-MNIST and MNIST, 10 and 50 real images per class): :mod:`ganaug.train.recipe`.
        sampling: with a generator file, ``"model"`` (default: the model's temperature and label check where none
            is given) or ``"plain"`` (see :class:`GeneratedDataset`).

    Raises:
        InputError: more than one rule, or a bad value for it; an empty real dataset; items that are not
            ``(PIL.Image, int)``; images of another size than the generator's; other classes than the
            generator's; a bad ``label_smoothing``, or one with a real ``target_transform``; and everything
            :func:`draw_synthetic` raises.
    """
    rules = {"ratio": ratio, "per_class": per_class, "balance_to": balance_to}
    given = {k: v for k, v in rules.items() if v is not None}
    if len(given) > 1:
        raise InputError(
            "give one of ratio= (synthetic per real), per_class= (synthetic per class) or balance_to= (per-class "
            "target), or none for the low-budget recipe"
        )
    refuse_label_filter(removed, "augment")
    check = as_label_check(label_check)
    recipe = None if given else "low-budget"
    if recipe:
        given = {"per_class": MIX_PER_CLASS}
    smoothing = check_smoothing(0.0 if label_smoothing is None else label_smoothing)
    if len(real) == 0:
        raise InputError("the real dataset is empty")
    base, index_map = _innermost(real)
    if smoothing and getattr(base, "target_transform", None) is not None:
        raise InputError(
            f"label_smoothing={smoothing} makes the targets probability vectors; give a real dataset "
            "without target_transform, or label_smoothing=0"
        )
    pool, path, base_seed = _pool(generated, seed)
    facts = pool if pool is not None else GeneratedDataset(path, per_class=1, seed=base_seed, sampling=sampling)
    classes, (_, height, width) = facts.classes, facts.image_shape
    raw_image = _raw_item(base, 0 if index_map is None else int(index_map[0]))[0]
    if not isinstance(raw_image, Image.Image):
        raise InputError(
            f"augment() mixes datasets whose raw items are (PIL.Image, int), like torchvision's MNIST, ImageFolder "
            f"or ganaug.feed.dataset.SourceDataset; this one gives {type(raw_image).__name__} before its transform"
        )
    if raw_image.size != (width, height):
        raise InputError(
            f"the real images are {raw_image.size[0]}x{raw_image.size[1]} but the generator makes {width}x{height}; "
            f"mix it with real data of its size (e.g. ganaug.feed.dataset.SourceDataset('imagefolder', root) resizes to 28x28)"
        )
    real_classes = getattr(base, "classes", None)
    if real_classes is not None:
        if len(real_classes) != len(classes):
            raise InputError(
                f"the real data has {len(real_classes)} classes but the generator has {len(classes)} ({classes})"
            )
        if match_class_names and list(real_classes) != list(classes):
            raise InputError(
                f"the real classes {list(real_classes)} differ from the generator's {classes}; "
                f"pass match_class_names=False if label i means the same class in both"
            )
    real_targets = _targets(real, base, index_map)
    if real_targets.size and (real_targets.min() < 0 or real_targets.max() >= len(classes)):
        raise InputError(
            f"real labels span {real_targets.min()}..{real_targets.max()} but the generator has classes 0..{len(classes) - 1}"
        )
    real_counts = np.bincount(real_targets, minlength=len(classes)).tolist()
    quotas = _rule_counts(given, real_counts, classes)
    synthetic = draw_synthetic(
        pool if pool is not None else path,
        quotas,
        seed=None if pool is not None else base_seed,
        label_check=check,
        sampling=sampling,
        mode=raw_image.mode,
        transform=getattr(base, "transform", None),
        target_transform=getattr(base, "target_transform", None),
    )
    ((name, value),) = given.items()
    mix = Mix(
        classes=list(real_classes) if real_classes is not None else classes,
        real=real_counts,
        synthetic=quotas,
        generator=str(facts.generator_path),
        seed=facts.latent_seed,
        rule={name: value},
        label_smoothing=smoothing,
        recipe=recipe,
        sampling=synthetic.sampling,
    )
    return AugmentedDataset(real, synthetic, mix, real_targets)


def _pool(
    generated: GeneratedDataset | str | Path, seed: int | None
) -> tuple[GeneratedDataset | None, Path | None, int]:
    """(the GeneratedDataset to draw from first, or None; the generator path, or None; the round-0 seed)."""
    if isinstance(generated, GeneratedDataset):
        if seed is not None:
            raise InputError("a GeneratedDataset brings its own seed; pass seed= only with a generator file")
        if generated.output != "pil" or generated.transform is not None or generated.target_transform is not None:
            raise InputError(
                "mix a GeneratedDataset with output='pil' and no transforms; the real data's transforms are applied to both"
            )
        return generated, None, generated.latent_seed
    if not isinstance(generated, (str, Path)):
        raise InputError(
            f"generated must be a generator file or run folder, or a GeneratedDataset; got {type(generated).__name__}"
        )
    return None, Path(generated), 0 if seed is None else seed


def _quotas(per_class: int | Mapping[ClassKey, int] | Sequence[int], classes: Sequence[str]) -> list[int]:
    counts = parse_counts(classes, per_class, what="per_class")
    return [counts.get(c, 0) for c in range(len(classes))]


def _rule_counts(given: dict[str, Any], real_counts: list[int], classes: list[str]) -> list[int]:
    ((name, value),) = given.items()
    if name == "ratio":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
            raise InputError(f"ratio must be a number > 0 (synthetic images per real image), got {value!r}")
        return [math.floor(value * r + 0.5) for r in real_counts]
    if name == "per_class":
        if not isinstance(value, Mapping):
            return [whole(value, "per_class", minimum=1)] * len(classes)
        return _quotas(value, classes)
    target = max(real_counts) if value == "max" else whole(value, "balance_to (or 'max')", minimum=1)
    return [max(0, target - r) for r in real_counts]


def _innermost(real: Dataset) -> tuple[Dataset, np.ndarray | None]:
    """The dataset under any nested ``Subset`` s, and the indices into it (``None``: all, in order)."""
    index_map = None
    while isinstance(real, Subset):
        sub = np.asarray(real.indices, dtype=np.int64)
        index_map = sub if index_map is None else sub[index_map]
        real = real.dataset
    return real, index_map


def _raw_item(base: Dataset, index: int) -> tuple[Any, Any]:
    """Item ``index`` of ``base`` before its transforms (torchvision datasets keep them as attributes)."""
    if hasattr(base, "transform") or hasattr(base, "target_transform"):
        base = copy.copy(base)
        base.transform = base.target_transform = None
        if hasattr(base, "transforms"):
            base.transforms = None
    return base[index]


def _targets(real: Dataset, base: Dataset, index_map: np.ndarray | None) -> np.ndarray:
    targets = getattr(base, "targets", None)
    if targets is None:
        labels = [real[i][1] for i in range(len(real))]
    else:
        labels = np.asarray(targets)
        labels = labels if index_map is None else labels[index_map]
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(
            f"the real labels must be whole numbers (class indices), got {labels.dtype} {list(labels.shape)}"
        )
    return labels.astype(np.int64)
