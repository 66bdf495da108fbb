"""``ganaug bench downstream``: the downstream benchmark (:mod:`ganaug.downstream`), installed with the package.

:func:`_load_benchmark` loads the other benchmarks of a source checkout (``benchmarks/<name>.py``): lab scripts
that are not installed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import click

from ganaug.cli._common import main
from ganaug.errors import InputError


def _load_benchmark(name: str):
    """The benchmark ``benchmarks/<name>.py`` or the package ``benchmarks/<name>/`` of a source checkout (the
    one holding this file, else the working folder's), imported as ``ganaug_benchmark_<name>``."""
    module_name = f"ganaug_benchmark_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        module, package = root / "benchmarks" / f"{name}.py", root / "benchmarks" / name / "__init__.py"
        if module.is_file():
            spec = importlib.util.spec_from_file_location(module_name, module)
            break
        if package.is_file():
            spec = importlib.util.spec_from_file_location(
                module_name, package, submodule_search_locations=[str(package.parent)]
            )
            break
    else:
        raise InputError(f"benchmarks/{name} not found; run from a ganaug source checkout (git clone) where it lives")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and the package's own modules look it up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


@main.group()
def bench() -> None:
    """Benchmarks: how much generated images help a classifier."""


@bench.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def downstream(args: tuple[str, ...]) -> None:
    """Downstream accuracy with and without generated data (honest protocol); `--help` lists the options.

    E.g. `ganaug bench downstream --profile smoke`, or on your own images
    `ganaug bench downstream --dataset imagefolder --data-root DIR --augment shift-flip`.
    """
    from ganaug.downstream.cli import main as run_benchmark

    run_benchmark(list(args))
