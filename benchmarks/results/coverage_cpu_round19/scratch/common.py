"""Setup and scoring shared by the round-19 scratch probes (moved here from both after they ran: the same statements)."""

from types import SimpleNamespace

import torch

from ganaug.data import load_source, stratified_subset, to_model_range
from ganaug.evaluator import load_evaluator
from ganaug.metrics import frechet_distance_from_stats, gaussian_stats, precision_recall
from ganaug.sampling import labels_from_counts

ROOT = "/work/shared/data"
CHECK = "/work/s25/check"


def references() -> SimpleNamespace:
    """The two evaluators, MNIST's splits, 1,000 labels a class, and each split's reference features, stats and FD
    floor: "choice" (1,000 a class of the training split, in the choice evaluator) and "test" (the test split)."""
    ev = load_evaluator("/work/main/benchmarks/results/evaluators/mnist_cpu")
    cev = load_evaluator("/work/s25/choice_work/choice-evaluator")
    train, test = (load_source("mnist", root=ROOT, split=s) for s in ("train", "test"))
    lab = train.labels.numpy()
    ref = torch.from_numpy(stratified_subset(lab, 1000, seed=1))
    rest = torch.ones(len(lab), dtype=torch.bool)
    rest[ref] = False
    imgs = to_model_range(train.images)
    labels = labels_from_counts([1000] * 10)
    c_ref = cev.features(imgs[ref])
    rest_idx = torch.nonzero(rest).flatten()
    c_floor = cev.features(imgs[rest_idx[torch.from_numpy(stratified_subset(lab[rest.numpy()], 1000, seed=0))]])
    t_ref = ev.features(to_model_range(test.images))
    t_floor = ev.features(imgs[torch.from_numpy(stratified_subset(lab, 1000, seed=0))])
    c_stats, t_stats = gaussian_stats(c_ref), gaussian_stats(t_ref)
    return SimpleNamespace(
        ev=ev,
        cev=cev,
        train=train,
        imgs=imgs,
        labels=labels,
        yl=torch.from_numpy(labels),
        split={
            "choice": (
                c_ref,
                train.labels[ref],
                c_stats,
                frechet_distance_from_stats(*gaussian_stats(c_floor), *c_stats),
            ),
            "test": (t_ref, test.labels, t_stats, frechet_distance_from_stats(*gaussian_stats(t_floor), *t_stats)),
        },
    )


def score_features(r: SimpleNamespace, F: torch.Tensor, P: torch.Tensor, split: str) -> dict:
    """Recall, precision, FD (and its ratio to the split's floor) and fidelity of fakes with features ``F`` and
    predicted classes ``P`` (in ``split``'s evaluator), asked for as ``r.labels``."""
    R, Ry, stats, floor = r.split[split]
    fd = frechet_distance_from_stats(*gaussian_stats(F), *stats)
    pr = precision_recall(R, F, k=3, real_labels=Ry, fake_labels=r.yl, num_classes=10)
    return {
        "recall": pr.recall,
        "precision": pr.precision,
        "fd": fd,
        "fd_ratio": fd / floor,
        "fidelity": float((P == r.yl).double().mean()),
        "per_class_recall": pr.per_class_recall,
    }
