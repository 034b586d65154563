"""Continuous normalizing flows (Chen et al. 2018; FFJORD, Grathwohl et al. 2019) with the
RNODE regularisers (Finlay et al. 2020)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .._solve import resolve_method, solve
from .._validation import check_finite, check_int, check_real, check_state
from .base import DataScales, PhysicsModel, check_architecture, mlp, mlp_jvp

PROBES = ("rademacher", "gaussian")


@dataclass(frozen=True, kw_only=True)
class ExactTrace:
    """``tr(∂f/∂z)`` exactly, from ``dim`` forward-mode Jacobian–vector products (one per
    basis vector, batched): cost ``dim`` times a field evaluation. The default up to
    ``dim = 8``."""

    name = "exact"


@dataclass(frozen=True, kw_only=True)
class Hutchinson:
    """Hutchinson's estimator ``tr(J) ≈ εᵀ J ε`` with ``E[εεᵀ] = I`` (Hutchinson 1989), one
    probe ``ε`` per sample held fixed through each solve (as FFJORD): unbiased, at the cost
    of one Jacobian–vector product whatever the dimension.

    Attributes
    ----------
    probe : ``"rademacher"`` (entries ±1, the smaller variance) or ``"gaussian"``.
    """

    name = "hutchinson"
    probe: str = "rademacher"

    def __post_init__(self):
        if self.probe not in PROBES:
            raise ValueError(f"`probe` must be one of {', '.join(map(repr, PROBES))}; "
                             f"got {self.probe!r}")

    def draw(self, shape, like: torch.Tensor, generator=None) -> torch.Tensor:
        """Probes of ``shape`` on ``like``'s device and dtype."""
        if self.probe == "gaussian":
            return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
        bits = torch.randint(0, 2, shape, generator=generator, device=like.device)
        return (2 * bits - 1).to(like.dtype)


def _trace(trace, dim: int):
    if trace == "auto":
        return ExactTrace() if dim <= 8 else Hutchinson()
    if isinstance(trace, (ExactTrace, Hutchinson)):
        return trace
    if trace == "exact":
        return ExactTrace()
    if trace == "hutchinson":
        return Hutchinson()
    if isinstance(trace, dict) and trace.get("name") in ("exact", "hutchinson"):
        return ExactTrace() if trace["name"] == "exact" else Hutchinson(probe=trace["probe"])
    raise ValueError(f"`trace` must be 'auto', 'exact', 'hutchinson', ExactTrace() or "
                     f"Hutchinson(probe=...); got {trace!r}")


@dataclass(frozen=True)
class Flow:
    """What :meth:`CNF.flow` returns, per sample (shapes ``(*batch,)`` except ``z``).

    Attributes
    ----------
    z : torch.Tensor
        The data mapped to the base distribution, normalised coordinates, ``(*batch, dim)``.
    log_prob : torch.Tensor
        ``log p(x)`` in the user's units (nats).
    kinetic, jacobian : torch.Tensor or None
        ``∫₀ᵀ ‖f‖² dt`` and ``∫₀ᵀ ‖∂f/∂z‖²_F dt`` in normalised coordinates (the latter
        estimated with the probes under :class:`Hutchinson`), when asked for.
    nfev : torch.Tensor
        Field evaluations per sample of the solve.
    """

    z: torch.Tensor
    log_prob: torch.Tensor
    kinetic: torch.Tensor | None
    jacobian: torch.Tensor | None
    nfev: torch.Tensor


class AugmentedField(nn.Module):
    """``d/dt (z, ∫ tr J, [∫ ‖f‖², ∫ ‖J‖²_F]) = (f, tr J, [‖f‖², ‖J‖²_F])`` for the field
    ``f(z, t) = N(z, t)`` of the normalised coordinates. The Jacobian enters only through
    forward-mode products ``J v`` (:func:`~physnode.models.base.mlp_jvp`), which need no
    double backward: the exact trace takes the ``dim`` basis vectors at once, Hutchinson's
    estimator the sample's probe (``args``), and ``‖J v‖²`` is the Frobenius term (exact with
    the basis, unbiased with probes)."""

    def __init__(self, net: nn.Module, dim: int, regularise: bool):
        super().__init__()
        self.net, self.dim, self.regularise = net, dim, regularise

    def forward(self, t, y, probe=None):
        z = y[..., :self.dim]
        inputs = torch.cat([z, t.expand(*z.shape[:-1], 1).to(z)], -1)
        if probe is None:                                       # exact: every basis vector
            basis = torch.eye(self.dim, self.dim + 1, dtype=z.dtype, device=z.device)
            wide = inputs.unsqueeze(-2).expand(*inputs.shape[:-1], self.dim, self.dim + 1)
            out, jv = mlp_jvp(self.net, wide, basis.expand_as(wide))
            f = out[..., 0, :]
            trace = jv.diagonal(dim1=-2, dim2=-1).sum(-1, keepdim=True)
            frobenius = jv.pow(2).sum((-2, -1)).unsqueeze(-1)
        else:
            tangent = torch.cat([probe, torch.zeros_like(probe[..., :1])], -1)
            f, jv = mlp_jvp(self.net, inputs, tangent)
            trace = (jv * probe).sum(-1, keepdim=True)
            frobenius = jv.pow(2).sum(-1, keepdim=True)
        parts = [f, trace]
        if self.regularise:
            parts += [f.pow(2).sum(-1, keepdim=True), frobenius]
        return torch.cat(parts, -1)


class PlainField(nn.Module):
    """The flow's field alone, ``f(z, t)``, for sampling without densities."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, t, z):
        return self.net(torch.cat([z, t.expand(*z.shape[:-1], 1).to(z)], -1))


class CNF(PhysicsModel):
    """A continuous normalizing flow: a density ``p(x)`` as the pushforward of a standard
    normal by the flow of a learned field ``dz/dt = f(z, t)``.

    Numerics: with ``z(0) = u = (x − loc)/scale`` (the data's mean and spread, set by
    :func:`physnode.fit`), the instantaneous change of variables (Chen et al. 2018, thm. 1)
    ``d log p(z(t))/dt = −tr(∂f/∂z)`` gives

        log p(x) = log N(z(T); 0, I) + ∫₀ᵀ tr(∂f/∂z(t)) dt − Σᵢ log scaleᵢ,

    integrated in one solve of the augmented state ``(z, ∫ tr J)`` (plus the RNODE integrals
    ``∫ ‖f‖²`` and ``∫ ‖∂f/∂z‖²_F`` when asked for; Finlay et al. 2020) with an adaptive
    method (``dopri5`` by default, FFJORD's tolerances ``rtol = atol = 1e-5``; every sample
    has its own steps). The trace is exact (``dim`` Jacobian–vector products) or Hutchinson's
    unbiased estimate with one probe per sample (FFJORD, Grathwohl et al. 2019). Samples are
    normal draws integrated from ``T`` back to 0. Gradients go through the solver's steps,
    or with ``adjoint=True`` through checkpointed steps of the same forward pass.

    Parameters
    ----------
    dim : int
        Dimension of the data.
    hidden, layers : int
        Width and number of hidden layers of the field ``N(z, t)`` (an MLP of ``(z, t)``).
    activation : str
        ``"tanh"`` (default), ``"softplus"``, ``"silu"`` or ``"gelu"``.
    trace : ``"auto"``, ``"exact"``, ``"hutchinson"``, :class:`ExactTrace` or :class:`Hutchinson`
        How ``tr(∂f/∂z)`` is computed; ``"auto"``: exact up to ``dim = 8``.
    t_end : float
        The flow's duration ``T``.
    method : str
        An integrator name (adaptive ones choose steps from ``rtol``, ``atol``).
    rtol, atol : float
        Tolerances of the solves.
    adjoint : bool
        Memory-saving gradients (see :func:`physnode.solve`).

    References
    ----------
    R. T. Q. Chen, Y. Rubanova, J. Bettencourt, D. Duvenaud, Neural ordinary differential
    equations, NeurIPS 2018. W. Grathwohl, R. T. Q. Chen, J. Bettencourt, I. Sutskever,
    D. Duvenaud, FFJORD, ICLR 2019. C. Finlay, J.-H. Jacobsen, L. Nurbekyan, A. Oberman, How to
    train your neural ODE, ICML 2020.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> cnf = pn.models.CNF(dim=2, hidden=16)
    >>> cnf.log_prob(torch.zeros(3, 2)).shape
    torch.Size([3])
    >>> cnf.sample(5).shape
    torch.Size([5, 2])
    """

    default_integrator = "dopri5"

    def __init__(self, dim: int, hidden: int = 64, layers: int = 3, activation: str = "tanh",
                 trace="auto", t_end: float = 1.0, method: str = "dopri5", rtol: float = 1e-5,
                 atol: float = 1e-5, adjoint: bool = False):
        super().__init__()
        check_int("dim", dim, minimum=1)
        check_architecture(hidden, layers)
        self.trace = _trace(trace, dim)
        check_real("t_end", t_end, positive=True)
        check_real("rtol", rtol, positive=True)
        check_real("atol", atol, positive=True)
        if not isinstance(method, str):
            raise TypeError(f"`method` must be an integrator name (saved with the model); "
                            f"got {type(method).__name__}")
        resolve_method(method)
        trace_config = {"name": self.trace.name, **(
            {"probe": self.trace.probe} if isinstance(self.trace, Hutchinson) else {})}
        self.config = {"dim": dim, "hidden": hidden, "layers": layers, "activation": activation,
                       "trace": trace_config, "t_end": float(t_end), "method": method,
                       "rtol": float(rtol), "atol": float(atol), "adjoint": bool(adjoint)}
        self.dim = dim
        self.state_names = tuple(f"x{i + 1}" for i in range(dim))
        self.t_end, self.method, self.rtol, self.atol = float(t_end), method, rtol, atol
        self.adjoint = bool(adjoint)
        self._register_state_range(dim)
        self.net = mlp(dim + 1, dim, hidden, layers, activation)

    def _adapt(self, scales: DataScales) -> None:
        """The flow runs in coordinates of zero mean and unit spread (``y_loc``, ``y_scale``);
        nothing else to set."""

    def forward(self, t, x: torch.Tensor) -> torch.Tensor:
        """The flow's velocity ``dx/dt`` in the user's units, ``(*batch, dim)``."""
        check_state("x", x, self.dim, "CNF", self.state_names)
        u = (x - self.y_loc) / self.y_scale
        return self.y_scale * PlainField(self.net)(torch.as_tensor(t).to(u), u)

    def _check(self, name: str, x) -> torch.Tensor:
        check_state(name, x, self.dim, "CNF", self.state_names)
        return check_finite(name, x)

    def flow(self, x: torch.Tensor, regularise: bool = False, generator=None) -> Flow:
        """Map data ``x`` of shape ``(*batch, dim)`` to the base distribution with the
        log-density integrated alongside, and the RNODE integrals when ``regularise``."""
        x = self._check("x", x)
        batch = x.shape[:-1]
        u = ((x - self.y_loc) / self.y_scale).reshape(-1, self.dim)
        times = torch.tensor([0.0, self.t_end], dtype=u.dtype, device=u.device)
        solution = self._solve_augmented(u, times, regularise, generator, self.adjoint)
        end = solution.ys[-1]
        z = end[:, :self.dim]
        log_prob = (standard_normal_log_prob(z) + end[:, self.dim]
                    - self.y_scale.log().sum())
        nfev = torch.as_tensor(solution.stats["nfev"]).expand(len(u))

        def shaped(v):
            return v.reshape(batch)
        return Flow(z.reshape(*batch, self.dim), shaped(log_prob),
                    shaped(end[:, self.dim + 1]) if regularise else None,
                    shaped(end[:, self.dim + 2]) if regularise else None, shaped(nfev))

    def _solve_augmented(self, z, times, regularise, generator, adjoint=False):
        """One solve of ``(z, ∫ tr J[, the RNODE integrals])`` over ``times`` from normalised
        states ``z (B, dim)``, with Hutchinson's probes (if any) passed per sample."""
        start = torch.cat([z, z.new_zeros(len(z), 3 if regularise else 1)], -1)
        extra = ({"args": self.trace.draw(z.shape, z, generator)}
                 if isinstance(self.trace, Hutchinson) else {})
        return solve(AugmentedField(self.net, self.dim, regularise), start, times,
                     method=self.method, rtol=self.rtol, atol=self.atol, adjoint=adjoint,
                     **extra)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x)`` in nats, in the user's units, shape ``(*batch,)`` for ``x`` of shape
        ``(*batch, dim)``."""
        return self.flow(x).log_prob

    def sample(self, n: int, generator: torch.Generator | None = None,
               with_log_prob: bool = False):
        """``n`` samples ``(n, dim)``: standard normal draws integrated from ``T`` back to 0;
        with ``with_log_prob`` also their ``log p`` from the same reverse solve
        (``log N(z) − ∫ tr J``), shape ``(n,)``."""
        check_int("n", n, minimum=1)
        like = self.y_loc
        z = torch.randn((n, self.dim), generator=generator, device=like.device,
                        dtype=like.dtype)
        times = torch.tensor([self.t_end, 0.0], dtype=z.dtype, device=z.device)
        options = {"method": self.method, "rtol": self.rtol, "atol": self.atol}
        if not with_log_prob:
            u = solve(PlainField(self.net), z, times, **options).ys[-1]
            return u * self.y_scale + self.y_loc
        end = self._solve_augmented(z, times, False, generator).ys[-1]
        # The integral from T to 0 is minus the one from 0 to T.
        log_prob = standard_normal_log_prob(z) - end[:, self.dim] - self.y_scale.log().sum()
        return end[:, :self.dim] * self.y_scale + self.y_loc, log_prob


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """``log N(z; 0, I)`` over the last axis."""
    return -0.5 * z.pow(2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)
