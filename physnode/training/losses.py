"""Training losses: derivative matching and rollout (multiple shooting).

Both take minibatches of float tensors already on the model's device and dtype.
"""

from __future__ import annotations

import torch

from .._solve import solve
from ..integrators import METHODS


def derivative_loss(model, y: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Mean squared error between ``model(t, y)`` and the target derivatives ``dy``;
    ``y`` and ``dy`` are ``(B, dim)``."""
    return (model(torch.zeros((), dtype=y.dtype, device=y.device), y) - dy).pow(2).mean()


class IntervalField(torch.nn.Module):
    """``model`` in local time ``s``: on ``s ∈ [j, j+1]`` the real step is ``Δt_j`` per sample,
    so ``dy/ds = Δt_j · f(y)``. Windows with different (irregular) times then share one grid
    and integrate as one batch. Scaling a Hamiltonian field by ``Δt_j > 0`` keeps it
    Hamiltonian, so symplectic methods stay symplectic."""

    def __init__(self, model, dt: torch.Tensor):
        super().__init__()
        self.model, self.dt = model, dt                 # dt: (B,) for the current interval

    def forward(self, s, y):
        # Implicit methods evaluate all stages at once: y is (B, stages, dim) then.
        return self.dt.reshape(-1, *([1] * (y.ndim - 1))) * self.model(s, y)


class StretchedField(torch.nn.Module):
    """Like :class:`IntervalField` for states ``concat(y, Δt)``: ``d/ds (y, Δt) =
    (Δt · f(y), 0)``."""

    def __init__(self, model, dim: int):
        super().__init__()
        self.model, self.dim = model, dim

    def forward(self, s, z):
        y, dt = z[..., :self.dim], z[..., self.dim:]
        return torch.cat([dt * self.model(s, y), torch.zeros_like(dt)], -1)


def rollout_loss(model, t: torch.Tensor, y: torch.Tensor, method: str, substeps: int = 2,
                 start: torch.Tensor | None = None, adjoint: bool = False):
    """Multiple-shooting loss: from the first state of each window, integrate through the
    window's own (possibly irregular) times and compare with the observed states.

    ``t`` is ``(B, K)`` and ``y`` is ``(B, K, width)``; each interval between samples takes
    ``substeps`` steps of ``method`` (adaptive methods use their own steps, rtol 1e-6).
    ``start`` (``(B, dim)``, default ``y[:, 0]``) is the state each window starts from; only
    its first ``width`` components are compared (positions-only observations).
    """
    state = y[:, 0] if start is None else start
    width, dim = y.shape[-1], state.shape[-1]
    adaptive = METHODS[method].adaptive if isinstance(method, str) else method.adaptive
    predictions = []
    unit = torch.tensor([0.0, 1.0], dtype=y.dtype, device=y.device)
    for j in range(t.shape[1] - 1):
        dt = t[:, j + 1] - t[:, j]
        if adaptive:
            # Adaptive solves work on a shrinking set of samples, so Δt rides along as a
            # constant state component instead of a per-batch buffer.
            field, state = StretchedField(model, dim), torch.cat([state, dt[:, None]], -1)
        else:
            field = IntervalField(model, dt)
        state = solve(field, state, unit, method=method, dt=1.0 / substeps, rtol=1e-6,
                      atol=1e-8, adjoint=adjoint).ys[-1][..., :dim]
        predictions.append(state[..., :width])
    return (torch.stack(predictions, 1) - y[:, 1:]).pow(2).mean()
