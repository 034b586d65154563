"""``discover``: equations from a trained model (via regenerated clean data) or from raw
observations, by sparse regression (SINDy) or symbolic regression."""

from __future__ import annotations

import numpy as np
import sympy
import torch

from .._validation import check_int, check_real
from ..data import Trajectories
from ..training.derivatives import estimate_derivatives
from .equations import Equations
from .library import Library
from .regenerate import regenerate
from .sindy import sparse_regression

METHODS = ("sindy", "sr")


def discover(source, method: str = "sindy", library="poly+trig", *,
             data: Trajectories | None = None, degree: int = 3, harmonics: int = 1,
             second_order: bool | None = None, tolerance: float = 1.5, floor: float = 0.01,
             ensemble: int = 0,
             n_points: int | None = None, box: dict | None = None, seed: int = 0,
             sr_options: dict | None = None) -> Equations:
    """Discover ``d(state)/dt = f(state)`` as SymPy equations.

    Parameters
    ----------
    source : trained model or Trajectories
        A model (HNN, LNN, NeuralODE or any System): clean data is first regenerated with
        :func:`regenerate` (rollouts from ``data``'s initial states, or states sampled in
        ``box``, or the training states kept by :func:`physnode.fit`) with derivatives from
        the model itself.
        Raw ``Trajectories``: their ``dy`` if present, otherwise local quadratic estimates on
        the actual sample times — the baseline that the model-based route is compared to.
    method : ``"sindy"`` or ``"sr"``
        Sparse regression on ``library`` (pysindy STLSQ, threshold chosen automatically; see
        :mod:`physnode.discovery.sindy`), or symbolic regression with pyoperon
        (``pip install physnode[sr]``).
    library : str or Library
        ``"poly"``, ``"trig"``, ``"poly+trig"`` (union) or ``"poly*trig"`` (with products),
        with ``degree`` and ``harmonics``; or a :class:`Library` in the state symbols.
    second_order : bool, optional
        State ``concat(q, q̇)``: discover only the accelerations ``q̈ = f(q, q̇)``; the
        kinematics ``dq/dt = q̇`` are exact. Defaults to True for an LNN.
    tolerance, floor : float
        Parsimony: the sparsest support whose held-out relative error is at most
        ``tolerance * best + floor`` is chosen.
    ensemble : int
        Number of bagged models for term inclusion frequencies (``Equations.inclusion``).
    seed : int
        Seeds the held-out split, box sampling, bagging and symbolic regression.

    Examples
    --------
    >>> import physnode as pn
    >>> data = pn.data.simulate(pn.systems.Pendulum(), n_trajectories=4, n_points=100,
    ...                         derivatives=True, seed=0)
    >>> print(pn.discover(data))
    dq/dt = 1.0*p
    dp/dt = -9.81*sin(q)
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {', '.join(map(repr, METHODS))}; "
                         f"got {method!r}")
    check_real("tolerance", tolerance, positive=True)
    check_real("floor", floor, nonnegative=True)
    check_int("ensemble", ensemble, minimum=0)
    clean = _clean_data(source, data, n_points, box, seed)
    names = clean.state_names
    symbols = tuple(sympy.Symbol(n, real=True) for n in names)
    if second_order is None:
        second_order = hasattr(source, "lagrangian")
    if second_order and len(symbols) % 2:
        raise ValueError(f"`second_order=True` needs a state concat(q, qdot) of even width; "
                         f"got {len(symbols)} states {names}")
    y = torch.cat([tr.y for tr in clean]).detach().cpu().double().numpy()
    dy = torch.cat(_derivatives(clean)).detach().cpu().double().numpy()
    held_out = _held_out_mask(clean, seed)
    dof = len(symbols) // 2
    targets = range(dof, len(symbols)) if second_order else range(len(symbols))
    equations = {s: symbols[i + dof] for i, s in enumerate(symbols[:dof])} if second_order \
        else {}
    if method == "sindy":
        lib = _library(library, symbols, degree, harmonics)
        if len(y) < 2 * len(lib):
            raise ValueError(f"the data is too short: {len(y)} samples for a library of "
                             f"{len(lib)} terms; need at least {2 * len(lib)}")
        theta = lib.matrix(y)
        scores, inclusion = {}, {}
        for i in targets:
            result = sparse_regression(theta, dy[:, i], held_out, tolerance, floor, ensemble,
                                       seed)
            equations[symbols[i]] = _assemble(lib.terms, result.coefficients)
            scores[symbols[i]] = result.score
            if result.inclusion is not None:
                inclusion[symbols[i]] = dict(zip(lib.terms, result.inclusion.tolist()))
        return Equations(equations, second_order, "sindy", inclusion=inclusion, scores=scores)
    from .symbolic import symbolic_regression
    pareto, scores = {}, {}
    for i in targets:
        expr, front, score = symbolic_regression(y, dy[:, i], symbols, held_out, seed,
                                                 sr_options or {})
        equations[symbols[i]], pareto[symbols[i]], scores[symbols[i]] = expr, front, score
    return Equations(equations, second_order, "sr", pareto=pareto, scores=scores)


def _clean_data(source, data, n_points, box, seed) -> Trajectories:
    if isinstance(source, Trajectories):
        if len(source) == 0:
            raise ValueError("`source` data is empty; expected at least one trajectory")
        return source
    return regenerate(source, data, n_points=n_points, box=box, seed=seed)


def _derivatives(data: Trajectories):
    if data.has_derivatives:
        return [tr.dy for tr in data]
    if min(len(tr) for tr in data) < 3:
        raise ValueError("the data is too short: estimating derivatives needs at least 3 "
                         "samples per trajectory")
    return estimate_derivatives(data)


def _held_out_mask(data: Trajectories, seed: int) -> np.ndarray:
    """Every fourth trajectory when there are enough multi-sample ones, else 25% of samples."""
    lengths = [len(tr) for tr in data]
    if len(data) >= 4 and min(lengths) > 1:
        return np.concatenate([np.full(n, i % 4 == 3) for i, n in enumerate(lengths)])
    rng = np.random.default_rng(seed)
    return rng.random(sum(lengths)) < 0.25


def _library(library, symbols, degree, harmonics) -> Library:
    if isinstance(library, Library):
        unknown = set().union(*(t.free_symbols for t in library.terms)) - set(symbols)
        if unknown:
            raise ValueError(f"`library` uses symbols {sorted(map(str, unknown))} that are not "
                             f"states {[s.name for s in symbols]}")
        return Library(symbols, library.terms)
    return Library.from_spec(library, symbols, degree, harmonics)


def _assemble(terms, coefficients) -> sympy.Expr:
    return sympy.Add(*[sympy.Float(float(c)) * term for term, c in zip(terms, coefficients)
                       if c != 0])
