"""Data-parallel training under ``torchrun``: what :func:`physnode.fit` does when a
``torch.distributed`` process group with more than one rank is initialised.

Every rank holds the whole data set and draws the same seeded order of training rows; each
minibatch is split row-wise, rank ``r`` taking rows ``r, r + N, r + 2N, …``. A rank's loss is
its rows' mean weighted by its share of the minibatch, and the gradients are summed over the
ranks with one ``all_reduce`` per step, so every rank takes exactly the step a single process
takes on the whole minibatch (to the rounding of a different summation order). Validation
losses are reduced the same way, so learning-rate halvings, convergence and early stopping
happen on every rank at the same epoch. Only rank 0 writes checkpoints and shows progress; a
checkpoint resumes on any number of ranks that all see it (a shared file system when the
ranks are on several machines).

Before training the ranks compare what they are about to fit (the number of training and
validation rows, a checksum of them, the stages): ranks that were given different data or
settings get a ``ValueError`` instead of a silent average of unrelated models. An error on
one rank's rows (a singular mass matrix, a failed rollout) is announced to the others in the
same reduction as the loss, so every rank raises instead of waiting for it.

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
    def device(self) -> torch.device:
        """Where this rank's small reductions live: its GPU under NCCL, else the CPU."""
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    @property
    def main(self) -> bool:
        """Whether this rank writes files and shows progress."""
        return self.rank == 0

    def rows(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a minibatch's row indices."""
        return idx[self.rank::self.size]

    def sum_or_raise(self, compute) -> tuple[torch.Tensor, torch.Tensor]:
        """``(value, total)``: this rank's ``compute()`` and its sum over the ranks. When
        ``compute`` raises on any rank, every rank raises (this one its own error, the others
        a ``RuntimeError`` naming the ranks that failed) instead of waiting for it."""
        error = None
        try:
            value = compute()
        except Exception as caught:                     # announced, then raised below
            error, value = caught, None
        failed = torch.zeros(self.size, dtype=torch.float64, device=self.device)
        failed[self.rank] = error is not None
        local = torch.zeros((), dtype=torch.float64, device=self.device) if value is None \
            else value.detach().to(self.device, torch.float64, copy=True)
        both = torch.cat([local.reshape(1), failed])
        dist.all_reduce(both, op=dist.ReduceOp.SUM)
        if error is not None:
            raise error
        if both[1:].any():
            ranks = both[1:].nonzero().reshape(-1).tolist()
            raise RuntimeError(f"data-parallel fit stopped: rank(s) {ranks} raised (their "
                               f"error is in their own output)")
        return value, both[0].to(value)

    def check_same(self, name: str, fingerprint: torch.Tensor) -> None:
        """Raise ``ValueError`` on every rank unless ``fingerprint`` (float64 numbers that
        describe what this rank is about to do) is the same on all ranks."""
        fingerprint = fingerprint.to(self.device, torch.float64)
        low, high = fingerprint.clone(), fingerprint.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        if not torch.equal(low, high):
            raise ValueError(f"data-parallel fit: the ranks differ in {name}; every rank must "
                             f"call fit with the same data and settings (or pass "
                             f"distributed=False to train each rank on its own)")

    def agree(self, ok: bool, what: str) -> None:
        """Raise on every rank unless ``ok`` holds on every rank (rank 0 writing a file, say,
        while the others wait)."""
        flag = torch.tensor([0.0 if ok else 1.0], dtype=torch.float64, device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.SUM)
        if flag.item() and ok:
            raise RuntimeError(f"data-parallel fit stopped: {what} failed on another rank")

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


def init_from_environment() -> DataParallel | None:
    """Initialise the default process group when launched by ``torchrun`` (``WORLD_SIZE`` above
    1 in the environment and no group yet): NCCL when every rank on this machine has a GPU of
    its own (``LOCAL_WORLD_SIZE`` of them), else gloo. Returns the group, or None in a single
    process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() \
            and not dist.is_initialized():
        local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        dist.init_process_group("nccl" if gpus >= local else "gloo")
    return DataParallel.current()


def rank_device(group: DataParallel | None) -> torch.device | None:
    """The device a rank trains on by default: under NCCL its own GPU (``LOCAL_RANK``, made
    the current device), else None (the model's own)."""
    if group is not None and dist.get_backend() == "nccl":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
        return device
    return None


def finish() -> None:
    """Tear down a process group that :func:`init_from_environment` started."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
