"""Issue 11's lever sweep: what limits the generator's coverage (recall, FD, CAS), one committed command a lever.

Each lever in :data:`LEVERS` is the exact ``ganaug train`` argument list it adds to the library defaults
(``ganaug train --dataset mnist --epochs 15``; the README recipe is the ``recipe+bf16+channels-last+sample-center-of-mass``
lever at ``--epochs 26``, ``recipe`` at ``--epochs 18`` an earlier one). For each chosen
lever this script trains the run (as its own process; ``--jobs N`` runs N at once, each with ``--threads`` set
so they share the CPU cores), then runs
``ganaug evaluate --cas`` on it: recall, precision, Fréchet distance and its real floor, class fidelity,
and CAS beside the real ceiling (the full-profile classifier unless ``--cas-classifier`` says otherwise).

    python -m benchmarks.coverage --data-root ../shared/data --evaluator runs/evaluator \\
        --levers baseline,mbstd --jobs 2 --out-dir runs/benchmarks/coverage_cpu
    python -m benchmarks.coverage --data-root DATA --evaluator EVAL --device cuda --jobs 16 \\
        --levers all --out-dir OUT            # on a GPU a lever runs with --amp off unless it sets --amp

Writes at most two files under ``--out-dir`` (``results.json``: every number, the exact commands and
``ganaug.machine.describe()``; ``report.md``: the table), after every finished lever, so a run that is cut
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

#: Hinge loss with a lazy R1 penalty: the README's MNIST recipe of the first two rounds (at 15 epochs).
HINGE_R1 = ["--loss", "hinge", "--r1-gamma", "10", "--r1-every", "4"]
#: The README MNIST recipe's GAN options on top of the library defaults (the recipe of rounds 3-7 at ``--epochs 18``;
#: since round 8 the README adds ``--amp bf16 --channels-last`` and runs ``--epochs 26``).
RECIPE = [*HINGE_R1, "--betas", "0.0,0.99"]
#: The README MNIST command's options of rounds 9-12 (run it with ``--epochs 26``).
README_RECIPE = [*RECIPE, "--amp", "bf16", "--channels-last", "--center-of-mass", "sample"]


def _set(args: list[str], option: str, value: str) -> list[str]:
    """``args`` with ``option``'s value replaced by ``value`` (the option must be there)."""
    i = args.index(option)
    return [*args[: i + 1], value, *args[i + 2 :]]


#: The README MNIST command's options since round 13: R1 gamma 30 instead of 10 (``--epochs 26``).
README_RECIPE_R1_30 = _set(README_RECIPE, "--r1-gamma", "30")
#: Export the EMA snapshot with the best Fréchet distance to 200 images per class held out of the training split.
SELECT_FD = ["--select-by", "fd", "--holdout", "200", "--select-evaluator", "{evaluator}"]
#: Lever name -> the ``ganaug train`` arguments it adds to the baseline (the library defaults, which were the
#: README recipe before ``hinge+r1``). ``{evaluator}`` stands for the ``--evaluator`` folder.
LEVERS: dict[str, list[str]] = {
    "baseline": [],
    "mbstd": ["--mbstd"],
    "d-width-2x": ["--d-width", "128"],
    "d-depth": ["--d-depth", "1"],
    "hinge-sn": ["--loss", "hinge", "--spectral-norm"],
    "r1-1": ["--r1-gamma", "1"],
    "r1-10": ["--r1-gamma", "10", "--r1-every", "4"],
    "ttur": ["--lr-d", "4e-4", "--lr-g", "1e-4"],
    "lr-cosine": ["--lr-decay", "cosine"],
    "betas-0-0.99": ["--betas", "0.0,0.99"],
    "batch-128": ["--batch-size", "128"],
    "z-128": ["--z-dim", "128"],
    "ema-0.9999": ["--ema-decay", "0.9999", "--ema-warmup", "10"],
    "diffaugment": ["--diffaugment", "translation,cutout"],
    "g-wider": ["--g-width", "64"],
    "g-deeper": ["--g-depth", "1"],
    "select-recall": ["--select-by", "recall", "--holdout", "100", "--select-evaluator", "{evaluator}"],
    "mbstd+r1": ["--mbstd", "--r1-gamma", "1"],
    "mbstd+cosine+ema": ["--mbstd", "--lr-decay", "cosine", "--ema-decay", "0.9999"],
    "hinge-sn+mbstd": ["--loss", "hinge", "--spectral-norm", "--mbstd"],
    "hinge+r1": HINGE_R1,
    "hinge+r1+d-depth": [*HINGE_R1, "--d-depth", "1"],
    # the README recipe (hinge + R1) plus one lever each, with the EMA snapshot of best held-out FD exported
    "hinge+r1+linear+select-fd": [*HINGE_R1, "--lr-decay", "linear", *SELECT_FD],
    "hinge+r1-gamma-1+select-fd": [*HINGE_R1[:3], "1", *HINGE_R1[4:], *SELECT_FD],
    "hinge+r1+mbstd+select-fd": [*HINGE_R1, "--mbstd", *SELECT_FD],
    "hinge+r1+lr-4e-4+select-fd": [*HINGE_R1, "--lr-g", "4e-4", "--lr-d", "4e-4", *SELECT_FD],
    # third round, at --epochs 20 (the recipe uses about 20 of its 30 CPU minutes at 15 epochs)
    "hinge+r1+select-fd": [*HINGE_R1, *SELECT_FD],
    "hinge+r1+betas-0-0.99+select-fd": [*RECIPE, *SELECT_FD],
    "recipe": RECIPE,
    "hinge+r1+ac-0.5+select-fd": [*HINGE_R1, "--ac-weight", "0.5", *SELECT_FD],
    # fourth round, on top of the recipe at --epochs 18 (capacity, EMA horizon, DiffAugment at full data)
    "recipe+g-deeper": [*RECIPE, "--g-depth", "1"],
    "recipe+ema-0.9999": [*RECIPE, "--ema-decay", "0.9999"],
    "recipe+diffaugment-translation": [*RECIPE, "--diffaugment", "translation"],
    "recipe+ac-0.5": [*RECIPE, "--ac-weight", "0.5"],
    # fifth round, at --epochs 18: batch size, z size, and a second seed of the recipe (run-to-run noise)
    "recipe+batch-32": [*RECIPE, "--batch-size", "32"],
    "recipe+z-128": [*RECIPE, "--z-dim", "128"],
    "recipe+seed-1": [*RECIPE, "--seed", "1"],
    "recipe+cond-bn": [*RECIPE, "--cond-bn"],
    # seventh round: MSGAN's mode-seeking term (variety within a class)
    "recipe+ms-1": [*RECIPE, "--mode-seeking", "1"],
    # R3GAN's loss: relativistic pairing with R1 and R2 (the recipe with its hinge loss swapped out)
    "rpgan+r1+r2": ["--loss", "rpgan", *HINGE_R1[2:], "--r2-gamma", "10", "--betas", "0.0,0.99"],
    # eighth round: the CPU's speed (bf16 autocast on AVX-512 BF16, channels-last) spent on more epochs
    "recipe+bf16": [*RECIPE, "--amp", "bf16"],
    "recipe+channels-last": [*RECIPE, "--channels-last"],
    "recipe+bf16+channels-last": [*RECIPE, "--amp", "bf16", "--channels-last"],
    # ninth round: placement to the pixel (a pixel off is far in the evaluator's features): G moves its digits
    # by centre of mass as MNIST did; D sees each pixel's row and column (CoordConv)
    "recipe+bf16+channels-last+center-of-mass": [
        *RECIPE,
        *("--amp", "bf16", "--channels-last", "--center-of-mass", "train"),
    ],
    "recipe+bf16+channels-last+sample-center-of-mass": README_RECIPE,
    "recipe+bf16+channels-last+d-coords": [*RECIPE, "--amp", "bf16", "--channels-last", "--d-coords"],
    # tenth round, on the README recipe (the lever above): D's view of the batch (PacGAN packs of two) and a light
    # mode-seeking term (round 7's weight 1 bought recall at every other figure's cost)
    "readme-recipe+d-pack-2": [*README_RECIPE, "--d-pack", "2"],
    "readme-recipe+ms-0.1": [*README_RECIPE, "--mode-seeking", "0.1"],
    # eleventh and twelfth rounds: a light AC-GAN term; the R1 penalty's strength (30 became the README recipe)
    "readme-recipe+ac-0.1": [*README_RECIPE, "--ac-weight", "0.1"],
    "readme-recipe+ac-0.03": [*README_RECIPE, "--ac-weight", "0.03"],
    "readme-recipe+r1-30": README_RECIPE_R1_30,
    "readme-recipe+r1-100": _set(README_RECIPE, "--r1-gamma", "100"),
    # thirteenth round: a second training seed of gamma 10 and 30; class-conditional BatchNorm on gamma 30
    "readme-recipe+seed-1": [*README_RECIPE, "--seed", "1"],
    "readme-recipe+r1-30+seed-1": [*README_RECIPE_R1_30, "--seed", "1"],
    "readme-recipe+r1-30+cond-bn": [*README_RECIPE_R1_30, "--cond-bn"],
    # fourteenth round: rare styles drawn more often (screened first with benchmarks.coverage_finetune)
    "readme-recipe+r1-30+flatten-density-3": [*README_RECIPE_R1_30, "--flatten-density", "3", "--density-clip", "0.9"],
    "readme-recipe+r1-30+flatten-density-4": [*README_RECIPE_R1_30, "--flatten-density", "4", "--density-clip", "0.9"],
    "readme-recipe+r1-30+flatten-density-3+seed-1": [
        *README_RECIPE_R1_30,
        *["--flatten-density", "3", "--density-clip", "0.9", "--seed", "1"],
    ],
}
RESULTS, REPORT = "results.json", "report.md"
ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levers", default="baseline", help=f"comma-separated, or 'all': {', '.join(LEVERS)}")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "digits"])
    p.add_argument("--data-root", default=None, help="folder holding MNIST/raw or FashionMNIST/raw")
    p.add_argument("--evaluator", type=Path, help="evaluator folder (trained there first if it holds none)")
    p.add_argument("--epochs", type=int, default=15, help="training epochs of every lever (the recipe's 15)")
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


def recipe(dataset: str, epochs: int) -> list[str]:
    """The baseline every lever adds to: ``ganaug train`` with the library defaults at ``epochs``."""
    return ["ganaug", "train", "--dataset", dataset, "--epochs", str(epochs)]


def lever_command(name: str, args: argparse.Namespace) -> list[str]:
    """The exact, portable ``ganaug train`` command of a lever (what results.json and report.md show)."""
    extra = [a.replace("{evaluator}", str(args.evaluator)) for a in LEVERS[name]]
    return recipe(args.dataset, args.epochs) + (["--data-root", str(args.data_root)] if args.data_root else []) + extra


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
        row["selected"] = summary.get("selected")
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

    from ganaug.cas import CASData, real_ceiling
    from ganaug.data import load_source

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
    lines = [
        "# Coverage levers (issue 11)",
        "",
        (
            f"Dataset {s.get('dataset')}, {s.get('epochs')} epochs a lever, device {s.get('device')}, "
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
    from ganaug.machine import describe

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
