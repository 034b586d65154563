"""Batched simplified Newton for the stage equations of implicit Runge–Kutta methods.

The stage increments ``Z`` (``(B, s, n)``) solve ``Z = h (A ⊗ I) F(t + c h, y + Z)``. Each
sample iterates with its own matrix ``I − h (A ⊗ J)`` (one LU per sample, reused over the
iterations) and its own convergence test (Hairer & Wanner, *Solving ODEs II*, §IV.8): with
contraction rate ``θ``, a sample has converged when ``θ/(1−θ)·‖ΔZ‖ ≤ tol`` and is declared
divergent when ``θ ≥ 1`` or the predicted error after the remaining iterations exceeds ``tol``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from .._validation import check_int, check_real

#: From this many state components on, the Jacobian's rows come from one batched reverse pass
#: (``is_grads_batched``) instead of one pass per row: 7-10x faster at n = 50-400, and 2x
#: slower for a small network field at n = 4 (``benchmarks/RESULTS.md``).
BATCHED_ROWS = 16


def jacobian(f, t, y: torch.Tensor, jac=None, sparsity=None) -> torch.Tensor:
    """``∂f/∂y`` at ``(t, y)`` for a batch ``(*batch, n)``; returns ``(*batch, n, n)``.

    Uses ``jac(t, y)`` when given, otherwise reverse mode through ``f`` (works for any
    autograd-differentiable ``f``, including Hamiltonian fields that differentiate inside): all
    ``n`` rows in one vectorised pass from ``BATCHED_ROWS`` components on (one pass per row
    when ``f`` has an operation without a vectorising rule, and below that size). With a
    :class:`~physnode.integrators.linalg.Sparsity`, one vectorised pass per colour of rows.
    Batch samples must be independent, as everywhere in physnode.
    """
    if jac is not None:
        return jac(t, y)
    n = y.shape[-1]
    with torch.enable_grad():
        y_in = y.detach().requires_grad_(True)
        fy = f(t, y_in)
        if not fy.requires_grad:           # f does not depend on y
            return y.new_zeros((*y.shape, n))
        # Complex states: the gradient of Re f_i is the conjugate of row i of the complex
        # derivative of a holomorphic f.
        part = torch.real if fy.is_complex() else (lambda x: x)
        if sparsity is not None:
            J = _batched_rows(part(fy), y_in, sparsity)
        elif n >= BATCHED_ROWS:
            J = _batched_rows(part(fy), y_in)
        else:
            J = None
        if J is None:
            rows = [torch.autograd.grad(part(fy[..., i]).sum(), y_in, retain_graph=i < n - 1,
                                        allow_unused=True, materialize_grads=True)[0]
                    for i in range(n)]
            J = torch.stack(rows, dim=-2)
    J = J.detach()
    return J.conj() if J.is_complex() else J


def _batched_rows(fy: torch.Tensor, y: torch.Tensor, sparsity=None) -> torch.Tensor | None:
    """Every row of ``∂fy/∂y`` from one vectorised reverse pass (seeded by the rows, or by
    the colours of a sparsity pattern), or None when an operation of ``f`` cannot be
    vectorised."""
    n = fy.shape[-1]
    if sparsity is not None:
        basis = sparsity.seeds(fy)
    else:
        eye = torch.eye(n, dtype=fy.dtype, device=fy.device)
        basis = eye.reshape(n, *([1] * (fy.ndim - 1)), n).expand(n, *fy.shape)
    try:
        with warnings.catch_warnings():     # "no batching rule, falling back to a loop"
            warnings.simplefilter("ignore", UserWarning)
            (grad,) = torch.autograd.grad(fy, y, basis, retain_graph=True, allow_unused=True,
                                          is_grads_batched=True)
    except RuntimeError:
        return None
    if grad is None:                       # f depends on parameters only, not on y
        return y.new_zeros((*y.shape, n))
    return grad.movedim(0, -2) if sparsity is None else sparsity.expand(grad)


def newton_matrix(A: torch.Tensor, h: torch.Tensor, J: torch.Tensor) -> torch.Tensor:
    """``I − h (A ⊗ J)`` for ``A (s, s)``, ``h (B, 1)``, ``J (B, n, n)`` or per-stage
    ``J (B, s, n, n)``; returns ``(B, s·n, s·n)``."""
    B, n = J.shape[0], J.shape[-1]
    s = A.shape[0]
    if J.ndim == 3:
        blocks = A[None, :, None, :, None] * J[:, None, :, None, :]
    else:  # block (i, j) = a_ij J_j
        blocks = A[None, :, None, :, None] * J.permute(0, 2, 1, 3)[:, None, :, :, :]
    M = -h.reshape(B, 1, 1, 1, 1) * blocks
    M = M.reshape(B, s * n, s * n)
    return M + torch.eye(s * n, dtype=J.dtype, device=J.device)


def stage_times(t, h, c: torch.Tensor):
    """Times of the stages: ``(B, s)`` for per-sample ``t (B,)``, ``h (B, 1)``."""
    return t.unsqueeze(-1) + h * c


def stage_residual(f, t, y, h, A, c, Z):
    """``G(Z) = Z − h (A ⊗ I) F(t + c h, y + Z)`` for ``Z (B, s, n)``; returns ``(G, F)``."""
    F = f(stage_times(t, h, c), y.unsqueeze(-2) + Z)
    return torch.addcmul(Z, h.unsqueeze(-1), A.to(F.dtype) @ F, value=-1), F


@dataclass(frozen=True)
class Newton:
    """Options of the simplified Newton iteration.

    Parameters
    ----------
    max_iter : int
        Iterations before a sample is declared non-convergent (its step is then retried
        smaller).
    tol : float or None
        Convergence tolerance on the weighted norm of the increment. ``None``: derived from
        the solve's ``rtol`` for adaptive methods (``max(10 ε/rtol, min(0.03, √rtol))``, as in
        Hairer's RADAU5) and iterate to round-off for fixed-step methods (needed for
        symplecticity).
    """

    max_iter: int = 7
    tol: float | None = None

    def __post_init__(self):
        check_int("max_iter", self.max_iter, minimum=1)
        if self.tol is not None:
            check_real("tol", self.tol, positive=True)


def dense_solver(lu):
    """The Newton step ``(I − h (A ⊗ J))⁻¹ G`` from the LU factors of the whole
    ``(s·n) × (s·n)`` matrix (a :class:`~physnode.integrators.linalg.DenseLU`): a function of
    ``G (B, s, n)``."""
    def solve(G):
        return lu.solve(G.reshape(G.shape[0], -1)).reshape(G.shape)
    return solve


def newton_solve(f, t, y, h, A, c, solve, scale, tol, max_iter, Z0=None, floor=0.0):
    """Solve the stage equations per sample.

    Parameters are batched: ``t (B,)``, ``y (B, n)``, ``h (B, 1)``; ``solve(G)`` applies
    ``(I − h (A ⊗ J))⁻¹`` to ``G (B, s, n)`` (:func:`dense_solver`, or a method's own
    transformed solve); ``scale (B, n)`` the error weights. ``floor`` accepts any increment
    whose norm is below it (round-off level, for fixed-step methods).

    Returns ``Z (B, s, n)``, ``converged (B,)``, ``iterations (B,)``, ``rate (B,)`` and
    ``F`` (stage derivatives at the last iterate).
    """
    B, n = y.shape
    s = A.shape[0]
    A = A.to(y.dtype)                                         # complex states: complex A
    Z = y.new_zeros((B, s, n)) if Z0 is None else Z0
    weights = (1 / scale).unsqueeze(-2) * (s * n) ** -0.5     # RMS over stages and components
    times, base, h3 = stage_times(t, h, c), y.unsqueeze(-2), h.unsqueeze(-1)
    active = torch.ones(B, dtype=torch.bool, device=y.device)
    converged = torch.zeros_like(active)
    iterations = torch.zeros(B, dtype=torch.long, device=y.device)
    rate = scale.new_zeros(B)
    previous = F = None
    for k in range(max_iter):
        F = f(times, base + Z)
        G = torch.addcmul(Z, h3, A @ F, value=-1)                 # Z − h (A ⊗ I) F
        dZ = solve(G)
        norm = torch.linalg.vector_norm(dZ * weights, dim=(-2, -1))
        Z = torch.where(active[:, None, None], Z - dZ, Z)
        iterations += active
        if previous is None:      # no rate yet: only an exact (or round-off) solution stops
            done = norm <= floor
            hopeless = ~torch.isfinite(norm)
        else:
            rate = torch.where(active, norm / previous, rate)
            predicted = rate * norm / (1 - rate)                  # θ/(1−θ)·‖ΔZ‖
            contracting = rate < 1
            done = (norm <= floor) | contracting & (predicted <= tol)
            # NaN fails every comparison, so it lands here too.
            hopeless = ~done & ~(contracting & (predicted * rate.pow(max_iter - 1 - k) <= tol))
        converged |= active & done
        active &= ~done & ~hopeless
        previous = norm
        if not bool(active.any()):
            break
    return Z, converged, iterations, rate, F
