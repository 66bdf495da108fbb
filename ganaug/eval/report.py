"""Every metric of one generator at once, each beside its real-vs-real floor: :func:`evaluate_generator` and the
:class:`GeneratorReport` it returns (what ``ganaug evaluate`` prints), and :func:`evaluation_data`, which real
data a generator is judged against.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ganaug.data.labels import check_same_classes
from ganaug.errors import InputError
from ganaug.eval.metrics import (
    Fidelity,
    Memorization,
    PrecisionRecall,
    class_fidelity,
    frechet_distance_from_stats,
    gaussian_stats,
    memorization,
    precision_recall,
)
from ganaug.sample.generators import LoadedGenerator, generate
from ganaug.sample.resample import Sampling

if TYPE_CHECKING:
    from ganaug.classify.evaluator import Evaluator


def evaluation_data(
    generator: LoadedGenerator,
    evaluator: Evaluator,
    *,
    dataset: str | None = None,
    data_root: str | Path | None = None,
) -> tuple[str, Path | None]:
    """The real dataset and data root to judge ``generator`` against: ``(dataset, root)``.

    The dataset is ``dataset`` if given, else the one the evaluator records (``meta["data"]["dataset"]``),
    else the generator's; the evaluator's and the generator's (when they record one) must both equal it.
    The root is ``data_root`` if given, else the evaluator's recorded one; only ``digits`` needs none.

    Raises:
        InputError: the generator, the evaluator and ``dataset`` disagree; no dataset known; real data
            needed but no root given, or the recorded root is gone. The message says which
            ``--dataset`` / ``--data-root`` to give.
    """
    from ganaug.config import DATASETS

    ev_data = evaluator.meta.get("data") or {}
    ev_dataset, gen_dataset = ev_data.get("dataset"), (generator.data or {}).get("dataset")
    chosen = dataset or ev_dataset or gen_dataset
    if chosen is None:
        raise InputError(
            "neither the evaluator nor the generator records its dataset; pass --dataset "
            f"({', '.join(DATASETS)}) and --data-root"
        )
    if chosen not in DATASETS:
        raise InputError(f"unknown dataset {chosen!r}; choose one of: {', '.join(DATASETS)}")
    if ev_dataset is not None and ev_dataset != chosen:
        raise InputError(
            f"the evaluator was trained on {ev_dataset}, not {chosen}; pass --dataset {ev_dataset} or an evaluator "
            f"trained with `ganaug evaluator train --dataset {chosen} --data-root DATA --out EVALUATOR`"
        )
    if gen_dataset is not None and gen_dataset != chosen:
        raise InputError(
            f"the generator was trained on {gen_dataset} but the evaluator on {chosen}; judge it with an evaluator "
            f"trained by `ganaug evaluator train --dataset {gen_dataset} --data-root DATA --out EVALUATOR`"
        )
    if chosen == "digits":
        return chosen, None
    if data_root is not None:
        return chosen, Path(data_root)
    recorded = ev_data.get("data_root") if ev_dataset == chosen else None
    if recorded is None:
        raise InputError(f"evaluating on {chosen} needs its real data: pass --dataset {chosen} --data-root FOLDER")
    if not Path(recorded).is_dir():
        raise InputError(
            f"the evaluator's data root {recorded} is gone; pass --dataset {chosen} --data-root FOLDER (where the "
            f"{chosen} files are now)"
        )
    return chosen, Path(recorded)


@dataclass(frozen=True)
class GeneratorReport:
    """All metrics of one generator, each beside its real-vs-real floor.

    The floors come from ``per_class`` real training images per class (stratified, seeded) in place of
    the samples: what a perfect generator would score with the same number of images.
    """

    samples: int
    seed: int
    fidelity: Fidelity
    fidelity_floor: float
    frechet_distance: float
    frechet_distance_floor: float
    precision_recall: PrecisionRecall
    precision_recall_floor: PrecisionRecall
    memorization: Memorization
    memorization_reference: str
    evaluator: dict[str, Any]
    generator: dict[str, Any]
    #: How the samples were drawn (:meth:`ganaug.sample.resample.Sampling.identity`); plain sampling by default.
    sampling: dict[str, Any] = dataclasses.field(default_factory=lambda: Sampling().identity())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_on_sources(
    generator: LoadedGenerator, evaluator: Evaluator, train: Any, test: Any, **options: Any
) -> GeneratorReport:
    """:func:`evaluate_generator` with the real splits as :func:`ganaug.data.sources.load_source` returns them (uint8
    images, mapped here to [-1, 1]); ``options`` are its keyword arguments (``per_class``, ``seed``, ...)."""
    from ganaug.data.sources import to_model_range

    return evaluate_generator(
        generator,
        evaluator,
        test_images=to_model_range(test.images),
        test_labels=test.labels,
        train_images=to_model_range(train.images),
        train_labels=train.labels,
        **options,
    )


def evaluate_generator(
    generator: LoadedGenerator,
    evaluator: Evaluator,
    *,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    generator_train_images: torch.Tensor | None = None,
    per_class: int = 1000,
    seed: int = 0,
    k: int = 3,
    memorization_queries: int = 2000,
    sampling: Sampling | None = None,
) -> GeneratorReport:
    """Sample ``per_class`` images per class (seed ``seed``, drawn as ``sampling`` says) and measure them.

    Args:
        generator: see :func:`ganaug.sample.generators.open_generator`.
        evaluator: the evaluation CNN (its class names, in order, must be the generator's).
        test_images, test_labels: the real test split, float [M, 1, 28, 28] in [-1, 1] and int64 [M]:
            reference for the Fréchet distance, precision/recall and memorization.
        train_images, train_labels: the real training split (same format), source of the floors.
        generator_train_images: what the generator trained on (for memorization); default ``train_images``.
        per_class: samples per class.
        seed: latent seed (sample i = ``G(latents(seed, i, i + 1), labels[i])``) and floor-subset seed.
        k: neighbourhood size of precision/recall.
        memorization_queries: samples and test images (each) searched against the training set.
        sampling: a temperature and a label check (:class:`ganaug.sample.resample.Sampling`); default plain.

    Raises:
        InputError: the generator's and the evaluator's class names differ (in name or order),
            ``per_class`` larger than a class of the training split, or a label check with the evaluator's
            own weights (its verdicts would be the fidelity reported).
    """
    from ganaug.data.labels import labels_from_counts
    from ganaug.data.sources import stratified_subset

    check_same_classes(generator.classes, evaluator.classes)
    num_classes = len(evaluator.classes)
    sampling = sampling or Sampling()
    sampling.check_classes(generator.classes)
    check_not_judge(sampling, evaluator)
    labels = labels_from_counts([per_class] * num_classes)
    fake = generate(generator, labels, seed=seed, sampling=sampling)
    floor_idx = torch.from_numpy(stratified_subset(train_labels.numpy(), per_class, seed=seed))
    floor_images, floor_labels = train_images[floor_idx], train_labels[floor_idx]

    fidelity = class_fidelity(evaluator.predict(fake), labels, num_classes=num_classes)
    fidelity_floor = evaluator.accuracy(floor_images, floor_labels)
    f_fake, f_floor, f_test = (
        evaluator.features(fake),
        evaluator.features(floor_images),
        evaluator.features(test_images),
    )
    stats_test = gaussian_stats(f_test)
    fd = frechet_distance_from_stats(*gaussian_stats(f_fake), *stats_test)
    fd_floor = frechet_distance_from_stats(*gaussian_stats(f_floor), *stats_test)
    by_class = {"real_labels": test_labels, "num_classes": num_classes}
    pr = precision_recall(f_test, f_fake, k=k, fake_labels=labels, **by_class)
    pr_floor = precision_recall(f_test, f_floor, k=k, fake_labels=floor_labels, **by_class)

    rng = np.random.default_rng(seed)
    pick = lambda n: torch.from_numpy(np.sort(rng.choice(n, size=min(n, memorization_queries), replace=False)))
    gen_train = train_images if generator_train_images is None else generator_train_images
    mem = memorization(fake[pick(len(fake))], gen_train, test_images[pick(len(test_images))])
    return GeneratorReport(
        samples=len(labels),
        seed=seed,
        fidelity=fidelity,
        fidelity_floor=fidelity_floor,
        frechet_distance=fd,
        frechet_distance_floor=fd_floor,
        precision_recall=pr,
        precision_recall_floor=pr_floor,
        memorization=mem,
        memorization_reference="the generator's own training images"
        if generator_train_images is not None
        else "the whole training split",
        evaluator={k_: evaluator.meta.get(k_) for k_ in ("test_accuracy", "data")},
        generator={"path": str(generator.path), "backend": generator.backend, "data": generator.data},
        sampling=sampling.identity(),
    )


def check_not_judge(sampling: Sampling | None, evaluator: Evaluator) -> None:
    """Raise :class:`InputError` when ``sampling``'s label check has the same weights as ``evaluator``."""
    if sampling is None or sampling.check is None or sampling.check.evaluator is None:
        return  # a check built from the user's own classifier cannot be the evaluator
    mine, theirs = sampling.check.evaluator.net.state_dict(), evaluator.net.state_dict()
    if mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine):
        raise InputError(
            "the label check is the evaluator that scores the samples, so fidelity would be its own verdict; "
            "train a separate check with `ganaug evaluator train --seed 1 --out CHECK`"
        )
