"""Data-parallel training under ``torchrun``: what :func:`physnode.fit` does when a
``torch.distributed`` process group with more than one rank is initialised.

Every rank holds the whole data set and draws the same seeded order of training rows; each
minibatch is split row-wise, rank ``r`` taking rows ``r, r + N, r + 2N, …``. A rank's loss is
its rows' mean weighted by its share of the minibatch, and the gradients are summed over the
ranks with one ``all_reduce`` per step, so every rank takes exactly the step a single process
takes on the whole minibatch (to the rounding of a different summation order). Validation
losses are reduced the same way, so learning-rate halvings, convergence and early stopping
happen on every rank at the same epoch. Only rank 0 writes checkpoints and shows progress; a
checkpoint resumes on any number of ranks.

The gradients are reduced by hand rather than through ``DistributedDataParallel``: the
models call themselves many times per loss (one call per integrator stage) and take input
gradients inside ``forward``, which DDP's reducer does not follow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True, kw_only=True)
class DataParallel:
    """The process group of a data-parallel fit: this process's ``rank`` of ``size``."""

    rank: int
    size: int

    @classmethod
    def current(cls) -> DataParallel | None:
        """The initialised default process group, or None outside one (or with one rank)."""
        if not (dist.is_available() and dist.is_initialized()):
            return None
        size = dist.get_world_size()
        return cls(rank=dist.get_rank(), size=size) if size > 1 else None

    @property
    def main(self) -> bool:
        """Whether this rank writes files and shows progress."""
        return self.rank == 0

    def rows(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a minibatch's row indices."""
        return idx[self.rank::self.size]

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of ``value`` over the ranks (every rank gets the same result)."""
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value

    def sum_gradients(self, parameters) -> None:
        """Replace each parameter's gradient by its sum over the ranks, in one reduction; a
        gradient that is None on every rank stays None (as it would in one process)."""
        parameters = [p for p in parameters if p.requires_grad]
        if not parameters:
            return
        like = parameters[0]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in parameters]
                         + [torch.tensor([float(p.grad is not None) for p in parameters],
                                         dtype=like.dtype, device=like.device)])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        present = flat[-len(parameters):] > 0
        offset = 0
        for p, has_grad in zip(parameters, present.tolist()):
            n = p.numel()
            if has_grad:
                p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n

    def broadcast(self, module: torch.nn.Module) -> None:
        """Give every rank rank 0's parameters and buffers (as DistributedDataParallel does
        when it wraps a model)."""
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)

    def barrier(self) -> None:
        dist.barrier()


def init_from_environment() -> DataParallel | None:
    """Initialise the default process group when launched by ``torchrun`` (``WORLD_SIZE`` above
    1 in the environment and no group yet): NCCL when CUDA is available, else gloo. Returns
    the group, or None in a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() \
            and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return DataParallel.current()


def rank_device(group: DataParallel | None) -> torch.device | None:
    """The device a rank trains on by default: its own GPU under NCCL (``LOCAL_RANK``), else
    None (the model's own)."""
    if group is not None and dist.get_backend() == "nccl":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return None
