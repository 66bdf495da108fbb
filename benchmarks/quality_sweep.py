"""Class fidelity of training recipes: train several configs side by side, score their EMA generators.

Each named recipe is a set of ``TrainConfig`` overrides; every recipe trains in its own process (so
several share one GPU, or the CPU), stops at each epoch in ``--at`` (resuming is bitwise-equal to an
uninterrupted run), and its EMA generator is scored with an evaluator from ``ganaug evaluator train``:
class fidelity = share of ``--per-class`` samples per class that the evaluator assigns to the asked class.

    python benchmarks/quality_sweep.py --data-root ../shared/data --evaluator EVAL_DIR --out runs/sweep \\
        --recipe default= --recipe d32=model.d_width=32 --recipe big=batch_size=1024,_at=20/40 --at 5,10,20

A recipe's ``_at=A/B/C`` replaces ``--at`` for that recipe.

Writes ``<out>/sweep.json`` and ``<out>/sweep.md`` (fidelity per recipe and epoch, wall times).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from pathlib import Path


def parse_overrides(spec: str) -> dict:
    """``"batch_size=128,model.d_width=32"`` -> ``{"batch_size": 128, "model": {"d_width": 32}}``."""
    out: dict = {}
    for item in filter(None, spec.split(",")):
        key, value = item.split("=", 1)
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        target = out
        *parents, leaf = key.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = parsed
    return out


def fidelity(run_dir: Path, evaluator_dir: str, per_class: int) -> tuple[float, list[float]]:
    """Class fidelity (overall, per class) of the run's EMA generator: ``per_class`` samples a class, latent seed 12345."""
    from ganaug.classify.evaluator import load_evaluator
    from ganaug.data.labels import labels_from_counts
    from ganaug.eval.metrics import class_fidelity
    from ganaug.sample.generators import generate, open_generator

    generator = open_generator(run_dir, backend="pytorch")
    n_cls = len(generator.classes)
    labels = labels_from_counts([per_class] * n_cls)
    images = generate(generator, labels, seed=12345)
    fid = class_fidelity(load_evaluator(evaluator_dir).predict(images), labels, num_classes=n_cls)
    return fid.overall, fid.per_class


def run_recipe(name: str, overrides: dict, args: argparse.Namespace, queue) -> None:
    try:
        queue.put((name, train_and_score(name, overrides, args)))
    except Exception as e:  # report and let the other recipes finish
        queue.put((name, [{"error": f"{type(e).__name__}: {e}"}]))
        raise


def train_and_score(name: str, overrides: dict, args: argparse.Namespace) -> list[dict]:
    import torch

    from ganaug.config import TrainConfig
    from ganaug.train.trainer import Trainer

    torch.set_num_threads(args.threads)
    base = TrainConfig(dataset="mnist", data_root=str(args.data_root), export_onnx=False, device=args.device).to_dict()
    model = {**base["model"], **overrides.pop("model", {})}
    run_dir = Path(args.out) / name
    at = [int(a) for a in str(overrides.pop("_at")).split("/")] if "_at" in overrides else args.at
    rows = []
    for i, epochs in enumerate(at):
        cfg = TrainConfig.from_dict({**base, **overrides, "model": model, "epochs": epochs})
        t0 = time.perf_counter()
        trainer = (
            Trainer.new(cfg, run_dir, overwrite=True, progress=False)
            if i == 0
            else Trainer.resume(run_dir, epochs=epochs, progress=False)
        )
        result = trainer.fit()
        wall = time.perf_counter() - t0
        fid, per_class = fidelity(run_dir, args.evaluator, args.per_class)
        rows.append(
            {
                "epochs": epochs,
                "steps": result.steps,
                "train_seconds": round(result.train_seconds, 1),
                "segment_wall_seconds": round(wall, 1),
                "images_per_second": round(result.images_per_second, 1),
                "class_fidelity": fid,
                "per_class": per_class,
            }
        )
        print(f"{name} epoch {epochs}: fidelity {fid:.4f} ({result.train_seconds:.0f} s train)", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", required=True, type=Path)
    ap.add_argument("--evaluator", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--recipe", action="append", required=True, help="NAME=key=value,key=value (TrainConfig fields)")
    ap.add_argument("--at", default="5,10,20", help="epochs at which to score, ascending")
    ap.add_argument("--per-class", type=int, default=1000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per recipe process")
    args = ap.parse_args()
    args.at = [int(a) for a in args.at.split(",")]
    recipes = {}
    for r in args.recipe:
        name, _, spec = r.partition("=")
        recipes[name] = parse_overrides(spec)
    args.out.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=run_recipe, args=(n, dict(o), args, queue)) for n, o in recipes.items()]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = dict(queue.get() for _ in procs)
    for p in procs:
        p.join()
    from ganaug.downstream.machine import describe

    machine = describe()
    device = machine.get("gpu") if args.device != "cpu" else None
    report = {
        "machine": machine,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "recipes": {n: {"overrides": recipes[n], "results": results[n]} for n in recipes},
        "per_class": args.per_class,
    }
    (args.out / "sweep.json").write_text(json.dumps(report, indent=2))
    lines = [
        f"# Quality sweep on {device or machine['cpu']} ({len(recipes)} recipes side by side, {args.per_class} samples/class)",
        "",
        "| recipe | overrides | class fidelity at epochs | train s (last) | images/s (last) |",
        "|---|---|---|---|---|",
    ]
    for n, overrides in recipes.items():
        rows = results[n]
        if "error" in rows[0]:
            lines.append(f"| {n} | `{json.dumps(overrides)}` | failed: {rows[0]['error']} |")
            continue
        lines.append(
            f"| {n} | `{json.dumps(overrides)}` | "
            + ", ".join(f"{r['class_fidelity']:.4f} @{r['epochs']}" for r in rows)
            + f" | {rows[-1]['train_seconds']} | {rows[-1]['images_per_second']} |"
        )
    (args.out / "sweep.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
