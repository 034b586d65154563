"""Accelerations from a Lagrangian by the Euler–Lagrange equations.

For a state ``y = concat(q, q̇)``, ``d/dt ∂L/∂q̇ = ∂L/∂q`` expands to
``(∂²L/∂q̇²) q̈ = ∂L/∂q − (∂²L/∂q̇∂q) q̇``, solved per sample by a batched linear solve.
A singular ``∂²L/∂q̇²`` raises :class:`physnode.IntegrationError` (never a pseudo-inverse).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._validation import IntegrationError, check_int, check_state
from .hamiltonian import gradient


def velocity_names(dof: int) -> tuple[str, ...]:
    if dof == 1:
        return ("q", "qdot")
    return tuple(f"q{i + 1}" for i in range(dof)) + tuple(f"qdot{i + 1}" for i in range(dof))


def euler_lagrange_acceleration(L: Callable[[torch.Tensor], torch.Tensor],
                                y: torch.Tensor, dof: int,
                                extra_force: torch.Tensor | None = None) -> torch.Tensor:
    """``q̈`` of shape ``(*batch, dof)`` from ``L(concat(q, q̇))`` at states ``(*batch, 2*dof)``.

    ``extra_force`` (``(*batch, dof)``) is a non-conservative generalised force added to
    ``∂L/∂q`` (e.g. Rayleigh dissipation ``−D q̇``).

    The Hessian rows come from ``dof`` backward passes of ``∂L/∂q̇``; they keep their graph when
    gradients are enabled so the result can be trained through. There, when ``L`` has
    ``velocity_derivatives(y)`` returning ``(∂L/∂y, ∂(∂L/∂q̇)/∂y)`` in closed form (a learned
    Lagrangian has), those are used instead: training through them needs only first-order
    autograd, 1.5× faster than through the backward passes. Without a graph the backward
    passes are used: they are faster at the small batches integrations run at (see
    ``benchmarks/RESULTS.md``).
    """
    keep_graph = torch.is_grad_enabled()
    closed_form = getattr(L, "velocity_derivatives", None) if keep_graph else None
    pair = closed_form(y) if closed_form is not None else None
    if pair is not None:
        grad, hess = pair
    else:
        with torch.enable_grad():
            y_in = y if y.requires_grad else y.detach().requires_grad_(True)
            grad = gradient(L, y_in)  # graph kept: enable_grad is on here
            rows = [torch.autograd.grad(grad[..., dof + i].sum(), y_in, create_graph=keep_graph,
                                        retain_graph=True)[0] for i in range(dof)]
        hess = torch.stack(rows, dim=-2)             # (*batch, dof, 2*dof): ∂(∂L/∂q̇)/∂y
    mass, mixed = hess[..., dof:], hess[..., :dof]         # ∂²L/∂q̇², ∂²L/∂q̇∂q
    qdot = y[..., dof:]
    force = grad[..., :dof] - (mixed @ qdot.unsqueeze(-1)).squeeze(-1)
    if extra_force is not None:
        force = force + extra_force
    if not keep_graph:
        force, mass = force.detach(), mass.detach()
    check_mass_matrix(mass)
    return torch.linalg.solve(mass, force)


def check_mass_matrix(mass: torch.Tensor) -> None:
    """Raise if any ``∂²L/∂q̇²`` in the batch is singular to working precision."""
    sv = torch.linalg.svdvals(mass.detach())
    eps = torch.finfo(mass.dtype).eps
    singular = ~(sv[..., -1] > 100 * eps * sv[..., 0])
    if bool(singular.any()):
        idx = singular.reshape(-1).nonzero().reshape(-1).tolist()
        raise IntegrationError(
            f"the mass matrix ∂²L/∂q̇² is singular at batch samples {idx[:10]}: the Lagrangian "
            f"does not determine the accelerations there", samples=idx)


class LagrangianSystem:
    """The second-order dynamics of a Lagrangian ``L(concat(q, q̇))`` as a first-order system
    ``d/dt concat(q, q̇) = concat(q̇, q̈)``.

    Parameters
    ----------
    L : callable
        Maps states ``(*batch, 2*dof)`` to ``(*batch,)``, twice differentiable by autograd.
    dof : int
        Degrees of freedom.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> L = lambda y: 0.5 * y[..., 1] ** 2 - 0.5 * y[..., 0] ** 2      # harmonic oscillator
    >>> pn.systems.LagrangianSystem(L, dof=1)(0.0, torch.tensor([[1.0, 0.0]])).detach()
    tensor([[ 0., -1.]])
    """

    def __init__(self, L: Callable[[torch.Tensor], torch.Tensor], dof: int):
        if not callable(L):
            raise TypeError(f"`L` must be callable; got {type(L).__name__}")
        self.L = L
        self.dof = check_int("dof", dof, minimum=1)
        self.dim = 2 * self.dof
        self.state_names = velocity_names(self.dof)

    def __call__(self, t, y: torch.Tensor) -> torch.Tensor:
        check_state("y", y, self.dim, type(self).__name__, self.state_names)
        return torch.cat([y[..., self.dof:], euler_lagrange_acceleration(self.L, y, self.dof)],
                         dim=-1)

    def energy(self, y: torch.Tensor) -> torch.Tensor:
        """The energy function ``q̇ · ∂L/∂q̇ − L``, shape ``(*batch,)``."""
        grad = gradient(self.L, y)
        return (y[..., self.dof:] * grad[..., self.dof:]).sum(-1) - self.L(y)
