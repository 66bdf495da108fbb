"""Which latent each generated image gets: a temperature, a label check that draws an image again when an
independent classifier disagrees with the label it was generated for, and a resampling that undoes a run's
``flatten_density``.

Sample ``i`` of seed ``s`` stays index-addressed. Round 0 gives it the latent ``T * latents(s, i, i + 1)`` (with
``T = 1`` and no check, exactly the plain sample). When the check rejects that image, round ``r`` (``1 <= r <
rounds``) tries ``T * latents(round_seed(s, r), i, i + 1)``; the first image the check accepts is sample ``i``. If
it accepts none, sample ``i`` is the round's image it gave the highest probability of its label (the earliest on
a tie). With :class:`ganaug.sample.unflatten.Unflatten` (``--unflatten K``, for runs trained with ``flatten_density``), sample ``i`` is
drawn that way ``K`` times, from seeds ``candidate_seed(s, j)``, and one candidate is kept by a uniform draw of
``(s, i)`` weighted towards the real data's density. So sample ``i`` depends only on (generator, seed, i, label,
temperature, check, unflattening), never on the batch size, the order, or which other samples were asked for (up
to float rounding across batch sizes, which could flip a verdict sitting exactly on a boundary).

The check (:class:`LabelCheck`) is one concept wherever it is used: ``ganaug generate`` / ``ganaug evaluate``
``--label-check`` and ``label_check=`` of :class:`ganaug.feed.dataset.GeneratedDataset`, :func:`ganaug.feed.mixing.augment`,
:func:`ganaug.feed.mixing.draw_synthetic` and :class:`ganaug.feed.batchmix.SyntheticMix` all draw sample ``i`` by this law.
It is a ganaug evaluator (``ganaug evaluator train``) trained on the generator's own training split, or any
classifier of your own with its input range; it must not be the evaluator that scores the samples (``ganaug
evaluate`` refuses the same weights), or the fidelity it reports would be the check's own verdict. A check
folder may also hold a :class:`~ganaug.classify.manifold.Manifold` (``--manifold-per-class N``): then an image must also lie on its
class's real manifold in the check's features.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ganaug.classify.manifold import MANIFOLD, Manifold
from ganaug.data.labels import check_same_classes
from ganaug.errors import InputError
from ganaug.sample.latents import derive_seed, latents

if TYPE_CHECKING:
    import torch

    from ganaug.classify.evaluator import Evaluator

#: A generator as sampling sees it: ``(z float32 [N, z_dim], labels int64 [N]) -> float32 [N, 1, H, W] in [-1, 1]``.
Run = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: ``round_seed(s, r)`` derives round r's latent seed with this purpose (see :func:`ganaug.sample.latents.derive_seed`).
_ROUND_PURPOSE = 0x7E5A


def round_seed(seed: int, r: int) -> int:
    """The latent seed of resampling round ``r`` (``seed`` itself for round 0)."""
    return seed if r == 0 else derive_seed(seed, _ROUND_PURPOSE, r)


def latent_rows(seed: int, indices: np.ndarray, z_dim: int) -> np.ndarray:
    """float32 [N, z_dim]: row k is ``latents(seed, indices[k], indices[k] + 1)`` (one call for a contiguous run)."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
        return latents(seed, int(idx[0]), int(idx[0]) + idx.size, z_dim)
    if idx.size == 0:
        return np.zeros((0, z_dim), np.float32)
    return np.concatenate([latents(seed, int(i), int(i) + 1, z_dim) for i in idx.tolist()])


@dataclass(frozen=True)
class LabelCheck:
    """A classifier that must agree with each generated image's label, or the image is drawn again.

    Every consumer applies it the same way (:class:`Sampling`; ``ganaug generate`` / ``ganaug evaluate``
    ``--label-check``, ``GeneratedDataset``, ``augment``, ``draw_synthetic`` and ``SyntheticMix`` ``label_check=``):
    an image is accepted when the argmax of the classifier's scores is its label (and, with a :class:`~ganaug.classify.manifold.Manifold`,
    it lies on that label's real manifold); a rejected image is drawn again from its own latent stream, up to
    ``rounds`` tries in all, else the try with the highest probability of its label is kept. See the module
    docstring for the law.

    Two ways to build one:

    - ``LabelCheck.load(folder, rounds=8)``: a ganaug evaluator folder (``ganaug evaluator train``), with its
      manifold if the folder holds one, or a run's ``label_check.onnx`` (:class:`OnnxCheck`); what the CLI's
      ``--label-check PATH`` loads.
    - ``LabelCheck(classifier, input_range=(0, 1), normalize=(0.1307, 0.3081), rounds=8)``: any classifier of
      your own, ``float32 [N, 1, H, W] -> scores [N, num_classes]`` (logits or any scores; the prediction is their
      argmax). It sees the generator's float output mapped from [-1, 1] to ``input_range``, then
      ``(x - mean) / std`` with ``normalize=(mean, std)``: ``input_range=(0, 1), normalize=(0.1307, 0.3081)`` for
      one trained on ``ToTensor()`` + ``Normalize((0.1307,), (0.3081,))``, ``input_range=(-1, 1)`` for one
      trained on ganaug's tensors. An ``nn.Module`` must be in eval mode (so a verdict does not depend on its
      batch) and gets its batches on the device of its first parameter. A :class:`ganaug.classify.evaluator.Evaluator`
      works too (it takes [-1, 1] itself).

    Attributes:
        classifier: the callable above, or a :class:`ganaug.classify.evaluator.Evaluator`.
        input_range: ``(low, high)`` the generator's [-1, 1] maps to [default: ``(0, 1)``; an evaluator's own
            ``(-1, 1)``].
        normalize: optional ``(mean, std)`` applied after the mapping.
        rounds: latents tried per sample, the first included (>= 1).
        classes: the classifier's class names, checked against the generator's (default: an evaluator's own;
            else only their number is checked, from one trial batch).
        batch_size: images per classifier call.
        manifold: real training images in an evaluator's features (``None``: the label alone decides).
        sha256: identity of the weights for manifests and caches (default: the sha256 of the evaluator folder's
            weights file with :meth:`load`, else of an ``nn.Module``'s parameters and buffers).
    """

    classifier: Any
    _: KW_ONLY
    input_range: tuple[float, float] | None = None
    normalize: tuple[float, float] | None = None
    rounds: int = 8
    classes: Sequence[str] | None = None
    batch_size: int = 512
    manifold: Manifold | None = None
    sha256: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, (int, np.integer)) or self.rounds < 1:
            raise InputError(f"label-check rounds must be a whole number >= 1, got {self.rounds!r}")
        object.__setattr__(self, "rounds", int(self.rounds))
        if (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, (int, np.integer))
            or self.batch_size < 1
        ):
            raise InputError(f"label-check batch_size must be a whole number >= 1, got {self.batch_size!r}")
        evaluator = self.evaluator
        if evaluator is None and not callable(self.classifier):
            raise InputError(
                "the label check's classifier must be callable (a float batch [N, 1, H, W] -> scores "
                f"[N, num_classes]) or a ganaug Evaluator, got {type(self.classifier).__name__}"
            )
        if self.input_range is None:
            object.__setattr__(self, "input_range", (-1.0, 1.0) if evaluator is not None else (0.0, 1.0))
        low, high = _pair(self.input_range, "input_range")
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise InputError(f"input_range must be finite (low, high) with low < high, got {self.input_range}")
        object.__setattr__(self, "input_range", (low, high))
        if self.normalize is not None:
            mean, std = _pair(self.normalize, "normalize")
            if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
                raise InputError(f"normalize must be finite (mean, std) with std > 0, got {self.normalize}")
            object.__setattr__(self, "normalize", (mean, std))
        if evaluator is not None:
            if self.input_range != (-1.0, 1.0) or self.normalize is not None:
                raise InputError(
                    "a ganaug Evaluator takes images in [-1, 1] itself: leave input_range and normalize unset"
                )
            if self.classes is None:
                object.__setattr__(self, "classes", list(evaluator.classes))
        elif self.manifold is not None:
            raise InputError("a manifold needs a ganaug Evaluator as the classifier (it lives in its features)")
        if self.classes is not None:
            object.__setattr__(self, "classes", [str(c) for c in self.classes])

    @classmethod
    def load(cls, path: str | Path, *, rounds: int = 8) -> LabelCheck:
        """Load an evaluator folder (and its manifold, if it holds one) as a check.

        Raises:
            InputError: ``path`` is not an evaluator folder (see :func:`ganaug.classify.evaluator.load_evaluator`), or its
                manifold was built for other weights.
        """
        from ganaug.classify.evaluator import WEIGHTS, load_evaluator
        from ganaug.hashing import file_sha256

        if Path(path).suffix == ".onnx" and not Path(path).is_dir():
            onnx_check = OnnxCheck(path)
            return cls(
                onnx_check, input_range=(-1.0, 1.0), rounds=rounds, classes=onnx_check.classes, sha256=onnx_check.sha256
            )
        evaluator = load_evaluator(path)
        sha = file_sha256(Path(path) / WEIGHTS)
        manifold_file = Path(path) / MANIFOLD
        manifold = Manifold.load(manifold_file, weights_sha256=sha) if manifold_file.is_file() else None
        return cls(evaluator, rounds=rounds, manifold=manifold, sha256=sha)

    @property
    def evaluator(self) -> Evaluator | None:
        """The classifier when it is a ganaug :class:`~ganaug.classify.evaluator.Evaluator` (always with :meth:`load`)."""
        from ganaug.classify.evaluator import Evaluator

        return self.classifier if isinstance(self.classifier, Evaluator) else None

    def check_classes(self, classes: Sequence[str], image_shape: Sequence[int] = (1, 28, 28)) -> None:
        """Raise :class:`InputError` unless this check knows the generator's ``classes``: the same names in the
        same order when it names its classes, else as many scores as classes on one trial image (mid-grey, of
        ``image_shape``), which also catches a module left in training mode."""
        if self.classes is not None:
            check_same_classes(list(classes), list(self.classes))
            return
        self._scores(np.zeros((1, *image_shape), np.float32), len(classes))

    def judge(self, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(accepted bool [N], score float64 [N])`` for images float32 [N, 1, H, W] in [-1, 1] (the generator's
        output) and their labels int64 [N]: accepted when the argmax of the scores is the label (and, with a
        manifold, the realism is >= 1); the score is the softmax probability of the label (times min(realism, 1)
        with a manifold), which picks the kept try when none is accepted.

        Raises:
            InputError: a module in training mode, or scores that are not [N, K] with K above every label.
        """
        import torch

        labels = np.asarray(labels, dtype=np.int64)
        images = np.ascontiguousarray(images, dtype=np.float32)
        evaluator, features = self.evaluator, None
        if evaluator is not None:
            features, logits = evaluator.features_and_logits(torch.from_numpy(images))
        else:
            logits = self._scores(images, int(labels.max()) + 1 if labels.size else 0, at_least=True)
        p = torch.softmax(logits.double(), dim=1).numpy()
        rows = np.arange(len(labels))
        agrees, score = p.argmax(axis=1) == labels, p[rows, labels]
        if self.manifold is not None:
            r = self.manifold.realism(features, labels)
            agrees, score = agrees & (r >= 1.0), score * np.minimum(r, 1.0)
        return agrees, score

    def identity(self) -> dict[str, Any]:
        """JSON-able description for manifests, reports and cache keys: the weights' sha256 and the rounds (and
        the manifold's sha256), plus for a classifier of your own its type and input mapping."""
        out: dict[str, Any] = {"sha256": self.sha256 or _weights_sha256(self.classifier), "rounds": self.rounds}
        if self.manifold is not None:
            out["manifold_sha256"] = self.manifold.sha256()
        if self.evaluator is None:
            named = self.classifier if hasattr(self.classifier, "__qualname__") else type(self.classifier)
            out["classifier"] = f"{getattr(named, '__module__', None)}.{named.__qualname__}"
            out["input_range"] = list(self.input_range)
            out["normalize"] = None if self.normalize is None else list(self.normalize)
        return out

    def _scores(self, images: np.ndarray, num_classes: int, *, at_least: bool = False) -> torch.Tensor:
        """float32 [N, K] scores of a classifier of your own for images float32 [N, 1, H, W] in [-1, 1]: K equal
        to ``num_classes`` (or, ``at_least``, above it)."""
        import torch

        model = self.classifier
        device = torch.device("cpu")
        if isinstance(model, torch.nn.Module):
            if model.training:
                raise InputError("the label check's classifier is in training mode; call .eval() on it first")
            device = next(model.parameters(), torch.empty(0)).device
        low, high = self.input_range
        scale, shift = (high - low) / 2.0, low + (high - low) / 2.0
        out = []
        for start in range(0, max(len(images), 1), self.batch_size):
            x = torch.from_numpy(images[start : start + self.batch_size])
            if (scale, shift) != (1.0, 0.0):
                x = x * scale + shift
            if self.normalize is not None:
                x = (x - self.normalize[0]) / self.normalize[1]
            with torch.inference_mode():
                scores = torch.as_tensor(model(x.to(device)))
            bad = scores.ndim != 2 or scores.shape[0] != len(x)
            bad = bad or (scores.shape[1] < num_classes if at_least else scores.shape[1] != num_classes)
            if bad:
                want = f"[N, {num_classes}]" if not at_least else "[N, num_classes]"
                raise InputError(
                    f"the label check's classifier returned shape {list(scores.shape)} for {len(x)} images; it must "
                    f"return scores {want}, one per class of the generator"
                )
            out.append(scores.detach().float().cpu())
        return torch.cat(out)


class OnnxCheck:
    """A run's own label check (``label_check.onnx``, written by ``ganaug train``; see
    :mod:`ganaug.train.labelcheck`) run by ONNX Runtime on the CPU: ``check(x)`` takes images float32 [N, 1, 28, 28]
    in [-1, 1] (a tensor or an array) and returns logits float32 [N, num_classes] as a tensor.

    Each process opens its own session on first use (a forked DataLoader worker does not share its parent's);
    pickling keeps the path only. ``threads``: ONNX Runtime's intra-op threads (None: its default).

    Raises:
        InputError: the file is missing, not ONNX, or not a ganaug check file.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        from ganaug.hashing import file_sha256
        from ganaug.train.labelcheck import CHECK_KIND

        self.path = Path(path)
        self.threads = threads
        if not self.path.is_file():
            raise InputError(f"no label check at {self.path}; `ganaug train` writes one when its preset asks for it")
        meta = _onnx_metadata(self.path)
        if meta.get("kind") != CHECK_KIND or not isinstance(meta.get("classes"), list):
            raise InputError(f"{self.path} is not a ganaug label check (its metadata kind is {meta.get('kind')!r})")
        self.classes: list[str] = [str(c) for c in meta["classes"]]
        self.metadata = meta
        self.sha256 = file_sha256(self.path)
        self._sessions: dict[int, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_sessions": {}}

    def _session(self) -> Any:
        import os

        pid = os.getpid()
        if pid not in self._sessions:
            import onnxruntime as ort

            from ganaug.threads import ort_session_options

            options = ort_session_options(self.threads)
            self._sessions = {pid: ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])}
        return self._sessions[pid]

    def __call__(self, images: Any) -> torch.Tensor:
        import torch

        x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        (logits,) = self._session().run(["logits"], {"images": np.ascontiguousarray(x, dtype=np.float32)})
        return torch.from_numpy(logits)


def _onnx_metadata(path: Path) -> dict[str, Any]:
    """The ``ganaug.`` metadata of an ONNX file without reading its weights' meaning (one line if unreadable)."""
    import json

    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
        return {
            p.key[len("ganaug.") :]: json.loads(p.value) for p in proto.metadata_props if p.key.startswith("ganaug.")
        }
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same bad input
        raise InputError(
            f"{path} is not a readable ONNX file ({type(e).__name__}); give a run's label_check.onnx"
        ) from None


def _pair(value: Any, name: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be two numbers, got {value!r}") from None
    return a, b


def _weights_sha256(classifier: Any) -> str | None:
    """Hex sha256 of a module's (or an evaluator's network's) parameters and buffers, in order; ``None`` for
    other callables."""
    import hashlib

    import torch

    net = getattr(classifier, "net", classifier)
    if not isinstance(net, torch.nn.Module):
        return None
    digest = hashlib.sha256()
    for name, t in net.state_dict().items():
        t = t.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{list(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def as_label_check(value: Any, *, rounds: int = 8) -> LabelCheck | None:
    """``label_check=`` as every consumer takes it: ``None``, a :class:`LabelCheck`, or an evaluator folder
    (loaded with ``rounds``).

    Raises:
        InputError: anything else (a bare classifier must be wrapped, to say its input range).
    """
    if value is None or isinstance(value, LabelCheck):
        return value
    if isinstance(value, (str, Path)):
        return LabelCheck.load(value, rounds=rounds)
    raise InputError(
        "label_check must be an evaluator folder or a ganaug.LabelCheck (e.g. LabelCheck(classifier, "
        f"input_range=(0, 1), normalize=(mean, std))), got {type(value).__name__}"
    )


def refuse_label_filter(extra: dict[str, Any], where: str) -> None:
    """Raise for keyword arguments ``where`` does not take: ``label_filter=`` is now ``label_check=``."""
    if "label_filter" in extra:
        raise InputError(
            "label_filter= is now label_check=: pass label_check=ganaug.LabelCheck(classifier, input_range=..., "
            "normalize=...) or an evaluator folder"
        )
    if extra:
        raise TypeError(f"{where}() got an unexpected keyword argument {next(iter(extra))!r}")


#: ``candidate_seed(s, j)`` derives candidate j's seed (``--unflatten``) with this purpose.
_CANDIDATE_PURPOSE = 0x7E5B
#: The seed of the uniform draws that pick one candidate per sample (``--unflatten``).
_PICK_PURPOSE = 0x7E5C


def candidate_seed(seed: int, j: int) -> int:
    """The seed candidate ``j`` of ``--unflatten`` (:class:`ganaug.sample.unflatten.Unflatten`) is sampled with (``seed`` itself for candidate 0)."""
    return seed if j == 0 else derive_seed(seed, _CANDIDATE_PURPOSE, j)


def pick_uniforms(seed: int, indices: np.ndarray) -> np.ndarray:
    """float64 [N] in (0, 1): the uniform draw of each sample number in ``indices`` (int64 [N]) that picks its
    candidate; depends only on (seed, index)."""
    import torch

    z = latent_rows(derive_seed(seed, _PICK_PURPOSE, 0), indices, 2)[:, 0].astype(np.float64)
    return torch.special.ndtr(torch.from_numpy(z)).numpy()


class Reweighting(Protocol):
    """What :class:`Sampling` needs of a candidate reweighting (:class:`ganaug.sample.unflatten.Unflatten`)."""

    candidates: int

    @property
    def num_classes(self) -> int: ...

    def weights(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray: ...

    def identity(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Sampling:
    """How latents are drawn: ``temperature`` scales every latent (> 1 explores, < 1 truncates); ``check``
    draws an image again while it disagrees with its label (see the module docstring for the law)."""

    temperature: float = 1.0
    check: LabelCheck | None = None
    unflatten: Reweighting | None = None

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise InputError(f"temperature must be a number > 0, got {t!r}")
        if self.check is not None and not isinstance(self.check, LabelCheck):
            raise InputError(
                f"check must be a ganaug.LabelCheck (LabelCheck.load(folder) or LabelCheck(classifier, ...)), "
                f"got {type(self.check).__name__}"
            )

    def check_classes(self, classes: list[str], image_shape: Sequence[int] = (1, 28, 28)) -> None:
        """Raise :class:`InputError` unless the check (if any) knows ``classes``, the generator's
        (:meth:`LabelCheck.check_classes`), and the unflattening (if any) knows as many classes."""
        if self.check is not None:
            self.check.check_classes(classes, image_shape)
        if self.unflatten is not None and self.unflatten.num_classes != len(classes):
            raise InputError(
                f"--unflatten's training images have {self.unflatten.num_classes} classes, the generator "
                f"{len(classes)}; give the run folder the generator came from"
            )

    @property
    def plain(self) -> bool:
        """True when this is ganaug's plain sampling (temperature 1, no check, no unflattening)."""
        return self.temperature == 1.0 and self.check is None and self.unflatten is None

    def identity(self) -> dict[str, Any]:
        """JSON-able description for manifests, reports and cache keys."""
        check = None if self.check is None else self.check.identity()
        out: dict[str, Any] = {"temperature": float(self.temperature), "label_check": check}
        if self.unflatten is not None:  # absent otherwise: earlier manifests and cache keys stay as they were
            out["unflatten"] = self.unflatten.identity()
        return out

    def images(
        self,
        run: Run,
        labels: np.ndarray,
        indices: np.ndarray,
        *,
        seed: int,
        z_dim: int,
        z: np.ndarray | None = None,
    ) -> np.ndarray:
        """Samples ``indices`` (int64 [N], sample numbers) of ``seed`` for ``labels`` (int64 [N]).

        Args:
            run: the generator, ``(z float32 [N, z_dim], labels int64 [N]) -> float32 [N, 1, 28, 28] in [-1, 1]``.
            z: round 0's standard-normal latents float32 [N, z_dim] when the caller has them (else computed).

        Returns:
            float32 [N, 1, 28, 28] in [-1, 1].
        """
        labels = np.asarray(labels, dtype=np.int64)
        indices = np.asarray(indices, dtype=np.int64)
        if self.unflatten is None or self.unflatten.candidates == 1 or len(labels) == 0:
            return self._checked(run, labels, indices, seed=seed, z_dim=z_dim, z=z)
        k = self.unflatten.candidates
        cands = np.stack(
            [
                self._checked(run, labels, indices, seed=candidate_seed(seed, j), z_dim=z_dim, z=z if j == 0 else None)
                for j in range(k)
            ]
        )  # [K, N, 1, H, W]
        w = self.unflatten.weights(cands.reshape(k * len(labels), *cands.shape[2:]), np.tile(labels, k))
        w = w.reshape(k, len(labels)).T  # [N, K]: all candidates measured in one call
        cdf = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
        pick = np.minimum((cdf < pick_uniforms(seed, indices)[:, None]).sum(axis=1), k - 1)
        return cands[pick, np.arange(len(labels))]

    def _checked(
        self, run: Run, labels: np.ndarray, indices: np.ndarray, *, seed: int, z_dim: int, z: Any
    ) -> np.ndarray:
        """One candidate (arguments as :meth:`images`): the temperature and the label check (see the module
        docstring)."""
        t = np.float32(self.temperature)
        z0 = latent_rows(seed, indices, z_dim) if z is None else np.asarray(z, np.float32)
        out = np.asarray(run(z0 * t if t != 1 else z0, labels), dtype=np.float32)
        if self.check is None or len(labels) == 0:
            return out
        out = out.copy()  # rejected rows are overwritten below; the generator's buffer stays as it was
        accepted, best = self.check.judge(out, labels)
        for r in range(1, self.check.rounds):
            todo = np.flatnonzero(~accepted)
            if todo.size == 0:
                break
            images = np.asarray(run(latent_rows(round_seed(seed, r), indices[todo], z_dim) * t, labels[todo]))
            ok, p = self.check.judge(images, labels[todo])
            take = ok | (p > best[todo])
            out[todo[take]] = images[take]
            best[todo[take]] = p[take]
            accepted[todo[ok]] = True
        return out


def sampling_from_options(temperature: float, label_check: str | Path | None, *, rounds: int = 8) -> Sampling:
    """The :class:`Sampling` the CLI's ``--temperature`` / ``--label-check`` options describe (``--unflatten``:
    :func:`ganaug.sample.unflatten.with_unflatten`)."""
    return Sampling(temperature, as_label_check(label_check, rounds=rounds))


#: What ``sampling=`` takes wherever a model is sampled: its own default sampling, or the plain one.
SAMPLING_CHOICES: tuple[str, ...] = ("model", "plain")


def model_sampling(
    model_sampling: dict[str, Any] | None,
    model_file: str | Path,
    *,
    sampling: str = "model",
    temperature: float | None = None,
    label_check: Any = None,
    threads: int | None = None,
) -> Sampling:
    """The sampling every consumer uses (``ganaug generate`` / ``evaluate``, ``GeneratedDataset``, ``augment``,
    ``SyntheticMix``): what the caller gives, else the model's default.

    Args:
        model_sampling: the model's default sampling (its ONNX metadata or run config: ``{"temperature": t,
            "label_check": "label_check.onnx"}``; empty = plain).
        model_file: the ``.onnx`` file or run folder the model came from; its check is the file of that name beside it
            (in the run folder).
        sampling: ``"model"`` (default: the model's temperature and check fill in what the caller leaves out) or
            ``"plain"`` (temperature 1 and no check unless given).
        temperature, label_check: the caller's own (see :class:`Sampling`, :func:`as_label_check`).
        threads: ONNX Runtime threads of the model's check.

    Raises:
        InputError: an unknown ``sampling``; the model's check is missing beside it or is not a check file.
    """
    from ganaug.config import sampling_temperature

    if sampling not in SAMPLING_CHOICES:
        raise InputError(f"sampling must be 'model' (the model's default) or 'plain', got {sampling!r}")
    own = model_sampling if sampling == "model" else {}
    if temperature is None:
        temperature = sampling_temperature(own)
    check = as_label_check(label_check)
    name = (own or {}).get("label_check")
    if check is None and name:
        model_file = Path(model_file)
        folder = model_file if model_file.is_dir() else model_file.parent
        path = folder / name
        if not path.is_file():
            from ganaug.train.checkpoint import CHECKPOINT

            fix = (  # in its run folder (a full disk, a deleted file), train writes the check again from the run
                f"`ganaug train --resume {folder}` writes it again"
                if (folder / CHECKPOINT).is_file()
                else "copy it there from the run folder"
            )
            raise InputError(
                f"{model_file}'s default sampling needs its label check {name}, which is not in {folder}; {fix}, "
                "or sample plainly (--plain, sampling='plain')"
            )
        onnx_check = OnnxCheck(path, threads=threads)
        check = LabelCheck(onnx_check, input_range=(-1.0, 1.0), classes=onnx_check.classes, sha256=onnx_check.sha256)
    return Sampling(temperature, check)
