"""``ganaug bench downstream``: a thin wrapper over ``benchmarks/downstream.py`` of a ganaug checkout."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import click

from ganaug.cli import main
from ganaug.errors import InputError


def _load_benchmark(name: str):
    candidates = [
        Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py",
        Path.cwd() / "benchmarks" / f"{name}.py",
    ]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise InputError(
            f"benchmarks/{name}.py not found; run from a ganaug source checkout (git clone) where it lives"
        )
    spec = importlib.util.spec_from_file_location(f"ganaug_benchmark_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@main.group()
def bench() -> None:
    """Benchmarks (they live in the source checkout's benchmarks/ folder)."""


@bench.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def downstream(args: tuple[str, ...]) -> None:
    """Downstream accuracy with and without generated data (honest protocol); `--help` lists the options.

    Same options as `python benchmarks/downstream.py`, e.g. `ganaug bench downstream --profile smoke`.
    """
    _load_benchmark("downstream").main(list(args))
