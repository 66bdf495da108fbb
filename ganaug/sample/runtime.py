"""Fast batched generation with ONNX Runtime (label and uint8 helpers: :mod:`ganaug.data.labels`).

The law of generation: sample ``i`` of ``(model, seed)`` is ``G(latents(seed, i, i + 1), labels[i])``
(:func:`ganaug.sample.latents.latents`), so results never depend on batch size, worker count or access order.

:class:`OnnxGenerator` wraps an exported generator (:func:`ganaug.train.export.export_onnx`). Its ONNX Runtime
session is created on first use and left out of pickling, so the object can be handed to DataLoader
workers (each builds its own session). Provider ``auto`` takes CUDA only when a GPU is really there and
the session really got the CUDA provider; otherwise it runs on the CPU without printing anything.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ganaug.data.labels import make_labels, resolve_class, to_uint8
from ganaug.errors import InputError
from ganaug.outputs import ONNX_FILE
from ganaug.sample.latents import check_seed, latents

if TYPE_CHECKING:
    import onnx
    import onnxruntime
    import torch

    from ganaug.sample.resample import Sampling

Provider = Literal["auto", "cpu", "cuda", "tensorrt"]
PROVIDERS: tuple[str, ...] = ("auto", "cpu", "cuda", "tensorrt")
_ORT_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
_GPU_INSTALL = {
    "cuda": "an NVIDIA GPU with its driver and `pip install onnxruntime-gpu` (CUDA 12/13 libraries come with torch)",
    "tensorrt": "an NVIDIA GPU with its driver, `pip install onnxruntime-gpu tensorrt`",
}


def gpu_present() -> bool:
    """Whether an NVIDIA GPU is visible, checked without initialising CUDA (safe before forking workers)."""
    if sys.platform.startswith("linux"):
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None and visible.strip() in ("", "-1"):
            return False
        return any(Path("/dev").glob("nvidia[0-9]*"))
    import torch

    return torch.cuda.is_available()


class OnnxGenerator:
    """An exported ganaug generator run with ONNX Runtime.

    Args:
        path: a ``.onnx`` file written by :func:`ganaug.train.export.export_onnx`, or a run folder holding ``generator.onnx``.
        provider: ``cpu``; ``cuda`` or ``tensorrt`` (a GPU is required); ``auto`` = CUDA when a GPU is
            really present and onnxruntime-gpu can use it, else CPU.
        threads: ONNX Runtime intra-op threads (default: ONNX Runtime's choice, one per physical core).
        cudnn_conv_algo_search: CUDA provider's convolution algorithm search. ``HEURISTIC`` (default) avoids
            ``EXHAUSTIVE``'s slow first call at every new batch size.
        device_id: the CUDA device for ``cuda`` / ``tensorrt``.
        tf32: let the CUDA provider use TF32 tensor cores for fp32 convolutions and GEMMs (faster; results
            differ from strict fp32 by about 1e-3). ``False`` gives fp32 parity with PyTorch within 1e-4.
        trt_batch_range: TensorRT optimisation profile ``(min, opt, max)`` batch sizes; a batch outside it
            makes TensorRT build another engine. Default ``(1, 1024, 65536)``.
        trt_fp16: let TensorRT pick float16 kernels.

    On a GPU, :meth:`run_device` and ``generate(..., device_output=True)`` hand out torch CUDA tensors that ONNX
    Runtime wrote directly (IO binding on the tensors' memory, no host copy). The IO binding and its output
    buffer are kept per batch size, so repeated calls of one shape do not rebuild them.

    Raises:
        InputError: missing file, a file that is not ONNX or not a ganaug generator, an unknown provider,
            or a GPU provider asked for where none is available (the message says what to install).

    Example:
        >>> gen = OnnxGenerator("runs/digits")                                  # doctest: +SKIP
        >>> images = gen.generate(gen.labels(100, select=[3, 5]), seed=0)      # uint8 [200, 28, 28]
    """

    def __init__(
        self,
        path: str | Path,
        *,
        provider: Provider = "auto",
        threads: int | None = None,
        cudnn_conv_algo_search: Literal["HEURISTIC", "EXHAUSTIVE", "DEFAULT"] = "HEURISTIC",
        device_id: int = 0,
        tf32: bool = True,
        trt_batch_range: tuple[int, int, int] = (1, 1024, 65536),
        trt_fp16: bool = False,
    ) -> None:
        from ganaug.train.export import check_generator_file

        path = Path(path)
        if path.is_dir():
            path = path / ONNX_FILE
        if not path.is_file():
            raise InputError(
                f"no ONNX model at {path}; give a .onnx file or a run folder (export one with `ganaug export RUN_DIR`)"
            )
        if provider not in PROVIDERS:
            raise InputError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
        from ganaug.threads import check_threads

        check_threads(threads)
        if cudnn_conv_algo_search not in ("HEURISTIC", "EXHAUSTIVE", "DEFAULT"):
            raise InputError(
                f"unknown cudnn_conv_algo_search {cudnn_conv_algo_search!r}; choose HEURISTIC, EXHAUSTIVE or DEFAULT"
            )
        if len(trt_batch_range) != 3 or not 1 <= trt_batch_range[0] <= trt_batch_range[1] <= trt_batch_range[2]:
            raise InputError(
                f"trt_batch_range must be (min, opt, max) with 1 <= min <= opt <= max, got {trt_batch_range}"
            )
        if device_id < 0:
            raise InputError(f"device_id must be >= 0, got {device_id}")
        proto = _load_onnx(path)
        metadata = check_generator_file(proto, path)  # schema, kind and metadata agreeing with the graph
        self.path = path
        self.metadata: dict[str, Any] = metadata
        self.inputs = {i.name: _value_info(i) for i in proto.graph.input}
        self.outputs = {o.name: _value_info(o) for o in proto.graph.output}
        self.threads = threads
        self.cudnn_conv_algo_search = cudnn_conv_algo_search
        self.device_id = device_id
        self.tf32 = tf32
        self.trt_batch_range = tuple(int(b) for b in trt_batch_range)
        self.trt_fp16 = trt_fp16
        self.requested_provider = provider
        self._provider = _resolve_provider(provider)
        self._session: onnxruntime.InferenceSession | None = None
        self._bindings: dict[tuple[str, int], _Binding] = {}  # (kind, batch) -> IO binding kept for that shape

    # ---- facts about the model ----------------------------------------------------------------

    @property
    def z_dim(self) -> int:
        return int(self.metadata["z_dim"])

    @property
    def classes(self) -> list[str]:
        return list(self.metadata["classes"])

    @property
    def num_classes(self) -> int:
        return len(self.metadata["classes"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.metadata["image_shape"])

    @property
    def sampling(self) -> dict[str, Any]:
        """The model's default sampling (``{"temperature": t}``; empty = plain), from its preset via the run: what
        ``ganaug generate``, :class:`~ganaug.feed.dataset.GeneratedDataset` and the mixers use unless told otherwise."""
        return dict(self.metadata.get("sampling") or {})

    @property
    def density_weighting(self) -> float:
        """The exponent of the density weighting the generator was trained with (0: none, or exported before
        ganaug recorded it); its plain samples then over-represent rare styles (:func:`warn_uncorrected`)."""
        value = self.metadata.get("density_weighting") or 0.0
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0

    @property
    def providers(self) -> list[str]:
        """The ONNX Runtime providers the session really uses (creates the session)."""
        return self.session.get_providers()

    @property
    def device(self) -> Literal["cpu", "cuda"]:
        """Where the model runs (creates the session)."""
        return "cpu" if self.session.get_providers()[0] == "CPUExecutionProvider" else "cuda"

    # ---- running ------------------------------------------------------------------------------

    @property
    def session(self) -> onnxruntime.InferenceSession:
        """The ONNX Runtime session, created on first use."""
        if self._session is None:
            self._session = self._create_session()
        return self._session

    def labels(self, counts: int | Mapping[int | str, int], *, select: Sequence[int | str] | None = None) -> np.ndarray:
        """int64 labels, class by class, for this model's classes; see :func:`make_labels`."""
        return make_labels(self.classes, counts, select=select)

    def run(self, z: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """``G(z, labels)``: z float32 [N, z_dim], labels int64 [N] -> images float32 [N, 1, 28, 28] in [-1, 1].

        Raises:
            InputError: wrong shapes or dtypes, or a label outside ``[0, num_classes)``.
        """
        z = np.asarray(z)
        labels = np.asarray(labels)
        if z.dtype != np.float32 or z.ndim != 2 or z.shape[1] != self.z_dim:
            raise InputError(f"z must be float32 [N, {self.z_dim}], got {z.dtype} {list(z.shape)}")
        if labels.dtype != np.int64 or labels.shape != (len(z),):
            raise InputError(f"labels must be int64 [{len(z)}], got {labels.dtype} {list(labels.shape)}")
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise InputError(f"labels must lie in [0, {self.num_classes}), got {labels.min()}..{labels.max()}")
        if len(z) == 0:
            return np.zeros((0, *self.image_shape), np.float32)
        session = self.session
        if self.device == "cpu":
            return session.run(["images"], {"z": z, "labels": labels})[0]
        # On a GPU the output stays bound to one device buffer per batch size; it is copied to the host once, here.
        binding = self._binding("host", len(z))
        binding.io.bind_cpu_input("z", np.ascontiguousarray(z))
        binding.io.bind_cpu_input("labels", np.ascontiguousarray(labels))
        session.run_with_iobinding(binding.io)
        return binding.io.copy_outputs_to_cpu()[0]

    def run_device(self, z: torch.Tensor, labels: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
        """``G(z, labels)`` on torch tensors that stay on this generator's device (no host round trip on a GPU).

        Args:
            z: float32 [N, z_dim] on :attr:`device` (on CUDA: device ``device_id``).
            labels: int64 [N] on the same device, in ``[0, num_classes)`` (checked on the CPU only: on CUDA
                that would need a host sync; out-of-range labels give undefined images there).
            out: optional float32 [N, 1, 28, 28] contiguous tensor on that device to write into.

        Returns:
            float32 [N, 1, 28, 28] in [-1, 1] on the device: ``out`` if given, else a buffer this object reuses
            for the next call with the same N (``clone()`` it to keep it).

        ONNX Runtime reads ``z`` / ``labels`` and writes the output through IO binding on the tensors' memory,
        on the CPU as on CUDA. On CUDA it runs on its own stream, so this waits for torch's current stream
        first; it returns when the output is written.

        Raises:
            InputError: tensors of the wrong shape, dtype or device.
        """
        import torch

        n = z.shape[0] if z.ndim == 2 else -1
        device = torch.device("cpu") if self.device == "cpu" else torch.device("cuda", self.device_id)
        if z.dtype != torch.float32 or z.ndim != 2 or z.shape[1] != self.z_dim or z.device != device:
            raise InputError(
                f"z must be float32 [N, {self.z_dim}] on {device}, got {z.dtype} {list(z.shape)} on {z.device}"
            )
        if labels.dtype != torch.int64 or labels.shape != (n,) or labels.device != device:
            raise InputError(
                f"labels must be int64 [{n}] on {device}, got {labels.dtype} {list(labels.shape)} on {labels.device}"
            )
        shape = (n, *self.image_shape)
        if out is not None and (
            out.dtype != torch.float32 or tuple(out.shape) != shape or out.device != device or not out.is_contiguous()
        ):
            raise InputError(
                f"out must be a contiguous float32 {list(shape)} tensor on {device}, got {out.dtype} {list(out.shape)} on {out.device}"
            )
        if n == 0:
            return out if out is not None else torch.zeros(shape, device=device)
        kind, index = device.type, device.index or 0
        if kind == "cpu" and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise InputError(f"labels must lie in [0, {self.num_classes}), got {labels.min()}..{labels.max()}")
        z, labels = z.contiguous(), labels.contiguous()
        binding = self._binding("device", n)
        io = binding.io
        io.bind_input("z", kind, index, np.float32, [n, self.z_dim], z.data_ptr())
        io.bind_input("labels", kind, index, np.int64, [n], labels.data_ptr())
        target = binding.images if out is None else out
        if binding.bound_to != target.data_ptr():
            io.bind_output("images", kind, index, np.float32, list(shape), target.data_ptr())
            binding.bound_to = target.data_ptr()
        if kind == "cuda":
            torch.cuda.current_stream(device).synchronize()  # ONNX Runtime's own stream must see z and labels
        self.session.run_with_iobinding(io)  # returns when ONNX Runtime has written target (it syncs its stream)
        return target

    def iter_batches(
        self,
        labels: np.ndarray,
        *,
        seed: int,
        start: int = 0,
        batch_size: int = 1024,
        dtype: Literal["uint8", "float"] = "uint8",
        sampling: Sampling | None = None,
    ) -> Iterator[np.ndarray]:
        """:meth:`generate` one batch at a time (for progress bars and streaming to disk)."""
        from ganaug.sample.resample import Sampling

        labels, seed = _check_request(labels, seed=seed, start=start, batch_size=batch_size, dtype=dtype)
        drawn = sampling or Sampling()
        for lo in range(0, len(labels), batch_size):
            hi = min(lo + batch_size, len(labels))
            idx = np.arange(start + lo, start + hi, dtype=np.int64)
            images = drawn.images(self.run, labels[lo:hi], idx, seed=seed, z_dim=self.z_dim)
            yield to_uint8(images) if dtype == "uint8" else images

    def generate(
        self,
        labels: np.ndarray,
        *,
        seed: int,
        start: int = 0,
        batch_size: int = 1024,
        dtype: Literal["uint8", "float"] = "uint8",
        device_output: bool = False,
        sampling: Sampling | None = None,
    ) -> np.ndarray | torch.Tensor:
        """Images for ``labels``; image ``k`` is sample ``start + k`` of ``seed`` whatever ``batch_size`` is.

        Args:
            labels: int64 [N] in ``[0, num_classes)`` (see :meth:`labels`).
            seed: >= 0; with ``start + k`` it alone fixes image k's latent.
            start: index of the first sample (to continue a sequence or split it across workers).
            batch_size: images per ONNX Runtime call; changes speed and memory, never the images.
            dtype: ``uint8`` -> uint8 [N, 28, 28] in [0, 255] (see :func:`to_uint8`);
                ``float`` -> float32 [N, 1, 28, 28] in [-1, 1].
            device_output: return a torch tensor on the generator's device (CUDA: written there by ONNX
                Runtime, never copied through the host) instead of a numpy array.
            sampling: a temperature and a label check (:class:`ganaug.sample.resample.Sampling`; not with
                ``device_output``); image k is then that sampling's sample ``start + k``.

        Raises:
            InputError: bad labels, ``seed`` / ``start`` < 0, ``batch_size`` < 1 or an unknown ``dtype``.
        """
        if device_output and sampling is not None:
            raise InputError("device_output=True takes plain sampling only; drop sampling= or device_output=")
        if device_output:
            return self._generate_on_device(labels, seed=seed, start=start, batch_size=batch_size, dtype=dtype)
        batches = list(
            self.iter_batches(labels, seed=seed, start=start, batch_size=batch_size, dtype=dtype, sampling=sampling)
        )
        if batches:
            return np.concatenate(batches)
        return np.zeros(
            (0, *self.image_shape[1:]) if dtype == "uint8" else (0, *self.image_shape),
            np.uint8 if dtype == "uint8" else np.float32,
        )

    # ---- pickling and sessions ----------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_session"] = None  # sessions cannot be pickled; each process creates its own on first use
        state["_bindings"] = {}
        return state

    def __repr__(self) -> str:
        return (
            f"OnnxGenerator({str(self.path)!r}, provider={self.requested_provider!r}, z_dim={self.z_dim}, "
            f"classes={self.num_classes})"
        )

    def _generate_on_device(
        self, labels: np.ndarray, *, seed: int, start: int, batch_size: int, dtype: Literal["uint8", "float"]
    ) -> torch.Tensor:
        import torch

        labels, seed = _check_request(labels, seed=seed, start=start, batch_size=batch_size, dtype=dtype)
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise InputError(f"labels must lie in [0, {self.num_classes}), got {labels.min()}..{labels.max()}")
        device = torch.device("cpu") if self.device == "cpu" else torch.device("cuda", self.device_id)
        images = torch.empty((len(labels), *self.image_shape), device=device)
        all_labels = torch.from_numpy(labels).to(device)
        for lo in range(0, len(labels), batch_size):
            hi = min(lo + batch_size, len(labels))
            z = torch.from_numpy(latents(seed, start + lo, start + hi, self.z_dim)).to(device)
            self.run_device(z, all_labels[lo:hi], out=images[lo:hi])  # written in place, chunk by chunk
        if dtype == "float":
            return images
        return ((images[:, 0] + 1.0) * 127.5 + 0.5).clamp_(0, 255).to(torch.uint8)  # as to_uint8, on the device

    def _binding(self, kind: Literal["host", "device"], n: int) -> _Binding:
        """The IO binding kept for batch size ``n`` (output bound to one device buffer), built on first use."""
        key = (kind, n)
        if key not in self._bindings:
            if len(self._bindings) >= _KEPT_BINDINGS:  # bound memory is N x 3 KiB: keep only the latest shapes
                del self._bindings[next(iter(self._bindings))]
            io = self.session.io_binding()
            shape = [n, *self.image_shape]
            if kind == "host":
                import onnxruntime as ort

                buffer = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, "cuda", self.device_id)
                io.bind_ortvalue_output("images", buffer)
                self._bindings[key] = _Binding(io, buffer, buffer.data_ptr())
            else:
                import torch

                on = torch.device("cpu") if self.device == "cpu" else torch.device("cuda", self.device_id)
                images = torch.empty(shape, device=on)
                index = 0 if on.type == "cpu" else self.device_id
                io.bind_output("images", on.type, index, np.float32, shape, images.data_ptr())
                self._bindings[key] = _Binding(io, images, images.data_ptr())
        return self._bindings[key]

    def _create_session(self) -> onnxruntime.InferenceSession:
        import onnxruntime as ort

        from ganaug.threads import ort_session_options

        options = ort_session_options(self.threads)
        providers: list[Any] = ["CPUExecutionProvider"]
        if self._provider in ("cuda", "tensorrt"):
            if hasattr(ort, "preload_dlls"):
                ort.preload_dlls()  # the CUDA / cuDNN libraries that the torch wheels installed
            cuda = (
                "CUDAExecutionProvider",
                {
                    "device_id": str(self.device_id),
                    "cudnn_conv_algo_search": self.cudnn_conv_algo_search,
                    "use_tf32": "1" if self.tf32 else "0",
                },
            )
            providers = [cuda, "CPUExecutionProvider"]
            if self._provider == "tensorrt":
                low, opt, high = self.trt_batch_range
                providers.insert(
                    0,
                    (
                        "TensorrtExecutionProvider",
                        {
                            "device_id": str(self.device_id),
                            "trt_fp16_enable": "True" if self.trt_fp16 else "False",
                            "trt_profile_min_shapes": f"z:{low}x{self.z_dim},labels:{low}",
                            "trt_profile_opt_shapes": f"z:{opt}x{self.z_dim},labels:{opt}",
                            "trt_profile_max_shapes": f"z:{high}x{self.z_dim},labels:{high}",
                        },
                    ),
                )
        session = ort.InferenceSession(str(self.path), options, providers=providers)
        wanted = _ORT_NAMES[self._provider]
        if wanted not in session.get_providers() and self.requested_provider != "auto":
            raise InputError(
                f"ONNX Runtime could not start its {wanted} (it got {session.get_providers()}); "
                f"this needs {_GPU_INSTALL[self._provider]}, or use --provider cpu"
            )
        return session


_KEPT_BINDINGS = 4


class _Binding:
    """An ONNX Runtime IO binding whose output is bound to ``images`` (an OrtValue or a torch tensor) at ``bound_to``."""

    __slots__ = ("bound_to", "images", "io")

    def __init__(self, io: Any, images: Any, bound_to: int) -> None:
        self.io, self.images, self.bound_to = io, images, bound_to


def _resolve_provider(provider: str) -> str:
    """``auto`` -> ``cuda`` or ``cpu``; a GPU provider that cannot work here -> :class:`InputError`."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if provider == "auto":
        return "cuda" if gpu_present() and _ORT_NAMES["cuda"] in available else "cpu"
    if provider in ("cuda", "tensorrt"):
        if not gpu_present():
            raise InputError(
                f"--provider {provider} needs {_GPU_INSTALL[provider]}, but no NVIDIA GPU is visible here; use --provider cpu"
            )
        if _ORT_NAMES[provider] not in available:
            raise InputError(
                f"this onnxruntime has no {_ORT_NAMES[provider]}; --provider {provider} needs {_GPU_INSTALL[provider]}"
            )
    return provider


def _load_onnx(path: Path) -> onnx.ModelProto:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load(str(path), format="protobuf", load_external_data=False)
    except (DecodeError, ValueError, RuntimeError):
        proto = None
    if proto is None or proto.ir_version == 0:  # protobuf parses some non-ONNX bytes (an empty file) without error
        raise InputError(
            f"{path} is not an ONNX file, or a corrupt or truncated one; give a generator.onnx written by `ganaug export`"
        )
    return proto


def _value_info(value: Any) -> dict[str, Any]:
    import onnx

    tensor = value.type.tensor_type
    shape = [d.dim_param or d.dim_value for d in tensor.shape.dim]
    return {"dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name, "shape": shape}


def interpolate(
    run: str | Path,
    *,
    from_class: int | str,
    to_class: int | str,
    steps: int,
    seed: int = 0,
    mode: Literal["slerp", "lerp"] = "slerp",
) -> tuple[torch.Tensor, list[str]]:
    """Walk from a sample of one class to a sample of another: images float [steps, 1, 28, 28] in [-1, 1].

    Frame ``t`` (``t`` from 0 to 1) feeds the generator ``z_t`` = slerp (or lerp) between samples 0 and 1
    of ``seed`` (:func:`ganaug.sample.latents.latents`) and the label embedding ``(1 - t) e(from) + t e(to)``.
    The blended embedding is not an integer label, so this uses the PyTorch EMA generator of the run's
    checkpoint, not the ONNX file.

    Args:
        run: a run folder or its ``checkpoint.pt`` (a ``generator.onnx`` inside a run folder works too).

    Returns:
        The frames and the two classes' names.

    Raises:
        InputError: no checkpoint, an unknown class, ``steps`` < 2, an unknown ``mode``.
    """
    import torch

    from ganaug.train.export import load_checkpoint_generator

    run = Path(run)
    if run.suffix == ".onnx":
        run = run.parent
    if steps < 2:
        raise InputError(f"steps must be >= 2, got {steps}")
    if mode not in ("slerp", "lerp"):
        raise InputError(f"mode must be 'slerp' or 'lerp', got {mode!r}")
    generator, meta = load_checkpoint_generator(run)
    classes = meta["classes"]
    a, b = resolve_class(classes, from_class), resolve_class(classes, to_class)
    z = torch.from_numpy(latents(seed, 0, 2, generator.config.z_dim)).double()
    t = torch.linspace(0, 1, steps, dtype=torch.float64)[:, None]
    if mode == "lerp":
        zt = (1 - t) * z[0] + t * z[1]
    else:
        omega = torch.arccos((z[0] / z[0].norm()).dot(z[1] / z[1].norm()).clamp(-1, 1))
        zt = (torch.sin((1 - t) * omega) * z[0] + torch.sin(t * omega) * z[1]) / torch.sin(omega)
    with torch.no_grad():
        e = generator.embed(torch.tensor([a, b]))
        et = (1 - t.float()) * e[0] + t.float() * e[1]
        # Generator.forward embeds integer labels; this is its body with the embedding given directly.
        images = generator.from_embedding(zt.float(), et)
    return images, [classes[a], classes[b]]


def _check_request(labels, *, seed: int, start: int, batch_size: int, dtype: str) -> tuple[np.ndarray, int]:
    """The checks every generating call makes before any work: labels int64 [N], batch_size >= 1, a known
    dtype, a seed the RNGs take and start >= 0; returns (labels as an array, the checked seed)."""
    labels = np.asarray(labels)
    if labels.dtype != np.int64 or labels.ndim != 1:
        raise InputError(f"labels must be int64 [N], got {labels.dtype} {list(labels.shape)}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if dtype not in ("uint8", "float"):
        raise InputError(f"dtype must be 'uint8' or 'float', got {dtype!r}")
    if start < 0:
        raise InputError(f"start must be >= 0, got {start}")
    return labels, check_seed(seed)


_WARNED: set[str] = set()  # generator files already warned about in this process


def warn_uncorrected(generator: OnnxGenerator, *, unflatten: bool) -> None:
    """Warn once per process and file when ``generator`` was trained with density weighting and is sampled
    without its correction (``--unflatten K`` / ``unflatten=K``): its images then over-represent rare styles."""
    import warnings

    weight = generator.density_weighting
    key = str(Path(generator.path).resolve())
    if not weight or unflatten or key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(
        f"{generator.path} was trained with density weighting (flatten_density {weight:g}): sampled without its "
        "correction, rare styles come more often than in the real data; --unflatten 8 (unflatten=8) corrects it, "
        "at a fraction of plain sampling's speed",
        UserWarning,
        stacklevel=3,
    )
