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

from .._validation import check_angles, check_int, check_state
from ..systems.hamiltonian import canonical_names, gradient
from ..systems.lagrangian import velocity_names
from .base import (
    DataScales,
    NormalizedInput,
    PhysicsModel,
    angle_chain_rule,
    check_architecture,
    embed_angles,
    geometric_mean,
    mlp,
    mlp_input_gradient,
)
from .damping import damping_spec, saved
from .mass import DiagonalMass, UnitMass, mass_spec

COORDINATES = ("canonical", "velocity")


class SeparableEnergy(NormalizedInput):
    """``H(concat(q, p)) = out · (T(p̃) + V(q̃))`` with one network for each part, on
    per-coordinate normalised inputs (so still separable); angles enter ``V`` as cosines and
    sines."""

    def __init__(self, dof, hidden, layers, activation, angles=()):
        super().__init__()
        self.dof = dof
        self.kinetic = mlp(dof, 1, hidden, layers, activation)
        self.potential = mlp(dof + len(angles), 1, hidden, layers, activation)
        self._register_normalization(2 * dof, angles=angles)

    def _parts(self, y):
        x = self.normalize(y)
        return (embed_angles(x[..., :self.dof], y[..., :self.dof], self.angles),
                x[..., self.dof:])

    def forward(self, y):
        xq, xp = self._parts(y)
        return self.out * (self.kinetic(xp) + self.potential(xq))[..., 0]

    def gradient(self, y):
        """``∇H = concat(∇V(q), ∇T(p))`` in closed form, or None (use autograd)."""
        xq, xp = self._parts(y)
        dv = mlp_input_gradient(self.potential, xq)
        dt = mlp_input_gradient(self.kinetic, xp)
        if dv is None or dt is None:
            return None
        d = self.dof
        return self.out * torch.cat([
            angle_chain_rule(dv, y[..., :d], self.scale[:d], self.angles),
            dt / self.scale[d:]], -1)


class ScalarNet(NormalizedInput):
    """``out · N((y − loc)/scale)``: an MLP from states to one scalar per state, shape
    ``(*batch,)``, on per-coordinate normalised inputs (angles as cosines and sines)."""

    def __init__(self, n_in, hidden, layers, activation, angles=()):
        super().__init__()
        self.net = mlp(n_in + len(angles), 1, hidden, layers, activation)
        self._register_normalization(n_in, angles=angles)

    def forward(self, y):
        return self.out * self.net(self.features(y))[..., 0]

    def gradient(self, y):
        """``∇`` of the scalar in closed form, or None (use autograd)."""
        g = mlp_input_gradient(self.net, self.features(y))
        return None if g is None else self.out * angle_chain_rule(g, y, self.scale,
                                                                  self.angles)


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
    dissipative : bool, :class:`~physnode.models.ConstantDamping` or \
:class:`~physnode.models.ConfigurationDamping`
        Add a learned friction ``−D q̇`` on ``ṗ``: ``True`` (or ``ConstantDamping()``) for
        non-negative viscous coefficients, one per dof (``self.damping``);
        ``ConfigurationDamping()`` for a ``D(q)`` positive semi-definite at every
        configuration (``self.damping_matrix(q)``).
    activation : str
        Smooth activation of the energy network (``"tanh"`` by default).
    coordinates : ``"canonical"`` or ``"velocity"``
        The state the model takes and returns: ``concat(q, p)``, or the observed
        ``concat(q, q̇)`` with momenta ``p = M(q) q̇`` from ``mass``.
    mass : :class:`~physnode.models.UnitMass`, :class:`~physnode.models.DiagonalMass` or \
:class:`~physnode.models.ConfigurationMass`
        Velocity coordinates only: the mass that maps velocities to momenta (default
        ``UnitMass()``): unit, a learned constant diagonal, or a learned ``M(q)`` symmetric
        positive definite for every configuration (a double pendulum's inertia). The motion
        is Hamilton's in ``(q, p)`` whatever the mass (see :mod:`physnode.models.mass`).
    learn_mass : bool
        The older spelling of ``mass=DiagonalMass()``.
    angles : sequence of int
        Positions ``q_i`` that are angles in radians: they enter the energy network as
        ``(cos q_i, sin q_i)``, so ``H`` is periodic in them and unwrapped angles of any
        size work; discovery then offers trigonometric terms of these coordinates.

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
                 dissipative: bool = False, activation: str = "tanh",
                 coordinates: str = "canonical", learn_mass: bool = False,
                 angles: tuple = (), mass=None):
        super().__init__()
        check_int("dof", dof, minimum=1)
        check_architecture(hidden, layers)
        if coordinates not in COORDINATES:
            raise ValueError(f"`coordinates` must be one of {', '.join(map(repr, COORDINATES))}"
                             f"; got {coordinates!r}")
        if (learn_mass or mass is not None) and coordinates != "velocity":
            given = "`learn_mass=True`" if learn_mass else "`mass`"
            raise ValueError(f"{given} needs coordinates='velocity' (a mass maps observed "
                             f"velocities to momenta)")
        if learn_mass and mass is not None:
            raise ValueError("pass either `mass` or its older spelling `learn_mass=True`; "
                             "got both")
        spec = mass_spec(DiagonalMass() if learn_mass else
                         UnitMass() if mass is None else mass)
        self.angles = check_angles("angles", angles, dof, "positions q")
        damping = damping_spec(dissipative)
        self.config = {"dof": dof, "hidden": hidden, "layers": layers,
                       "separable": bool(separable), "dissipative": saved(damping),
                       "activation": activation, "coordinates": coordinates,
                       "angles": list(self.angles)}
        if coordinates == "velocity":
            self.config["mass"] = spec.config()
        self.dof, self.dim = dof, 2 * dof
        self.coordinates = coordinates
        self.state_names = (canonical_names(dof) if coordinates == "canonical"
                            else velocity_names(dof))
        # Velocity coordinates: p = M(q) q̇. A constant mass is a linear change of
        # coordinates, which commutes with every Runge–Kutta and splitting method, so
        # rollouts stay symplectic in (q, p); a configuration-dependent one does not.
        self.inertia = spec.build(dof, self.angles) if coordinates == "velocity" else None
        self._register_load_state_dict_pre_hook(_renamed_mass)
        self.separable, self.dissipative = bool(separable), damping is not None
        self._register_state_range(2 * dof)
        self.hamiltonian = (SeparableEnergy(dof, hidden, layers, activation, self.angles)
                            if separable
                            else ScalarNet(2 * dof, hidden, layers, activation, self.angles))
        self.friction = None if damping is None else damping.build(dof, self.angles)

    def _adapt(self, scales: DataScales) -> None:
        """Normalise ``H`` so that ``J∇H`` has the data's rates with O(1) network gradients.

        Inputs: ``q̃ᵢ = (qᵢ − μ)/αᵢ``, ``p̃ᵢ = (pᵢ − μ)/βᵢ`` with ``αᵢβᵢ = C`` the same for every
        degree of freedom (a conformally symplectic scaling) and ``αᵢ/βᵢ = σ(qᵢ)/σ(pᵢ``); the
        energy's unit ``h`` is the geometric mean of ``rate(qᵢ)·βᵢ`` and ``rate(pᵢ)·αᵢ``.
        Damping is measured in ``rate(pᵢ)/rate(qᵢ)``. Velocity coordinates use the statistics
        of ``q̇`` for ``p`` (the learned mass starts at 1).
        """
        d = self.dof
        sq, sp = scales.scale[:d], scales.scale[d:]
        C = geometric_mean(sq * sp)
        alpha, beta = (C * sq / sp).sqrt(), (C * sp / sq).sqrt()
        rq, rp = scales.rate[:d], scales.rate[d:]
        h = geometric_mean(torch.cat([rq * beta, rp * alpha]))
        self.hamiltonian.set_normalization(scales.loc, torch.cat([alpha, beta]), h)
        if self.friction is not None:
            self.friction.adapt(rp / rq, scales.loc[:d], scales.scale[:d])
        if isinstance(self.inertia, NormalizedInput):
            self.inertia.set_normalization(scales.loc[:d], scales.scale[:d], 1.0)

    @property
    def default_integrator(self) -> str:
        """Yoshida 4 for separable H (explicit, symplectic); Gauss–Legendre 4 otherwise
        (symplectic for any H, and a good A-stable method once damping is added)."""
        if self.separable and not self.dissipative:
            return "yoshida4"
        return "gauss_legendre4"

    @property
    def mass(self) -> torch.Tensor:
        """The constant diagonal mass of velocity coordinates (ones unless learned), shape
        ``(dof,)``; see :meth:`mass_matrix` for a mass that depends on ``q``. Only its ratio
        to ``H`` is identifiable from motion: ``(c m, c H)`` moves the same way."""
        if self.inertia is None:
            return torch.ones(self.dof)
        if self.inertia.varies:
            raise ValueError("this HNN's mass depends on the configuration; use "
                             "mass_matrix(q)")
        return self.inertia.diagonal

    @property
    def raw_mass(self):
        """The parameter of a learned constant diagonal mass (None otherwise)."""
        return getattr(self.inertia, "raw", None) if self.inertia is not None and \
            not self.inertia.varies else None

    def mass_matrix(self, q: torch.Tensor) -> torch.Tensor:
        """``M(q)``, shape ``(*batch, dof, dof)``: ``p = M(q) q̇`` in velocity coordinates
        (the identity in canonical ones)."""
        if self.inertia is None:
            return torch.eye(self.dof, dtype=q.dtype, device=q.device).expand(
                *q.shape[:-1], self.dof, self.dof)
        return self.inertia.matrix(q)

    def to_canonical(self, y: torch.Tensor) -> torch.Tensor:
        """States in the model's coordinates → ``concat(q, p)``."""
        if self.inertia is None:
            return y
        q = y[..., :self.dof]
        return torch.cat([q, self.inertia.momenta(q, y[..., self.dof:])], -1)

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        check_state("y", y, self.dim, "HNN", self.state_names)
        canonical = self.to_canonical(y)
        closed_form = getattr(self.hamiltonian, "gradient", None)
        grad = closed_form(canonical) if closed_form is not None else None
        grad = grad if grad is not None else gradient(self.hamiltonian, canonical)
        d = self.dof
        qdot, pdot = grad[..., d:], -grad[..., :d]
        if self.friction is not None:
            pdot = pdot - self.friction(y[..., :d], qdot)        # D(q) ∂H/∂p = D q̇
        if self.inertia is not None:                              # back to (q, q̇)
            pdot = self.inertia.velocity_rate(y[..., :d], y[..., d:], qdot, pdot)
        return torch.cat([qdot, pdot], -1)

    def energy(self, y: torch.Tensor) -> torch.Tensor:
        """The learned energy ``H(y)``, shape ``(*batch,)`` (up to an additive constant)."""
        check_state("y", y, self.dim, "HNN", self.state_names)
        return self.hamiltonian(self.to_canonical(y))


def _renamed_mass(state_dict, prefix, *args):
    """Files saved before masses were objects keep a learned diagonal mass as ``raw_mass``."""
    old = state_dict.pop(prefix + "raw_mass", None)
    if old is not None:
        state_dict[prefix + "inertia.raw"] = old
