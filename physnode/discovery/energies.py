"""Learned energies as SymPy expressions: ``hamiltonian(hnn)``, and ``lagrangian(model)`` with
its dissipation and equations of motion."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass

import numpy as np
import sympy
import torch

from ..data import Trajectories
from ..models.base import parameter_placement
from .equations import (
    Equations,
    expression_to_tree,
    read_payload,
    round_floats,
    tree_to_expression,
)
from .library import Library, declared_angles
from .methods import Sindy, assemble
from .regenerate import model_states, names_from_data, sample_states
from .sindy import EXHAUSTIVE_LIMIT, NoAdmissibleSupport, sparse_regression

LAGRANGIAN_FORMAT = "physnode.lagrangian/1"
#: How far a model's dq/dt may stray from the velocities in its state, relative to their RMS,
#: for :func:`lagrangian` (a fitted HNN in velocity coordinates learns q̇ ≈ ∂H/∂p).
KINEMATIC_SLIP = 0.1


def hamiltonian(model, library=None, *, data: Trajectories | None = None,
                box: dict | None = None, degree: int = 4, harmonics: int = 1,
                n_samples: int = 4000, tolerance: float = 1.5, seed: int = 0) -> sympy.Expr:
    """The learned energy of an HNN as a sparse SymPy expression in the model's state
    coordinates: ``H(q, p)``, or for an HNN in velocity coordinates the energy ``E(q, q̇) =
    H(q, M(q) q̇)`` (quadratic in ``q̇`` for a mechanical system, where ``H`` in ``p`` is not
    sparse when the mass depends on ``q``; its scale is the learned one, which only ratios
    fix: :func:`lagrangian` gives a gauge-fixed result).

    In canonical coordinates the scalar is regressed on ``library`` (plus a constant, dropped
    afterwards: an energy is defined up to an additive constant), with the same automatic
    sparsity as :func:`physnode.discover`. In velocity coordinates ``E`` is the energy
    ``q̇·∂L/∂q̇ − L`` of the model's Lagrangian, found from its motion by :func:`lagrangian`
    (same arguments and requirements: its ``library`` must hold ``q̇₁²``, and the first
    coordinate's inertia must have a constant part), times the factor that fits the
    learned values. Regressing the values themselves there gave collinear stand-ins: on an
    elastic pendulum's HNN, ``0.048 r⁴θ̇² + 0.186 rθ̇²`` for ``½ r²θ̇²`` and ``−0.144 r²ṙ²
    + 0.368 rṙ²`` for ``½ ṙ²`` (``r`` in [1.1, 1.4]), since the right five terms and the
    constant are more than the supports searched exhaustively; the Lagrangian needs four
    once its scale is fixed.

    The states are those of ``data`` (where the model was trained), or else ``n_samples``
    states drawn from ``box``, or else the training states that :func:`physnode.fit` kept
    with the model. ``library=None``: ``"poly+trig"`` in ``(q, p)``,
    :meth:`Library.mechanical` in velocity coordinates. At the states of ``data`` the symbols
    take the data's names, as :func:`physnode.discover` gives them (positions-only data:
    ``theta`` and ``thetadot``); otherwise the model's.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> class PendulumEnergy(torch.nn.Module):
    ...     def forward(self, y):
    ...         return y[..., 1] ** 2 / 2 - 9.81 * torch.cos(y[..., 0])
    >>> hnn = pn.models.HNN(dof=1, hidden=8).double()
    >>> hnn.hamiltonian = PendulumEnergy()
    >>> H = pn.discovery.hamiltonian(hnn, box={"q": (-1, 1), "p": (-2, 2)})
    >>> print(pn.discovery.round_floats(H, 6))
    0.5*p**2 - 9.81*cos(q)
    """
    if not callable(getattr(model, "hamiltonian", None)):
        raise TypeError(f"`model` has no learned hamiltonian (expected an HNN); got "
                        f"{type(model).__name__}")
    # The energy as a function of the model's own states (H after the mass's p = M(q) q̇).
    scalar = getattr(model, "energy", model.hamiltonian)
    names = _names(model, tuple(model.state_names), data, box)
    symbols = tuple(sympy.Symbol(n, real=True) for n in names)
    y = _states(model, names, data, box, n_samples, seed)
    with torch.no_grad():
        values = scalar(y).detach().cpu().double().numpy()
    states = y.detach().cpu().double().numpy()
    if getattr(model, "coordinates", "canonical") == "velocity":
        found = lagrangian(model, library, data=data, box=box, degree=degree,
                           harmonics=harmonics, n_samples=n_samples, tolerance=tolerance,
                           seed=seed)
        return _in_learned_scale(found.energy(), symbols, states, values)
    lib = Sindy(library=library or "poly+trig", degree=degree,
                harmonics=harmonics).terms(symbols, declared_angles(data, model))
    lib = type(lib)(symbols, (sympy.Integer(1),) + lib.terms)
    held_out = np.random.default_rng(seed).random(len(values)) < 0.25
    fit = sparse_regression(lib.matrix(states), values, held_out, tolerance)
    expression = assemble(lib.terms, fit.coefficients)
    return expression - expression.as_coeff_Add()[0]


def _in_learned_scale(energy: sympy.Expr, symbols, states: np.ndarray,
                      values: np.ndarray) -> sympy.Expr:
    """``c · energy`` with ``c`` (and a constant, dropped) fitted by least squares to a
    model's learned ``values`` at ``states``."""
    column = _values(energy, symbols, states)
    c = np.linalg.lstsq(np.stack([column, np.ones_like(column)], 1), values, rcond=None)[0][0]
    return sympy.expand(sympy.Float(float(c)) * energy)


def _names(model, names, data, box) -> tuple:
    """The symbols' names: the data's (as :func:`physnode.discover` names them) where the
    states of ``data`` are sampled, else the model's ``names`` (a ``box`` is keyed by
    them)."""
    return names_from_data(model, data, names) if data is not None and box is None else names


def _states(model, names, data, box, n_samples, seed) -> torch.Tensor:
    """Where a learned scalar or motion is sampled: the states of ``data`` (where the model
    was trained: its extrapolation to the corners of a box is poor; positions-only data
    completed with estimated velocities, :func:`model_states`), else ``n_samples`` drawn
    from ``box``, else the training states the model kept; on the model's device."""
    place = parameter_placement(model)
    return (torch.cat(model_states(model, data)) if data is not None and box is None
            else sample_states(model, names, box, n_samples, seed, place["dtype"])).to(**place)


def lagrangian(model, library=None, *, data: Trajectories | None = None,
               box: dict | None = None, degree: int = 4, harmonics: int = 1,
               n_samples: int = 4000, tolerance: float = 1.5, seed: int = 0) -> Lagrangian:
    """The Lagrangian of a model of ``(q, q̇)`` data, as a sparse SymPy expression with its
    Rayleigh dissipation and its Euler–Lagrange equations.

    ``L`` is found from the model's *motion*, not from the values of its learned scalar: a
    Lagrangian is defined only up to a scale and a total time derivative, and a network's
    ``L`` carries an arbitrary amount of both. Every library term ``θₖ`` is mapped to its
    Euler–Lagrange expression ``d/dt ∂θₖ/∂q̇ − ∂θₖ/∂q`` at the model's accelerations, and
    ``L = Σ ξₖ θₖ`` solves ``EL(L) = −∂R/∂q̇`` by the same sparse regression (and automatic
    sparsity) as :func:`physnode.discover`. This fixes the gauge:

    - total derivatives (a constant, ``c·q̇``, in one degree of freedom any ``f(q) q̇``) have
      no Euler–Lagrange expression and drop out;
    - the scale is fixed by the coefficient of ``q̇₁²``, set to ``½``: ``L`` is measured in
      units of the first coordinate's inertia (multiply by a known one for physical units).

    The supports that compete for the choice are judged by the accelerations their
    equations of motion give (held-out relative RMS error against the model's), not by the
    residual: a Lagrangian whose mass matrix ``∂²L/∂q̇²`` is nearly singular satisfies its own
    equations almost trivially, so a fitted model's motion would otherwise be "explained" by
    one whose accelerations are far off. Only an ``L`` whose mass matrix is positive definite
    at every sampled state is a candidate.

    For a dissipative model the Rayleigh function ``R = ½ Σ cᵢ q̇ᵢ²`` is part of the fit (in
    the same units; a ``cᵢ`` that would come out negative, an energy source, is set to 0 and
    the rest refitted), and for a damping that depends on the configuration
    (:class:`~physnode.models.ConfigurationDamping`) so are, sparsely, the terms
    ``q̇ᵢ q̇ⱼ g(q)`` for the library's functions ``g`` of the positions; otherwise ``R = 0``.
    Those extra terms are sparse but not constrained to a positive semi-definite
    ``D(q) = ∂²R/∂q̇²``: the recovered ``D`` is checked at the sampled configurations and a
    warning says where it is not (see :meth:`Lagrangian.damping_matrix`).

    Parameters
    ----------
    model : a model whose state is ``concat(q, q̇)``: an :class:`~physnode.models.LNN`, an HNN
        in velocity coordinates, a NeuralODE fitted to ``(q, q̇)`` (checked: its ``dq/dt``
        must be ``q̇`` within 10% RMS). Only its accelerations enter.
    library : None, str or Library
        ``None``: :meth:`Library.mechanical` (``q̇ᵢ q̇ⱼ``, ``q̇ᵢ``, ``1`` times polynomials of
        the positions up to ``degree``, trigonometric terms of the angles and their
        differences, and the other positions times those: ``r cos θ``). A string or a
        :class:`Library` as in :class:`~physnode.Sindy`. It must hold ``q̇₁²``, and the first
        coordinate's inertia must have a constant part (order the coordinates so: with polar
        ``(r, θ)``, ``L = ½ (ṙ² + r² θ̇²)`` works, and ``(θ, r)`` does not).
    data, box, n_samples : where the motion is sampled: the states of ``data`` (where the
        model was trained; the symbols then take the data's names, as in
        :func:`physnode.discover`), else ``n_samples`` states drawn from ``box``, else the
        training states that :func:`physnode.fit` kept with the model.
    tolerance, seed : the sparsity rule and the held-out split, as in :func:`~physnode.discover`.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> def L(y):                                  # a pendulum, in units of its inertia
    ...     return 0.5 * y[..., 1] ** 2 + 9.81 * torch.cos(y[..., 0])
    >>> pendulum = pn.systems.LagrangianSystem(L, dof=1)
    >>> found = pn.discovery.lagrangian(pendulum, box={"q": (-1, 1), "qdot": (-2, 2)})
    >>> print(found)
    0.5*qdot**2 + 9.81*cos(q)
    >>> print(found.equations())
    dq/dt = qdot
    dqdot/dt = -9.81*sin(q)
    """
    dof = getattr(model, "dof", None)
    names = tuple(getattr(model, "state_names", ()))
    if not isinstance(dof, int) or len(names) != 2 * dof:
        raise TypeError(f"`model` must be a model of (q, q̇) states with `dof` and "
                        f"`state_names` (an LNN, an HNN with coordinates='velocity'); got "
                        f"{type(model).__name__}")
    names = _names(model, names, data, box)
    symbols = tuple(sympy.Symbol(n, real=True) for n in names)
    positions, velocities = symbols[:dof], symbols[dof:]
    y = _states(model, names, data, box, n_samples, seed)
    with torch.no_grad():
        rate = model(torch.zeros((), dtype=y.dtype, device=y.device), y)
    y, rate = (x.detach().cpu().double().numpy() for x in (y, rate))
    slip = np.sqrt(np.mean((rate[:, :dof] - y[:, dof:]) ** 2) / np.mean(y[:, dof:] ** 2))
    if not slip <= KINEMATIC_SLIP:
        raise ValueError(f"`model` is not a model of (q, q̇) states: its dq/dt differs from "
                         f"the velocities {names[dof:]} by {slip:.3g} of their RMS (at most "
                         f"{KINEMATIC_SLIP}; a NeuralODE or an HNN in canonical coordinates "
                         f"trained on (q, p) has no Lagrangian to recover this way)")
    angles = declared_angles(data, model)
    if library is None:
        periodic = None if angles is None else [positions[i] for i in angles]
        library = Library.mechanical(positions, velocities, degree, harmonics, periodic)
    elif not isinstance(library, Library):
        library = Sindy(library=library, degree=degree, harmonics=harmonics).terms(symbols,
                                                                                    angles)
    anchor = velocities[0] ** 2
    if anchor not in library.terms:
        raise ValueError(f"`library` must hold {anchor} (its coefficient fixes the scale of "
                         f"L); got {len(library)} terms without it")
    samples = np.concatenate([y, rate[:, dof:]], 1)
    terms, columns = _euler_lagrange_columns(library.terms, positions, velocities, samples)
    friction = getattr(model, "friction", None)
    # Rayleigh: ½ Σ cᵢ q̇ᵢ² (forced, unless a cᵢ fits negative), and for a damping that
    # depends on the configuration q̇ᵢ q̇ⱼ g(q) for the configuration functions g of the
    # library (sparse).
    forced = [v ** 2 / 2 for v in velocities] if getattr(model, "dissipative", False) else []
    extra = (_rayleigh_terms(library, velocities)
             if getattr(friction, "varies", False) else [])
    forced_columns = _friction_columns(forced, positions, velocities, samples)
    extra_columns = _friction_columns(extra, positions, velocities, samples)
    k0 = terms.index(anchor)
    target = -0.5 * columns[:, k0]
    others = [k for k in range(len(terms)) if k != k0]
    held_out = np.tile(np.random.default_rng(seed).random(len(y)) < 0.25, dof)
    motion = _motion_error([terms[k] for k in others], anchor, symbols, velocities, y,
                           rate[:, dof:], held_out[:len(y)])
    # One regression where discover makes one per state: it may spend their budget of
    # exhaustively scored supports (an elastic pendulum's four-term L among 44 columns).
    try:
        xi, zeta, error = _regress_with(np.concatenate([columns[:, others], extra_columns], 1),
                                        forced_columns, target, held_out, tolerance, motion,
                                        EXHAUSTIVE_LIMIT * len(names))
    except NoAdmissibleSupport:
        raise ValueError(f"no Lagrangian of the library determines the model's motion: every "
                         f"candidate's mass matrix ∂²L/∂q̇² is singular or indefinite at some "
                         f"of the {len(y)} sampled states (give a `library` holding the "
                         f"system's kinetic terms, or check that the model was fitted to "
                         f"(q, q̇) data)") from None
    coefficients = np.zeros(len(terms))
    coefficients[k0], coefficients[others] = 0.5, xi[:len(others)]
    rayleigh = assemble(forced + extra, np.concatenate([zeta, xi[len(others):]]))
    found = Lagrangian(assemble(terms, coefficients), rayleigh, positions, velocities, error)
    if extra:
        _check_definite(found, y[:, :dof])
    return found


def _check_definite(found, q: np.ndarray) -> None:
    """Warn when a recovered configuration-dependent ``D(q) = ∂²R/∂q̇²`` has a negative
    eigenvalue at some of the sampled configurations ``q`` (rows): the model's friction is
    positive semi-definite by construction, but a sparse regression of ``R`` is not
    constrained to be, and such an ``R`` feeds energy in where ``D`` is indefinite."""
    eigenvalues = np.linalg.eigvalsh(_matrix_at(found.damping_matrix(), found.positions, q))
    top = float(np.abs(eigenvalues).max())
    negative = eigenvalues[:, 0] < -1e-9 * top
    if negative.any():
        warnings.warn(f"the recovered Rayleigh function R = {round_floats(found.dissipation, 4)}"
                      f" is not positive semi-definite at {int(negative.sum())} of {len(q)} "
                      f"sampled configurations (smallest eigenvalue of ∂²R/∂q̇² there "
                      f"{eigenvalues[:, 0].min():.3g}, largest anywhere {top:.3g}): its "
                      f"friction would feed energy in there, so do not trust its equations "
                      f"of motion in that region", stacklevel=3)


def _matrix_at(matrix: sympy.Matrix, symbols, samples: np.ndarray) -> np.ndarray:
    """A square matrix of expressions in ``symbols`` at the rows of ``samples`` (values of
    the symbols, in order): ``(n, d, d)``."""
    d = matrix.shape[0]
    return np.stack([_values(entry, symbols, samples) for entry in matrix], -1).reshape(-1, d, d)


def _rayleigh_terms(library, velocities) -> list:
    """``q̇ᵢ q̇ⱼ g(q)`` for the library's functions ``g`` of the positions alone (the constant
    only off the diagonal: ``½ q̇ᵢ²`` is always fitted)."""
    configuration = [t for t in library.terms if not t.free_symbols & set(velocities)]
    pairs = [(a, b) for i, a in enumerate(velocities) for b in velocities[i:]]
    return [a * b * g for a, b in pairs for g in configuration if not (a == b and g == 1)]


def _friction_columns(terms, positions, velocities, samples) -> np.ndarray:
    """``∂ρ/∂q̇ᵢ`` of each Rayleigh term ``ρ`` at ``samples``, equations stacked like
    :func:`_euler_lagrange_columns`; ``(n·dof, len(terms))``."""
    columns = [_stacked([sympy.diff(term, v) for v in velocities], (*positions, *velocities),
                        samples) for term in terms]
    return (np.stack(columns, 1) if columns
            else np.zeros((len(samples) * len(velocities), 0)))


def _euler_lagrange_columns(terms, positions, velocities, samples):
    """Each term's Euler–Lagrange expression ``d/dt ∂θ/∂q̇ᵢ − ∂θ/∂qᵢ`` evaluated at
    ``samples`` = rows of ``(q, q̇, q̈)``: one column per term, the equations stacked (``n·dof``
    rows). Terms whose expression vanishes identically (total derivatives) are left out."""
    dof = len(positions)
    accelerations = sympy.symbols(f"_a0:{dof}", real=True)
    kept, columns = [], []
    for term in terms:
        rows = [sympy.expand(_euler_lagrange(term, positions, velocities, accelerations, i))
                for i in range(dof)]
        if all(r == 0 for r in rows):
            continue
        kept.append(term)
        columns.append(_stacked(rows, (*positions, *velocities, *accelerations), samples))
    return kept, np.stack(columns, 1)


def _stacked(expressions, symbols, samples) -> np.ndarray:
    """One expression per equation evaluated at ``samples`` (rows of values of ``symbols``,
    extra columns ignored) and stacked, equation after equation: ``(n·len(expressions),)``."""
    return np.concatenate([_values(e, symbols, samples) for e in expressions])


def _values(expression, symbols, samples) -> np.ndarray:
    """``expression`` at the rows of ``samples`` (values of ``symbols``, in order; extra
    columns ignored): ``(n,)``, without compiling an expression that is identically 0."""
    if expression == 0:
        return np.zeros(len(samples))
    return np.broadcast_to(np.asarray(sympy.lambdify(symbols, expression, "numpy")(
        *samples[:, :len(symbols)].T), float), samples.shape[:1])


def _euler_lagrange(L, positions, velocities, accelerations, i):
    """``d/dt ∂L/∂q̇ᵢ − ∂L/∂qᵢ`` with ``d/dt`` along ``(q̇, q̈)``."""
    momentum = sympy.diff(L, velocities[i])
    return (sum(sympy.diff(momentum, v) * a + sympy.diff(momentum, q) * v
                for q, v, a in zip(positions, velocities, accelerations))
            - sympy.diff(L, positions[i]))


def _motion_error(terms, anchor, symbols, velocities, states, accelerations, rows):
    """``rescore(ξ, residual)`` for :func:`sparse_regression`: the relative RMS error, over the
    sampled states ``rows``, of the accelerations that the equations of motion of ``L = ½
    anchor + Σ ξₖ θₖ`` (``θₖ`` the ``terms``; further coefficients, Rayleigh terms, enter only
    through the residual) give, against the model's ``accelerations`` (``(n, dof)``); ``inf``
    unless the mass matrix ``∂²L/∂q̇²`` is positive definite at every sampled state.

    The residual ``EL(L) + ∂R/∂q̇`` at the model's accelerations is ``M (q̈_model − q̈_L)``, so
    the error is ``M⁻¹`` times it. The residual alone favours a degenerate ``L``: on a double
    pendulum fitted to 11% error, ``½ q̇₁² − 0.458 q̇₁² cos q₁ − 0.206 q̇₁² cos q₂ + 0.144 q̇₁²
    cos(q₁ − q₂)`` (no ``q̇₂`` at all, an indefinite ``M``) left a smaller residual than the
    true four terms; on an elastic pendulum fitted to 2–5%, 27 terms whose ``ṙ²`` parts
    cancelled the gauge's ``½ ṙ²`` to 0.1% left a residual of 0.19% of the target's and gave
    accelerations 60% off, the true five 4.1% and 3.2%."""
    n, dof = len(states), len(velocities)

    def hessian(term):
        return _matrix_at(sympy.hessian(term, velocities), symbols, states)

    base = hessian(anchor) / 2
    hessians = np.stack([hessian(term) for term in terms]) if terms else np.zeros((0, n, dof, dof))
    size = np.sqrt(np.mean(np.sum(accelerations[rows] ** 2, 1)))

    def rescore(xi, residual) -> float:
        used = np.flatnonzero(xi[:len(terms)])          # a sparse support: its terms only
        mass = base + np.einsum("k,knij->nij", xi[used], hessians[used])
        eigenvalues = np.linalg.eigvalsh(mass)
        if not (eigenvalues[:, 0] > 1e-9 * np.abs(eigenvalues).max()).all():
            return math.inf
        gap = np.linalg.solve(mass[rows], residual.reshape(dof, n).T[rows][..., None])[..., 0]
        return float(np.sqrt(np.mean(np.sum(gap ** 2, 1))) / size)

    return rescore


def _regress_with(columns, forced, target, held_out, tolerance, rescore=None,
                  exhaustive_limit=None):
    """Sparse ``columns @ ξ + forced @ ζ ≈ target`` with the ``forced`` columns (the diagonal
    Rayleigh terms ``½ cᵢ q̇ᵢ²``) kept unless their coefficient comes out negative: a
    dissipation cannot feed energy in, so such a term is dropped and the rest refitted, until
    every kept ``ζ ≥ 0`` (a dropped term does not come back: with several degrees of freedom
    and correlated columns this need not be the sign-constrained least-squares optimum)."""
    keep = np.ones(forced.shape[1], dtype=bool)
    while True:
        xi, zeta_kept, score = _regress_forced(columns, forced[:, keep], target, held_out,
                                               tolerance, rescore, exhaustive_limit)
        negative = zeta_kept < 0
        if not negative.any():
            zeta = np.zeros(forced.shape[1])
            zeta[keep] = zeta_kept
            return xi, zeta, score
        keep[np.flatnonzero(keep)[negative]] = False


def _regress_forced(columns, forced, target, held_out, tolerance, rescore=None,
                    exhaustive_limit=None):
    """Sparse ``columns @ ξ + forced @ ζ ≈ target`` with every ``forced`` column kept: the
    forced columns are regressed out first (Frisch–Waugh–Lovell, fitted on the training rows
    only, so the held-out rows stay held out), then fitted to what the sparse part leaves."""
    train = ~held_out
    if forced.shape[1]:
        both = np.concatenate([columns, target[:, None]], 1)
        beta = np.linalg.lstsq(forced[train], both[train], rcond=None)[0]
        left = both - forced @ beta
        columns_left, target_left = left[:, :-1], left[:, -1]
    else:
        columns_left, target_left = columns, target
    fit = sparse_regression(columns_left, target_left, held_out, tolerance,
                            rescore=rescore, exhaustive_limit=exhaustive_limit)
    zeta = (np.linalg.lstsq(forced, target - columns @ fit.coefficients, rcond=None)[0]
            if forced.shape[1] else np.zeros(0))
    return fit.coefficients, zeta, fit.score


@dataclass(frozen=True)
class Lagrangian:
    """A recovered Lagrangian (see :func:`lagrangian`).

    Attributes
    ----------
    expression : sympy.Expr
        ``L(q, q̇)``, the coefficient of ``q̇₁²`` fixed to ``½``.
    dissipation : sympy.Expr
        The Rayleigh function ``R(q, q̇)`` in the same units (``0`` when conservative): the
        generalised friction force is ``−∂R/∂q̇``.
    positions, velocities : tuple of sympy.Symbol
    held_out_error : float
        Relative RMS error, on held-out samples, of the accelerations that ``L``'s equations
        of motion give against the model's.
    """

    expression: sympy.Expr
    dissipation: sympy.Expr
    positions: tuple
    velocities: tuple
    held_out_error: float

    def __str__(self) -> str:
        return str(round_floats(self.expression, 4))

    def to_latex(self, digits: int | None = None) -> str:
        """``L = …`` (and ``R = …`` when dissipative) in LaTeX."""
        parts = [("L", self.expression)] + ([("R", self.dissipation)]
                                            if self.dissipation != 0 else [])
        return " \\\\\n".join(
            f"{name} &= {sympy.latex(e if digits is None else round_floats(e, digits))}"
            for name, e in parts)

    def to_json(self) -> str:
        """Exact, code-free JSON, as :meth:`Equations.to_json` (see :meth:`from_json`)."""
        return json.dumps({"format": LAGRANGIAN_FORMAT,
                           "positions": [s.name for s in self.positions],
                           "velocities": [s.name for s in self.velocities],
                           "lagrangian": expression_to_tree(self.expression),
                           "dissipation": expression_to_tree(self.dissipation),
                           "held_out_error": self.held_out_error}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Lagrangian:
        """Rebuild a Lagrangian written by :meth:`to_json`."""
        payload = read_payload(text, "Lagrangian", LAGRANGIAN_FORMAT)
        names = {n: sympy.Symbol(n, real=True)
                 for n in payload["positions"] + payload["velocities"]}
        return cls(tree_to_expression(payload["lagrangian"], names),
                   tree_to_expression(payload["dissipation"], names),
                   tuple(names[n] for n in payload["positions"]),
                   tuple(names[n] for n in payload["velocities"]), payload["held_out_error"])

    def damping_matrix(self) -> sympy.Matrix:
        """``D(q) = ∂²R/∂q̇²``, the friction matrix of the Rayleigh function (the force is
        ``−D(q) q̇``; a zero matrix when conservative). It should be positive semi-definite
        at every configuration; :func:`lagrangian` warns when the recovered one is not at the
        sampled configurations."""
        return sympy.hessian(self.dissipation, self.velocities)

    def energy(self) -> sympy.Expr:
        """The energy function ``E = Σᵢ q̇ᵢ ∂L/∂q̇ᵢ − L`` (``½ q̇ᵀ M q̇ + V`` for ``L = ½ q̇ᵀ M q̇ −
        V``), conserved by the motion without friction; in the units of ``L``."""
        return sympy.expand(sum(v * sympy.diff(self.expression, v) for v in self.velocities)
                            - self.expression)

    def equations(self) -> Equations:
        """The equations of motion ``q̈ = M(q)⁻¹ (∂L/∂q − (∂²L/∂q̇∂q) q̇ − ∂R/∂q̇)`` by
        Euler–Lagrange, as second-order :class:`Equations` on ``concat(q, q̇)``."""
        dof = len(self.positions)
        accelerations = sympy.symbols(f"_a0:{dof}", real=True)
        residual = [_euler_lagrange(self.expression, self.positions, self.velocities,
                                    accelerations, i)
                    + sympy.diff(self.dissipation, self.velocities[i]) for i in range(dof)]
        mass = sympy.Matrix(dof, dof, lambda i, j: sympy.diff(residual[i], accelerations[j]))
        rest = sympy.Matrix([r.subs(dict.fromkeys(accelerations, 0)) for r in residual])
        if mass.det() == 0:
            raise ValueError(f"the Lagrangian {self} is degenerate (∂²L/∂q̇² is singular): "
                             f"it has no equations of motion")
        solved = mass.LUsolve(-rest)
        rates = {**dict(zip(self.positions, self.velocities)),
                 **{v: sympy.simplify(a) if dof == 1 else a
                    for v, a in zip(self.velocities, solved)}}
        return Equations(rates, second_order=True, method="euler-lagrange")

    def compare(self, truth: sympy.Expr) -> dict:
        """Compare with a known Lagrangian after bringing it to the same gauge (scaled so
        that its ``q̇₁²`` coefficient is ``½``; constants and constant multiples of ``q̇ᵢ``
        dropped). Returns the dictionary of :meth:`Equations.compare` for the single
        expression ``L``."""
        terms = sympy.expand(truth).as_coefficients_dict()
        anchor = terms.get(self.velocities[0] ** 2, 0)
        if anchor == 0:
            raise ValueError(f"`truth` has no {self.velocities[0] ** 2} term to fix its scale")
        gauge = {sympy.Integer(1), *self.velocities}
        scaled = sum((sympy.Float(float(c / anchor) / 2) * t for t, c in terms.items()
                      if t not in gauge), sympy.Integer(0))
        L = sympy.Symbol("L", real=True)
        return Equations({L: self.expression}).compare({"L": scaled})
