"""How good is a generator? Class fidelity, Fréchet distance, k-NN precision/recall, memorization.

Feature space: the 128-d penultimate layer of ganaug's own evaluation CNN (:meth:`ganaug.evaluator.Evaluator.features`,
after the ReLU of its hidden linear layer), not Inception: Inception features of 28x28 grayscale digits
mean little and would need downloaded weights. Distances between images for the memorization check are
plain Euclidean distances between pixels in [-1, 1] (784-d).

Functional API (arrays in, numbers out): :func:`class_fidelity`, :func:`frechet_distance`,
:func:`precision_recall`, :func:`nearest_distances`, :func:`memorization`. :func:`evaluate_generator`
runs them all on a generator against real data and reports the real-vs-real floor of each beside it.
Feature arrays may be torch tensors or numpy arrays, float [N, D].
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ganaug.config import DENSITY_K
from ganaug.errors import GanaugError, InputError
from ganaug.labels import check_same_classes
from ganaug.resample import Sampling

if TYPE_CHECKING:
    from ganaug.evaluator import Evaluator


def _as_tensor(x: Any, name: str, *, ndim: int = 2) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.dim() != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, got shape {list(t.shape)}")
    return t


# ---- class fidelity ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fidelity:
    """Share of samples the evaluator assigns to the class they were generated for.

    Attributes:
        overall: over all samples, in [0, 1].
        per_class: one share per class (NaN for a class with no samples).
    """

    overall: float
    per_class: list[float]


def class_fidelity(predicted: Any, requested: Any, *, num_classes: int) -> Fidelity:
    """Class fidelity from the evaluator's predictions.

    Args:
        predicted: int [N], the evaluator's classes for the samples.
        requested: int [N], the classes the samples were generated for.
        num_classes: number of classes (length of ``per_class``).

    Raises:
        InputError: shapes differ or N is 0.
    """
    p = _as_tensor(predicted, "predicted", ndim=1).long()
    r = _as_tensor(requested, "requested", ndim=1).long()
    if p.shape != r.shape or len(p) == 0:
        raise InputError(f"predicted and requested must be non-empty and of equal length, got {len(p)} and {len(r)}")
    hit = (p == r).double()
    per_class = [float(hit[r == c].mean()) if bool((r == c).any()) else float("nan") for c in range(num_classes)]
    return Fidelity(float(hit.mean()), per_class)


# ---- Fréchet distance -------------------------------------------------------------------------


def gaussian_stats(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean float64 [D] and unbiased covariance float64 [D, D] of features [N, D] (N >= 2)."""
    f = _as_tensor(features, "features").double().numpy()
    if len(f) < 2:
        raise InputError(f"need at least 2 feature vectors for a covariance, got {len(f)}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``, the squared Fréchet (2-Wasserstein) distance of
    two Gaussians, with the matrix square root from :func:`scipy.linalg.sqrtm`.

    A singular product (fewer samples than dimensions, dead features) gets ``1e-6 * I`` added to both
    covariances, as in the reference FID code; a tiny imaginary part from rounding is dropped.
    """
    from scipy import linalg

    diff = mu1 - mu2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", linalg.LinAlgWarning)
            covmean = linalg.sqrtm(sigma1 @ sigma2)
        singular = not np.isfinite(covmean).all()
    except linalg.LinAlgWarning:
        singular = True
    if singular:
        offset = np.eye(len(sigma1)) * 1e-6
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = covmean.real
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean), 0.0))


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Fréchet distance between two feature sets [N, D] and [M, D] (Gaussians fitted to each).

    Symmetric, >= 0, and 0 for identical sets (up to the matrix square root's rounding). Biased upwards
    for small N: compare only numbers computed with the same N (hence the real-vs-real floor).
    """
    a, b = _as_tensor(features_a, "features_a"), _as_tensor(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    return frechet_distance_from_stats(*gaussian_stats(a), *gaussian_stats(b))


# ---- k-NN precision and recall ----------------------------------------------------------------


def nearest_distances(queries: Any, reference: Any, *, k: int = 1, batch_size: int = 1024) -> torch.Tensor:
    """Euclidean distance float32 [N] from each query [N, D] to its ``k``-th nearest row of reference [M, D]."""
    q, r = _as_tensor(queries, "queries").float(), _as_tensor(reference, "reference").float()
    if q.shape[1] != r.shape[1]:
        raise InputError(f"queries have {q.shape[1]} dimensions but reference has {r.shape[1]}")
    if not 1 <= k <= len(r):
        raise InputError(f"k must be in [1, {len(r)}] (the reference size), got {k}")
    out = [
        torch.cdist(q[i : i + batch_size], r).topk(k, dim=1, largest=False).values[:, k - 1]
        for i in range(0, len(q), batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0)


def class_density_distances(flat: torch.Tensor, *, k: int = DENSITY_K, clip: float = 1.0) -> tuple[torch.Tensor, float]:
    """For one class's images, flattened float [M, P]: each one's pixel distance to its ``k``-th nearest other
    image of the class (the last one when there are fewer), float64 [M], and the ``clip`` quantile of those
    distances (:func:`ganaug.training.density_weights`' cap; :class:`ganaug.unflatten.Unflatten` caps generated images' with it)."""
    d = nearest_distances(flat, flat, k=min(k + 1, len(flat))).double()  # the first neighbour is itself
    return d, float(torch.quantile(d, clip))


def _inside_any_ball(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, batch_size: int) -> torch.Tensor:
    out = [
        (torch.cdist(points[i : i + batch_size], centres) <= radii[None, :]).any(dim=1)
        for i in range(0, len(points), batch_size)
    ]
    return torch.cat(out)


@dataclass(frozen=True)
class PrecisionRecall:
    """Kynkäänniemi et al. (2019): precision = share of fake samples inside the real manifold, recall =
    share of real samples inside the fake manifold; a manifold is the union of balls around each of its
    points reaching that point's ``k``-th nearest neighbour in the same set."""

    precision: float
    recall: float
    k: int
    #: With labels: entry c is the precision of the class-c fake points (share inside the whole real manifold)
    #: and the recall of the class-c real points (share inside the whole fake manifold). Their means weighted by
    #: class size are ``precision`` and ``recall``: this splits the overall figures, it does not recompute them
    #: within classes.
    per_class_precision: list[float] | None = None
    per_class_recall: list[float] | None = None


def precision_recall(
    real_features: Any,
    fake_features: Any,
    *,
    k: int = 3,
    batch_size: int = 1024,
    real_labels: Any = None,
    fake_labels: Any = None,
    num_classes: int | None = None,
) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al., 2019) of fake features [N, D] against real [M, D].

    Both sets should hold the same number of points (the radii shrink as a set grows). Identical sets
    give precision = recall = 1. Given ``real_labels`` int [M], ``fake_labels`` int [N] and ``num_classes``,
    the result also splits both figures by class (which classes the generator under-covers); a class with
    no points gets ``nan``.

    Raises:
        InputError: a set with k or fewer points, differing feature sizes, or labels that do not match
            their set, lie outside [0, num_classes) or come without the other set's labels.
    """
    real = _as_tensor(real_features, "real_features").float()
    fake = _as_tensor(fake_features, "fake_features").float()
    if min(len(real), len(fake)) <= k:
        raise InputError(f"each set needs more than k={k} points, got {len(real)} real and {len(fake)} fake")
    by_class = (real_labels, fake_labels, num_classes)
    if any(v is not None for v in by_class) and any(v is None for v in by_class):
        raise InputError("per-class precision/recall needs real_labels, fake_labels and num_classes together")
    # The k-th neighbour within the set, not counting the point itself (which sits at distance 0).
    real_radii = nearest_distances(real, real, k=k + 1, batch_size=batch_size)
    fake_radii = nearest_distances(fake, fake, k=k + 1, batch_size=batch_size)
    fake_inside = _inside_any_ball(fake, real, real_radii, batch_size)
    real_inside = _inside_any_ball(real, fake, fake_radii, batch_size)
    precision, recall = float(fake_inside.double().mean()), float(real_inside.double().mean())
    if num_classes is None:
        return PrecisionRecall(precision, recall, k)
    return PrecisionRecall(
        precision,
        recall,
        k,
        per_class_precision=_share_by_class(fake_inside, fake_labels, num_classes, "fake_labels"),
        per_class_recall=_share_by_class(real_inside, real_labels, num_classes, "real_labels"),
    )


def _share_by_class(inside: torch.Tensor, labels: Any, num_classes: int, name: str) -> list[float]:
    y = torch.as_tensor(np.asarray(labels)).long().flatten()
    if len(y) != len(inside):
        raise InputError(f"{name} has {len(y)} entries for {len(inside)} points")
    if len(y) and not (0 <= int(y.min()) and int(y.max()) < num_classes):
        raise InputError(f"{name} must lie in [0, {num_classes}), got {int(y.min())}..{int(y.max())}")
    return [float(inside[y == c].double().mean()) if bool((y == c).any()) else float("nan") for c in range(num_classes)]


# ---- memorization -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Memorization:
    """Distances (pixels in [-1, 1], Euclidean) of generated and of real test images to their nearest
    training image. A generator that copies its training set puts its samples much closer than unseen
    real images are.

    Attributes:
        sample_median: median distance of generated samples to the nearest training image.
        test_median: the same for real test images (never trained on): the reference.
        ratio: ``sample_median / test_median``; about 1 or more is healthy, well below 1 suggests copying.
        near_copy_share: share of samples closer to a training image than 99% of test images are
            (about 0.01 without memorization).
        train_size: number of training images searched.
    """

    sample_median: float
    test_median: float
    ratio: float
    near_copy_share: float
    train_size: int


def _flat(images: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(images)
    if t.dim() < 2:
        raise InputError(f"{name} must be [N, ...] images, got shape {list(t.shape)}")
    return t.reshape(len(t), -1).float()


def memorization(samples: Any, train: Any, test: Any, *, batch_size: int = 1024) -> Memorization:
    """Memorization check of generated ``samples`` against the generator's ``train`` images, with real
    ``test`` images as the reference. All three are float images [N, 1, 28, 28] in [-1, 1] (any shape
    [N, ...] of equal size per image works).

    Raises:
        InputError: an empty set or images of differing sizes.
    """
    s, tr, te = _flat(samples, "samples"), _flat(train, "train"), _flat(test, "test")
    if min(len(s), len(tr), len(te)) == 0:
        raise InputError("samples, train and test must all be non-empty")
    d_s = nearest_distances(s, tr, batch_size=batch_size).double()
    d_t = nearest_distances(te, tr, batch_size=batch_size).double()
    q01 = torch.quantile(d_t, 0.01)
    s_med, t_med = float(d_s.median()), float(d_t.median())
    return Memorization(
        s_med, t_med, s_med / t_med if t_med > 0 else float("inf"), float((d_s < q01).double().mean()), len(tr)
    )


# ---- generators -------------------------------------------------------------------------------


@dataclass
class LoadedGenerator:
    """A generator to evaluate, whichever its format.

    Attributes:
        run: ``(z float32 [N, z_dim], labels int64 [N]) -> images float32 [N, 1, 28, 28] in [-1, 1]``.
        z_dim: latent size.
        classes: class names, index = label.
        data: identity of the data it was trained on (``dataset``, ``per_class``, ``subset_seed``,
            ``indices_sha256``, ...), or None when unknown.
        backend: ``onnx`` (ONNX Runtime) or ``pytorch`` (the EMA generator of a checkpoint).
        path: what was opened.
        sampling: the model's default sampling (``{"temperature": t}``; empty = plain).
    """

    run: Callable[[np.ndarray, np.ndarray], np.ndarray]
    z_dim: int
    classes: list[str]
    data: dict[str, Any] | None
    backend: str
    path: Path
    sampling: dict[str, Any] = field(default_factory=dict)


def open_generator(path: str | Path, *, backend: str = "auto") -> LoadedGenerator:
    """Open a ``.onnx`` file or a run folder. ``auto``: ONNX Runtime when an ONNX file is there, else the
    PyTorch EMA generator of the run's checkpoint.

    Raises:
        InputError: nothing loadable at ``path``, a corrupt or truncated checkpoint or ``config.json``, or an
            unknown backend (one line naming the file).
    """
    from ganaug.runtime import ONNX_FILE, OnnxGenerator

    path = Path(path)
    if backend not in ("auto", "onnx", "pytorch"):
        raise InputError(f"unknown backend {backend!r}; choose auto, onnx or pytorch")
    onnx_file = path if path.suffix == ".onnx" else path / ONNX_FILE
    if backend == "onnx" or (backend == "auto" and onnx_file.is_file()):
        gen = OnnxGenerator(onnx_file, provider="auto")
        return LoadedGenerator(
            gen.run, gen.z_dim, gen.classes, gen.metadata.get("data"), "onnx", onnx_file, sampling=gen.sampling
        )
    from ganaug.checkpoint import load_generator

    try:
        g, meta = load_generator(path)
    except GanaugError:
        raise
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, KeyError, OSError, zipfile.BadZipFile) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise InputError(f"{path}: the checkpoint is corrupt or truncated ({reason}); retrain or restore it") from None
    data = None
    if path.is_dir() and (path / "config.json").is_file():
        try:
            doc = json.loads((path / "config.json").read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{path / 'config.json'} is not valid JSON ({e}); restore it from the run") from None
        data = doc.get("data") if isinstance(doc, dict) else None

    @torch.no_grad()
    def run(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return g(torch.from_numpy(z), torch.from_numpy(labels)).numpy()

    sampling = dict((meta.get("config") or {}).get("sampling") or {})
    return LoadedGenerator(run, g.config.z_dim, list(meta["classes"]), data, "pytorch", path, sampling=sampling)


def generate(
    generator: LoadedGenerator,
    labels: np.ndarray,
    *,
    seed: int,
    batch_size: int = 1000,
    z: np.ndarray | None = None,
    sampling: Sampling | None = None,
) -> torch.Tensor:
    """Images float32 [N, 1, 28, 28] in [-1, 1]; image ``i`` is ``G(latents(seed, i, i + 1), labels[i])``, or
    ``G(z[i], labels[i])`` when latents float32 [N, z_dim] are given (``seed`` is then unused), or sample ``i``
    of ``sampling`` (:class:`ganaug.resample.Sampling`: a temperature and a label check) when that is given."""

    def batch(lo: int) -> np.ndarray:
        part = labels[lo : lo + batch_size]
        if z is not None:
            return generator.run(z[lo : lo + batch_size], part)
        idx = np.arange(lo, lo + len(part), dtype=np.int64)
        return (sampling or Sampling()).images(generator.run, part, idx, seed=seed, z_dim=generator.z_dim)

    out = [torch.from_numpy(np.asarray(batch(lo))) for lo in range(0, len(labels), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, 1, 28, 28)


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


def training_images(data: dict[str, Any], *, root: str | Path | None) -> torch.Tensor:
    """The images (float [N, 1, 28, 28] in [-1, 1]) a generator trained on, rebuilt from its data identity
    (the subset is re-drawn with its seed and checked against the recorded sha256).

    Raises:
        InputError: the files under ``root`` give a different subset than the one recorded.
    """
    return training_set(data, root=root)[0]


def training_set(data: dict[str, Any], *, root: str | Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`training_images` with their labels: ``(images float [N, 1, 28, 28] in [-1, 1], labels int64 [N])``."""
    from ganaug.data import indices_hash, load_source, stratified_subset, to_model_range

    src = load_source(data["dataset"], root=root, split="train")
    if data.get("per_class") is None:
        idx = np.arange(len(src.labels))
    else:
        idx = stratified_subset(src.labels.numpy(), data["per_class"], seed=data["subset_seed"])
    if data.get("holdout_per_class"):  # images held out for checkpoint selection, a lever ganaug no longer has
        from ganaug.config import LAST_WITH_REMOVED_LEVERS

        raise InputError(
            "this generator trained on its split less the images checkpoint selection (--select-by) held out, a "
            f"lever ganaug no longer has; evaluate it with ganaug at git commit {LAST_WITH_REMOVED_LEVERS}"
        )
    if data.get("indices_sha256") and indices_hash(idx) != data["indices_sha256"]:
        raise InputError(
            f"the {data['dataset']} files under {root} differ from those the generator trained on; "
            "point --data-root at the original data"
        )
    rows = torch.from_numpy(idx)
    return to_model_range(src.images[rows]), src.labels[rows]


# ---- everything at once -----------------------------------------------------------------------


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
    #: How the samples were drawn (:meth:`ganaug.resample.Sampling.identity`); plain sampling by default.
    sampling: dict[str, Any] = dataclasses.field(default_factory=lambda: Sampling().identity())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_on_sources(
    generator: LoadedGenerator, evaluator: Evaluator, train: Any, test: Any, **options: Any
) -> GeneratorReport:
    """:func:`evaluate_generator` with the real splits as :func:`ganaug.data.load_source` returns them (uint8
    images, mapped here to [-1, 1]); ``options`` are its keyword arguments (``per_class``, ``seed``, ...)."""
    from ganaug.data import to_model_range

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
        generator: see :func:`open_generator`.
        evaluator: the evaluation CNN (its class names, in order, must be the generator's).
        test_images, test_labels: the real test split, float [M, 1, 28, 28] in [-1, 1] and int64 [M]:
            reference for the Fréchet distance, precision/recall and memorization.
        train_images, train_labels: the real training split (same format), source of the floors.
        generator_train_images: what the generator trained on (for memorization); default ``train_images``.
        per_class: samples per class.
        seed: latent seed (sample i = ``G(latents(seed, i, i + 1), labels[i])``) and floor-subset seed.
        k: neighbourhood size of precision/recall.
        memorization_queries: samples and test images (each) searched against the training set.
        sampling: a temperature and a label check (:class:`ganaug.resample.Sampling`); default plain.

    Raises:
        InputError: the generator's and the evaluator's class names differ (in name or order),
            ``per_class`` larger than a class of the training split, or a label check with the evaluator's
            own weights (its verdicts would be the fidelity reported).
    """
    from ganaug.data import stratified_subset
    from ganaug.sampling import labels_from_counts

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
