"""The downstream benchmark's command line: ``python -m benchmarks.downstream`` and ``ganaug bench downstream``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from ganaug.errors import InputError
from ganaug.threads import configure_torch

from .grid import check_full_gan, run
from .pool import run_pool
from .probes import run_probes
from .profiles import CONDITIONS, PROBES, PROFILES, Profile, probe_profile, resolve_profile

DESCRIPTION = "Do generated digits make a classifier better? The honest downstream protocol."
RESULTS = Path("runs") / "benchmarks" / "downstream"  # the default --out is RESULTS/<name>


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the benchmark and return its results.

    Bad options exit 2 (argparse); bad input found later raises :class:`~ganaug.errors.InputError`.
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.downstream", description=DESCRIPTION)
    parser.add_argument("--profile", choices=list(PROFILES), default="smoke")
    parser.add_argument(
        "--name", default=None, help="results folder name under runs/benchmarks/downstream  [default: profile]"
    )
    parser.add_argument("--data-root", default=None, help="folder holding MNIST/raw (not needed for digits)")
    parser.add_argument("--cache", type=Path, default=None, help="cache folder  [default: runs/downstream/<name>]")
    parser.add_argument(
        "--out", type=Path, default=None, help="results folder  [default: runs/benchmarks/downstream/<name>]"
    )
    parser.add_argument("--seeds", type=int, default=None, help="override the profile's number of seeds")
    parser.add_argument("--budgets", default=None, help="override the budgets, e.g. 10,50 (0 = full set)")
    parser.add_argument(
        "--conditions", default=None, help=f"override the conditions, e.g. a,b (from {''.join(CONDITIONS)})"
    )
    parser.add_argument(
        "--sweep", default=None, help="override the synthetic amounts swept for (b), e.g. 100,2000 ('' for none)"
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--evaluator", default=None, help="evaluator folder: adds each GAN's class fidelity")
    parser.add_argument(
        "--full-gan", type=Path, default=None, help="reuse this run (trained on the whole split) for CAS"
    )
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from the cache; train nothing")
    parser.add_argument(
        "--filter",
        action="store_true",
        help="keep only generated images a classifier trained on the same real subset labels correctly",
    )
    parser.add_argument(
        "--probes",
        default=None,
        help=f"run these probes (comma-separated, or 'all': {', '.join(PROBES)}) as conditions a-d and "
        "write probes.md instead of report.md",
    )
    parser.add_argument(
        "--pool",
        action="store_true",
        help="the pool protocol: the rest of the training split unlabelled; conditions c, d, p (self-training) and "
        "q (p + a GAN trained on the pseudo-labelled pool); writes pool.md instead of report.md",
    )
    parser.add_argument(
        "--with",
        dest="with_probe",
        default=None,
        metavar="PROBE",
        help="apply one probe's lever to the profile (e.g. to run a winning probe at every seed and budget)",
    )
    parser.add_argument(
        "--shard",
        default="0/1",
        metavar="I/N",
        help="train only part I of N (0-based); run N processes on one cache, then once without --shard",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (1 avoids OpenMP stalls on a shared CPU)  [default: the idle CPUs]",
    )
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads {args.threads}: give 1 or more")
    configure_torch(args.threads)
    overrides: dict[str, Any] = {}
    if args.seeds is not None:
        if args.seeds < 1:
            raise InputError(f"--seeds {args.seeds}: give the number of seeds, 1 or more")
        overrides["seeds"] = args.seeds
    if args.filter:
        overrides["synthetic_filter"] = True
    if args.budgets is not None:
        overrides["budgets"] = _int_list(
            args.budgets, "--budgets", minimum=0, allow_empty=False, example="10,50 (0 = the full set)"
        )
    if args.conditions is not None:
        conditions = tuple(c.strip() for c in args.conditions.split(",") if c.strip())
        if not conditions or set(conditions) - set(CONDITIONS):
            raise InputError(f"--conditions {args.conditions!r}: give letters from {', '.join(CONDITIONS)}, e.g. a,b")
        overrides["conditions"] = conditions
    if args.sweep is not None:
        overrides["sweep"] = _int_list(
            args.sweep, "--sweep", minimum=1, allow_empty=True, example="100,2000 ('' for none)"
        )
    try:
        shard = tuple(int(v) for v in args.shard.split("/"))
        assert len(shard) == 2 and shard[1] >= 1
    except (ValueError, AssertionError):
        raise InputError(f"--shard {args.shard!r}: write it as I/N, e.g. 0/2 and 1/2 for two processes") from None
    p = resolve_profile(args.profile, overrides)
    if args.with_probe is not None:
        p = probe_profile(p, args.with_probe)
    _check_paths(args.evaluator, args.full_gan, p)
    if args.pool and args.probes is not None:
        raise InputError("--pool and --probes are separate tables; run them one at a time")
    probes = None
    if args.probes is not None:
        probes = list(PROBES) if args.probes == "all" else [n.strip() for n in args.probes.split(",") if n.strip()]
        for n in probes:
            probe_profile(p, n)  # unknown names fail here, before any work
    name = args.name or (
        p.name
        + ("-probes" if probes else "")
        + ("-pool" if args.pool else "")
        + (f"-{args.with_probe}" if args.with_probe else "")
    )
    cache = args.cache or Path("runs") / "downstream" / name
    out = args.out or RESULTS / name
    command = "python -m benchmarks.downstream " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    common = {
        "data_root": args.data_root,
        "cache": cache,
        "out": out,
        "device": args.device,
        "evaluator": args.evaluator,
        "report_only": args.report_only,
        "command": command,
        "log": lambda m: print(m, file=sys.stderr, flush=True),
    }
    if probes is not None:
        doc = run_probes(p, probes, **common)
        print(f"wrote {out}/probes.md ({len(doc['rows'])} rows)")
        return doc
    if args.pool:
        doc = run_pool(p, shard=shard, **common)
        if shard[1] == 1:
            print(f"wrote {out}/pool.md ({len(doc['raw_cells'])} classifier runs)")
        return doc
    results = run(p, full_gan=args.full_gan, shard=shard, **common)
    if shard[1] == 1:
        print(f"wrote {out}/report.md ({results['cells']} classifier runs)")
    return results


def _int_list(value: str, option: str, *, minimum: int, allow_empty: bool, example: str) -> tuple[int, ...]:
    """``"10,50"`` -> ``(10, 50)``: comma-separated integers >= ``minimum``, or none at all if ``allow_empty``.

    Raises:
        InputError: anything else, in one line naming ``option`` and an ``example``.
    """
    parts = [v.strip() for v in value.split(",")]
    if parts == [""]:
        parts = []
    try:
        numbers = tuple(int(v) for v in parts)
    except ValueError:
        raise InputError(f"{option} {value!r}: give comma-separated whole numbers, e.g. {example}") from None
    if not numbers and not allow_empty:
        raise InputError(f"{option} {value!r}: give at least one, e.g. {example}")
    low = [n for n in numbers if n < minimum]
    if low:
        raise InputError(f"{option} {value!r}: {low[0]} is below {minimum}; give numbers >= {minimum}, e.g. {example}")
    return numbers


def _check_paths(evaluator: str | None, full_gan: Path | None, p: Profile) -> None:
    """Refuse, before any training, an ``--evaluator`` that is not an evaluator folder and a ``--full-gan`` that is
    not a finished whole-split run (:func:`.grid.check_full_gan`)."""
    if evaluator is not None:
        if not Path(evaluator).is_dir():
            raise InputError(f"--evaluator {evaluator}: no such folder; give one `ganaug evaluator train` wrote")
        from ganaug.evaluator import load_evaluator

        load_evaluator(evaluator)  # its own one-line InputError for a folder that is not an evaluator
    if full_gan is not None:
        check_full_gan(full_gan, p)
