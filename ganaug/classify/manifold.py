"""The real manifold in an evaluator's features (``ganaug evaluator train --manifold-per-class N``): per class, a
union of balls around real training images (Kynkäänniemi et al., 2019), saved beside the evaluator's weights and
bound to them. A label check (:class:`ganaug.sample.resample.LabelCheck`) built from an evaluator folder that holds
one also asks that an image lie on its class's manifold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ganaug.errors import InputError

if TYPE_CHECKING:
    import torch

    from ganaug.classify.evaluator import Evaluator


#: File of a check folder holding its :class:`Manifold` (``ganaug evaluator train --manifold-per-class N``).
MANIFOLD = "manifold.safetensors"


def is_manifold(path: str | Path) -> bool:
    """Whether ``path`` is a file :meth:`Manifold.save` wrote (a safetensors file bound to check weights)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return "weights_sha256" in (f.metadata() or {}) and {"features", "labels", "radii"} <= set(f.keys())
    except (SafetensorError, OSError):
        return False


@dataclass(frozen=True)
class Manifold:
    """Real training images as the check sees them: per class, a union of balls in the check's feature space,
    one around each image reaching its ``k``-th nearest neighbour among that class's images (the real manifold
    of Kynkäänniemi et al., 2019). An image lies on it when its *realism* (the largest radius / distance over
    its class's balls) is at least 1, that is, inside one of them.

    Attributes:
        features: float32 [M, D], the check's penultimate features of M real images.
        labels: int64 [M], their classes.
        radii: float32 [M], each ball's radius.
    """

    features: torch.Tensor
    labels: torch.Tensor
    radii: torch.Tensor

    @classmethod
    def build(cls, evaluator: Evaluator, images: torch.Tensor, labels: torch.Tensor, *, k: int = 3) -> Manifold:
        """From real images float [M, 1, 28, 28] in [-1, 1] and labels int64 [M] (more than ``k`` per class)."""
        import torch

        f = evaluator.features(images)
        y = torch.as_tensor(labels, dtype=torch.int64)
        radii = torch.zeros(len(y))
        for c in y.unique():
            rows = (y == c).nonzero().flatten()
            if len(rows) <= k:
                raise InputError(
                    f"the manifold needs more than k={k} images of every class, class {int(c)} has {len(rows)}"
                )
            d = torch.cdist(f[rows], f[rows])
            radii[rows] = d.topk(k + 1, dim=1, largest=False).values[:, k]  # the k-th neighbour besides itself
        return cls(f.contiguous(), y, radii)

    def realism(self, features: torch.Tensor, labels: np.ndarray) -> np.ndarray:
        """float64 [N]: for each feature row float [N, D], max over its label's balls of radius / distance."""
        import torch

        out = np.zeros(len(labels))
        for c in np.unique(labels):
            rows, mine = np.flatnonzero(labels == c), self.labels == int(c)
            d = torch.cdist(features[torch.from_numpy(rows)].float(), self.features[mine]).double()
            out[rows] = (self.radii[mine].double()[None, :] / d.clamp_min(1e-12)).amax(dim=1).numpy()
        return out

    def sha256(self) -> str:
        """Hex sha256 of the tensors' bytes (identity for manifests and caches)."""
        import hashlib

        digest = hashlib.sha256()
        for t in (self.features, self.labels, self.radii):
            digest.update(t.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def save(self, path: str | Path, *, weights_sha256: str) -> Path:
        """Write ``path`` (a safetensors file), bound to the check weights with sha256 ``weights_sha256``."""
        from safetensors.torch import save

        from ganaug.outputs import write_bytes_whole

        path = Path(path)
        tensors = {"features": self.features, "labels": self.labels, "radii": self.radii}
        write_bytes_whole(path, save(tensors, metadata={"weights_sha256": weights_sha256}))
        return path

    @classmethod
    def load(cls, path: str | Path, *, weights_sha256: str) -> Manifold:
        """Read a file :meth:`save` wrote for the weights with sha256 ``weights_sha256``.

        Raises:
            InputError: unreadable, or written for other weights (the evaluator was retrained since).
        """
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        redo = f"rebuild it with `ganaug evaluator train ... --manifold-per-class N --out {path.parent} --overwrite`"
        try:
            with safe_open(str(path), framework="pt") as f:
                bound = (f.metadata() or {}).get("weights_sha256")
                tensors = {k: f.get_tensor(k) for k in ("features", "labels", "radii")}
        except (SafetensorError, OSError, KeyError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise InputError(f"{path} is not a readable manifold ({reason}); {redo}") from None
        if bound != weights_sha256:
            raise InputError(f"{path} was built for other weights than {path.parent}'s (retrained since?); {redo}")
        f, y, r = tensors["features"], tensors["labels"], tensors["radii"]
        if f.dim() != 2 or y.shape != (len(f),) or r.shape != (len(f),):
            raise InputError(f"{path} holds tensors of mismatched shapes; {redo}")
        # Copies, not views of the mapped file: replacing or truncating the file later must not touch them.
        return cls(f.float().clone(), y.long().clone(), r.float().clone())


def manifold_images(
    dataset: str, *, root: str | Path | None, per_class: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` images per class of ``dataset``'s training split (a stratified, seeded subset, see
    :func:`ganaug.data.sources.stratified_subset`) for :meth:`Manifold.build`: float [M, 1, 28, 28] in [-1, 1] and
    int64 [M].

    Raises:
        InputError: missing files, or a class with fewer than ``per_class`` images.
    """
    import torch

    from ganaug.data.sources import load_source, stratified_subset, to_model_range

    src = load_source(dataset, root=root, split="train")
    smallest = int(src.labels.bincount().min())
    if per_class > smallest:
        raise InputError(
            f"--manifold-per-class {per_class} is larger than the smallest class of {dataset}'s training split "
            f"({smallest} images); choose --manifold-per-class <= {smallest}"
        )
    idx = torch.from_numpy(stratified_subset(src.labels.numpy(), per_class, seed=seed))
    return to_model_range(src.images[idx]), src.labels[idx]
