"""Which sampling should a preset use by default? Plain sampling, the model's own default (its preset's: for the
mnist preset the run's small label check, ``label_check.onnx``), and slower chains, side by side on the same runs:
images/s through ``GeneratedDataset`` on this machine's cores, and the quality of the same images in ganaug's
committed evaluator (recall, precision, FD against its real floor, class fidelity; CAS with ``--cas``) and in a
second judge of another family (LeNet-5 trained here, as in ``benchmarks/metric_agreement.py``: its fidelity and
the FD in its 84-d features), so that a sampling rule is not tuned to one evaluator's features.

    python -m benchmarks.default_sampling RUN [RUN ...] --evaluator benchmarks/results/evaluators/mnist_cpu \\
        --data-root DATA [--label-check CHECK --temperature 1.15 --unflatten 8] [--cas [plain,model]] --threads 2 --out OUT

Variants: ``plain`` (``sampling="plain"``), ``model`` (the run's default sampling, what ``ganaug generate RUN``
and ``GeneratedDataset(RUN)`` use), and with ``--label-check``: ``T + check`` (that evaluator folder as the
check) and, with ``--unflatten K``, ``T + check + unflatten K`` (the full chain), and the same chain with the
run's own check in place of that evaluator (``T + run's check + unflatten K``). Speed: every variant generates
``--speed-images`` images through ``GeneratedDataset.arrays`` in turn, ``--repeats`` times (interleaved, so a
drift in the machine's speed hits all alike); medians. Quality: ``--per-class`` images per class (latent seed 0)
scored as ``ganaug evaluate`` scores them. Writes ``OUT.json`` and ``OUT.md`` (:mod:`benchmarks.result_pair`).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

KIND = "ganaug default_sampling"


def _variants(run: Path, args) -> dict[str, Any]:
    """name -> GeneratedDataset keyword arguments of each sampling compared for ``run``."""
    from ganaug.sample.resample import LabelCheck

    out: dict[str, Any] = {"plain": {"sampling": "plain"}, "model": {}}
    if args.unflatten:  # the full chain with the run's own check in place of an evaluator
        out[f"T {args.temperature:g} + run's check + unflatten {args.unflatten}"] = {
            "temperature": args.temperature,
            "unflatten": args.unflatten,
            "data_root": args.data_root,
        }
    if args.label_check is not None:
        check = LabelCheck.load(args.label_check)
        t = args.temperature
        out[f"T {t:g} + check"] = {"sampling": "plain", "temperature": t, "label_check": check}
        if args.unflatten:
            out[f"T {t:g} + check + unflatten {args.unflatten}"] = {
                "sampling": "plain",
                "temperature": t,
                "label_check": check,
                "unflatten": args.unflatten,
                "data_root": args.data_root,
            }
    return out


def speed(run: Path, variants: dict[str, Any], *, images: int, repeats: int, threads: int, log) -> dict[str, Any]:
    """Median images/s of each variant through ``GeneratedDataset(run, ...).arrays`` over ``images`` items."""
    from ganaug.feed.dataset import GeneratedDataset

    per_class = -(-images // 10)
    sets = {
        name: GeneratedDataset(run, per_class=per_class, seed=0, threads=threads, **kw) for name, kw in variants.items()
    }
    for ds in sets.values():  # sessions, the check, the unflattening's caps: built before timing
        ds.arrays(np.arange(64))
    seconds: dict[str, list[float]] = {name: [] for name in sets}
    for r in range(repeats):
        for name, ds in sets.items():
            ds.set_epoch(1000 + r)  # fresh items each repeat: nothing served from the cache
            t0 = time.perf_counter()
            ds.arrays(np.arange(images))
            seconds[name].append(time.perf_counter() - t0)
        log(
            f"  speed repeat {r + 1}/{repeats}: " + ", ".join(f"{n} {images / s[-1]:.0f}/s" for n, s in seconds.items())
        )
    base = statistics.median(seconds["plain"])
    return {
        name: {
            "images_per_second": images / statistics.median(s),
            "speed_vs_plain": base / statistics.median(s),
            "seconds": s,
        }
        for name, s in seconds.items()
    }


def quality(run: Path, variants: dict[str, Any], *, evaluator, judge, data, per_class: int, cas: str | None, log):
    """Per variant: ganaug's report on ``per_class`` images per class and the second judge's fidelity and FD."""
    from ganaug.data.labels import labels_from_counts
    from ganaug.eval.metrics import frechet_distance
    from ganaug.eval.report import evaluate_generator
    from ganaug.feed.dataset import GeneratedDataset
    from ganaug.sample.generators import generate, open_generator

    gen = open_generator(run, backend="onnx")
    labels = labels_from_counts([per_class] * len(gen.classes))
    rows = {}
    for name, kw in variants.items():
        t0 = time.perf_counter()
        sampling = GeneratedDataset(run, per_class=1, **kw).sampling
        report = evaluate_generator(
            gen,
            evaluator,
            test_images=data["test_x"],
            test_labels=data["test_y"],
            train_images=data["train_x"],
            train_labels=data["train_y"],
            per_class=per_class,
            seed=0,
            sampling=sampling,
        )
        fake = generate(gen, labels, seed=0, sampling=sampling)
        pred, feats = judge["outputs"](fake)
        row = {
            "recall": report.precision_recall.recall,
            "precision": report.precision_recall.precision,
            "fd": report.frechet_distance,
            "fd_floor": report.frechet_distance_floor,
            "fd_ratio": report.frechet_distance / report.frechet_distance_floor
            if report.frechet_distance_floor
            else math.inf,
            "fidelity": report.fidelity.overall,
            "judge_fidelity": float((pred == labels).mean()),
            "judge_fd": frechet_distance(feats, judge["test_features"]),
            "sampling": report.sampling,
        }
        if cas is not None and (cas == "all" or name in cas.split(",")):
            from ganaug.eval.cas import cas_score, load_cas_data

            cas_data = load_cas_data(data["dataset"], root=data["root"])
            row["cas"] = cas_score(gen, cas_data, sampling=sampling)["accuracy"]
        rows[name] = row
        log(
            f"  {name}: "
            + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float))
            + f" ({time.perf_counter() - t0:.0f} s)"
        )
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders (each with generator.onnx)")
    p.add_argument("--evaluator", type=Path, required=True, help="the committed evaluator folder that scores")
    p.add_argument("--data-root", type=Path, required=True, help="folder holding MNIST/raw or FashionMNIST/raw")
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist", help="what the runs trained on")
    p.add_argument(
        "--label-check",
        type=Path,
        default=None,
        help="an evaluator folder or a .onnx check: adds the T + check variants",
    )
    p.add_argument("--temperature", type=float, default=1.15)
    p.add_argument("--unflatten", type=int, default=0, help="adds the full chain with K candidates")
    p.add_argument("--per-class", type=int, default=1000)
    p.add_argument("--speed-images", type=int, default=10000)
    p.add_argument("--chain-speed-images", type=int, default=2000, help="images timed for the unflatten chain")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--cas",
        nargs="?",
        const="all",
        default=None,
        metavar="VARIANTS",
        help="also CAS (a classifier trained on 60,000 generated digits): of every variant, or of the "
        "comma-separated ones named (e.g. plain,model)",
    )
    p.add_argument(
        "--only",
        choices=("speed", "quality"),
        default=None,
        help="measure one half (speed wants the machine to itself; quality does not depend on load)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("runs") / "benchmarks" / "default_sampling", help="file stem")
    args = p.parse_args(argv)

    from benchmarks import result_pair

    result_pair.check_out(p, args.out, kind=KIND, example="default_sampling", create=True)

    from benchmarks.metric_agreement import lenet_outputs, train_lenet
    from ganaug.classify.evaluator import load_evaluator
    from ganaug.data.sources import load_source, to_model_range
    from ganaug.downstream.machine import describe
    from ganaug.threads import configure_torch

    configure_torch(args.threads)
    log = lambda m: print(m, file=sys.stderr, flush=True)
    train = load_source(args.dataset, root=args.data_root, split="train")
    test = load_source(args.dataset, root=args.data_root, split="test")
    data = {
        "train_x": to_model_range(train.images),
        "train_y": train.labels,
        "test_x": to_model_range(test.images),
        "test_y": test.labels,
        "root": args.data_root,
        "dataset": args.dataset,
    }
    judge, judge_acc = None, None
    if args.only != "speed":
        t0 = time.perf_counter()
        lenet = train_lenet(data["train_x"], train.labels)
        pred, test_features = lenet_outputs(lenet, data["test_x"])
        judge = {"outputs": lambda x: lenet_outputs(lenet, x), "test_features": test_features}
        judge_acc = float((pred == test.labels.numpy()).mean())
        log(f"LeNet-5 judge: {judge_acc:.4f} on the {args.dataset} test split ({time.perf_counter() - t0:.0f} s)")
    evaluator = load_evaluator(args.evaluator)
    results: dict[str, Any] = {
        "kind": KIND,
        "command": "python -m benchmarks.default_sampling " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": describe(),
        "threads": args.threads,
        "dataset": args.dataset,
        "judge": {"model": "LeNet-5 (benchmarks/metric_agreement.py)", "test_accuracy": judge_acc},
        "only": args.only,
        "runs": {},
    }
    for run in args.runs:
        log(f"{run}:")
        variants = _variants(run, args)
        rows: dict[str, Any] = {name: {} for name in variants}
        if args.only != "quality":
            fast = {k: v for k, v in variants.items() if "unflatten" not in v}
            rows |= speed(run, fast, images=args.speed_images, repeats=args.repeats, threads=args.threads, log=log)
            slow = {k: v for k, v in variants.items() if "unflatten" in v}
            if slow:
                chain = speed(
                    run,
                    {"plain": variants["plain"], **slow},
                    images=args.chain_speed_images,
                    repeats=args.repeats,
                    threads=args.threads,
                    log=log,
                )
                rows |= {k: v for k, v in chain.items() if k != "plain"}
        scores: dict[str, Any] = {name: {} for name in variants}
        if args.only != "speed":
            scores = quality(
                run,
                variants,
                evaluator=evaluator,
                judge=judge,
                data=data,
                per_class=args.per_class,
                cas=args.cas,
                log=log,
            )
        results["runs"][str(run)] = {name: {**scores[name], **rows[name]} for name in variants}
    result_pair.write(args.out, results, report(results))
    return results


def report(results: dict[str, Any]) -> str:
    lines = [
        "# Default sampling: speed and quality side by side",
        "",
        f"Command: `{results['command']}`",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in results["machine"].items()),
        "",
        f"Second judge: {results['judge']['model']}"
        + (
            f", {100 * results['judge']['test_accuracy']:.2f}% on the {results.get('dataset', 'mnist')} test split"
            if results["judge"]["test_accuracy"]
            else " (not run)"
        )
        + ". Fidelities in %. FD x floor: ganaug's FD over the FD of as many real training images.",
        "",
        (
            "| run | sampling | images/s | x plain | recall | precision | FD x floor | fidelity | judge fidelity "
            "| judge FD | CAS |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(r: dict, key: str, fmt: str) -> str:
        return format(r[key], fmt) if key in r else "-"

    for run, rows in results["runs"].items():
        for name, r in rows.items():
            pct = {k: 100 * r[k] for k in ("fidelity", "judge_fidelity", "cas") if k in r}
            lines.append(
                f"| {Path(run).name} | {name} | {cell(r, 'images_per_second', ',.0f')} | "
                f"{cell(r, 'speed_vs_plain', '.2f')} | {cell(r, 'recall', '.4f')} | {cell(r, 'precision', '.4f')} | "
                f"{cell(r, 'fd_ratio', '.2f')} | {cell(pct, 'fidelity', '.2f')} | {cell(pct, 'judge_fidelity', '.2f')} | "
                f"{cell(r, 'judge_fd', '.3f')} | {cell(pct, 'cas', '.2f')} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
