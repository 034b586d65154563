"""Hamiltonian Neural Networks (Greydanus, Dzamba & Yosinski 2019): a network learns the
energy ``H(q, p)`` and the dynamics are ``J∇H``, so the learned energy is conserved exactly by
the flow and nearly so (no drift) by a symplectic integrator.

``separable=True`` learns ``H = T(p) + V(q)``, for which leapfrog and Yoshida splittings are
exactly symplectic. ``dissipative=True`` adds port-Hamiltonian damping
``ṗ = −∂H/∂q − D ∂H/∂p`` with a learned diagonal ``D ≥ 0`` (softplus): energy can only decrease
through it, and ``D`` is the viscous coefficient ``c`` of a generalised force ``−c q̇``.
"""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_int, check_state
from ..systems.hamiltonian import canonical_names, gradient, symplectic_gradient
from .base import PhysicsModel, ViscousDamping, check_architecture, mlp, mlp_input_gradient


class SeparableEnergy(nn.Module):
    """``H(concat(q, p)) = T(p) + V(q)`` with one network for each part."""

    def __init__(self, dof, hidden, layers, activation):
        super().__init__()
        self.dof = dof
        self.kinetic = mlp(dof, 1, hidden, layers, activation)
        self.potential = mlp(dof, 1, hidden, layers, activation)

    def forward(self, y):
        return (self.kinetic(y[..., self.dof:]) + self.potential(y[..., :self.dof]))[..., 0]

    def gradient(self, y):
        """``∇H = concat(∇V(q), ∇T(p))`` in closed form, or None (use autograd)."""
        dv = mlp_input_gradient(self.potential, y[..., :self.dof])
        dt = mlp_input_gradient(self.kinetic, y[..., self.dof:])
        return None if dv is None or dt is None else torch.cat([dv, dt], -1)


class ScalarNet(nn.Module):
    """An MLP from states to one scalar per state, shape ``(*batch,)``."""

    def __init__(self, n_in, hidden, layers, activation):
        super().__init__()
        self.net = mlp(n_in, 1, hidden, layers, activation)

    def forward(self, y):
        return self.net(y)[..., 0]

    def gradient(self, y):
        """``∇`` of the scalar in closed form, or None (use autograd)."""
        return mlp_input_gradient(self.net, y)


class HNN(PhysicsModel):
    """Hamiltonian neural network on canonical states ``concat(q, p)``.

    Parameters
    ----------
    dof : int
        Degrees of freedom; states have width ``2*dof``.
    hidden, layers : int
        Width and number of hidden layers of the energy network(s).
    separable : bool
        Learn ``H = T(p) + V(q)`` (two networks).
    dissipative : bool
        Add learned non-negative viscous damping ``D`` (``self.damping``, one per dof).
    activation : str
        Smooth activation of the energy network (``"tanh"`` by default).

    Attributes
    ----------
    hamiltonian : nn.Module
        The learned energy, states ``(*batch, 2*dof)`` to ``(*batch,)``.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> hnn = pn.models.HNN(dof=1, hidden=16)
    >>> hnn(0.0, torch.zeros(3, 2)).shape, hnn.energy(torch.zeros(3, 2)).shape
    (torch.Size([3, 2]), torch.Size([3]))
    """

    def __init__(self, dof: int, hidden: int = 200, layers: int = 2, separable: bool = False,
                 dissipative: bool = False, activation: str = "tanh"):
        super().__init__()
        check_int("dof", dof, minimum=1)
        check_architecture(hidden, layers)
        self.config = {"dof": dof, "hidden": hidden, "layers": layers,
                       "separable": bool(separable), "dissipative": bool(dissipative),
                       "activation": activation}
        self.dof, self.dim = dof, 2 * dof
        self.state_names = canonical_names(dof)
        self.separable, self.dissipative = bool(separable), bool(dissipative)
        self._register_state_range(2 * dof)
        self.hamiltonian = (SeparableEnergy(dof, hidden, layers, activation) if separable
                            else ScalarNet(2 * dof, hidden, layers, activation))
        self.friction = ViscousDamping(dof) if self.dissipative else None

    @property
    def default_integrator(self) -> str:
        """Yoshida 4 for separable H (explicit, symplectic); Gauss–Legendre 4 otherwise
        (symplectic for any H, and a good A-stable method once damping is added)."""
        if self.separable and not self.dissipative:
            return "yoshida4"
        return "gauss_legendre4"

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        check_state("y", y, self.dim, "HNN", self.state_names)
        closed_form = getattr(self.hamiltonian, "gradient", None)
        grad = closed_form(y) if closed_form is not None else None
        grad = grad if grad is not None else gradient(self.hamiltonian, y)
        field = symplectic_gradient(grad)
        if self.friction is None:
            return field
        friction = self.friction(grad[..., self.dof:])       # D ∂H/∂p = D q̇
        return field - torch.cat([torch.zeros_like(friction), friction], -1)

    def energy(self, y: torch.Tensor) -> torch.Tensor:
        """The learned energy ``H(y)``, shape ``(*batch,)`` (up to an additive constant)."""
        check_state("y", y, self.dim, "HNN", self.state_names)
        return self.hamiltonian(y)
