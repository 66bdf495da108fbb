"""The GAN step and its losses: G, D, the EMA generator, both Adam optimizers and their update rules.

Per iteration the discriminator takes one step on a real batch (:meth:`GAN.d_step`); after every ``d_steps`` of
them the generator takes one step (:meth:`GAN.g_step`) with the non-saturating loss ``-log D(G(z))``, or the hinge
loss with a lazy R1 penalty on D (the mnist and fashion-mnist presets). The fakes of the last D step are reused for
the G step (one generator forward per iteration). :class:`ganaug.train.trainer.Trainer` runs the loop.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from ganaug.config import TrainConfig
from ganaug.data.augment_ops import classical
from ganaug.errors import InputError
from ganaug.models.dcgan import CenterOfMass, Discriminator, Generator
from ganaug.train.distributed import Distributed
from ganaug.train.hardware import cpu_has_bf16

SEED_SPACE = 2**64  # torch.Generator.manual_seed takes [0, 2**64); derived seeds wrap around in it


class StepBatch(NamedTuple):
    """What a discriminator step hands to the generator step that follows it."""

    fakes: torch.Tensor  # float [B, 1, 28, 28] in [-1, 1]: G(z, y), with G's graph when the step kept it
    labels: torch.Tensor  # int64 [B]: y, the real images' labels, which the fakes were drawn with


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
        aug_seed = (config.seed * 1000 + 1 + dist.rank) % SEED_SPACE
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
