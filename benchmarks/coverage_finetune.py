"""A quick lever screen: continue a trained run for a few epochs with one setting changed, then score it.

A full lever (:mod:`benchmarks.coverage`) costs the recipe's 27 minutes on 2 cores; this screen costs about 4
(3 epochs of MNIST) and says which way a training-time lever moves recall, precision, FD and fidelity from a
trained generator. Every variant, ``control`` included, starts from the same checkpoint (G, D, the EMA
generator, both optimizers) and draws the same batches and latents (the run's seed); only the variant's
settings (:data:`VARIANTS`, :class:`ganaug.config.TrainConfig` fields) differ. A screen, not a recipe: a
lever that wins here is then trained from scratch with :mod:`benchmarks.coverage`.

    python -m benchmarks.coverage_finetune RUN --evaluator EV --data-root ../shared/data --epochs 3 --threads 2 \\
        --variants control,density-3-clip-0.9,r1-100 --work-dir WORK --out-dir OUT

Each variant is trained in this process (one after another), exported to ONNX and scored by ``ganaug evaluate``
(without CAS). ``OUT/results.json`` (every number, the commands, the machine) and ``OUT/report.md`` are
rewritten after every variant; a variant already in results.json with the same settings is not rerun.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.coverage import _f, _run, check_out_dir, figures, write_results

#: Variant name -> the TrainConfig fields it changes on the trained run's config.
VARIANTS: dict[str, dict[str, Any]] = {
    "control": {},
    # rare styles drawn more often: d(x) ** a, d = distance to the 5th nearest same-class image
    "density-1": {"flatten_density": 1.0, "density_clip": 1.0},
    "density-2": {"flatten_density": 2.0, "density_clip": 1.0},
    "density-2-clip-0.9": {"flatten_density": 2.0, "density_clip": 0.9},
    "density-3-clip-0.9": {"flatten_density": 3.0, "density_clip": 0.9},
    # the R1 penalty's strength (the presets' gamma is 30)
    "r1-100": {"r1_gamma": 100.0},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a trained run folder (its checkpoint.pt is the starting point)")
    p.add_argument("--variants", default="control", help=f"comma-separated, or 'all': {', '.join(VARIANTS)}")
    p.add_argument("--evaluator", type=Path, required=True, help="evaluator folder (`ganaug evaluator train`)")
    p.add_argument("--data-root", required=True, help="folder holding the run's dataset (MNIST/raw, ...)")
    p.add_argument("--epochs", type=int, default=3, help="epochs each variant continues the run for")
    p.add_argument("--eval-per-class", type=int, default=None, help="evaluate --per-class [default: evaluate's]")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work-dir", type=Path, default=Path("runs") / "coverage_finetune")
    p.add_argument("--out-dir", type=Path, default=Path("runs") / "benchmarks" / "coverage_finetune")
    args = p.parse_args(argv)
    args.names = list(VARIANTS) if args.variants == "all" else [n.strip() for n in args.variants.split(",") if n]
    unknown = [n for n in args.names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)} or 'all'")
    if args.epochs < 1:
        p.error("--epochs must be >= 1")
    return args


def continue_run(run: Path, changes: dict[str, Any], *, epochs: int, data_root: str, out: Path) -> float:
    """Train ``epochs`` more epochs from ``run``'s checkpoint with ``changes`` to its config into ``out``
    (a new run folder, overwritten); returns the wall seconds (training and the ONNX export)."""
    from ganaug.config import TrainConfig
    from ganaug.train.checkpoint import load_checkpoint
    from ganaug.train.trainer import Trainer

    state = load_checkpoint(run)
    config = TrainConfig.from_dict(state["config"])
    config = dataclasses.replace(config, **changes, data_root=data_root, epochs=epochs, export_onnx=True)
    t0 = time.perf_counter()
    trainer = Trainer.new(config, out, overwrite=True, progress=False)
    trainer.gan.load_state_dict(state)  # the trained G, D, EMA and optimizers; the step count starts at 0
    trainer.fit()
    return time.perf_counter() - t0


def settings_key(name: str, args: argparse.Namespace) -> str:
    doc = {"run": str(args.run.resolve()), "changes": VARIANTS[name], "epochs": args.epochs}
    doc |= {"evaluator": str(args.evaluator), "data_root": str(args.data_root), "per_class": args.eval_per_class}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def report(results: dict[str, Any]) -> str:
    s = results["settings"]
    lines = [
        "# Coverage lever screen: a trained run continued with one setting changed",
        "",
        (
            f"From `{s['run']}`, {s['epochs']} more epochs a variant, {s['threads']} threads, one variant at a time; "
            "scored by `ganaug evaluate` (10,000 samples, seed 0), no CAS."
        ),
        "",
        "| variant | changes | recall | precision | FD | FD floor | FD/floor | fidelity | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in sorted(results["variants"], key=lambda n: list(VARIANTS).index(n) if n in VARIANTS else 99):
        r = results["variants"][name]
        if "error" in r:
            lines.append(f"| {name} | `{r['changes']}` | failed: {r['error']} |||||||")
            continue
        cells = [name, f"`{json.dumps(r['changes'])}`", _f(r["recall"], ".3f"), _f(r["precision"], ".3f")]
        cells += [
            _f(r["fd"], ".3f"),
            _f(r["fd_floor"], ".3f"),
            _f(r["fd"] / r["fd_floor"] if r["fd_floor"] else None, ".2f"),
        ]
        cells += [_f(r["fidelity"], ".4f"), _f(r["wall_seconds"], ".0f")]
        lines.append("| " + " | ".join(cells) + " |")
    if results.get("machine"):
        lines += ["", "Machine: `" + json.dumps(results["machine"]) + "`"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    from ganaug.downstream.machine import describe

    args = parse_args(argv)
    check_out_dir(args.out_dir)
    torch.set_num_threads(args.threads)
    path = args.out_dir / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {"variants": {}}
    results |= {"settings": {"run": str(args.run), "epochs": args.epochs, "threads": args.threads}}
    results["machine"] = describe()
    work = args.work_dir.resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    for name in args.names:
        key = settings_key(name, args)
        if results["variants"].get(name, {}).get("key") == key:
            print(f"{name}: cached", flush=True)
            continue
        out, eval_json = work / "runs" / name, work / "runs" / f"{name}.eval.json"
        row: dict[str, Any] = {"variant": name, "changes": VARIANTS[name], "key": key}
        try:
            row["wall_seconds"] = round(
                continue_run(args.run, VARIANTS[name], epochs=args.epochs, data_root=args.data_root, out=out), 1
            )
            evaluate = [sys.executable, "-m", "ganaug", "evaluate", str(out), "--evaluator", str(args.evaluator)]
            evaluate += ["--data-root", str(args.data_root), "--threads", str(args.threads), "--json", str(eval_json)]
            evaluate += ["--per-class", str(args.eval_per_class)] if args.eval_per_class else []
            row["command"] = " ".join(evaluate[2:])
            _run(evaluate, work / "logs" / f"{name}.log", args.threads)
            row |= figures(json.loads(eval_json.read_text()))
        except (RuntimeError, OSError, ValueError, KeyError) as e:
            row["error"] = f"{type(e).__name__}: {e}"[:300]
        results["variants"][name] = row
        write_results(args.out_dir, results, report)
        status = row.get("error") or f"recall {row['recall']:.3f}, precision {row['precision']:.3f}"
        print(f"{name}: {status}", flush=True)
    return results


if __name__ == "__main__":
    main()
