"""Lagrangian Neural Networks (Cranmer et al. 2020): a network learns ``L(q, q̇)`` and the
accelerations follow from the Euler–Lagrange equations, solved per sample by a batched linear
solve with the Hessian ``∂²L/∂q̇²`` (a singular one raises, never a pseudo-inverse).

To start well conditioned the learned Lagrangian is ``½|ṽ|² + R·N(q̃, ṽ)`` in normalised
coordinates (``q̃ = (q − μ)/σ``, ``ṽ = (q̇ − μ)/σ`` from the training data) with the network's
last layer initialised to zero, so the initial mass matrix is ``diag(1/σ(q̇)²)``. The
Euler–Lagrange equations are solved for the composed function in the user's coordinates, so
the normalisation changes the conditioning, never the structure; ``R`` makes the potential
forces of a unit-slope ``N`` match the data's accelerations.
"""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_angles, check_int, check_state
from ..systems.hamiltonian import gradient
from ..systems.lagrangian import euler_lagrange_acceleration, velocity_names
from .base import (
    DataScales,
    NormalizedInput,
    PhysicsModel,
    angle_chain_rule,
    check_architecture,
    embed_angles,
    geometric_mean,
    mlp,
    mlp_hessian_product,
)
from .damping import damping_spec, saved


class LearnedLagrangian(NormalizedInput):
    """``L(concat(q, q̇)) = ½|ṽ|² + out · N(q̃, ṽ)`` on normalised coordinates, zero-initialised
    last layer."""

    def __init__(self, dof, hidden, layers, activation, angles=()):
        super().__init__()
        self.dof = dof
        self.net = mlp(2 * dof + len(angles), 1, hidden, layers, activation)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self._register_normalization(2 * dof, angles=angles)

    def forward(self, y):
        x = self.normalize(y)
        return (0.5 * (x[..., self.dof:] ** 2).sum(-1)
                + self.out * self.net(embed_angles(x, y, self.angles))[..., 0])

    def velocity_derivatives(self, y):
        """``(∂L/∂y, ∂(∂L/∂q̇)/∂y)`` in closed form, shapes ``(*batch, 2 dof)`` and
        ``(*batch, dof, 2 dof)`` (what :func:`~physnode.systems.euler_lagrange_acceleration`
        needs), or None for an activation without closed forms (autograd is used then)."""
        d, scale = self.dof, self.scale.to(y)
        x = self.normalize(y)
        features = embed_angles(x, y, self.angles)
        # Velocities are never angles: the direction of q̇ᵢ is one normalised input.
        first = d - sum(i < d for i in self.angles)     # where the velocities start
        v = torch.zeros(d, features.shape[-1], dtype=y.dtype, device=y.device)
        v[:, first:first + d] = torch.diag(1 / scale[d:])
        pair = mlp_hessian_product(self.net, features, v)
        if pair is None:
            return None
        g, hv = pair
        grad = self.out * angle_chain_rule(g, y, scale, self.angles)
        rows = self.out * angle_chain_rule(hv, y.unsqueeze(-2).expand(*hv.shape[:-1], 2 * d),
                                           scale, self.angles)
        prior = x[..., d:] / scale[d:]                     # ½|ṽ|²
        grad = torch.cat([grad[..., :d], grad[..., d:] + prior], -1)
        curvature = torch.diag_embed(1 / scale[d:] ** 2)   # (dof, dof)
        rows = torch.cat([rows[..., :d], rows[..., d:] + curvature], -1)
        return grad, rows


class LNN(PhysicsModel):
    """Lagrangian neural network on states ``concat(q, q̇)``.

    Parameters
    ----------
    dof : int
        Degrees of freedom; states have width ``2*dof``.
    hidden, layers : int
        Width and number of hidden layers.
    dissipative : bool, :class:`~physnode.models.ConstantDamping` or \
:class:`~physnode.models.ConfigurationDamping`
        Add a learned Rayleigh dissipation, generalised force ``−D q̇``: ``True`` (or
        ``ConstantDamping()``) for a diagonal ``D ≥ 0`` (``self.damping``),
        ``ConfigurationDamping()`` for a ``D(q)`` positive semi-definite at every
        configuration (``self.damping_matrix(q)``).
    activation : str
        ``"softplus"`` by default: twice differentiable with non-vanishing second derivative,
        which the Euler–Lagrange Hessian needs.
    angles : sequence of int
        Positions ``q_i`` that are angles in radians: they enter the network as
        ``(cos q_i, sin q_i)`` (``L`` periodic in them, unwrapped angles of any size work).

    Examples
    --------
    >>> import torch, physnode as pn
    >>> lnn = pn.models.LNN(dof=1, hidden=16)
    >>> lnn(0.0, torch.zeros(3, 2)).shape     # starts as a free particle: zero acceleration
    torch.Size([3, 2])
    """

    default_integrator = "dopri5"
    #: dq/dt is the state's q̇ by construction (the rollout loss skips its kinematic term).
    exact_kinematics = True

    def __init__(self, dof: int, hidden: int = 200, layers: int = 2, dissipative: bool = False,
                 activation: str = "softplus", angles: tuple = ()):
        super().__init__()
        check_int("dof", dof, minimum=1)
        check_architecture(hidden, layers)
        self.angles = check_angles("angles", angles, dof, "positions q")
        damping = damping_spec(dissipative)
        self.config = {"dof": dof, "hidden": hidden, "layers": layers,
                       "dissipative": saved(damping), "activation": activation,
                       "angles": list(self.angles)}
        self.dof, self.dim = dof, 2 * dof
        self.state_names = velocity_names(dof)
        self.dissipative = damping is not None
        self._register_state_range(2 * dof)
        self.lagrangian = LearnedLagrangian(dof, hidden, layers, activation, self.angles)
        self.friction = None if damping is None else damping.build(dof, self.angles)

    def _adapt(self, scales: DataScales) -> None:
        """Normalised coordinates; ``R`` = the geometric mean of ``rate(q̇)·σ(q)/σ(q̇)²`` (the
        potential-force scale in the kinetic prior's units). Damping is measured in
        ``rate(q̇)/σ(q̇)³``, the force that gives the data's accelerations."""
        d = self.dof
        sq, sv, rv = scales.scale[:d], scales.scale[d:], scales.rate[d:]
        self.lagrangian.set_normalization(scales.loc, scales.scale,
                                          geometric_mean(rv * sq / sv ** 2))
        if self.friction is not None:
            self.friction.adapt(rv / sv ** 3, scales.loc[:d], scales.scale[:d])

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        check_state("y", y, self.dim, "LNN", self.state_names)
        qdot = y[..., self.dof:]
        force = None if self.friction is None else -self.friction(y[..., :self.dof], qdot)
        return torch.cat([qdot, euler_lagrange_acceleration(self.lagrangian, y, self.dof,
                                                            extra_force=force)], -1)

    def energy(self, y: torch.Tensor) -> torch.Tensor:
        """The learned energy ``q̇ · ∂L/∂q̇ − L``, shape ``(*batch,)``."""
        check_state("y", y, self.dim, "LNN", self.state_names)
        grad = gradient(self.lagrangian, y)
        return (y[..., self.dof:] * grad[..., self.dof:]).sum(-1) - self.lagrangian(y)
