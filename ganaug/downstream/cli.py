"""``ganaug bench downstream``: the downstream benchmark's command line."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Any

from ganaug.config import DATASETS
from ganaug.errors import InputError

from .profiles import (
    CONDITIONS,
    IMAGEFOLDER_BASE,
    PROFILES,
    Profile,
    augment_names,
    for_dataset,
    resolve_profile,
    with_augment,
)

PROG = "ganaug bench downstream"
DESCRIPTION = (
    "Does generated data make a classifier better? Per budget of real images per class and per seed: a GAN "
    "trained on that subset only, then one small CNN trained for fixed steps on (a) the real subset, (b) + "
    "generated images, (c) + classical augmentation, (d) both; tested once on the test split. Writes report.md "
    "(mean accuracies and the paired differences with 95% CIs), results.json and figures."
)
EPILOG = (
    "Your own images: --dataset imagefolder --data-root DIR --augment affine|shift-flip|none, DIR holding "
    "train/<class>/<images> and test/<class>/<images> (the cpu profile's settings unless --profile says "
    "otherwise)."
)
RESULTS = Path("runs") / "benchmarks" / "downstream"  # the default --out is RESULTS/<name>
AUGMENT_HELP = (
    "affine (small rotations, shifts and scaling: digits, characters), shift-flip (2-pixel shifts and horizontal "
    "flips: clothes, objects whose mirror image is the same class) or none (no (c), no (d))"
)


def build_parser(prog: str = PROG, profiles: dict[str, Profile] | None = None) -> argparse.ArgumentParser:
    """The options every run of the benchmark takes (the source checkout's lab adds its own to it)."""
    profiles = PROFILES if profiles is None else profiles
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument(
        "--profile",
        choices=list(profiles),
        default=None,
        help=f"what fixes the numbers  [default: smoke; {IMAGEFOLDER_BASE} with --dataset imagefolder]",
    )
    parser.add_argument(
        "--dataset", choices=list(DATASETS), default=None, help="run the profile on this dataset  [default: its own]"
    )
    parser.add_argument(
        "--data-root",
        default=None,
        help="folder holding MNIST/raw or FashionMNIST/raw, or the image folder (not needed for digits)",
    )
    parser.add_argument(
        "--augment",
        choices=list(augment_names()),
        default=None,
        help=f"the classical augmentation of (c), (d) and the small GANs' real images: {AUGMENT_HELP}  "
        "[default: the profile's; required with --dataset imagefolder]",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="results folder name under runs/benchmarks/downstream  [default: the profile's, then an image "
        "folder's name]",
    )
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
        "--pool",
        action="store_true",
        help="the pool protocol: the rest of the training split unlabelled; conditions c, d, p (self-training) and "
        "q (p + a GAN trained on the pseudo-labelled pool); writes pool.md instead of report.md",
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
    return parser


def resolve(args: argparse.Namespace, profiles: dict[str, Profile] | None = None) -> tuple[Profile, tuple[int, int]]:
    """The profile the options ask for (``--profile``, then ``--dataset``, ``--augment`` and the overrides) and
    the shard, checked: a bad value is one :class:`~ganaug.errors.InputError` line before any work."""
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
    name = args.profile or (IMAGEFOLDER_BASE if args.dataset == "imagefolder" else "smoke")
    p = resolve_profile(name, profiles=profiles)
    if args.dataset is not None:
        p = for_dataset(p, args.dataset)
    if args.augment is not None:
        p = with_augment(p, args.augment)
    elif p.dataset == "imagefolder":
        raise InputError(
            "--dataset imagefolder needs --augment, the classical augmentation that (c) and (d) add and the small "
            f"GANs train with: {AUGMENT_HELP}"
        )
    return dataclasses.replace(p, **overrides), shard


def check_inputs(args: argparse.Namespace, p: Profile) -> None:
    """Refuse, before any training, a profile the pool protocol cannot run, an image folder the benchmark cannot
    use (:mod:`.folders`), an ``--evaluator`` that is not an evaluator folder and a ``--full-gan`` that is not a
    finished whole-split run."""
    if args.pool:
        from .pool import check_pool

        check_pool(p)
    if p.dataset == "imagefolder":
        from .folders import check_image_folder

        check_image_folder(args.data_root, p.budgets)
    if args.evaluator is not None:
        if not Path(args.evaluator).is_dir():
            raise InputError(f"--evaluator {args.evaluator}: no such folder; give one `ganaug evaluator train` wrote")
        from ganaug.classify.evaluator import load_evaluator

        load_evaluator(args.evaluator)  # its own one-line InputError for a folder that is not an evaluator
    if args.full_gan is not None:
        from .grid import check_full_gan

        check_full_gan(args.full_gan, p)


def default_name(args: argparse.Namespace, p: Profile) -> str:
    """The results folder's name when ``--name`` is not given: the profile's, and an image folder's name."""
    if p.dataset == "imagefolder" and args.data_root:
        return f"{p.name}-{Path(args.data_root).resolve().name}"
    return p.name


def settings(args: argparse.Namespace, argv: list[str] | None, name: str, prog: str) -> dict[str, Any]:
    """The keyword arguments every driver (:func:`.grid.run`, :func:`.pool.run_pool`) takes."""
    cache = args.cache or Path("runs") / "downstream" / name
    out = args.out or RESULTS / name
    command = f"{prog} " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    return {
        "data_root": args.data_root,
        "cache": cache,
        "out": out,
        "device": args.device,
        "evaluator": args.evaluator,
        "report_only": args.report_only,
        "command": command.strip(),
        "log": lambda m: print(m, file=sys.stderr, flush=True),
    }


def main(argv: list[str] | None = None, prog: str = PROG) -> dict[str, Any]:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the benchmark and return its results.

    Bad options exit 2 (argparse); bad input found later raises :class:`~ganaug.errors.InputError`, always
    before any training.
    """
    from ganaug.threads import configure_torch

    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads {args.threads}: give 1 or more")
    configure_torch(args.threads)
    p, shard = resolve(args)
    check_inputs(args, p)
    name = args.name or default_name(args, p) + ("-pool" if args.pool else "")
    common = settings(args, argv, name, prog)
    return dispatch(args, p, shard, common)


def dispatch(args: argparse.Namespace, p: Profile, shard: tuple[int, int], common: dict[str, Any]) -> dict[str, Any]:
    """Run the protocol the options ask for (the grid, or ``--pool``) and say where its report is."""
    out = common["out"]
    if args.pool:
        doc = run_pool(p, shard=shard, **common)
        if shard[1] == 1:
            print(f"wrote {out}/pool.md ({len(doc['raw_cells'])} classifier runs)")
        return doc
    results = run(p, full_gan=args.full_gan, shard=shard, **common)
    if shard[1] == 1:
        print(f"wrote {out}/report.md ({results['cells']} classifier runs)")
    return results


def run(*args, **kwargs):
    """:func:`.grid.run` (imported when called: ``--help`` and refused options load no torch)."""
    from .grid import run as grid_run

    return grid_run(*args, **kwargs)


def run_pool(*args, **kwargs):
    """:func:`.pool.run_pool` (imported when called)."""
    from .pool import run_pool as pool_run

    return pool_run(*args, **kwargs)


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
