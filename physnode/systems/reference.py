"""Reference problems, each defined once: vector field, energy or invariants, ground-truth
SymPy equations and a documented box of initial states.

Mechanical systems use canonical coordinates ``concat(q, p)``. Viscous ``damping`` ``c`` is a
generalised force ``-c q̇`` on every coordinate. The stiff problems (``Robertson``, ``HIRES``,
``Oregonator``, ``VanDerPol``) follow the Test Set for IVP Solvers (Mazzia & Magherini)
exactly; their ``reference_y0`` and ``reference_t_span`` are the test-set values.
"""

from __future__ import annotations

import math

import scipy.sparse
import sympy
import torch

from .._validation import check_int, check_real
from .base import ReferenceSystem, _uniform, sample_times


def _split(y):
    dof = y.shape[-1] // 2
    return y[..., :dof], y[..., dof:]


class Pendulum(ReferenceSystem):
    """Planar pendulum, ``y = (q, p)`` with angle ``q`` and ``p = m L² q̇``.

    ``H = p²/(2 m L²) + m g L (1 − cos q)``; damping ``c`` adds ``−c q̇`` to ``ṗ``.
    Initial states: ``q ∈ [−1.5, 1.5]`` rad, ``q̇ ∈ [−2, 2]`` rad/s.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> pn.systems.Pendulum()(0.0, torch.tensor([1.0, 1.0]))
    tensor([ 1.0000, -8.2548])
    >>> pn.systems.Pendulum().equations()
    {q: p, p: -9.81*sin(q)}
    """

    state_names = ("q", "p")
    hamiltonian = True
    angles = (0,)

    def __init__(self, g: float = 9.81, length: float = 1.0, mass: float = 1.0,
                 damping: float = 0.0):
        self.g = self._positive("g", g)
        self.length = self._positive("length", length)
        self.mass = self._positive("mass", mass)
        self.damping = self._nonnegative("damping", damping)
        self.separable = self.damping == 0

    @property
    def inertia(self) -> float:
        return self.mass * self.length ** 2

    @property
    def initial_box(self):
        return {"q": (-1.5, 1.5), "p": (-2.0 * self.inertia, 2.0 * self.inertia)}

    def rhs(self, t, y):
        q, p = y[..., 0], y[..., 1]
        qdot = p / self.inertia
        pdot = -self.mass * self.g * self.length * torch.sin(q) - self.damping * qdot
        return torch.stack([qdot, pdot], dim=-1)

    def energy(self, y):
        """Total energy, zero at rest at the bottom; shape ``(*batch,)``."""
        self._check_state(y)
        q, p = y[..., 0], y[..., 1]
        return p ** 2 / (2 * self.inertia) + self.mass * self.g * self.length * (1 - torch.cos(q))

    def _sympy_rhs(self, t, q, p):
        qdot = p / sympy.Float(self.inertia) if self.inertia != 1 else p
        mgl = sympy.Float(self.mass * self.g * self.length)
        pdot = -mgl * sympy.sin(q)
        if self.damping:
            pdot -= sympy.Float(self.damping) * qdot
        return qdot, pdot


class MassSpring(ReferenceSystem):
    """Mass on a linear spring, ``y = (q, p)``, ``p = m q̇``.

    ``H = p²/(2m) + k q²/2``; damping ``c`` gives ``ṗ = −k q − (c/m) p``.
    Initial states: ``q ∈ [−1, 1]``, ``q̇ ∈ [−1, 1]``.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> pn.systems.MassSpring(k=2.0)(0.0, torch.tensor([1.0, 0.0]))
    tensor([ 0., -2.])
    """

    state_names = ("q", "p")
    hamiltonian = True

    def __init__(self, k: float = 1.0, mass: float = 1.0, damping: float = 0.0):
        self.k = self._positive("k", k)
        self.mass = self._positive("mass", mass)
        self.damping = self._nonnegative("damping", damping)
        self.separable = self.damping == 0

    @property
    def initial_box(self):
        return {"q": (-1.0, 1.0), "p": (-self.mass, self.mass)}

    def rhs(self, t, y):
        q, p = y[..., 0], y[..., 1]
        return torch.stack([p / self.mass, -self.k * q - self.damping / self.mass * p], dim=-1)

    def energy(self, y):
        self._check_state(y)
        q, p = y[..., 0], y[..., 1]
        return p ** 2 / (2 * self.mass) + 0.5 * self.k * q ** 2

    def solution(self, t: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
        """Closed-form solution from ``y0`` (``(*batch, 2)``) at times ``t`` (``(n,)``);
        returns ``(n, *batch, 2)``. Valid for any damping (under-, critically or over-damped)."""
        m, k, c = self.mass, self.k, self.damping
        gamma, w0sq = c / (2 * m), k / m
        q0, v0 = y0[..., 0], y0[..., 1] / m
        t = t.reshape((-1,) + (1,) * (y0.ndim - 1)).to(y0)
        disc = w0sq - gamma ** 2
        decay = torch.exp(-gamma * t)
        if abs(disc) < 1e-14 * w0sq:          # critically damped
            b = v0 + gamma * q0
            q = decay * (q0 + b * t)
            v = decay * (b - gamma * (q0 + b * t))
        elif disc > 0:                        # under-damped
            w = math.sqrt(disc)
            b = (v0 + gamma * q0) / w
            c_, s_ = torch.cos(w * t), torch.sin(w * t)
            q = decay * (q0 * c_ + b * s_)
            v = decay * ((-q0 * w - gamma * b) * s_ + (b * w - gamma * q0) * c_)
        else:                                 # over-damped
            r1, r2 = -gamma + math.sqrt(-disc), -gamma - math.sqrt(-disc)
            a1 = (v0 - r2 * q0) / (r1 - r2)
            a2 = q0 - a1
            q = a1 * torch.exp(r1 * t) + a2 * torch.exp(r2 * t)
            v = a1 * r1 * torch.exp(r1 * t) + a2 * r2 * torch.exp(r2 * t)
        return torch.stack([q, m * v], dim=-1)

    def _sympy_rhs(self, t, q, p):
        qdot = p / sympy.Float(self.mass) if self.mass != 1 else p
        pdot = -sympy.Float(self.k) * q
        if self.damping:
            pdot -= sympy.Float(self.damping / self.mass) * p
        return qdot, pdot


class Duffing(ReferenceSystem):
    """Duffing oscillator ``q̈ = −δ q̇ − α q − β q³ + γ cos(ω t)``, ``y = (q, p)``, ``p = q̇``.

    Energy (of the unforced, undamped part): ``p²/2 + α q²/2 + β q⁴/4``.
    Initial states: ``q ∈ [−1.5, 1.5]``, ``p ∈ [−1, 1]``.
    """

    state_names = ("q", "p")
    hamiltonian = True
    initial_box = {"q": (-1.5, 1.5), "p": (-1.0, 1.0)}

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, delta: float = 0.0,
                 gamma: float = 0.0, omega: float = 1.0):
        self.alpha = check_real("alpha", alpha)
        self.beta = check_real("beta", beta)
        self.delta = self._nonnegative("delta", delta)
        self.gamma = check_real("gamma", gamma)
        self.omega = check_real("omega", omega)
        self.separable = self.delta == 0 and self.gamma == 0

    @property
    def dissipative(self) -> bool:
        return self.delta > 0

    @property
    def forced(self) -> bool:
        return self.gamma != 0

    def rhs(self, t, y):
        q, p = y[..., 0], y[..., 1]
        pdot = -self.delta * p - self.alpha * q - self.beta * q ** 3
        if self.gamma:
            pdot = pdot + self.gamma * torch.cos(self.omega * sample_times(t, y)[..., 0])
        return torch.stack([p, pdot], dim=-1)

    def energy(self, y):
        self._check_state(y)
        q, p = y[..., 0], y[..., 1]
        return 0.5 * p ** 2 + 0.5 * self.alpha * q ** 2 + 0.25 * self.beta * q ** 4

    def _sympy_rhs(self, t, q, p):
        F = sympy.Float
        pdot = -F(self.alpha) * q - F(self.beta) * q ** 3
        if self.delta:
            pdot -= F(self.delta) * p
        if self.gamma:
            pdot += F(self.gamma) * sympy.cos(F(self.omega) * t)
        return p, pdot


class DoublePendulum(ReferenceSystem):
    """Double pendulum, angles from the vertical, ``y = (q1, q2, p1, p2)`` canonical momenta.

    With ``M(q) = [[(m1+m2) l1², m2 l1 l2 cos Δ], [m2 l1 l2 cos Δ, m2 l2²]]``, ``Δ = q1 − q2``:
    ``H = ½ pᵀ M⁻¹ p − (m1+m2) g l1 cos q1 − m2 g l2 cos q2`` (non-separable); damping ``c``
    adds ``−c q̇ᵢ`` to each ``ṗᵢ`` (friction in each joint, Rayleigh ``½ c |q̇|²``).
    Initial states: angles in ``[−1, 1]`` rad and angular velocities in ``[−1, 1]`` rad/s,
    mapped to momenta by ``p = M(q) q̇``.
    """

    state_names = ("q1", "q2", "p1", "p2")
    hamiltonian = True
    separable = False
    angles = (0, 1)

    def __init__(self, m1: float = 1.0, m2: float = 1.0, l1: float = 1.0, l2: float = 1.0,
                 g: float = 9.81, damping: float = 0.0):
        self.m1, self.m2 = self._positive("m1", m1), self._positive("m2", m2)
        self.l1, self.l2 = self._positive("l1", l1), self._positive("l2", l2)
        self.g = self._positive("g", g)
        self.damping = self._nonnegative("damping", damping)

    def mass_matrix(self, q: torch.Tensor) -> torch.Tensor:
        """``M(q)``, shape ``(*batch, 2, 2)``, with ``p = M(q) q̇``."""
        m1, m2, l1, l2 = self.m1, self.m2, self.l1, self.l2
        c = m2 * l1 * l2 * torch.cos(q[..., 0] - q[..., 1])
        a = torch.full_like(c, (m1 + m2) * l1 ** 2)
        d = torch.full_like(c, m2 * l2 ** 2)
        return torch.stack([torch.stack([a, c], -1), torch.stack([c, d], -1)], -2)

    def to_velocities(self, y: torch.Tensor) -> torch.Tensor:
        """Map ``concat(q, p)`` to ``concat(q, q̇)``."""
        q, p = _split(y)
        return torch.cat([q, torch.linalg.solve(self.mass_matrix(q), p)], -1)

    def from_velocities(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``concat(q, q̇)`` to ``concat(q, p)``."""
        q, v = _split(x)
        return torch.cat([q, (self.mass_matrix(q) @ v.unsqueeze(-1)).squeeze(-1)], -1)

    def sample_initial_states(self, n, generator=None, dtype=torch.float64):
        x = 2 * _uniform(n, 4, generator, dtype) - 1
        return self.from_velocities(x)

    def rhs(self, t, y):
        m1, m2, l1, l2, g = self.m1, self.m2, self.l1, self.l2, self.g
        q1, q2, p1, p2 = y.unbind(-1)
        s, c = torch.sin(q1 - q2), torch.cos(q1 - q2)
        den = m1 + m2 * s ** 2
        q1dot = (l2 * p1 - l1 * p2 * c) / (l1 ** 2 * l2 * den)
        q2dot = ((m1 + m2) * l1 * p2 - m2 * l2 * p1 * c) / (m2 * l1 * l2 ** 2 * den)
        a1 = p1 * p2 * s / (l1 * l2 * den)
        a2 = ((m2 * l2 ** 2 * p1 ** 2 + (m1 + m2) * l1 ** 2 * p2 ** 2
               - 2 * m2 * l1 * l2 * p1 * p2 * c) * s * c / (l1 ** 2 * l2 ** 2 * den ** 2))
        p1dot = -(m1 + m2) * g * l1 * torch.sin(q1) - a1 + a2 - self.damping * q1dot
        p2dot = -m2 * g * l2 * torch.sin(q2) + a1 - a2 - self.damping * q2dot
        return torch.stack([q1dot, q2dot, p1dot, p2dot], dim=-1)

    def energy(self, y):
        self._check_state(y)
        q, p = _split(y)
        v = torch.linalg.solve(self.mass_matrix(q), p)
        kinetic = 0.5 * (p * v).sum(-1)
        potential = (-(self.m1 + self.m2) * self.g * self.l1 * torch.cos(q[..., 0])
                     - self.m2 * self.g * self.l2 * torch.cos(q[..., 1]))
        return kinetic + potential

    def _sympy_H(self, q1, q2, p1, p2):
        F = sympy.Float
        m1, m2, l1, l2, g = map(F, (self.m1, self.m2, self.l1, self.l2, self.g))
        M = sympy.Matrix([[(m1 + m2) * l1 ** 2, m2 * l1 * l2 * sympy.cos(q1 - q2)],
                          [m2 * l1 * l2 * sympy.cos(q1 - q2), m2 * l2 ** 2]])
        p = sympy.Matrix([p1, p2])
        kinetic = (p.T * M.inv() * p)[0] / 2
        return kinetic - (m1 + m2) * g * l1 * sympy.cos(q1) - m2 * g * l2 * sympy.cos(q2)

    def _sympy_rhs(self, t, q1, q2, p1, p2):
        H = sympy.simplify(self._sympy_H(q1, q2, p1, p2))
        q1dot, q2dot = sympy.diff(H, p1), sympy.diff(H, p2)
        c = sympy.Float(self.damping)
        return (q1dot, q2dot, -sympy.diff(H, q1) - c * q1dot, -sympy.diff(H, q2) - c * q2dot)


class Kepler(ReferenceSystem):
    """Planar Kepler problem, ``y = (x, y, px, py)``, ``H = |p|²/2 − μ/|q|``.

    Invariants: energy and angular momentum ``x py − y px``.
    Initial states: ``x ∈ [0.8, 1.2]``, ``y ∈ [−0.1, 0.1]``, ``px ∈ [−0.1, 0.1]``,
    ``py ∈ [0.8, 1.1]`` (bound orbits for ``μ = 1``).
    """

    state_names = ("x", "y", "px", "py")
    hamiltonian = True
    separable = True
    initial_box = {"x": (0.8, 1.2), "y": (-0.1, 0.1), "px": (-0.1, 0.1), "py": (0.8, 1.1)}

    def __init__(self, mu: float = 1.0):
        self.mu = self._positive("mu", mu)

    def rhs(self, t, y):
        q, p = _split(y)
        r3 = (q ** 2).sum(-1, keepdim=True) ** 1.5
        return torch.cat([p, -self.mu * q / r3], dim=-1)

    def energy(self, y):
        self._check_state(y)
        q, p = _split(y)
        return 0.5 * (p ** 2).sum(-1) - self.mu / q.norm(dim=-1)

    def angular_momentum(self, y):
        self._check_state(y)
        return y[..., 0] * y[..., 3] - y[..., 1] * y[..., 2]

    def _sympy_rhs(self, t, x, y, px, py):
        r3 = (x ** 2 + y ** 2) ** sympy.Rational(3, 2)
        mu = sympy.Float(self.mu)
        return px, py, -mu * x / r3, -mu * y / r3


class HenonHeiles(ReferenceSystem):
    """Hénon–Heiles system, ``y = (x, y, px, py)``,
    ``H = (px² + py²)/2 + (x² + y²)/2 + x² y − y³/3``; bounded for ``H < 1/6``.
    Initial states: every coordinate in ``[−0.2, 0.2]``.
    """

    state_names = ("x", "y", "px", "py")
    hamiltonian = True
    separable = True
    initial_box = {k: (-0.2, 0.2) for k in state_names}

    def rhs(self, t, y):
        x, yy, px, py = y.unbind(-1)
        return torch.stack([px, py, -x - 2 * x * yy, -yy - x ** 2 + yy ** 2], dim=-1)

    def energy(self, y):
        self._check_state(y)
        x, yy, px, py = y.unbind(-1)
        return 0.5 * (px ** 2 + py ** 2 + x ** 2 + yy ** 2) + x ** 2 * yy - yy ** 3 / 3

    def _sympy_rhs(self, t, x, y, px, py):
        return px, py, -x - 2 * x * y, -y - x ** 2 + y ** 2


class VanDerPol(ReferenceSystem):
    """Van der Pol oscillator, stiff for large ``mu`` (or small ``eps``), ``y = (y1, y2)``.

    ``VanDerPol(mu)``: ``y1' = y2``, ``y2' = mu (1 − y1²) y2 − y1`` (test set VDPOL, mu = 1000
    on ``[0, 2000]``). ``VanDerPol(eps=...)``: the singular-perturbation form
    ``y2' = ((1 − y1²) y2 − y1)/eps`` (test set, eps = 1e-6 on ``[0, 2]``). Give one of the two.
    Initial states: ``y1 ∈ [−2, 2]``, ``y2 ∈ [−1, 1]``; the test set starts at ``(2, 0)``.
    """

    state_names = ("y1", "y2")
    stiff = True
    initial_box = {"y1": (-2.0, 2.0), "y2": (-1.0, 1.0)}
    reference_y0 = (2.0, 0.0)

    def __init__(self, mu: float | None = None, *, eps: float | None = None):
        if mu is not None and eps is not None:
            raise ValueError(f"give `mu` or `eps` to VanDerPol, not both; got mu={mu}, eps={eps}")
        self.mu = self._positive("mu", 1.0 if mu is None and eps is None else mu) \
            if eps is None else None
        self.eps = self._positive("eps", eps) if eps is not None else None

    @property
    def reference_t_span(self):
        return (0.0, 2.0) if self.eps is not None else (0.0, 2000.0)

    def rhs(self, t, y):
        y1, y2 = y[..., 0], y[..., 1]
        if self.eps is not None:
            return torch.stack([y2, ((1 - y1 ** 2) * y2 - y1) / self.eps], dim=-1)
        return torch.stack([y2, self.mu * (1 - y1 ** 2) * y2 - y1], dim=-1)

    def jacobian(self, t, y):
        """Analytic ``∂f/∂y``, shape ``(*batch, 2, 2)``."""
        y1, y2 = y[..., 0], y[..., 1]
        scale = 1 / self.eps if self.eps is not None else self.mu
        zero, one = torch.zeros_like(y1), torch.ones_like(y1)
        d21 = -2 * scale * y1 * y2 - (scale if self.eps is not None else 1.0)
        d22 = scale * (1 - y1 ** 2)
        return torch.stack([torch.stack([zero, one], -1), torch.stack([d21, d22], -1)], -2)

    def _sympy_rhs(self, t, y1, y2):
        if self.eps is not None:
            return y2, ((1 - y1 ** 2) * y2 - y1) / sympy.Float(self.eps)
        return y2, sympy.Float(self.mu) * (1 - y1 ** 2) * y2 - y1


class Robertson(ReferenceSystem):
    """Robertson's chemical kinetics (ROBER), very stiff, on ``[0, 1e11]`` in the test set.

    ``y1' = −0.04 y1 + 1e4 y2 y3``, ``y2' = 0.04 y1 − 1e4 y2 y3 − 3e7 y2²``, ``y3' = 3e7 y2²``.
    Invariant: ``y1 + y2 + y3``. Initial states: ``y1 ∈ [0.5, 1]``, ``y2 = 0``,
    ``y3 ∈ [0, 0.5]``; the test set starts at ``(1, 0, 0)``.
    """

    state_names = ("y1", "y2", "y3")
    stiff = True
    initial_box = {"y1": (0.5, 1.0), "y2": (0.0, 0.0), "y3": (0.0, 0.5)}
    reference_y0 = (1.0, 0.0, 0.0)
    reference_t_span = (0.0, 1e11)

    def rhs(self, t, y):
        y1, y2, y3 = y.unbind(-1)
        r1, r2, r3 = 0.04 * y1, 1e4 * y2 * y3, 3e7 * y2 ** 2
        return torch.stack([-r1 + r2, r1 - r2 - r3, r3], dim=-1)

    def invariants(self, y):
        """``{"mass": y1 + y2 + y3}``, each of shape ``(*batch,)``."""
        return {"mass": y.sum(-1)}

    def _sympy_rhs(self, t, y1, y2, y3):
        F = sympy.Float
        r1, r2, r3 = F(0.04) * y1, F(1e4) * y2 * y3, F(3e7) * y2 ** 2
        return -r1 + r2, r1 - r2 - r3, r3


class HIRES(ReferenceSystem):
    """HIRES: 8 chemical species of plant physiology (Schäfer 1975), test set on
    ``[0, 321.8122]``. Invariant: ``y7 + y8``. Initial states: the test-set start ``y0`` with
    ``y1 ∈ [0.5, 1]`` and ``y8 ∈ [0.003, 0.0057]``.
    """

    state_names = tuple(f"y{i}" for i in range(1, 9))
    stiff = True
    reference_y0 = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0057)
    reference_t_span = (0.0, 321.8122)
    initial_box = {**{f"y{i}": (0.0, 0.0) for i in range(2, 8)}, "y1": (0.5, 1.0),
                   "y8": (0.003, 0.0057)}

    def rhs(self, t, y):
        return torch.stack(self._terms(*y.unbind(-1)), dim=-1)

    @staticmethod
    def _terms(y1, y2, y3, y4, y5, y6, y7, y8):
        r = 280.0 * y6 * y8
        return (-1.71 * y1 + 0.43 * y2 + 8.32 * y3 + 0.0007,
                1.71 * y1 - 8.75 * y2,
                -10.03 * y3 + 0.43 * y4 + 0.035 * y5,
                8.32 * y2 + 1.71 * y3 - 1.12 * y4,
                -1.745 * y5 + 0.43 * y6 + 0.43 * y7,
                -r + 0.69 * y4 + 1.71 * y5 - 0.43 * y6 + 0.69 * y7,
                r - 1.81 * y7,
                -r + 1.81 * y7)

    def invariants(self, y):
        return {"y7+y8": y[..., 6] + y[..., 7]}

    def _sympy_rhs(self, t, *y):
        # The same arithmetic on SymPy symbols (tests check it against the test-set strings).
        return self._terms(*y)


class Oregonator(ReferenceSystem):
    """Oregonator (OREGO), the Belousov–Zhabotinsky reaction, test set on ``[0, 360]``:
    ``y1' = 77.27 (y2 + y1 (1 − 8.375e-6 y1 − y2))``, ``y2' = (y3 − (1 + y1) y2)/77.27``,
    ``y3' = 0.161 (y1 − y3)``. Initial states: ``y1 ∈ [1, 2]``, ``y2 ∈ [1, 2]``, ``y3 ∈ [1, 3]``;
    the test set starts at ``(1, 2, 3)``.
    """

    state_names = ("y1", "y2", "y3")
    stiff = True
    reference_y0 = (1.0, 2.0, 3.0)
    reference_t_span = (0.0, 360.0)
    initial_box = {"y1": (1.0, 2.0), "y2": (1.0, 2.0), "y3": (1.0, 3.0)}

    def rhs(self, t, y):
        return torch.stack(self._terms(*y.unbind(-1)), dim=-1)

    @staticmethod
    def _terms(y1, y2, y3):
        return (77.27 * (y2 + y1 * (1 - 8.375e-6 * y1 - y2)),
                (y3 - (1 + y1) * y2) / 77.27,
                0.161 * (y1 - y3))

    def _sympy_rhs(self, t, *y):
        return self._terms(*y)


class Brusselator(ReferenceSystem):
    """The 1-D Brusselator (Hairer & Wanner, *Solving ODEs II*, §IV.1, BRUSS): a stiff
    reaction–diffusion system on ``points`` interior grid points of (0, 1), the method of
    lines, ``y = (u₁ … u_N, v₁ … v_N)``:
    ``uᵢ' = 1 + uᵢ² vᵢ − 4 uᵢ + α (N+1)² (uᵢ₋₁ − 2 uᵢ + uᵢ₊₁)``,
    ``vᵢ' = 3 uᵢ − uᵢ² vᵢ + α (N+1)² (vᵢ₋₁ − 2 vᵢ + vᵢ₊₁)``, with ``u = 1``, ``v = 3`` at both
    ends and ``α = 0.02``. Its Jacobian is sparse (four nonzeros per row):
    :meth:`jac_sparsity` is the pattern for ``solve(..., jac_sparsity=...)``. The reference
    start is ``uᵢ = 1 + sin(2π xᵢ)``, ``vᵢ = 3`` on ``[0, 10]``; initial states:
    ``uᵢ ∈ [0.5, 2]``, ``vᵢ ∈ [2.5, 3.5]``.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> bruss = pn.systems.Brusselator(points=50)
    >>> y0 = torch.tensor(bruss.reference_y0, dtype=torch.float64)
    >>> sol = pn.solve(bruss, y0, [0.0, 1.0], method="radau5", jac_sparsity=bruss.jac_sparsity())
    >>> sol.ys.shape
    torch.Size([2, 100])
    """

    stiff = True
    reference_t_span = (0.0, 10.0)

    def __init__(self, points: int = 32, alpha: float = 0.02):
        self.points = check_int("points", points, minimum=1)
        self.alpha = self._positive("alpha", alpha)
        self.state_names = (*(f"u{i}" for i in range(1, points + 1)),
                            *(f"v{i}" for i in range(1, points + 1)))
        self.initial_box = {**{f"u{i}": (0.5, 2.0) for i in range(1, points + 1)},
                            **{f"v{i}": (2.5, 3.5) for i in range(1, points + 1)}}
        x = [i / (points + 1) for i in range(1, points + 1)]
        self.reference_y0 = (*(1 + math.sin(2 * math.pi * xi) for xi in x), *([3.0] * points))

    def rhs(self, t, y):
        N, diffusion = self.points, self.alpha * (self.points + 1) ** 2
        u, v = y[..., :N], y[..., N:]
        u_pad = torch.nn.functional.pad(u, (1, 1), value=1.0)
        v_pad = torch.nn.functional.pad(v, (1, 1), value=3.0)
        uuv = u * u * v
        return torch.cat([1 + uuv - 4 * u + diffusion * (u_pad[..., :-2] - 2 * u + u_pad[..., 2:]),
                          3 * u - uuv + diffusion * (v_pad[..., :-2] - 2 * v + v_pad[..., 2:])],
                         dim=-1)

    def jac_sparsity(self):
        """The pattern of ``∂f/∂y`` as a scipy CSR matrix ``(2N, 2N)``: each ``uᵢ'`` depends on
        ``uᵢ₋₁, uᵢ, uᵢ₊₁, vᵢ``, each ``vᵢ'`` on ``vᵢ₋₁, vᵢ, vᵢ₊₁, uᵢ``."""
        N = self.points
        band = scipy.sparse.diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(N, N))
        eye = scipy.sparse.identity(N)
        return scipy.sparse.bmat([[band, eye], [eye, band]]).tocsr()

    def _sympy_rhs(self, t, *y):
        N, diffusion = self.points, sympy.Float(self.alpha * (self.points + 1) ** 2)
        u = (sympy.Integer(1), *y[:N], sympy.Integer(1))
        v = (sympy.Integer(3), *y[N:], sympy.Integer(3))
        du = [1 + u[i] ** 2 * v[i] - 4 * u[i] + diffusion * (u[i - 1] - 2 * u[i] + u[i + 1])
              for i in range(1, N + 1)]
        dv = [3 * u[i] - u[i] ** 2 * v[i] + diffusion * (v[i - 1] - 2 * v[i] + v[i + 1])
              for i in range(1, N + 1)]
        return (*du, *dv)


def _times(c: float, expr):
    """``c * expr`` as SymPy, leaving out a unit factor so equations read cleanly."""
    return expr if c == 1 else sympy.Float(c) * expr


class LotkaVolterra(ReferenceSystem):
    """Lotka–Volterra predator–prey model, ``y = (x, y)`` with prey ``x`` and predator ``y``:
    ``ẋ = α x − β x y``, ``ẏ = δ x y − γ y``.

    Not a mechanical system: :meth:`energy` is the conserved quantity
    ``V = δ x − γ ln x + β y − α ln y`` (constant along every orbit, smallest at the
    equilibrium ``(γ/δ, α/β)``), not an energy, and is defined for ``x, y > 0``. Orbits are
    closed curves around the equilibrium.
    Initial states: ``x ∈ [1.5, 2.5]·γ/δ``, ``y ∈ [0.8, 1.2]·α/β`` (defaults: ``x ∈ [6, 10]``,
    ``y ∈ [2, 3]``), so no start is at the equilibrium and orbits are visibly nonlinear; with
    the default parameters they stay above ``x ≈ 0.9``, ``y ≈ 1``.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> lv = pn.systems.LotkaVolterra()
    >>> lv(0.0, torch.tensor([8.0, 2.0]))
    tensor([1.6000, 0.8000])
    >>> lv(0.0, torch.tensor(lv.equilibrium))
    tensor([0., 0.])
    >>> lv.equations()
    {x: -0.4*x*y + x, y: 0.1*x*y - 0.4*y}
    """

    state_names = ("x", "y")

    def __init__(self, alpha: float = 1.0, beta: float = 0.4, delta: float = 0.1,
                 gamma: float = 0.4):
        self.alpha = self._positive("alpha", alpha)
        self.beta = self._positive("beta", beta)
        self.delta = self._positive("delta", delta)
        self.gamma = self._positive("gamma", gamma)

    @property
    def equilibrium(self) -> tuple[float, float]:
        """The coexistence fixed point ``(γ/δ, α/β)``."""
        return (self.gamma / self.delta, self.alpha / self.beta)

    @property
    def initial_box(self):
        x_eq, y_eq = self.equilibrium
        return {"x": (1.5 * x_eq, 2.5 * x_eq), "y": (0.8 * y_eq, 1.2 * y_eq)}

    def rhs(self, t, y):
        x, yy = y[..., 0], y[..., 1]
        return torch.stack([x * (self.alpha - self.beta * yy),
                            yy * (self.delta * x - self.gamma)], dim=-1)

    def energy(self, y):
        """The conserved quantity ``δ x − γ ln x + β y − α ln y`` (not a mechanical
        energy); shape ``(*batch,)``, NaN where ``x`` or ``y`` is not positive."""
        self._check_state(y)
        x, yy = y[..., 0], y[..., 1]
        return (self.delta * x - self.gamma * torch.log(x)
                + self.beta * yy - self.alpha * torch.log(yy))

    def _sympy_rhs(self, t, x, y):
        return (_times(self.alpha, x) - _times(self.beta, x * y),
                _times(self.delta, x * y) - _times(self.gamma, y))


class Lorenz(ReferenceSystem):
    """Lorenz system, ``y = (x, y, z)``: ``ẋ = σ (y − x)``, ``ẏ = x (ρ − z) − y``,
    ``ż = x y − β z``; chaotic for the classical ``σ = 10, ρ = 28, β = 8/3``.

    Dissipative, with no energy: the divergence of the field is ``−(σ + 1 + β)`` everywhere,
    so phase-space volumes contract by ``exp(−(σ + 1 + β) t)``. Nearby orbits separate at the
    largest Lyapunov exponent (≈ 0.906 for the classical parameters), so only short horizons
    are predictable. Initial states: ``x, y ∈ [−10, 10]``, ``z ∈ [15, 35]``, on and near the
    classical attractor.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> pn.systems.Lorenz()(0.0, torch.tensor([1.0, 2.0, 20.0]))
    tensor([ 10.0000,   6.0000, -51.3333])
    >>> pn.systems.Lorenz(beta=2.0).equations()
    {x: -10.0*x + 10.0*y, y: x*(28.0 - z) - y, z: x*y - 2.0*z}
    """

    state_names = ("x", "y", "z")
    initial_box = {"x": (-10.0, 10.0), "y": (-10.0, 10.0), "z": (15.0, 35.0)}

    def __init__(self, sigma: float = 10.0, rho: float = 28.0, beta: float = 8 / 3):
        self.sigma = self._positive("sigma", sigma)
        self.rho = self._positive("rho", rho)
        self.beta = self._positive("beta", beta)

    def rhs(self, t, y):
        x, yy, z = y.unbind(-1)
        return torch.stack([self.sigma * (yy - x), x * (self.rho - z) - yy,
                            x * yy - self.beta * z], dim=-1)

    def _sympy_rhs(self, t, x, y, z):
        F = sympy.Float
        return F(self.sigma) * (y - x), x * (F(self.rho) - z) - y, x * y - F(self.beta) * z


class CoupledSprings(ReferenceSystem):
    """Two masses on a line between two walls, wall–``k1``–``m1``–``k2``–``m2``–``k3``–wall,
    ``y = (q1, q2, p1, p2)`` with displacements from equilibrium ``q`` and ``p = m q̇``.

    ``H = p1²/(2 m1) + p2²/(2 m2) + k1 q1²/2 + k2 (q2 − q1)²/2 + k3 q2²/2`` (separable);
    damping ``c`` adds ``−c q̇ᵢ`` to each ``ṗᵢ``, so ``dH/dt = −c (q̇1² + q̇2²)``. Undamped,
    the motion is a superposition of two normal modes with angular frequencies
    :attr:`frequencies`; :meth:`solution` gives it in closed form.
    Initial states: ``q ∈ [−1, 1]``, ``q̇ ∈ [−1, 1]``.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> cs = pn.systems.CoupledSprings()
    >>> cs(0.0, torch.tensor([1.0, 0.0, 0.0, 1.0]))
    tensor([ 0.,  1., -2.,  1.])
    >>> cs.frequencies      # sqrt(k/m) in phase, sqrt(3 k/m) in antiphase
    (1.0, 1.7320508075688772)
    """

    state_names = ("q1", "q2", "p1", "p2")
    hamiltonian = True

    def __init__(self, k1: float = 1.0, k2: float = 1.0, k3: float = 1.0, m1: float = 1.0,
                 m2: float = 1.0, damping: float = 0.0):
        self.k1 = self._positive("k1", k1)
        self.k2 = self._positive("k2", k2)
        self.k3 = self._positive("k3", k3)
        self.m1 = self._positive("m1", m1)
        self.m2 = self._positive("m2", m2)
        self.damping = self._nonnegative("damping", damping)
        self.separable = self.damping == 0

    @property
    def initial_box(self):
        return {"q1": (-1.0, 1.0), "q2": (-1.0, 1.0), "p1": (-self.m1, self.m1),
                "p2": (-self.m2, self.m2)}

    def _modes(self):
        """Eigen-decomposition of ``M^{-1/2} K M^{-1/2} = [[a, b], [b, d]]`` by one Jacobi
        rotation: ``(ω1, ω2)`` and the rotation ``(cos θ, sin θ)`` whose columns
        ``(cos θ, sin θ)`` and ``(−sin θ, cos θ)`` are the mass-weighted mode shapes."""
        a = (self.k1 + self.k2) / self.m1
        d = (self.k2 + self.k3) / self.m2
        b = -self.k2 / math.sqrt(self.m1 * self.m2)
        theta = 0.5 * math.atan2(2 * b, a - d)
        c, s = math.cos(theta), math.sin(theta)
        lam1 = a * c * c + 2 * b * s * c + d * s * s
        lam2 = a * s * s - 2 * b * s * c + d * c * c
        return math.sqrt(lam1), math.sqrt(lam2), c, s

    @property
    def frequencies(self) -> tuple[float, float]:
        """Undamped normal-mode angular frequencies ``(ω_low, ω_high)``: the square roots of
        the eigenvalues of ``M⁻¹ K`` with ``K = [[k1 + k2, −k2], [−k2, k2 + k3]]``."""
        w1, w2, _, _ = self._modes()
        return (min(w1, w2), max(w1, w2))

    def rhs(self, t, y):
        q1, q2, p1, p2 = y.unbind(-1)
        v1, v2 = p1 / self.m1, p2 / self.m2
        stretch = q2 - q1
        p1dot = -self.k1 * q1 + self.k2 * stretch - self.damping * v1
        p2dot = -self.k2 * stretch - self.k3 * q2 - self.damping * v2
        return torch.stack([v1, v2, p1dot, p2dot], dim=-1)

    def energy(self, y):
        """Total energy, zero at rest at equilibrium; shape ``(*batch,)``."""
        self._check_state(y)
        q1, q2, p1, p2 = y.unbind(-1)
        return (p1 ** 2 / (2 * self.m1) + p2 ** 2 / (2 * self.m2)
                + 0.5 * (self.k1 * q1 ** 2 + self.k2 * (q2 - q1) ** 2 + self.k3 * q2 ** 2))

    def solution(self, t: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
        """Closed-form undamped solution from ``y0`` (``(*batch, 4)``) at times ``t``
        (``(n,)``) as a sum of the two normal modes; returns ``(n, *batch, 4)``.

        In mass-weighted coordinates ``x = M^{1/2} q`` the motion is ``ẍ = −A x`` with
        ``A = M^{-1/2} K M^{-1/2}``; each mode ``j`` of ``A`` oscillates as
        ``aⱼ cos ωⱼt + (bⱼ/ωⱼ) sin ωⱼt``. Raises ``ValueError`` when ``damping > 0``.
        """
        if self.damping:
            raise ValueError(f"CoupledSprings.solution is the undamped closed form; it needs "
                             f"`damping` 0, got {self.damping}")
        self._check_state(y0)
        w1, w2, c, s = self._modes()
        r1, r2 = math.sqrt(self.m1), math.sqrt(self.m2)
        t = t.reshape((-1,) + (1,) * (y0.ndim - 1)).to(y0)
        x1, x2 = r1 * y0[..., 0], r2 * y0[..., 1]              # mass-weighted positions
        u1, u2 = y0[..., 2] / r1, y0[..., 3] / r2              # and velocities
        a = (c * x1 + s * x2, -s * x1 + c * x2)                # modal amplitudes
        b = (c * u1 + s * u2, -s * u1 + c * u2)
        modes = []
        for aj, bj, w in zip(a, b, (w1, w2)):
            cos, sin = torch.cos(w * t), torch.sin(w * t)
            modes.append((aj * cos + bj / w * sin, bj * cos - aj * w * sin))
        (z1, dz1), (z2, dz2) = modes
        x1, x2 = c * z1 - s * z2, s * z1 + c * z2
        u1, u2 = c * dz1 - s * dz2, s * dz1 + c * dz2
        return torch.stack([x1 / r1, x2 / r2, r1 * u1, r2 * u2], dim=-1)

    def _sympy_rhs(self, t, q1, q2, p1, p2):
        F = sympy.Float
        v1 = p1 / F(self.m1) if self.m1 != 1 else p1
        v2 = p2 / F(self.m2) if self.m2 != 1 else p2
        p1dot = -_times(self.k1, q1) + _times(self.k2, q2 - q1)
        p2dot = -_times(self.k2, q2 - q1) - _times(self.k3, q2)
        if self.damping:
            p1dot -= F(self.damping) * v1
            p2dot -= F(self.damping) * v2
        return v1, v2, p1dot, p2dot


REFERENCE_SYSTEMS = {cls.__name__.lower(): cls for cls in (
    Pendulum, MassSpring, Duffing, DoublePendulum, Kepler, HenonHeiles, VanDerPol, Robertson,
    HIRES, Oregonator, Brusselator, LotkaVolterra, Lorenz, CoupledSprings)}
"""Every reference system class by its lower-case name (``"pendulum"``, ...), as the
``physnode simulate`` command and sweep configurations name them."""

__all__ = [cls.__name__ for cls in REFERENCE_SYSTEMS.values()] + ["REFERENCE_SYSTEMS"]
