"""The Trainer: runs the class-conditional DCGAN's training loop in a run folder, with resume that really continues.

The step itself (G, D, the EMA generator, the optimizers, the losses) is :mod:`ganaug.train.gan`'s; which images
an epoch draws is :mod:`ganaug.train.weighting`'s; :mod:`ganaug.train.runfolder` writes the run folder,
:mod:`ganaug.train.checkpoint` the checkpoint and :mod:`ganaug.train.distributed` holds the torchrun plumbing.
A finished run is exported to ONNX (:mod:`ganaug.train.export`) unless ``export_onnx`` is off.

Reproducibility: every random draw of a run (weight init, batch order, z, the real images' augmentation) comes
from the run's seed; a checkpoint holds G, D, the EMA generator, both optimizers, AMP scalers, the step and both
RNG states, so ``--resume`` after an interruption ends bitwise where an uninterrupted run ends on CPU. No
global state is touched: weights are drawn from a seeded ``torch.Generator`` (the global RNG is never
seeded), and ``cudnn.benchmark`` is switched on only inside :meth:`Trainer.fit` on CUDA and restored after.

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ganaug.config import DEFAULT_SAVES, ModelConfig, TrainConfig, epochs_for_steps
from ganaug.data.sources import TrainingData, load_training_data, unlabelled_files
from ganaug.errors import InputError, TrainingDiverged
from ganaug.models.dcgan import CenterOfMass, discriminator_flops, generator_flops
from ganaug.outputs import check_can_create, check_unlocked
from ganaug.train.checkpoint import CHECKPOINT, config_of, load_checkpoint, save_checkpoint
from ganaug.train.distributed import Distributed
from ganaug.train.gan import GAN, SEED_SPACE
from ganaug.train.hardware import cudnn_autotune, resolve_device
from ganaug.train.runfolder import CONFIG, METRICS_FIELDS, RunFolder
from ganaug.train.weighting import density_weights, epoch_order

if TYPE_CHECKING:
    from ganaug.train.pseudo import PseudoLabels

GRID_COLUMNS = 10


def fixed_grid_inputs(
    config: ModelConfig, *, seed: int, columns: int = GRID_COLUMNS
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed ``(z, labels)`` of a run's sample grids: one row per class, ``columns`` samples a row."""
    gen = torch.Generator().manual_seed((seed + 1_000_003) % SEED_SPACE)
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
        from ganaug.train.pseudo import add_pool

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
        from ganaug.train.pseudo import FILE, PseudoLabels

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
        check = self.config.sampling.get("label_check")
        if check:  # what the model's default sampling needs lives beside it (ganaug.train.labelcheck)
            from ganaug.train.labelcheck import write_run_check

            write_run_check(self.run_dir, self.data, seed=self.config.seed, name=check, progress=self.progress)
        if self.config.export_onnx:
            from ganaug.train.export import export_onnx

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
