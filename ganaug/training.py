"""Goodfellow's minimax training of the class-conditional DCGAN, with resume that really continues.

Per iteration the discriminator takes one step on a real batch; after every ``d_steps`` of them the
generator takes one step with the non-saturating loss ``-log D(G(z))`` (or the hinge loss, with a lazy R1
penalty on D: the mnist and fashion-mnist presets). The fakes of the last D step are reused for the G step (one
generator forward per iteration).

Reproducibility: every random draw of a run (weight init, batch order, z, the real images' augmentation) comes
from the run's seed; a checkpoint holds G, D, the EMA generator, both optimizers, AMP scalers, the step and both
RNG states, so ``--resume`` after an interruption ends bitwise where an uninterrupted run ends on CPU. No
global state is touched: weights are drawn from a seeded ``torch.Generator`` (the global RNG is never
seeded), and ``cudnn.benchmark`` is switched on only inside :meth:`Trainer.fit` on CUDA and restored after.

Files: :mod:`ganaug.runfolder` writes the run folder, :mod:`ganaug.checkpoint` the checkpoint and
:mod:`ganaug.distributed` holds the torchrun plumbing; this module is the training loop.

Distributed: launched by ``torchrun --nproc-per-node N -m ganaug train ...`` (``WORLD_SIZE`` > 1), G and D
are wrapped in DistributedDataParallel (NCCL on CUDA, gloo on CPU). ``--batch-size`` stays the global
batch: every rank draws the same permutation and the same global ``z`` and takes its slice, so the ranks
together see exactly the single-process batch. BatchNorm uses SyncBatchNorm on CUDA (global batch
statistics, as in one process); on CPU (gloo has no SyncBatchNorm) each rank normalizes with its own
slice's statistics and DDP broadcasts rank 0's running statistics, so a CPU run is statistically
consistent with, not equal to, the single-process run. Rank 0 alone writes files (and holds the run
folder's lock); a checkpoint holds every rank's augmentation RNG, so resume works across ranks.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from ganaug.augment_ops import classical
from ganaug.checkpoint import CHECKPOINT, config_of, load_checkpoint, load_generator, save_checkpoint
from ganaug.config import DEFAULT_SAVES, DENSITY_K, ModelConfig, TrainConfig, epochs_for_steps
from ganaug.data import TrainingData, load_training_data, unlabelled_files
from ganaug.distributed import Distributed
from ganaug.errors import InputError, TrainingDiverged
from ganaug.metrics import class_density_distances
from ganaug.models import CenterOfMass, Discriminator, Generator, discriminator_flops, generator_flops
from ganaug.outputs import check_can_create, check_unlocked
from ganaug.runfolder import CONFIG, METRICS_FIELDS, RunFolder

if TYPE_CHECKING:
    from ganaug.pseudo import PseudoLabels

# CHECKPOINT and load_generator live in ganaug.checkpoint; re-exported here for one release.
__all__ = ["CHECKPOINT", "EMA", "TrainResult", "Trainer", "fixed_grid_inputs", "load_generator", "resolve_device"]

GRID_COLUMNS = 10
_SEED_SPACE = 2**64  # torch.Generator.manual_seed takes [0, 2**64); derived seeds wrap around in it


class StepBatch(NamedTuple):
    """What a discriminator step hands to the generator step that follows it."""

    fakes: torch.Tensor  # float [B, 1, 28, 28] in [-1, 1]: G(z, y), with G's graph when the step kept it
    labels: torch.Tensor  # int64 [B]: y, the real images' labels, which the fakes were drawn with


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU is an :class:`InputError`.
    Under torchrun a CUDA device is the rank's ``cuda:LOCAL_RANK``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise InputError(f"unknown device {device!r}; choose auto, cpu or cuda")
    return torch.device(device)


@contextmanager
def cudnn_autotune(device: torch.device) -> Iterator[None]:
    """cuDNN's algorithm search (``torch.backends.cudnn.benchmark``) on inside the block when ``device`` is
    CUDA (fixed batch shapes, so the search pays off); the caller's setting is restored afterwards."""
    if device.type != "cuda":
        yield
        return
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


class EMA(AveragedModel):
    """EMA copy of a generator (parameters and BatchNorm buffers), with a warm-up so short runs move it:
    the decay at update ``n`` is ``min(decay, (1 + n) / (warmup + n))``. The update count is kept on the host
    too, so an update never waits for the device, and tensors are updated in one fused call per dtype."""

    def __init__(self, generator: Generator, decay: float, warmup: float = 10.0) -> None:
        super().__init__(generator, multi_avg_fn=self._lerp, use_buffers=True)
        self.decay, self.warmup = decay, warmup
        self.updates = 0

    def _lerp(self, avg: list[torch.Tensor], cur: list[torch.Tensor], n: torch.Tensor) -> None:
        d = min(self.decay, (1.0 + self.updates) / (self.warmup + self.updates))
        if torch.is_floating_point(avg[0]):
            torch._foreach_lerp_(avg, cur, 1.0 - d)
        else:  # BatchNorm's num_batches_tracked: follow the model
            torch._foreach_copy_(avg, cur)

    def update_parameters(self, model: torch.nn.Module) -> None:
        super().update_parameters(model)
        self.updates += 1

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self.updates = int(self.n_averaged)
        return result


def fixed_grid_inputs(
    config: ModelConfig, *, seed: int, columns: int = GRID_COLUMNS
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed ``(z, labels)`` of a run's sample grids: one row per class, ``columns`` samples a row."""
    gen = torch.Generator().manual_seed((seed + 1_000_003) % _SEED_SPACE)
    z = torch.randn(config.num_classes * columns, config.z_dim, generator=gen)
    labels = torch.arange(config.num_classes).repeat_interleave(columns)
    return z, labels


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    epochs: int
    train_seconds: float
    images_per_second: float


def with_step_budget(config: TrainConfig, n_images: int) -> TrainConfig:
    """``config`` with ``epochs`` and ``save_every`` (40 saves) derived from its ``steps`` budget for ``n_images``
    training images; unchanged without a budget."""
    if config.steps is None:
        return config
    epochs = epochs_for_steps(config.steps, n_images, config.batch_size)
    return dataclasses.replace(config, epochs=epochs, save_every=max(1, epochs // DEFAULT_SAVES))


def _load_data(
    config: TrainConfig, *, download: bool, pseudo: PseudoLabels | None = None
) -> tuple[TrainConfig, TrainingData, PseudoLabels | None]:
    """The config's training data, the config with ``model.num_classes`` taken from the data, and with
    ``config.pseudo_label`` the pseudo-labels of the pool (``pseudo``, a resumed run's, or made here). The
    returned config names its folders by absolute paths."""
    for name in ("data_root", "unlabelled"):
        if getattr(config, name) is not None:
            config = dataclasses.replace(config, **{name: str(Path(getattr(config, name)).resolve())})
    data = load_training_data(
        config.dataset, root=config.data_root, download=download, per_class=config.per_class, seed=config.seed
    )
    if config.pseudo_label:
        from ganaug.pseudo import add_pool

        if pseudo is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise InputError(
                "--pseudo-label under torchrun would train one teacher per process; start the run in one process "
                "(--epochs 1), then continue it under torchrun with --resume, which reads its stored pseudo-labels"
            )
        chosen = config.augment_real if isinstance(config.augment_real, str) else None  # else the dataset's
        data, pseudo = add_pool(
            data,
            root=config.data_root,
            threshold=config.pseudo_label,
            unlabelled=config.unlabelled,
            classical=chosen,
            seed=config.seed,
            device=resolve_device(config.device),
            stored=pseudo,
        )
    model = dataclasses.replace(config.model, num_classes=len(data.classes))
    return dataclasses.replace(config, model=model), data, pseudo if config.pseudo_label else None


def check_centred(images: torch.Tensor, *, tolerance: float = 0.01) -> None:
    """Refuse centre-of-mass placement (``sample_center_of_mass``) for training images float [N, 1, 28, 28] in
    [-1, 1] that are not placed that way (more than ``tolerance`` of them more than half a pixel off centre):
    the samples would be forced to a placement the real images don't have.

    Raises:
        InputError: one line with the share of off-centre images.
    """
    off = torch.zeros(len(images), dtype=torch.bool)
    for lo in range(0, len(images), 4096):
        dy, dx = CenterOfMass().shifts(images[lo : lo + 4096])
        off[lo : lo + 4096] = (dy != 0) | (dx != 0)
    share = float(off.double().mean()) if len(images) else 0.0
    if share > tolerance:
        raise InputError(
            f"sample_center_of_mass (the mnist preset's) is for images centred by their centre of mass, as MNIST's are; "
            f"{share:.0%} of these training images are more than half a pixel off centre: choose another --preset"
        )


def _image_folders(config: TrainConfig) -> list[str]:
    """The folders of image files ``config`` reads (a run folder must stay out of them)."""
    return [p for p in (config.unlabelled, config.data_root if config.dataset == "imagefolder" else None) if p]


def _reopen(
    run: RunFolder, *, epochs: int | None, data_root: str | Path | None, unlabelled: str | Path | None = None
) -> tuple[TrainConfig, TrainingData]:
    """The stored config of ``run`` (with a new total of ``epochs``, a moved ``data_root`` or a moved
    ``unlabelled`` folder) and its data, checked to be the data the run trained on.

    Raises:
        InputError: another process is training the run now (it holds the lock: checked first, as a run in
            its first epoch has no checkpoint yet); not a run folder; no checkpoint; data that changed.
    """
    if os.environ.get("RANK", "0") == "0":  # the writer (torchrun's rank 0), which takes the lock later
        check_unlocked(run.path, doing="training")
    meta = run.read_config()
    config = config_of({"config": meta["config"]}, run.path / CONFIG)
    if not (run.path / CHECKPOINT).is_file():
        raise InputError(
            f"{run.path} has no {CHECKPOINT} yet (it stopped before its first epoch); start it again with --overwrite"
        )
    changes: dict[str, Any] = {} if epochs is None else {"epochs": epochs}
    for name, moved in (("data_root", data_root), ("unlabelled", unlabelled)):
        if moved is not None:
            changes[name] = str(Path(moved).resolve())
    try:
        config = dataclasses.replace(config, **changes)
    except ValueError as e:
        raise InputError(str(e)) from None
    stored = None
    if config.pseudo_label:
        from ganaug.pseudo import FILE, PseudoLabels

        stored = PseudoLabels.load(run.path / FILE)
    if config.unlabelled is not None and unlabelled_files(config.unlabelled)[1] != meta["data"].get(
        "unlabelled_sha256"
    ):
        raise InputError(
            f"the images under {config.unlabelled} differ from those this run pseudo-labelled; restore them, point "
            "--unlabelled at where they moved, or start a new run"
        )
    config, data, _ = _load_data(config, download=False, pseudo=stored)
    if data.identity["indices_sha256"] != meta["data"].get("indices_sha256") or data.classes != meta["classes"]:
        raise InputError(
            f"the {config.dataset} files under {config.data_root} differ from those this run trained on; "
            f"point --data-root at the original data"
        )
    return config, data


def _progress_bar(total: int, initial: int, *, show: bool):
    from tqdm.auto import tqdm

    show = show and sys.stderr.isatty()
    return tqdm(total=total, initial=initial, unit="step", file=sys.stderr, dynamic_ncols=True, disable=not show)


class GAN:
    """The models of a run and their update rules: G, D, the EMA generator, both Adam optimizers, the AMP
    scalers and the RNG of the real images' augmentation (``aug_rng``, one stream per rank). Weights are drawn
    from a ``torch.Generator`` seeded with ``seed``; ``G_train``/``D_train`` are the DDP wrappers in a torchrun job
    (the plain modules otherwise); the plain ones are what a checkpoint saves."""

    SAVED = ("G", "D", "G_ema", "opt_g", "opt_d", "scaler_g", "scaler_d")

    def __init__(self, config: TrainConfig, device: torch.device, dist: Distributed) -> None:
        self.config, self.device, self.dist = config, device, dist
        self.step = 0  # the training step (set by Trainer.fit): decides the lazy R1 steps
        self.amp = config.amp if config.amp != "auto" else ("bf16" if device.type == "cuda" else "off")
        if self.amp == "fp16" and device.type != "cuda":
            raise InputError("--amp fp16 needs CUDA; use --amp bf16 or off on CPU")
        if self.amp == "bf16" and device.type == "cpu" and not cpu_has_bf16():
            warnings.warn(
                "--amp bf16 on a CPU without bf16 units (AVX-512 BF16 or AMX) is emulated and trains about 15x "
                "slower than fp32; leave out --amp bf16 (and --channels-last) on this CPU",
                stacklevel=2,
            )
        init = torch.Generator().manual_seed(config.seed)
        with torch.random.fork_rng(devices=[]):  # torch's default init (redrawn from ``init``) uses the global RNG
            self.G = dist.prepare(Generator(config.model, generator=init).to(device), device, sync_batchnorm=True)
            self.D = Discriminator(config.model, generator=init).to(device)
        if config.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.G_ema = EMA(self.G, config.ema_decay, config.ema_warmup)
        if config.sample_center_of_mass:  # G trains as it is; its EMA copy (the grids) samples placed
            self.G_ema.module.centre = CenterOfMass()  # the same weights: the move has none
        adam = {"betas": (config.beta1, config.beta2), **({"fused": True} if device.type == "cuda" else {})}
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr_g, **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr_d, **adam)
        self.G_train, self.D_train = dist.wrap(self.G, device), dist.wrap(self.D, device)
        self.D_g = self.D  # the G step's discriminator: the plain D (its gradients there are discarded)
        if config.compile:  # the plain modules stay what checkpoints save; only the calls go through the compiler
            self.D_g = torch.compile(self.D)
            self.G_train = torch.compile(self.G_train)
            self.D_train = self.D_g if self.D_train is self.D else torch.compile(self.D_train)
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=self.amp == "fp16")
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=self.amp == "fp16")
        aug_seed = (config.seed * 1000 + 1 + dist.rank) % _SEED_SPACE
        self.aug_rng = torch.Generator(device=device).manual_seed(aug_seed)

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name).state_dict() for name in self.SAVED}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.SAVED:
            getattr(self, name).load_state_dict(state[name])

    @torch.no_grad()
    def sample(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """EMA generator (eval mode) on latents float [N, z_dim] and labels int64 [N]: float [N, 1, 28, 28] in
        [-1, 1] on the CPU (the run's sample grids; moved to the centre with ``sample_center_of_mass``)."""
        g = self.G_ema.module.eval()
        return g(z.to(self.device), labels.to(self.device)).float().cpu()

    def unwrap(self) -> None:
        """Drop the DDP wrappers (before leaving the process group)."""
        self.G_train, self.D_train = self.G, self.D

    def _autocast(self):
        if self.amp == "off":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if self.amp == "bf16" else torch.float16)

    def d_step(self, real: torch.Tensor, y: torch.Tensor, z: torch.Tensor, *, keep_fake: bool):
        """One discriminator step on real images float [B, 1, 28, 28] in [-1, 1], labels int64 [B] and
        latents float [B, z_dim]; returns (float [3]: D loss, mean D(x), mean D(G(z)); the :class:`StepBatch` for
        the G step)."""
        cfg = self.config
        if cfg.augment_real:
            real = classical(real, self.aug_rng, cfg.augment_real)
        if cfg.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        r1 = cfg.r1_gamma > 0 and self.step % cfg.r1_every == 0  # lazy: every r1_every D steps
        with self._autocast():
            with torch.no_grad() if not keep_fake else nullcontext():
                fake = self.G_train(z, y)
            real_in = real.detach().requires_grad_(True) if r1 else real
            logit_real = self.D_train(real_in, y)
            logit_fake = self.D_train(fake.detach(), y)
            if cfg.loss == "hinge":
                loss = F.relu(1.0 - logit_real).mean() + F.relu(1.0 + logit_fake).mean()
            else:  # BCE with one-sided smoothing: real target 1 - s, fake target 0.
                t = 1.0 - cfg.d_label_smoothing
                loss_real = (t * F.softplus(-logit_real) + (1 - t) * F.softplus(logit_real)).mean()
                loss = loss_real + F.softplus(logit_fake).mean()
            if r1:  # R1: gamma/2 E|grad D(x)|^2 on the reals D saw, weighted by r1_every (lazy)
                (grad,) = torch.autograd.grad(logit_real.float().sum(), real_in, create_graph=True)
                loss = loss + cfg.r1_gamma / 2 * cfg.r1_every * grad.float().square().sum(dim=(1, 2, 3)).mean()
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        with torch.no_grad():
            d_real, d_fake = torch.sigmoid(logit_real.float()).mean(), torch.sigmoid(logit_fake.float()).mean()
            return torch.stack([loss.detach().float(), d_real, d_fake]), StepBatch(fake, y)

    def g_step(self, batch: StepBatch) -> torch.Tensor:
        """One generator step on the batch of the last D step (its fakes must keep G's graph); updates the EMA;
        returns the G loss (float [])."""
        fake, y = batch.fakes, batch.labels
        # The plain D (not its DDP wrapper): D's gradients from this step are discarded, so not all-reduced.
        with self._autocast():
            logit = self.D_g(fake, y)
            # hinge: -D(G(z)); bce: the non-saturating -log D(G(z))
            loss = -logit.mean() if self.config.loss == "hinge" else F.softplus(-logit).mean()
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self.G_ema.update_parameters(self.G)
        return loss.detach().float()


def epoch_order(n: int, weights: torch.Tensor | None, rng: torch.Generator) -> torch.Tensor:
    """The indices int64 [n] of one epoch's images, drawn from ``rng``: a permutation of ``range(n)``, or with
    ``weights`` float [n] (:func:`density_weights`) ``n`` draws with replacement in those proportions."""
    if weights is None:
        return torch.randperm(n, generator=rng, device=rng.device)
    return torch.multinomial(weights, n, replacement=True, generator=rng)


def density_weights(
    images: torch.Tensor, labels: torch.Tensor, exponent: float, *, k: int = DENSITY_K, clip: float = 1.0
) -> torch.Tensor | None:
    """``TrainConfig.flatten_density``'s sampling probabilities float [N] (summing to 1) for images float [N, C, H,
    W] with labels int64 [N]: ``d ** exponent`` for each image's pixel distance ``d`` to its ``k``-th nearest other
    image of its class (the class's last neighbour when it has fewer), capped at the ``clip`` quantile of its
    class's distances, normalized so each class keeps its share of the data. A class of one image, or of
    identical images, gets equal weights. Cost: a k-NN search within each class (all of MNIST: seconds). None
    when ``exponent`` is 0 (uniform: :func:`epoch_order` then permutes)."""
    if not exponent:
        return None
    weights = torch.zeros(len(labels), dtype=torch.float64, device=labels.device)
    for c in labels.unique():
        members = (labels == c).nonzero().squeeze(1)
        d, cap = class_density_distances(images[members].flatten(1).float(), k=k, clip=clip)
        d = d.clamp_max(cap)
        w = d.clamp_min(1e-6) ** exponent if d.max() > 0 else torch.ones_like(d)
        weights[members] = w / w.sum() * len(members) / len(labels)
    return weights.float()


def _images_per_second(trainer: Trainer) -> float:
    """Training images a second of the steps this process ran (NaN before any)."""
    seconds = trainer.train_seconds - trainer._start_seconds
    return (trainer.total_steps - trainer._start_step) * trainer.batch_size / seconds if seconds else float("nan")


def _summary(trainer: Trainer) -> dict[str, Any]:
    """What summary.json records of a finished run: steps, time, throughput, model cost and where it ran."""
    ips = _images_per_second(trainer)
    return {
        "steps": trainer.step,
        "epochs": trainer.step // trainer.batches_per_epoch,
        "batch_size": trainer.batch_size,
        "train_seconds": round(trainer.train_seconds, 3),
        "train_images_per_second": round(ips, 1) if math.isfinite(ips) else None,
        "processes": trainer.dist.world,
        "generator_mflop_per_image": generator_flops(trainer.config.model) / 1e6,
        "discriminator_mflop_per_image": discriminator_flops(trainer.config.model) / 1e6,
        "device": str(trainer.device),
        "torch_threads": torch.get_num_threads(),
    }


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (oneDNN's check: AVX-512 BF16 or AMX); True when torch cannot tell."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True


class Trainer:
    """Trains one run in ``run_dir`` (:meth:`new` or :meth:`resume`, then :meth:`fit`); classes come from the data."""

    def __init__(
        self,
        config: TrainConfig,
        run: RunFolder | str | Path,
        data: TrainingData,
        *,
        progress: bool = True,
    ) -> None:
        self.config, self.data, self.progress = config, data, progress
        self.run = run if isinstance(run, RunFolder) else RunFolder(run)
        self.run_dir = self.run.path
        self.device = resolve_device(config.device)
        if config.model.num_classes != len(data.classes):
            raise InputError(f"model has {config.model.num_classes} classes but the data has {len(data.classes)}")
        n = self.batch_size = config.batch_size
        if n > len(data.labels):
            raise InputError(f"--batch-size {n} is larger than the {len(data.labels)} training images; choose fewer")
        if config.sample_center_of_mass:
            check_centred(data.images)
        self.dist = Distributed.from_env(self.device)
        if n % self.dist.world:
            raise InputError(f"--batch-size {n} must be a multiple of the {self.dist.world} processes")
        self.gan = GAN(config, self.device, self.dist)
        self.rng = torch.Generator(device=self.device).manual_seed(config.seed)  # batch order and z, all ranks
        # The whole training set lives on the device; batches are gathered by index (no DataLoader).
        self.images, self.labels = data.images.to(self.device), data.labels.to(self.device)
        # sampling probabilities float [N] (flatten_density), or None: each image once an epoch
        self.weights = density_weights(self.images, self.labels, config.flatten_density, clip=config.density_clip)
        self.batches_per_epoch = len(self.labels) // n
        self.total_steps = config.epochs * self.batches_per_epoch
        self.step = self._start_step = 0
        self.train_seconds = self._start_seconds = 0.0
        self.grid_z, self.grid_labels = fixed_grid_inputs(config.model, seed=config.seed)

    @classmethod
    def new(
        cls,
        config: TrainConfig,
        run_dir: str | Path,
        *,
        overwrite: bool = False,
        progress: bool = True,
        pseudo: PseudoLabels | None = None,
    ) -> Trainer:
        """Start a run in ``run_dir`` (missing, empty, or with ``overwrite`` a ganaug run: :meth:`RunFolder.check_new`);
        all is checked before anything is written; paths are stored absolute. ``pseudo``: pseudo-labels made
        beforehand for a ``config.pseudo_label`` run (the benchmark needs their count), else made here."""
        run = RunFolder.check_new(run_dir, overwrite=overwrite, read=_image_folders(config))
        check_can_create(run_dir)  # os.access says yes to root under /proc, where the lock cannot be made
        config, data, pseudo = _load_data(config, download=config.download, pseudo=pseudo)
        config = with_step_budget(config, len(data.labels))  # the epochs of a step budget, now the images are known
        trainer = cls(config, run, data, progress=progress)
        trainer.dist.barrier()  # every rank has looked at the folder before rank 0 writes to it
        if trainer.dist.is_writer:
            run.acquire()
            run.create(replace=overwrite)
            trainer._write_config()
            run.write_indices(data.indices, pseudo)
        return trainer

    @classmethod
    def resume(
        cls,
        run_dir: str | Path,
        *,
        epochs: int | None = None,
        data_root: str | Path | None = None,
        unlabelled: str | Path | None = None,
        progress: bool = True,
    ) -> Trainer:
        """Continue ``run_dir`` from its checkpoint up to its configured (or a new) total of ``epochs``, reading moved
        data from ``data_root`` / ``unlabelled``; metrics.csv drops rows logged after the checkpoint (no step twice)."""
        run = RunFolder(run_dir)
        config, data = _reopen(run, epochs=epochs, data_root=data_root, unlabelled=unlabelled)
        trainer = cls(config, run, data, progress=progress)
        if trainer.dist.is_writer:
            run.acquire()
        try:
            trainer._restore(load_checkpoint(run.path / CHECKPOINT, map_location=trainer.device))
            if trainer.dist.is_writer:
                run.truncate_metrics(trainer.step)
                trainer._write_config()
        except BaseException:
            run.release()
            raise
        return trainer

    def fit(self) -> TrainResult:
        """Train up to ``total_steps``; writes metrics, grids, checkpoints, the GIF and the loss plot."""
        cfg, gan, bs = self.config, self.gan, self.batch_size
        bar = _progress_bar(self.total_steps, self.step, show=self.progress and self.dist.is_writer)
        # d_loss, g_loss, D(x), D(G(z)) summed on the device since the last log: no host sync per step.
        sums = torch.zeros(4, device=self.device)
        d_count = g_count = 0
        mine = self.dist.local_slice(bs)
        try:
            with cudnn_autotune(self.device):
                while self.step < self.total_steps:
                    epoch = self.step // self.batches_per_epoch
                    perm = epoch_order(len(self.labels), self.weights, self.rng)
                    t0 = time.perf_counter()
                    for b in range(self.step % self.batches_per_epoch, self.batches_per_epoch):
                        idx = perm[b * bs : (b + 1) * bs][mine]
                        z = torch.randn(bs, cfg.model.z_dim, generator=self.rng, device=self.device)[mine]
                        update_g = self.step % cfg.d_steps == cfg.d_steps - 1
                        gan.step = self.step
                        d_stats, batch = gan.d_step(self.images[idx], self.labels[idx], z, keep_fake=update_g)
                        sums[[0, 2, 3]] += d_stats
                        d_count += 1
                        if update_g:
                            sums[1] += gan.g_step(batch)
                            g_count += 1
                        self.step += 1
                        bar.update(1)
                        if self.step % cfg.log_every == 0 or b == self.batches_per_epoch - 1:
                            counts = torch.tensor([d_count, max(g_count, 1), d_count, d_count], device=self.device)
                            vals = self.dist.mean(sums / counts).tolist()  # waits for the device
                            self.train_seconds += time.perf_counter() - t0
                            self._log(vals, epoch)
                            bar.set_postfix(d=f"{vals[0]:.3f}", g=f"{vals[1]:.3f}", epoch=epoch + 1)
                            sums.zero_()
                            d_count = g_count = 0
                            t0 = time.perf_counter()
                    self._end_epoch(epoch + 1)
                self._finish()
            self.dist.barrier()  # ranks leave together: gloo aborts a process whose peer tears down mid-call
        finally:
            bar.close()
            gan.unwrap()
            self.dist.shutdown()
            self.run.release()
        return TrainResult(
            self.run_dir, self.step, self.step // self.batches_per_epoch, self.train_seconds, _images_per_second(self)
        )

    def _log(self, vals: list[float], epoch: int) -> None:
        if not all(math.isfinite(v) for v in vals):
            raise TrainingDiverged(
                f"losses became non-finite at step {self.step} (D {vals[0]}, G {vals[1]}); the last good checkpoint "
                f"in {self.run_dir / CHECKPOINT} is kept; try lower learning rates (--lr-g, --lr-d)"
            )
        if self.dist.is_writer:
            row = [self.step, epoch + 1, *vals, round(self.train_seconds, 3)]
            self.run.append_metrics(dict(zip(METRICS_FIELDS, row, strict=True)))

    def _end_epoch(self, epoch: int) -> None:
        if epoch % self.config.save_every and self.step < self.total_steps:
            return
        aug_states = self.dist.gather(self.gan.aug_rng.get_state())
        if self.dist.is_writer:
            self.run.save_epoch_grid(self.gan.sample(self.grid_z, self.grid_labels), epoch, nrow=GRID_COLUMNS)
            save_checkpoint(self._checkpoint_state(aug_states), self.run_dir / CHECKPOINT)

    def _finish(self) -> None:
        if not self.dist.is_writer:
            return
        summary = _summary(self)
        self.run.finish(self.gan.sample(self.grid_z, self.grid_labels), summary, nrow=GRID_COLUMNS)
        if self.config.export_onnx:
            from ganaug.export import export_onnx

            export_onnx(self.run_dir)

    def _write_config(self) -> None:
        meta = {"torch_version": torch.__version__, "config": self.config.to_dict(), "data": self.data.identity}
        meta |= {"classes": self.data.classes, "device": str(self.device), "amp": self.gan.amp}
        meta |= {"batch_size": self.batch_size, "processes": self.dist.world, "total_steps": self.total_steps}
        self.run.write_config(meta)

    def _checkpoint_state(self, aug_states: list[torch.Tensor]) -> dict[str, Any]:
        from ganaug import __version__

        run = {"ganaug_version": __version__, "config": self.config.to_dict(), "classes": self.data.classes}
        run |= {"step": self.step, "train_seconds": self.train_seconds}
        return {**run, **self.gan.state_dict(), "rng": self.rng.get_state(), "aug_rng": aug_states}

    def _restore(self, state: dict[str, Any]) -> None:
        if len(state["aug_rng"]) != self.dist.world:
            raise InputError(f"this run was checkpointed by {len(state['aug_rng'])} processes; resume it with as many")
        self.gan.load_state_dict(state)
        self.rng.set_state(state["rng"].cpu())
        self.gan.aug_rng.set_state(state["aug_rng"][self.dist.rank].cpu())
        self.step = self._start_step = int(state["step"])
        self.train_seconds = self._start_seconds = float(state["train_seconds"])
        if self.step > self.total_steps:
            raise InputError(
                f"the run is already at step {self.step}, past the asked total of {self.total_steps}; ask for more --epochs"
            )
