"""The lever sweep: what a training option does to the generator's coverage (recall, FD, CAS), one command a lever.

Each lever in :data:`LEVERS` is the exact ``ganaug train`` argument list it adds to the dataset's preset
(``ganaug train --dataset mnist``, the mnist preset's step budget unless ``--epochs`` says otherwise); the levers
the results rejected are gone from ganaug, their figures in ``benchmarks/results/HISTORY.md``. A lever that needs
a setting without an option (``loss``, ``r1_gamma``, ...) is a ``--config`` file: ``["--config", "FILE"]``. For
each chosen lever this script trains the run (as its own process; ``--jobs N`` runs N at once, each with
``--threads`` set so they share the CPU cores), then runs ``ganaug evaluate --cas`` on it: recall, precision,
Fréchet distance and its real floor, class fidelity, and CAS beside the real ceiling (the full-profile classifier
unless ``--cas-classifier`` says otherwise).

    python -m benchmarks.coverage --data-root ../shared/data --evaluator runs/evaluator \\
        --levers baseline,d-width-2x --jobs 2 --out-dir runs/benchmarks/coverage_cpu
    python -m benchmarks.coverage --data-root DATA --evaluator EVAL --device cuda --jobs 16 \\
        --levers all --out-dir OUT            # on a GPU a lever runs with --amp off unless it sets --amp

Writes at most two files under ``--out-dir`` (``results.json``: every number, the exact commands and
``ganaug.downstream.machine.describe()``; ``report.md``: the table), after every finished lever, so a run that is cut
short keeps what finished. Run folders, logs and the CAS cache go under ``--work-dir``. A lever whose
settings did not change since it finished is not rerun; ``--report-only`` rebuilds report.md from
results.json. An ``--evaluator`` folder without an evaluator is trained first (``ganaug evaluator train``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

#: Lever name -> the ``ganaug train`` arguments it adds to the baseline (the dataset's preset).
LEVERS: dict[str, list[str]] = {
    "baseline": [],
    "seed-1": ["--seed", "1"],
    "d-width-2x": ["--d-width", "128"],
    "g-wider": ["--g-width", "64"],
    "batch-128": ["--batch-size", "128"],
    "lr-2x": ["--lr-g", "4e-4", "--lr-d", "4e-4"],
    "ttur": ["--lr-d", "4e-4", "--lr-g", "1e-4"],
    "fp32": ["--amp", "off"],
    "bf16": ["--amp", "bf16", "--channels-last"],
    "fp32-channels-last": ["--amp", "off", "--channels-last"],
}
RESULTS, REPORT = "results.json", "report.md"
ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levers", default="baseline", help=f"comma-separated, or 'all': {', '.join(LEVERS)}")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "digits"])
    p.add_argument("--data-root", default=None, help="folder holding MNIST/raw or FashionMNIST/raw")
    p.add_argument("--evaluator", type=Path, help="evaluator folder (trained there first if it holds none)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs of every lever [default: the preset's]")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--jobs", type=int, default=1, help="levers trained at once, each as its own process")
    p.add_argument("--threads", type=int, default=None, help="torch threads a job [default: the cores / --jobs]")
    p.add_argument("--eval-per-class", type=int, default=1000, help="evaluate --per-class")
    p.add_argument("--cas-classifier", default="full", choices=["full", "cpu", "smoke"])
    p.add_argument(
        "--cas-per-class",
        type=int,
        default=None,
        help="evaluate --cas-per-class [default: the training split's counts]",
    )
    p.add_argument(
        "--out-dir",
        type=Path,
        default=Path("runs") / "benchmarks" / "coverage",
        help="results.json and report.md [default: runs/benchmarks/coverage]",
    )
    p.add_argument("--work-dir", type=Path, default=None, help="run folders, logs, CAS cache [default: runs/coverage]")
    p.add_argument("--report-only", action="store_true", help="rebuild report.md from results.json")
    args = p.parse_args(argv)
    names = list(LEVERS) if args.levers == "all" else [n.strip() for n in args.levers.split(",") if n.strip()]
    unknown = [n for n in names if n not in LEVERS]
    if unknown:
        p.error(f"unknown lever(s) {', '.join(unknown)}; choose from {', '.join(LEVERS)} or 'all'")
    if not args.report_only and args.evaluator is None:
        p.error("--evaluator is required (a folder from `ganaug evaluator train`, or an empty one to train it in)")
    if args.dataset != "digits" and args.data_root is None and not args.report_only:
        p.error(f"--dataset {args.dataset} needs --data-root")
    args.names = names
    args.work_dir = args.work_dir or Path("runs") / "coverage"
    if args.threads is None:
        from ganaug.threads import available_cpus

        args.threads = max(1, available_cpus() // max(1, args.jobs))
    return args


def recipe(dataset: str, epochs: int | None) -> list[str]:
    """The baseline every lever adds to: ``ganaug train`` with the dataset's preset (at ``epochs``, when given)."""
    return ["ganaug", "train", "--dataset", dataset] + (["--epochs", str(epochs)] if epochs else [])


def lever_command(name: str, args: argparse.Namespace) -> list[str]:
    """The exact, portable ``ganaug train`` command of a lever (what results.json and report.md show)."""
    return (
        recipe(args.dataset, args.epochs)
        + (["--data-root", str(args.data_root)] if args.data_root else [])
        + LEVERS[name]
    )


def settings_key(name: str, args: argparse.Namespace) -> str:
    """What decides a lever's numbers: when it changes, a finished lever is run again."""
    doc = {
        "command": lever_command(name, args),
        "device": args.device,
        "eval_per_class": args.eval_per_class,
        "cas_classifier": args.cas_classifier,
        "cas_per_class": args.cas_per_class,
        "evaluator": str(args.evaluator),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _run(cmd: list[str], log: Path, threads: int) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.run(cmd, check=False, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    if proc.returncode:
        tail = [line for line in log.read_text().splitlines() if line.strip()][-1:]
        raise RuntimeError(f"exit {proc.returncode}: {tail[0] if tail else '(no output)'}")
    return time.perf_counter() - t0


def run_lever(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train and evaluate one lever; returns its row (``error`` instead of numbers when a step failed)."""
    work = args.work_dir.resolve()
    run_dir, log, eval_json = work / "runs" / name, work / "logs" / f"{name}.log", work / "runs" / f"{name}.eval.json"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    command = lever_command(name, args)
    row: dict[str, Any] = {"lever": name, "command": " ".join(command), "key": settings_key(name, args)}
    row["device"] = args.device
    python = [sys.executable, "-m"]
    train = python + command[:1] + command[1:] + ["--out", str(run_dir), "--overwrite", "--quiet", "--no-export"]
    train += ["--device", args.device, "--threads", str(args.threads)]
    if args.device == "cuda" and "--amp" not in command:  # fp32 unless the lever is about precision
        train += ["--amp", "off"]
    try:
        row["wall_seconds"] = round(_run(train, log, args.threads), 1)
        summary = json.loads((run_dir / "summary.json").read_text())
        row["train_seconds"] = summary.get("train_seconds")
        evaluate = python + ["ganaug", "evaluate", str(run_dir), "--evaluator", str(args.evaluator)]
        evaluate += ["--data-root", str(args.data_root)] if args.data_root else []
        evaluate += ["--per-class", str(args.eval_per_class), "--device", args.device, "--threads", str(args.threads)]
        evaluate += ["--cas", "--cas-classifier", args.cas_classifier]
        evaluate += ["--cas-per-class", str(args.cas_per_class)] if args.cas_per_class else []
        evaluate += ["--cas-cache", str(work / "cas"), "--json", str(eval_json)]
        row["eval_seconds"] = round(_run(evaluate, log, args.threads), 1)
        row |= figures(json.loads(eval_json.read_text()))
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        row["error"] = f"{type(e).__name__}: {e}"[:300]
    return row


def figures(doc: dict[str, Any]) -> dict[str, Any]:
    """The table's numbers from an ``evaluate --json`` document (the CAS ones None when it was scored without)."""
    pr, prf, cas = doc["precision_recall"], doc["precision_recall_floor"], doc.get("cas")
    if cas is None:
        cas = {"score": {"accuracy": None}, "ceiling": {"accuracy": None}, "gap_pp": None}
    return {
        "recall": pr["recall"],
        "recall_floor": prf["recall"],
        "precision": pr["precision"],
        "precision_floor": prf["precision"],
        "fd": doc["frechet_distance"],
        "fd_floor": doc["frechet_distance_floor"],
        "fidelity": doc["fidelity"]["overall"],
        "cas": cas["score"]["accuracy"],
        "cas_ceiling": cas["ceiling"]["accuracy"],
        "cas_gap_pp": cas["gap_pp"],
    }


def ensure_evaluator(args: argparse.Namespace) -> None:
    if (args.evaluator / "evaluator.json").is_file():
        return
    cmd = [
        sys.executable,
        "-m",
        "ganaug",
        "evaluator",
        "train",
        "--dataset",
        args.dataset,
        "--out",
        str(args.evaluator),
    ]
    cmd += ["--data-root", str(args.data_root)] if args.data_root else []
    cmd += ["--device", args.device, "--quiet", "--overwrite"]
    log = args.work_dir / "logs" / "evaluator.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    _run(cmd, log, args.threads)


def precompute_ceiling(args: argparse.Namespace) -> None:
    """The real-data ceiling into the shared CAS cache, once, while the first levers train."""
    import torch

    from ganaug.data.sources import load_source
    from ganaug.eval.cas import CASData, real_ceiling

    torch.set_num_threads(args.threads)
    root = args.data_root
    data = CASData.from_sources(
        load_source(args.dataset, root=root, split="train"), load_source(args.dataset, root=root, split="test")
    )
    real_ceiling(data, seed=0, device=args.device, classifier=args.cas_classifier, cache_dir=args.work_dir / "cas")


def load_results(out_dir: Path) -> dict[str, Any]:
    path = out_dir / RESULTS
    return json.loads(path.read_text()) if path.is_file() else {"levers": {}}


def check_out_dir(out_dir: Path) -> None:
    """Refuse an ``out_dir`` whose report.md this script did not write (there is no results.json beside it)."""
    if (out_dir / REPORT).exists() and not (out_dir / RESULTS).is_file():
        raise SystemExit(
            f"error: {out_dir / REPORT} is not a benchmark report (no {RESULTS} beside it); choose another --out-dir"
        )


def write_results(
    out_dir: Path, results: dict[str, Any], render: Callable[[dict[str, Any]], str] | None = None
) -> None:
    """results.json and report.md (``render(results)``, :func:`report` by default), each replaced whole."""
    check_out_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rendered = (render or report)(results)
    for name, text in ((RESULTS, json.dumps(results, indent=1, default=float)), (REPORT, rendered)):
        tmp = out_dir / f".{name}.tmp"
        try:
            tmp.write_text(text + "\n")
            os.replace(tmp, out_dir / name)
        finally:
            tmp.unlink(missing_ok=True)  # a full disk leaves the old file and no half-written temp


def _f(v: Any, fmt: str) -> str:
    return "" if v is None else format(v, fmt)


def report(results: dict[str, Any]) -> str:
    """report.md: one row a lever (in the order of :data:`LEVERS`), the machine and the settings."""
    s = results.get("settings", {})
    budget = f"{s['epochs']} epochs" if s.get("epochs") else "the preset's step budget"
    lines = [
        "# Coverage levers",
        "",
        (
            f"Dataset {s.get('dataset')}, {budget} a lever, device {s.get('device')}, "
            f"{s.get('jobs')} jobs at once ({s.get('threads')} threads each); evaluate --per-class "
            f"{s.get('eval_per_class')}; CAS: {s.get('cas_classifier')} classifier on "
            + (
                f"{s['cas_per_class']} generated images per class"
                if s.get("cas_per_class")
                else "as many generated images of each class as the training split holds"
            )
            + ", seed 0. Wall time is the training process's, beside the other jobs "
            "(not a quiet-machine figure)."
        ),
        "",
        (
            "| lever | command | recall | precision | FD | FD floor | FD/floor | fidelity | CAS | ceiling | gap pp "
            "| wall s | device |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = results.get("levers", {})
    for name in sorted(rows, key=lambda n: list(LEVERS).index(n) if n in LEVERS else len(LEVERS)):
        r = rows[name]
        if "error" in r:
            lines.append(f"| {name} | `{r['command']}` | failed: {r['error']} |||||||||| {r['device']} |")
            continue
        ratio = r["fd"] / r["fd_floor"] if r.get("fd_floor") else None
        cells = [
            name,
            f"`{r['command']}`",
            _f(r["recall"], ".3f"),
            _f(r["precision"], ".3f"),
            _f(r["fd"], ".3f"),
            _f(r["fd_floor"], ".3f"),
            _f(ratio, ".2f"),
            _f(r["fidelity"], ".4f"),
            _f(100 * r["cas"], ".2f"),
            _f(100 * r["cas_ceiling"], ".2f"),
            _f(r["cas_gap_pp"], ".2f"),
            _f(r.get("wall_seconds"), ".0f"),
            r["device"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    machine = results.get("machine")
    if machine:
        lines += ["", "Machine: `" + json.dumps(machine) + "`"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    check_out_dir(args.out_dir)
    results = load_results(args.out_dir)
    if args.report_only:
        if not results["levers"]:
            raise SystemExit(f"error: {args.out_dir / RESULTS} holds no finished lever; run the sweep first")
        write_results(args.out_dir, results)
        return results
    from ganaug.downstream.machine import describe

    settings = {k: getattr(args, k) for k in ("dataset", "epochs", "device", "jobs", "threads", "eval_per_class")}
    settings |= {"cas_classifier": args.cas_classifier, "cas_per_class": args.cas_per_class}
    todo = [n for n in args.names if results["levers"].get(n, {}).get("key") != settings_key(n, args)]
    todo += [n for n in args.names if "error" in results["levers"].get(n, {}) and n not in todo]
    skipped = [n for n in args.names if n not in todo]
    if skipped:
        print(f"cached (not rerun): {', '.join(skipped)}", flush=True)
    if todo:
        results |= {"settings": settings, "machine": describe()}  # where the newest levers ran
        args.work_dir.mkdir(parents=True, exist_ok=True)
        ensure_evaluator(args)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {pool.submit(run_lever, n, args): n for n in todo}
            precompute_ceiling(args)
            for done in as_completed(futures):
                row = done.result()
                results["levers"][row["lever"]] = row
                write_results(args.out_dir, results)
                status = row.get("error") or f"recall {row['recall']:.3f}, CAS gap {row['cas_gap_pp']:.2f} pp"
                print(f"{row['lever']}: {status}", flush=True)
    write_results(args.out_dir, results)
    return results


if __name__ == "__main__":
    main()
