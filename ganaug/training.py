"""Goodfellow's minimax training of the class-conditional DCGAN, with resume that really continues.

Per iteration the discriminator takes one step on a real batch; after every ``d_steps`` of them the
generator takes one step with the non-saturating loss ``-log D(G(z))``. The fakes of the last D step
are reused for the G step (one generator forward per iteration).

Reproducibility: every random draw of a run (weight init, batch order, z, DiffAugment) comes from the
run's seed; a checkpoint holds G, D, the EMA generator, both optimizers, AMP scalers, the step and every
RNG state, so ``--resume`` after an interruption ends bitwise where an uninterrupted run ends on CPU.

Distributed: launched by ``torchrun --nproc-per-node N -m ganaug train ...`` (``WORLD_SIZE`` > 1), G and D
are wrapped in DistributedDataParallel (NCCL on CUDA, gloo on CPU). ``--batch-size`` stays the global
batch: every rank draws the same permutation and the same global ``z`` and takes its slice, so the ranks
together see exactly the single-process batch. BatchNorm uses SyncBatchNorm on CUDA (global batch
statistics, as in one process); on CPU (gloo has no SyncBatchNorm) each rank normalizes with its own
slice's statistics and DDP broadcasts rank 0's running statistics, so a CPU run is statistically
consistent with, not equal to, the single-process run. Rank 0 alone writes files; a checkpoint holds
every rank's DiffAugment RNG, so resume works across ranks.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from ganaug import __version__, viz
from ganaug.augment_ops import diff_augment, random_affine
from ganaug.config import ModelConfig, TrainConfig
from ganaug.data import TrainingData, load_training_data
from ganaug.errors import InputError, TrainingDiverged
from ganaug.models import Discriminator, Generator, discriminator_flops, generator_flops

CHECKPOINT = "checkpoint.pt"
METRICS_FIELDS = ["step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "wall_time"]
GRID_COLUMNS = 10


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


class EMA(AveragedModel):
    """EMA copy of a generator (parameters and BatchNorm buffers), with a warm-up so short runs move it:
    the decay at update ``n`` is ``min(decay, (1 + n) / (10 + n))``. The update count is kept on the host
    too, so an update never waits for the device, and tensors are updated in one fused call per dtype."""

    def __init__(self, generator: Generator, decay: float) -> None:
        super().__init__(generator, multi_avg_fn=self._lerp, use_buffers=True)
        self.decay = decay
        self.updates = 0

    def _lerp(self, avg: list[torch.Tensor], cur: list[torch.Tensor], n: torch.Tensor) -> None:
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
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
    gen = torch.Generator().manual_seed(seed + 1_000_003)
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


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job (``world == 1`` without one)."""

    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> Distributed:
        """Join the process group torchrun describes in the environment (idempotent)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size())

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()


class Trainer:
    """Trains one run in ``run_dir``. Use :meth:`new` or :meth:`resume`, then :meth:`fit`."""

    def __init__(self, config: TrainConfig, run_dir: Path, data: TrainingData, *, progress: bool = True) -> None:
        self.config = config
        self.run_dir = run_dir
        self.data = data
        self.progress = progress
        self.device = resolve_device(config.device)
        mc = config.model
        if mc.num_classes != len(data.classes):
            raise InputError(f"model has {mc.num_classes} classes but the data has {len(data.classes)}")

        self.dist = Distributed.from_env(self.device)
        if config.batch_size % self.dist.world:
            raise InputError(f"--batch-size {config.batch_size} must be a multiple of the {self.dist.world} processes")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        torch.manual_seed(config.seed)
        self.G = Generator(mc).to(self.device)
        self.D = Discriminator(mc).to(self.device)
        if self.dist.active and self.device.type == "cuda":  # BatchNorm over the global batch
            self.G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
        if config.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.G_ema = EMA(self.G, config.ema_decay)
        betas = (config.beta1, config.beta2)
        fused = {"fused": True} if self.device.type == "cuda" else {}
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr_g, betas=betas, **fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr_d, betas=betas, **fused)
        # The modules that train: DDP wrappers in a torchrun job (the plain G, D and G_ema are what is saved).
        self.G_train, self.D_train = self.G, self.D
        if self.dist.active:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.G_train, self.D_train = DDP(self.G, device_ids=ids), DDP(self.D, device_ids=ids)
        amp = config.amp if config.amp != "auto" else ("bf16" if self.device.type == "cuda" else "off")
        if amp != "off" and self.device.type != "cuda":
            raise InputError(f"--amp {amp} needs CUDA; use --amp off on CPU")
        self.amp = amp
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=amp == "fp16")
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=amp == "fp16")
        # rng: batch order and z, identical on every rank; aug_rng: DiffAugment, one stream per rank.
        self.rng = torch.Generator(device=self.device).manual_seed(config.seed)
        self.aug_rng = torch.Generator(device=self.device).manual_seed(config.seed * 1000 + 1 + self.dist.rank)

        # The whole training set lives on the device; batches are gathered by index (no DataLoader).
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.batch_size = min(config.batch_size, len(self.labels))
        if self.batch_size % self.dist.world:
            raise InputError(
                f"the data has only {len(self.labels)} images, fewer than --batch-size; use a batch that {self.dist.world} processes divide"
            )
        self.batches_per_epoch = len(self.labels) // self.batch_size
        self.total_steps = config.epochs * self.batches_per_epoch
        self.step = self._start_step = 0
        self.train_seconds = self._start_seconds = 0.0
        self.grid_z, self.grid_labels = fixed_grid_inputs(mc, seed=config.seed)

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def new(
        cls, config: TrainConfig, run_dir: str | Path, *, overwrite: bool = False, progress: bool = True
    ) -> Trainer:
        """Start a run in ``run_dir``, which must be empty or missing unless ``overwrite``."""
        run_dir = Path(run_dir)
        if run_dir.exists() and not run_dir.is_dir():
            raise InputError(f"{run_dir} is a file; choose a folder for the run")
        if run_dir.is_dir() and any(run_dir.iterdir()) and not overwrite:
            raise InputError(
                f"run folder {run_dir} is not empty; pass --resume {run_dir} to continue it or --overwrite to replace it"
            )
        data = load_training_data(
            config.dataset,
            root=config.data_root,
            download=config.download,
            per_class=config.per_class,
            seed=config.seed,
        )
        trainer = cls(config, run_dir, data, progress=progress)
        trainer.dist.barrier()  # every rank has looked at the folder before rank 0 writes to it
        if trainer.dist.is_writer:
            if run_dir.is_dir() and overwrite:
                import shutil

                shutil.rmtree(run_dir)
            (run_dir / "samples").mkdir(parents=True, exist_ok=True)
            trainer._write_config()
            np.save(run_dir / "indices.npy", data.indices)
        return trainer

    @classmethod
    def resume(cls, run_dir: str | Path, *, epochs: int | None = None, progress: bool = True) -> Trainer:
        """Continue the run in ``run_dir`` from its checkpoint up to its configured (or a new) total of epochs."""
        run_dir = Path(run_dir)
        if not (run_dir / "config.json").is_file():
            raise InputError(f"{run_dir} is not a ganaug run folder (no config.json); start a new run without --resume")
        if not (run_dir / CHECKPOINT).is_file():
            raise InputError(
                f"{run_dir} has no {CHECKPOINT} yet (it stopped before its first epoch); start it again with --overwrite"
            )
        meta = json.loads((run_dir / "config.json").read_text())
        config = TrainConfig.from_dict(meta["config"])
        if epochs is not None:
            config = TrainConfig.from_dict({**config.to_dict(), "epochs": epochs})
        data = load_training_data(
            config.dataset, root=config.data_root, download=False, per_class=config.per_class, seed=config.seed
        )
        if data.identity["indices_sha256"] != meta["data"]["indices_sha256"]:
            raise InputError(
                f"the {config.dataset} files under {config.data_root} differ from those this run trained on; point --data-root at the original data"
            )
        trainer = cls(config, run_dir, data, progress=progress)
        trainer._load_checkpoint()
        trainer._write_config()
        return trainer

    # ---- training -----------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        """Train up to ``total_steps``; writes metrics, grids, checkpoints, the GIF and the loss plot."""
        from tqdm.auto import tqdm

        cfg = self.config
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            unit="step",
            file=sys.stderr,
            dynamic_ncols=True,
            disable=not (self.progress and self.dist.is_writer and sys.stderr.isatty()),
        )
        # d_loss, g_loss, D(x), D(G(z)) summed on the device since the last log: no host sync per step.
        sums = torch.zeros(4, device=self.device)
        d_count = g_count = 0
        local = self.batch_size // self.dist.world
        mine = slice(self.dist.rank * local, (self.dist.rank + 1) * local)
        try:
            while self.step < self.total_steps:
                epoch = self.step // self.batches_per_epoch
                perm = torch.randperm(len(self.labels), generator=self.rng, device=self.device)
                t0 = time.perf_counter()
                for b in range(self.step % self.batches_per_epoch, self.batches_per_epoch):
                    idx = perm[b * self.batch_size : (b + 1) * self.batch_size][mine]
                    z = torch.randn(self.batch_size, cfg.model.z_dim, generator=self.rng, device=self.device)[mine]
                    update_g = self.step % cfg.d_steps == cfg.d_steps - 1
                    d_stats, fake, y = self._d_step(self.images[idx], self.labels[idx], z, keep_fake=update_g)
                    sums[[0, 2, 3]] += d_stats
                    d_count += 1
                    if update_g:
                        sums[1] += self._g_step(fake, y)
                        g_count += 1
                    self.step += 1
                    bar.update(1)
                    if self.step % cfg.log_every == 0 or b == self.batches_per_epoch - 1:
                        vals = self._mean_over_ranks(sums, d_count, max(g_count, 1))  # waits for the device
                        self.train_seconds += time.perf_counter() - t0
                        row = self._log(vals, epoch)
                        bar.set_postfix(d=f"{row['d_loss']:.3f}", g=f"{row['g_loss']:.3f}", epoch=epoch + 1)
                        sums.zero_()
                        d_count = g_count = 0
                        t0 = time.perf_counter()
                self._end_epoch(epoch + 1)
            bar.close()
            self._finish()
            self.dist.barrier()  # ranks leave together: gloo aborts a process whose peer tears down mid-call
        finally:
            bar.close()
            if self.dist.active:
                import gc

                import torch.distributed as dist

                # Drop the DDP wrappers (their reducers hold gloo work objects) while the interpreter is
                # fully alive: freed during interpreter shutdown they can abort the process (SIGABRT).
                self.G_train, self.D_train = self.G, self.D
                gc.collect()
                dist.destroy_process_group()
        seen = (self.total_steps - self._start_step) * self.batch_size
        return TrainResult(
            self.run_dir,
            self.step,
            self.step // self.batches_per_epoch,
            self.train_seconds,
            seen / self._segment_seconds() if self._segment_seconds() else float("nan"),
        )

    def _segment_seconds(self) -> float:
        return self.train_seconds - self._start_seconds

    def _autocast(self):
        if self.amp == "off":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if self.amp == "bf16" else torch.float16)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.config.diffaugment, self.aug_rng) if self.config.diffaugment else x

    def _d_step(self, real: torch.Tensor, y: torch.Tensor, z: torch.Tensor, *, keep_fake: bool):
        """One discriminator step; returns (stack of D loss, D(x), D(G(z)), fakes, labels)."""
        cfg = self.config
        if cfg.augment_real:
            real = random_affine(real, self.aug_rng)
        if cfg.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            with torch.no_grad() if not keep_fake else nullcontext():
                fake = self.G_train(z, y)
            logit_real = self.D_train(self._augment(real), y)
            logit_fake = self.D_train(self._augment(fake.detach()), y)
            # BCE with one-sided smoothing: real target 1 - s, fake target 0.
            target = 1.0 - cfg.label_smoothing
            loss = (target * F.softplus(-logit_real) + (1 - target) * F.softplus(logit_real)).mean() + F.softplus(
                logit_fake
            ).mean()
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        with torch.no_grad():
            stats = torch.stack(
                [
                    loss.detach().float(),
                    torch.sigmoid(logit_real.float()).mean(),
                    torch.sigmoid(logit_fake.float()).mean(),
                ]
            )
        return stats, fake, y

    def _g_step(self, fake: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # The plain D (not its DDP wrapper): D's gradients from this step are discarded, so not all-reduced.
        with self._autocast():
            loss = F.softplus(-self.D(self._augment(fake), y)).mean()  # non-saturating: -log D(G(z))
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self.G_ema.update_parameters(self.G)
        return loss.detach().float()

    def _mean_over_ranks(self, sums: torch.Tensor, d_count: int, g_count: int) -> list[float]:
        means = sums / torch.tensor([d_count, g_count, d_count, d_count], device=sums.device)
        if self.dist.active:
            import torch.distributed as dist

            dist.all_reduce(means)
            means /= self.dist.world
        return means.tolist()

    def _log(self, vals: list[float], epoch: int) -> dict[str, Any]:
        if not all(math.isfinite(v) for v in vals):
            raise TrainingDiverged(
                f"losses became non-finite at step {self.step} (D {vals[0]}, G {vals[1]}); the last good checkpoint "
                f"in {self.run_dir / CHECKPOINT} is kept; try a lower learning rate, --label-smoothing 0.1 or --spectral-norm"
            )
        row = {
            "step": self.step,
            "epoch": epoch + 1,
            "d_loss": vals[0],
            "g_loss": vals[1],
            "d_real": vals[2],
            "d_fake": vals[3],
            "wall_time": round(self.train_seconds, 3),
        }
        if self.dist.is_writer:
            path = self.run_dir / "metrics.csv"
            new = not path.exists()
            with open(path, "a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=METRICS_FIELDS)
                if new:
                    w.writeheader()
                w.writerow(row)
        return row

    @torch.no_grad()
    def sample_grid(self) -> torch.Tensor:
        """EMA generator (eval mode) on the run's fixed grid inputs: float [C*10, 1, 28, 28] in [-1, 1]."""
        g = self.G_ema.module.eval()
        return g(self.grid_z.to(self.device), self.grid_labels.to(self.device)).float().cpu()

    def _end_epoch(self, epoch: int) -> None:
        if epoch % self.config.save_every and self.step < self.total_steps:
            return
        aug_states = self._gather_aug_states()
        if self.dist.is_writer:
            viz.save_grid(self.sample_grid(), self.run_dir / "samples" / f"epoch_{epoch:04d}.png", nrow=GRID_COLUMNS)
            self._save_checkpoint(aug_states)

    def _gather_aug_states(self) -> list[torch.Tensor]:
        state = self.aug_rng.get_state()
        if not self.dist.active:
            return [state]
        import torch.distributed as dist

        states: list[Any] = [None] * self.dist.world
        dist.all_gather_object(states, state)
        return states

    def _finish(self) -> None:
        if not self.dist.is_writer:
            return
        frames = sorted((self.run_dir / "samples").glob("epoch_*.png"))
        step = max(1, len(frames) // 100)  # at most ~100 GIF frames, always ending on the last grid
        chosen = frames[::-1][::step][::-1]
        viz.save_gif(chosen, self.run_dir / "samples.gif")
        viz.save_grid(self.sample_grid(), self.run_dir / "samples.png", nrow=GRID_COLUMNS)
        if (self.run_dir / "metrics.csv").exists():
            viz.plot_losses(self.run_dir / "metrics.csv", self.run_dir / "losses.png")
        seen = (self.total_steps - self._start_step) * self.batch_size
        summary = {
            "ganaug_version": __version__,
            "steps": self.step,
            "epochs": self.step // self.batches_per_epoch,
            "batch_size": self.batch_size,
            "train_seconds": round(self.train_seconds, 3),
            "train_images_per_second": round(seen / self._segment_seconds(), 1) if self._segment_seconds() else None,
            "processes": self.dist.world,
            "generator_mflop_per_image": generator_flops(self.config.model) / 1e6,
            "discriminator_mflop_per_image": discriminator_flops(self.config.model) / 1e6,
            "device": str(self.device),
            "torch_threads": torch.get_num_threads(),
        }
        _atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2))
        if self.config.export_onnx:
            from ganaug.export import export_onnx

            export_onnx(self.run_dir)

    # ---- files --------------------------------------------------------------------------------

    def _write_config(self) -> None:
        if not self.dist.is_writer:
            return
        meta = {
            "ganaug_version": __version__,
            "torch_version": torch.__version__,
            "config": self.config.to_dict(),
            "data": self.data.identity,
            "classes": self.data.classes,
            "device": str(self.device),
            "amp": self.amp,
            "batch_size": self.batch_size,
            "processes": self.dist.world,
            "total_steps": self.total_steps,
        }
        _atomic_write_text(self.run_dir / "config.json", json.dumps(meta, indent=2))

    def _save_checkpoint(self, aug_states: list[torch.Tensor]) -> None:
        state = {
            "ganaug_version": __version__,
            "config": self.config.to_dict(),
            "classes": self.data.classes,
            "step": self.step,
            "train_seconds": self.train_seconds,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "rng": self.rng.get_state(),
            "aug_rng": aug_states,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
        }
        tmp = self.run_dir / f".{CHECKPOINT}.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.run_dir / CHECKPOINT)

    def _load_checkpoint(self) -> None:
        state = torch.load(self.run_dir / CHECKPOINT, map_location=self.device, weights_only=True)
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        self.rng.set_state(state["rng"].cpu())
        if len(state["aug_rng"]) != self.dist.world:
            raise InputError(f"this run was checkpointed by {len(state['aug_rng'])} processes; resume it with as many")
        self.aug_rng.set_state(state["aug_rng"][self.dist.rank].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        self.step = self._start_step = int(state["step"])
        self.train_seconds = self._start_seconds = float(state["train_seconds"])
        if self.step > self.total_steps:
            raise InputError(
                f"the run is already at step {self.step}, past the asked total of {self.total_steps}; ask for more --epochs"
            )


def load_generator(
    path: str | Path, *, ema: bool = True, device: str | torch.device = "cpu"
) -> tuple[Generator, dict[str, Any]]:
    """The (EMA by default) generator of a run folder or checkpoint file, in eval mode, and the checkpoint's metadata."""
    path = Path(path)
    ckpt = path / CHECKPOINT if path.is_dir() else path
    if not ckpt.is_file():
        raise InputError(f"no checkpoint at {ckpt}; give a run folder or its {CHECKPOINT}")
    state = torch.load(ckpt, map_location=device, weights_only=True)
    config = TrainConfig.from_dict(state["config"])
    g = Generator(config.model).to(device)
    if ema:
        prefix = "module."
        g.load_state_dict({k[len(prefix) :]: v for k, v in state["G_ema"].items() if k.startswith(prefix)})
    else:
        g.load_state_dict(state["G"])
    meta = {k: state[k] for k in ("ganaug_version", "config", "classes", "step")}
    return g.eval(), meta


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
