"""``python -m benchmarks.downstream`` (from the checkout's root) and ``python benchmarks/downstream``."""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a folder: make the checkout's root importable, then import as a package
    # Python put this folder first on sys.path: its modules (cli, grid, report, ...) would hide any top-level
    # module of the same name that a library imports. The package's own modules are imported relatively.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.insert(0, str(here.parents[1]))
    __package__ = "benchmarks.downstream"

from ganaug.errors import GanaugError, InputError

from .cli import main

try:
    main()
except GanaugError as e:  # one line; bad input exits 2, other failures 1, as the ganaug CLI does
    print(f"Error: {e}", file=sys.stderr)
    sys.exit(2 if isinstance(e, InputError) else 1)
