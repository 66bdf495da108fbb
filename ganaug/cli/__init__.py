"""The ``ganaug`` command line: a thin layer over the library.

Bad input exits 2 with one line saying what to do (``click.UsageError`` and the library's
:class:`~ganaug.errors.InputError`); other failures exit 1. Each command lives in its own module here
and registers itself on :data:`main`.
"""

from __future__ import annotations

import click

from ganaug import __version__
from ganaug.cli._common import GanaugGroup


@click.group(cls=GanaugGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ganaug")
def main() -> None:
    """Synthetic data augmentation with class-conditional DCGANs."""
    from ganaug.threads import prepare_environment

    prepare_environment()  # before any command imports torch: idle OpenMP threads sleep instead of spinning


from ganaug.cli import bench as _bench  # noqa: F401
from ganaug.cli import evaluate as _evaluate  # noqa: F401
from ganaug.cli import generate as _generate  # noqa: F401
from ganaug.cli import train as _train  # noqa: F401  (registers its commands)
