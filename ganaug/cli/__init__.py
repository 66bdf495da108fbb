"""The ``ganaug`` command line: a thin layer over the library.

Bad input exits 2 with one line saying what to do (``click.UsageError`` and the library's
:class:`~ganaug.errors.InputError`); other failures exit 1. Each command lives in its own module here
and registers itself on :data:`main`.
"""

from __future__ import annotations

# Each command module registers its commands on ``main`` when imported.
from ganaug.cli import bench as _bench  # noqa: F401
from ganaug.cli import evaluate as _evaluate  # noqa: F401
from ganaug.cli import generate as _generate  # noqa: F401
from ganaug.cli import train as _train  # noqa: F401  (registers its commands)
from ganaug.cli._common import main

__all__ = ["main"]
