"""A benchmark's two result files, ``OUT.json`` (every figure) and ``OUT.md`` (its table), from one ``--out`` stem.

Both are checked before the benchmark runs (a folder, a missing folder, or a file this benchmark did not write is
refused) and written whole or not at all (:func:`ganaug.outputs.write_text_whole`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def check_out(parser: argparse.ArgumentParser, out: Path, *, kind: str, example: str, create: bool = False) -> None:
    """Refuse (``parser.error``: one line, exit 2) an ``--out`` stem whose files cannot be written or are not
    this benchmark's (its JSON's ``kind`` must be ``kind``); ``example`` is a file stem to suggest. ``create``:
    make a missing folder for it (for a default under ``runs/``) instead of refusing it."""
    if out.name in ("", ".", "..") or out.is_dir():
        parser.error(f"--out {out} is a folder; give a file stem inside it, such as {out / example}")
    if out.suffix not in ("", ".json", ".md") and (out.exists() or out.is_symlink()):
        parser.error(f"--out {out} is an existing file; give a new file stem (OUT.json and OUT.md are written)")
    for path in (out.with_suffix(".json"), out.with_suffix(".md")):
        if path.exists() and not written_by(out.with_suffix(".json"), kind):
            parser.error(f"{path} exists and was not written by this benchmark; choose another --out")
    if not out.parent.is_dir():
        if not create:
            parser.error(f"--out: folder {out.parent} does not exist; create it first")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            parser.error(f"--out: cannot create folder {out.parent} ({e.strerror}); choose another --out")


def written_by(path: Path, kind: str) -> bool:
    """Whether ``path`` is a JSON report whose ``kind`` is ``kind`` (a file this benchmark wrote)."""
    try:
        return json.loads(path.read_text()).get("kind") == kind
    except (OSError, ValueError, AttributeError):
        return False


def write(out: Path, doc: dict[str, Any], markdown: str) -> None:
    """``OUT.json`` (``doc``) and ``OUT.md`` (``markdown``), each whole, then ``markdown`` on stdout; a full disk
    exits with one line."""
    from ganaug.errors import GanaugError
    from ganaug.outputs import write_text_whole

    try:
        write_text_whole(out.with_suffix(".json"), json.dumps(doc, indent=2) + "\n")
        write_text_whole(out.with_suffix(".md"), markdown)
    except GanaugError as e:
        raise SystemExit(f"error: {e}") from None
    print(markdown)
