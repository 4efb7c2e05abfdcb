"""Where a process sits in a (possibly torchrun-started) run, and rank-sharded evaluation."""

from __future__ import annotations

from dataclasses import dataclass
import datetime
import os
from typing import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """True when started by ``torchrun`` with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes logs, metrics and checkpoints."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op without a process group)."""
        if self.distributed:
            dist.barrier()


def distributed_env() -> DistContext:
    """Read ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` as set by ``torchrun``."""
    try:
        rank = int(os.environ.get('RANK', '0'))
        world = int(os.environ.get('WORLD_SIZE', '1'))
        local = int(os.environ.get('LOCAL_RANK', str(rank)))
    except ValueError as exc:
        raise ValueError(f'bad torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK): {exc}') from exc
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f'bad torchrun environment: RANK={rank}, WORLD_SIZE={world}')
    return DistContext(rank, world, local)


def init_distributed(ctx: DistContext, device: torch.device) -> None:
    """Start the process group: NCCL for CUDA devices, gloo on CPU."""
    if not ctx.distributed or dist.is_initialized():
        return
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    backend = 'nccl' if device.type == 'cuda' else 'gloo'
    # Rank 0 evaluates and writes checkpoints while the others wait; allow for a long pause.
    dist.init_process_group(backend=backend, rank=ctx.rank, world_size=ctx.world_size,
                            timeout=datetime.timedelta(hours=2))


def shutdown_distributed() -> None:
    """Destroy the process group if one is running."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class ShardSampler(Sampler):
    """Indices ``rank, rank + world, ...`` without padding.

    Unlike ``DistributedSampler`` no sample is repeated, so the confusion matrix summed over
    ranks equals the single-process one (same mIoU as ``smmcl-evaluate``).
    """

    def __init__(self, length: int, rank: int, world_size: int):
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def eval_loader(dataset: Dataset, workers: int, ctx: DistContext) -> DataLoader:
    """Batch-1 loader (images may differ in size), sharded over ranks without padding."""
    return DataLoader(dataset, batch_size=1, shuffle=False, num_workers=workers,
                      sampler=ShardSampler(len(dataset), ctx.rank, ctx.world_size))
