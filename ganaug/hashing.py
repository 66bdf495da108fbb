"""sha256 of files: the identity ganaug records for what it read (a checkpoint in an ONNX file's metadata, an
evaluator's weights for a label check or a manifold, a generator file in a CAS cache key or a manifest) and how
it knows the official dataset files (:mod:`ganaug.data.fingerprints`)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
