"""``python -m benchmarks.downstream``: ``ganaug bench downstream`` (:mod:`ganaug.downstream.cli`) and the lab's
options, ``--probes`` and ``--with``."""

from __future__ import annotations

from typing import Any

from ganaug.downstream import cli as product
from ganaug.downstream.cli import run, run_pool  # looked up here when called: tests replace them
from ganaug.errors import InputError

from .probes import run_probes
from .profiles import PROBES, PROFILES, probe_profile

PROG = "python -m benchmarks.downstream"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the benchmark and return its results.

    Bad options exit 2 (argparse); bad input found later raises :class:`~ganaug.errors.InputError`.
    """
    from ganaug.threads import configure_torch

    parser = product.build_parser(PROG, PROFILES)
    parser.add_argument(
        "--probes",
        default=None,
        help=f"run these probes (comma-separated, or 'all': {', '.join(PROBES)}) as conditions a-d and "
        "write probes.md instead of report.md",
    )
    parser.add_argument(
        "--with",
        dest="with_probe",
        default=None,
        metavar="PROBE",
        help="apply one probe's lever to the profile (e.g. to run a winning probe at every seed and budget)",
    )
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads {args.threads}: give 1 or more")
    configure_torch(args.threads)
    p, shard = product.resolve(args, PROFILES)
    if args.with_probe is not None:
        p = probe_profile(p, args.with_probe)
    product.check_inputs(args, p)
    if args.pool and args.probes is not None:
        raise InputError("--pool and --probes are separate tables; run them one at a time")
    probes = None
    if args.probes is not None:
        probes = list(PROBES) if args.probes == "all" else [n.strip() for n in args.probes.split(",") if n.strip()]
        for n in probes:
            probe_profile(p, n)  # unknown names fail here, before any work
    name = args.name or (
        product.default_name(args, p)
        + ("-probes" if probes else "")
        + ("-pool" if args.pool else "")
        + (f"-{args.with_probe}" if args.with_probe else "")
    )
    common = product.settings(args, argv, name, PROG)
    if probes is not None:
        doc = run_probes(p, probes, **common)
        print(f"wrote {common['out']}/probes.md ({len(doc['rows'])} rows)")
        return doc
    if args.pool:
        doc = run_pool(p, shard=shard, **common)
        if shard[1] == 1:
            print(f"wrote {common['out']}/pool.md ({len(doc['raw_cells'])} classifier runs)")
        return doc
    results = run(p, full_gan=args.full_gan, shard=shard, **common)
    if shard[1] == 1:
        print(f"wrote {common['out']}/report.md ({results['cells']} classifier runs)")
    return results
