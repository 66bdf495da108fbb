"""The full sampling chain (``--temperature T`` + a label check + ``--unflatten K``) now and in an earlier
version of ganaug, side by side: images/s and whether the images are identical.

Each (version, check) pair runs in a fresh process of its own (the earlier version imported from ``--baseline``,
a checkout of it, e.g. ``git worktree add /tmp/before REV``), in interleaved repeats so that a drift in the
machine's speed hits all alike; each process builds the generator, the check and the unflattening, warms up on 64
images, then times ``OnnxGenerator.generate`` of ``--images`` images (latent seed 0) and saves them; the last
repeat also profiles it (``OUT.profile-VERSION-CHECK.txt``, cProfile's top 12 by own time; the profile's overhead is
in that repeat's time). The report gives each pair's median images/s, the speed-up of now over before and whether
every image is bit-for-bit the same.

    python -m benchmarks.chain_speed RUN --check RUN/label_check.onnx --check EVALUATOR --baseline /tmp/before \\
        --data-root DATA --temperature 1.15 --unflatten 8 --images 2048 --repeats 3 --threads 2 --out OUT

Writes ``OUT.json`` and ``OUT.md`` (with the machine; :mod:`benchmarks.result_pair`) and the profiles as
``OUT.profile-VERSION-CHECK.txt``, never into the source tree by default.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
KIND = "ganaug chain_speed"


def child(args: argparse.Namespace) -> None:
    """One timed chain in this process (whichever ``ganaug`` PYTHONPATH gives): prints ``{"seconds": s}``."""
    import numpy as np
    import torch

    from ganaug.sample.resample import LabelCheck, Sampling
    from ganaug.sample.runtime import OnnxGenerator
    from ganaug.sample.unflatten import Unflatten

    torch.set_num_threads(args.threads)
    gen = OnnxGenerator(args.run, provider="cpu", threads=args.threads)
    check = LabelCheck.load(args.check)
    if check.evaluator is None:  # a run's label_check.onnx: its session gets the same threads
        check.classifier.threads = args.threads
    unflatten = Unflatten.for_run(args.run, candidates=args.unflatten, data_root=args.data_root)
    sampling = Sampling(args.temperature, check, unflatten)
    labels = gen.labels(-(-args.images // gen.num_classes))[: args.images]
    gen.generate(labels[:64], seed=1, dtype="float", sampling=sampling)  # sessions and caches warm
    profile = cProfile.Profile() if args.profile else None
    t0 = time.perf_counter()
    if profile is not None:
        profile.enable()
    images = gen.generate(labels, seed=0, dtype="float", sampling=sampling)
    seconds = time.perf_counter() - t0
    if profile is not None:
        profile.disable()
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(12)
        args.profile.write_text(f"{args.images} images in {seconds:.2f} s\n" + text.getvalue())
    np.save(args.save, images)
    print(json.dumps({"seconds": seconds}))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a run folder trained with flatten_density (the mnist preset)")
    p.add_argument("--check", type=Path, action="append", required=True, help="a label check (repeat for more)")
    p.add_argument("--baseline", type=Path, required=True, help="a checkout of the earlier ganaug to compare with")
    p.add_argument("--data-root", type=Path, default=None, help="where the run's training data is now")
    p.add_argument("--temperature", type=float, default=1.15)
    p.add_argument("--unflatten", type=int, default=8)
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("runs/benchmarks/chain_speed"), help="file stem: OUT.json, OUT.md")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--save", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--profile", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        args.check = args.check[0]
        child(args)
        return {}
    if not (args.baseline / "ganaug" / "__init__.py").is_file():
        p.error(f"--baseline {args.baseline} is not a ganaug checkout (no ganaug/__init__.py)")
    from benchmarks import result_pair

    result_pair.check_out(p, args.out, kind=KIND, example="chain_speed", create=True)
    versions = {"before": args.baseline.resolve(), "now": REPO}
    profiles = {  # the last repeat's cProfile of each pair, beside OUT.json
        (check.name, version): args.out.parent / f"{args.out.name}.profile-{version}-{check.name}.txt"
        for check in args.check
        for version in versions
    }
    ours = result_pair.written_by(args.out.with_suffix(".json"), KIND)
    for path in profiles.values():
        if (path.exists() or path.is_symlink()) and not ours:
            p.error(f"{path} exists and was not written by this benchmark; choose another --out")

    import numpy as np

    from ganaug.downstream.machine import describe

    seconds: dict[tuple[str, str], list[float]] = {}
    rows = []
    with tempfile.TemporaryDirectory(prefix="chain_speed-") as scratch:  # the images compared (MBs), not kept
        for r in range(args.repeats):
            for check in args.check:
                for version, root in versions.items():
                    save = Path(scratch) / f"{version}-{check.name}.npy"
                    command = [sys.executable, str(HERE), str(args.run), "--check", str(check)]
                    command += ["--baseline", str(root), "--temperature", str(args.temperature)]
                    command += [] if args.data_root is None else ["--data-root", str(args.data_root)]
                    command += ["--unflatten", str(args.unflatten), "--images", str(args.images)]
                    command += ["--threads", str(args.threads), "--child", "--save", str(save)]
                    if r == args.repeats - 1:  # the last repeat also says where the time goes (cProfile, top 12)
                        command += ["--profile", str(profiles[(check.name, version)])]
                    env = {**os.environ, "PYTHONPATH": str(root)}
                    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
                    if done.returncode:
                        raise SystemExit(f"error: the {version} chain failed:\n{done.stderr[-2000:]}")
                    s = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
                    seconds.setdefault((check.name, version), []).append(s)
                    print(f"repeat {r + 1}: {check.name} {version}: {args.images / s:,.0f} images/s", flush=True)
        for check in args.check:
            before, now = (statistics.median(seconds[(check.name, v)]) for v in versions)
            a, b = (np.load(Path(scratch) / f"{v}-{check.name}.npy") for v in versions)
            differing = int((a != b).reshape(len(a), -1).any(axis=1).sum())
            rows.append(
                {
                    "check": str(check),
                    "before_images_per_second": args.images / before,
                    "now_images_per_second": args.images / now,
                    "speedup": before / now,
                    "identical": differing == 0,
                    "differing_images": differing,
                    "seconds": {v: seconds[(check.name, v)] for v in versions},
                }
            )
    result = {
        "kind": KIND,
        "command": "python -m benchmarks.chain_speed " + " ".join(sys.argv[1:] if argv is None else argv),
        "images": args.images,
        "repeats": args.repeats,
        "threads": args.threads,
        "chain": {"temperature": args.temperature, "unflatten": args.unflatten},
        "rows": rows,
        "machine": describe(),
    }
    lines = [
        "| check | before (images/s) | now (images/s) | speed-up | images |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        same = "identical" if row["identical"] else f"{row['differing_images']} of {args.images} differ"
        lines.append(
            f"| {row['check']} | {row['before_images_per_second']:,.0f} | {row['now_images_per_second']:,.0f} | "
            f"{row['speedup']:.2f}x | {same} |"
        )
    machine = result["machine"]
    note = "OUT.profile-*.txt: where the last repeat's time went (cProfile, by own time)."
    lines += [
        "",
        f"Machine: {machine.get('cpu', '?')}; {args.threads} threads; medians of {args.repeats} repeats; {note}",
    ]
    result_pair.write(args.out, result, "\n".join(lines) + "\n")
    return result


if __name__ == "__main__":
    main()
