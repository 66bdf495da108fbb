"""Issue 11's post-training levers: what a finished run's generator scores when sampled differently.

No retraining: each variant is the run's EMA generator with one change, exported to ONNX and scored by
``ganaug evaluate`` (recall, precision, Fréchet distance, class fidelity; ``--cas`` adds CAS).

- ``as-saved``: the generator as the run exports it (the reference row).
- ``standing-stats``: its BatchNorm statistics recomputed from ``--standing-batches`` fresh batches of
  ``G(z, y)`` in training mode (BigGAN's "standing statistics"), instead of the EMA of the running
  statistics kept during training.
- ``raw-g`` / ``raw-g+standing-stats``: the last training generator (no EMA), as saved / with standing stats.
- ``temperature-T``: latents drawn from N(0, T^2) instead of N(0, 1) (T > 1 explores; T < 1 truncates),
  folded into the first layer's weights so the exported file keeps ganaug's N(0, 1) contract.

    python -m benchmarks.posthoc_levers RUN --evaluator EV --data-root ../shared/data \\
        --variants as-saved,standing-stats,raw-g,raw-g+standing-stats,temperature-1.15,temperature-1.3 \\
        --work-dir runs/posthoc --out-dir runs/benchmarks/posthoc

Writes ``results.json`` (every number, the commands, the machine) and ``report.md`` under ``--out-dir``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from benchmarks.coverage import ROOT

VARIANTS = ("as-saved", "standing-stats", "raw-g", "raw-g+standing-stats")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="run folder written by `ganaug train`")
    p.add_argument("--evaluator", type=Path, required=True)
    p.add_argument("--data-root", required=True)
    p.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma-separated: {', '.join(VARIANTS)}, temperature-T"
    )
    p.add_argument("--standing-batches", type=int, default=200, help="batches of 500 for standing statistics")
    p.add_argument("--per-class", type=int, default=1000, help="evaluate --per-class")
    p.add_argument("--cas", action="store_true", help="also the CAS of every variant (minutes each on a CPU)")
    p.add_argument("--cas-cache", type=Path, default=None, help="cached CAS scores [default: WORK_DIR/cas]")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work-dir", type=Path, default=Path("runs") / "posthoc")
    p.add_argument("--out-dir", type=Path, default=Path("runs") / "benchmarks" / "coverage_posthoc")
    args = p.parse_args(argv)
    args.names = [n.strip() for n in args.variants.split(",") if n.strip()]
    for name in args.names:
        if name not in VARIANTS and not _temperature(name):
            p.error(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)} or temperature-T (T > 0)")
    return args


def _temperature(name: str) -> float | None:
    prefix = "temperature-"
    try:
        t = float(name[len(prefix) :]) if name.startswith(prefix) else None
    except ValueError:
        return None
    return t if t is not None and t > 0 else None


def standing_stats(generator: torch.nn.Module, batches: int, *, seed: int = 0, batch: int = 500) -> torch.nn.Module:
    """A copy of ``generator`` whose BatchNorm statistics are the average over ``batches`` batches of
    ``G(z, y)`` (z ~ N(0, 1), y uniform) in training mode; in eval mode."""
    g = copy.deepcopy(generator)
    for m in g.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches
    rng = torch.Generator().manual_seed(seed)
    g.train()
    with torch.no_grad():
        for _ in range(batches):
            z = torch.randn(batch, g.config.z_dim, generator=rng)
            g(z, torch.randint(0, g.config.num_classes, (batch,), generator=rng))
    return g.eval()


def variant(name: str, run: Path, batches: int) -> torch.nn.Module:
    """The generator of one variant (see the module docstring)."""
    from ganaug.train.checkpoint import load_generator

    g, _ = load_generator(run, ema=not name.startswith("raw-g"))
    if name.endswith("standing-stats"):
        g = standing_stats(g, batches)
    if (t := _temperature(name)) is not None:
        with torch.no_grad():
            g.project[0].weight[:, : g.config.z_dim] *= t  # G(t * z) with z ~ N(0, 1)
    return g


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Score every variant; a ganaug error (bad input, a full disk, a folder of someone's files) exits with one
    line, and nothing partial is left (:func:`ganaug.train.export.export_generator`'s contract)."""
    from ganaug.errors import GanaugError

    args = parse_args(argv)
    try:
        return _score_variants(args)
    except GanaugError as e:
        sys.exit(f"error: {e}")


def _score_variants(args: argparse.Namespace) -> list[dict[str, Any]]:
    from benchmarks.coverage import figures
    from ganaug.downstream.machine import describe
    from ganaug.train.checkpoint import load_generator
    from ganaug.train.export import export_generator

    torch.set_num_threads(args.threads)
    work, out = args.work_dir.resolve(), args.out_dir
    _refuse_others(work, {f"{n}{ext}" for n in args.names for ext in (".onnx", ".eval.json")} | {"cas"})
    _refuse_others(out, {"results.json", "report.md", "README.md"})
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    classes = load_generator(args.run)[1]["classes"]
    rows: list[dict[str, Any]] = []
    for name in args.names:
        onnx_file, eval_json = work / f"{name}.onnx", work / f"{name}.eval.json"
        export_generator(variant(name, args.run, args.standing_batches), onnx_file, classes=classes, overwrite=True)
        cmd = [sys.executable, "-m", "ganaug", "evaluate", str(onnx_file), "--evaluator", str(args.evaluator)]
        cmd += [
            "--data-root",
            args.data_root,
            "--per-class",
            str(args.per_class),
            "--threads",
            str(args.threads),
            "--json",
            str(eval_json),
        ]
        cmd += ["--cas", "--cas-cache", str(args.cas_cache or work / "cas")] if args.cas else []
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, cwd=ROOT)
        doc = json.loads(eval_json.read_text())
        if not args.cas:
            doc["cas"] = {"score": {"accuracy": None}, "ceiling": {"accuracy": None}, "gap_pp": None}
        rows.append({"variant": name, "command": " ".join(cmd[1:]), **figures(doc)})
        print(_line(rows[-1]), flush=True)
    meta = {"run": str(args.run), "evaluator": str(args.evaluator), "machine": describe(), "rows": rows}
    (out / "results.json").write_text(json.dumps(meta, indent=2) + "\n")
    head = "| variant | recall | precision | FD | FD / floor | class fidelity | CAS | CAS gap pp |\n|---|---|---|---|---|---|---|---|\n"
    (out / "report.md").write_text(head + "".join(_line(r) + "\n" for r in rows))
    return rows


def _refuse_others(folder: Path, ours: set[str]) -> None:
    """Raise :class:`InputError` when ``folder`` is a file or holds a name this script does not write, so nothing
    of the user's is replaced ('.', '..', a run folder, someone's notes)."""
    from ganaug.errors import InputError

    if not folder.exists():
        return
    others = [folder.name] if not folder.is_dir() else sorted(p.name for p in folder.iterdir() if p.name not in ours)
    if others:
        raise InputError(
            f"{folder} holds files this script did not write ({', '.join(others[:5])}); choose an empty folder"
        )


def _line(r: dict[str, Any]) -> str:
    cas = "" if r["cas"] is None else f"{100 * r['cas']:.2f}%"
    gap = "" if r["cas_gap_pp"] is None else f"{r['cas_gap_pp']:.2f}"
    return (
        f"| {r['variant']} | {r['recall']:.3f} | {r['precision']:.3f} | {r['fd']:.2f} | {r['fd'] / r['fd_floor'] if r['fd_floor'] else float('nan'):.2f} "
        f"| {r['fidelity']:.4f} | {cas} | {gap} |"
    )


if __name__ == "__main__":
    main()
