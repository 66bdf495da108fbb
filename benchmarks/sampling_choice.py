"""Issue 11: choose a sampling temperature (with a label check) for a trained run, on the training split only.

For each temperature T, the run's generator is sampled as ``ganaug evaluate --temperature T --label-check
CHECK`` samples it and scored twice:

- *choice*: ``--reference-per-class`` images per class are held out of the **training** split (seeded); a
  *choice evaluator* (the scoring evaluator's recipe, ``ganaug evaluator train`` defaults) is trained on the
  rest of the training split, and it scores the samples against the held-out images, its floors from the
  rest. The chosen T has the highest recall among those whose FD is at most ``--fd-max`` times its floor and
  whose class fidelity is at least ``--fidelity-min``; no T passing, the highest fidelity. The test split
  takes no part in the choice. (The scoring evaluator cannot do it: it trained on every training image, and
  in its features two training subsets sit far closer than the test split does, so FD ratios against
  training images are not comparable with those against the test split.)
- *test*: the scoring evaluator against the test split, exactly as ``ganaug evaluate`` reports (the
  figures quoted).

The run trained on the whole training split, so the held-out reference is data the generator saw; it
only ranks temperatures of one generator.

    python -m benchmarks.sampling_choice RUN --evaluator EV --label-check CHECK --data-root ../shared/data \\
        --temperatures 1,1.05,1.1,1.15,1.2,1.25 --work-dir runs/choice --out-dir runs/benchmarks/sampling-choice

Writes ``results.json`` (every number, the command, the machine) and ``report.md`` under ``--out-dir``; the
choice evaluator is kept in ``--work-dir`` (about 7 minutes on 2 CPU threads, reused when its reference
matches).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import torch

from benchmarks.coverage import write_results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="run folder written by `ganaug train` (or a generator.onnx)")
    p.add_argument("--evaluator", type=Path, required=True, help="the scoring evaluator")
    p.add_argument("--label-check", type=Path, default=None, help="evaluator folder used as the label check")
    p.add_argument("--data-root", default=None, help="real data folder (not needed for digits)")
    p.add_argument("--dataset", default=None, help="default: the one the evaluator was trained on")
    p.add_argument("--temperatures", default="1,1.05,1.1,1.15,1.2,1.25")
    p.add_argument(
        "--fd-growth",
        type=float,
        default=1.8,
        help="choice FD allowed, as a multiple of plain sampling's (T = 1) choice FD; 1.8 = the bar's 3x floor "
        "over the plain generator's 1.67x (`ganaug evaluate` of the README recipe's run)",
    )
    p.add_argument(
        "--rows-from",
        type=Path,
        default=None,
        help="results.json of an earlier run: apply the rule to its rows, score nothing",
    )
    p.add_argument(
        "--unflatten",
        type=int,
        default=0,
        help="candidates per sample undoing the run's flatten_density (`ganaug evaluate --unflatten`); 0 = off",
    )
    p.add_argument("--fidelity-min", type=float, default=0.99)
    p.add_argument("--reference-per-class", type=int, default=1000)
    p.add_argument("--per-class", type=int, default=1000, help="samples per class (evaluate --per-class)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--choice-epochs", type=int, default=4, help="epochs of the choice evaluator (the judge's: 4)")
    p.add_argument("--work-dir", type=Path, default=Path("runs") / "sampling_choice", help="holds the choice evaluator")
    p.add_argument("--out-dir", type=Path, default=Path("runs") / "benchmarks" / "sampling_choice")
    args = p.parse_args(argv)
    try:
        args.temps = [float(t) for t in args.temperatures.split(",") if t.strip()]
    except ValueError:
        p.error(f"--temperatures takes comma-separated numbers such as 1,1.1,1.2, got {args.temperatures!r}")
    if not args.temps or any(not t > 0 for t in args.temps) or args.temps[0] != 1.0:
        p.error("--temperatures must list numbers > 0, the first 1 (plain sampling, the FD reference)")
    return args


def figures(report: Any) -> dict[str, float]:
    """The issue's figures of a :class:`ganaug.eval.report.GeneratorReport`."""
    return {
        "recall": report.precision_recall.recall,
        "precision": report.precision_recall.precision,
        "fd": report.frechet_distance,
        "fd_floor": report.frechet_distance_floor,
        "fd_ratio": report.frechet_distance / report.frechet_distance_floor,
        "fidelity": report.fidelity.overall,
        "recall_floor": report.precision_recall_floor.recall,
    }


def choose(rows: list[dict[str, Any]], *, fd_growth: float, fidelity_min: float) -> dict[str, Any]:
    """The row whose ``choice`` figures have the highest recall with a fidelity of at least ``fidelity_min`` and
    an FD at most ``fd_growth`` times the first row's (plain sampling, T = 1); the lowest temperature on a tie.
    None passing, the first row."""
    limit = fd_growth * rows[0]["choice"]["fd"]
    passing = [r for r in rows if r["choice"]["fd"] <= limit and r["choice"]["fidelity"] >= fidelity_min]
    if passing:
        return max(passing, key=lambda r: (r["choice"]["recall"], -r["temperature"]))
    return rows[0]


def choice_evaluator(folder: Path, train: Any, rest: torch.Tensor, *, reference_seed: int, epochs: int = 4) -> Any:
    """The scoring evaluator's recipe trained on the training images ``rest`` marks (bool [N]); loaded from
    ``folder`` when it was trained on the same images, else trained (seed 0) and saved there."""
    import hashlib

    from ganaug.classify.evaluator import EvaluatorTraining, load_evaluator, train_evaluator

    ours = folder.exists() or folder.is_symlink()
    if ours:
        doc = _json_or_none(folder / "evaluator.json")
        if not folder.is_dir() or doc is None or "held_out_of" not in (doc.get("data") or {}):
            raise SystemExit(
                f"error: {folder} exists and is not a choice evaluator this script wrote; choose another --work-dir"
            )
    identity = {
        "held_out_of": train.name,
        "reference_seed": reference_seed,
        "rest_sha256": hashlib.sha256(rest.numpy().tobytes()).hexdigest(),
        "epochs": epochs,
    }
    if ours:
        ev = load_evaluator(folder)
        if ev.meta.get("data") == identity:
            return ev
    settings = EvaluatorTraining(epochs=epochs)
    ev = train_evaluator(
        train.images[rest], train.labels[rest], classes=train.classes, settings=settings, data_identity=identity
    )
    ev.save(folder)
    return ev


def _json_or_none(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from ganaug.downstream.machine import describe

    command = "python -m benchmarks.sampling_choice " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.rows_from is not None:
        earlier = json.loads(args.rows_from.read_text())
        rows, machine = earlier["rows"], earlier["machine"]
        scored_by = earlier.get("scored_by", earlier["command"])
    else:
        rows, scored_by, machine = score_rows(args), command, describe()
    chosen = choose(rows, fd_growth=args.fd_growth, fidelity_min=args.fidelity_min)
    results = {
        "command": command,
        "scored_by": scored_by,
        "run": str(args.run),
        "evaluator": str(args.evaluator),
        "label_check": None if args.label_check is None else str(args.label_check),
        "unflatten": args.unflatten,
        "rule": {
            "fd_growth": args.fd_growth,
            "fidelity_min": args.fidelity_min,
            "reference_per_class": args.reference_per_class,
            "choice_evaluator": str(args.work_dir / "choice-evaluator"),
        },
        "rows": rows,
        "chosen_temperature": chosen["temperature"],
        "machine": machine,
    }
    write_results(args.out_dir, results, render=report)
    print(f"chosen temperature {chosen['temperature']:g}: {_line(chosen)}")
    return results


def score_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every temperature's choice and test figures."""
    from ganaug.classify.evaluator import load_evaluator
    from ganaug.data.sources import load_source, stratified_subset, to_model_range, training_images
    from ganaug.eval.report import evaluate_generator, evaluate_on_sources, evaluation_data
    from ganaug.sample.generators import open_generator
    from ganaug.sample.resample import sampling_from_options
    from ganaug.sample.unflatten import with_unflatten

    torch.set_num_threads(args.threads)
    ev = load_evaluator(args.evaluator)
    gen = open_generator(args.run)
    dataset, root = evaluation_data(gen, ev, dataset=args.dataset, data_root=args.data_root)
    train, test = (load_source(dataset, root=root, split=s) for s in ("train", "test"))
    gen_train = training_images(gen.data, root=root) if gen.data and gen.data.get("dataset") == dataset else None
    labels = train.labels.numpy()
    ref = torch.from_numpy(stratified_subset(labels, args.reference_per_class, seed=args.seed + 1))
    rest = torch.ones(len(labels), dtype=torch.bool)
    rest[ref] = False
    choice_ev = choice_evaluator(
        args.work_dir / "choice-evaluator", train, rest, reference_seed=args.seed + 1, epochs=args.choice_epochs
    )
    images = to_model_range(train.images)
    options = {"per_class": args.per_class, "seed": args.seed, "generator_train_images": gen_train}
    rows = []
    base = sampling_from_options(1.0, args.label_check)  # evaluate_generator refuses a check that is a judge
    base = with_unflatten(base, args.unflatten, run=args.run, data_root=args.data_root)
    for t in args.temps:
        sampling = dataclasses.replace(base, temperature=t)
        on_train = evaluate_generator(
            gen, choice_ev, test_images=images[ref], test_labels=train.labels[ref], train_images=images[rest],
            train_labels=train.labels[rest], sampling=sampling, **options,
        )  # fmt: skip
        on_test = evaluate_on_sources(gen, ev, train, test, sampling=sampling, **options)
        rows.append(
            {"temperature": t, "sampling": sampling.identity(), "choice": figures(on_train), "test": figures(on_test)}
        )
        print(_line(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _line(r: dict[str, Any]) -> str:
    c, t = r["choice"], r["test"]
    return (
        f"T {r['temperature']:g}: choice recall {c['recall']:.4f} FD {c['fd_ratio']:.2f}x fidelity {c['fidelity']:.4f} | "
        f"test recall {t['recall']:.4f} precision {t['precision']:.4f} FD {t['fd_ratio']:.2f}x fidelity {t['fidelity']:.4f}"
    )


def report(results: dict[str, Any]) -> str:
    rule = results["rule"]
    lines = [
        "# Sampling temperature chosen on the training split",
        "",
        (
            f"Run `{results['run']}`, label check `{results['label_check']}`, unflatten {results.get('unflatten', 0)}, "
            f"evaluator `{results['evaluator']}`."
        ),
        (
            f"Rule: highest choice recall with choice FD <= {rule['fd_growth']}x that of T = 1 and choice fidelity >= "
            f"{rule['fidelity_min']}, "
            f"against {rule['reference_per_class']} training images per class. Chosen: **T = {results['chosen_temperature']:g}**."
        ),
        "",
        "    " + results["scored_by"],
        "",
        "| T | choice recall | choice FD x floor | choice fidelity | test recall | test precision | test FD x floor | test fidelity |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        c, t = r["choice"], r["test"]
        lines.append(
            f"| {r['temperature']:g} | {c['recall']:.4f} | {c['fd_ratio']:.2f} | {c['fidelity']:.4f} | {t['recall']:.4f} | "
            f"{t['precision']:.4f} | {t['fd_ratio']:.2f} | {t['fidelity']:.4f} |"
        )
    m = results["machine"]
    lines += [
        "",
        (
            f"Machine: {m.get('cpu')}, {m.get('logical_cpus')} logical CPUs, torch {m.get('torch')} on "
            f"{m.get('torch_threads')} threads, load average {m.get('load_average')}."
        ),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
