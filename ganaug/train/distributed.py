"""torchrun plumbing for training: process group, DDP wrapping, collective helpers, teardown.

``torchrun --nproc-per-node N -m ganaug train ...`` sets ``WORLD_SIZE`` > 1; every process then joins one
process group (NCCL on CUDA, gloo on CPU). Without torchrun, :class:`Distributed` is the one-process
identity (``world == 1``) and every helper is a no-op, so the training loop is written once.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


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
        """Rank 0 alone writes files."""
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

    def local_slice(self, global_batch: int) -> slice:
        """This rank's rows of a global batch of ``global_batch`` (which the world size divides)."""
        local = global_batch // self.world
        return slice(self.rank * local, (self.rank + 1) * local)

    def prepare(self, module: nn.Module, device: torch.device, *, sync_batchnorm: bool = False) -> nn.Module:
        """``module`` with SyncBatchNorm on CUDA (global batch statistics, as in one process) when asked."""
        if sync_batchnorm and self.active and device.type == "cuda":
            return nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return module

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """``module`` in DistributedDataParallel in a torchrun job, else ``module`` itself."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(module, device_ids=[device.index] if device.type == "cuda" else None)

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean of ``values`` over ranks (in place; ``values`` itself on one process)."""
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(values)
            values /= self.world
        return values

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (``[obj]`` on one process)."""
        if not self.active:
            return [obj]
        import torch.distributed as dist

        objs: list[Any] = [None] * self.world
        dist.all_gather_object(objs, obj)
        return objs

    def shutdown(self) -> None:
        """Leave the process group. Call after dropping every DDP wrapper: their reducers hold gloo work
        objects which, freed during interpreter shutdown instead, can abort the process (SIGABRT)."""
        if self.active:
            import torch.distributed as dist

            gc.collect()
            dist.destroy_process_group()
