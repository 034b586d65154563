"""``discover``: equations from a trained model (via regenerated clean data) or from raw
observations, by sparse regression (SINDy) or symbolic regression."""

from __future__ import annotations

import numpy as np
import sympy
import torch

from ..data import Trajectories
from ..models.ensemble import Ensemble
from ..training.derivatives import smooth
from .equations import Equations
from .library import declared_angles
from .methods import METHODS, DiscoveryMethod, Sindy, SymbolicRegression
from .quality import fit_quality, relative_noise, warn_if_untrusted
from .regenerate import regenerate


def discover(source, method: str | DiscoveryMethod = "sindy", library=None, *,
             data: Trajectories | None = None, second_order: bool | None = None,
             n_points: int | None = None, box: dict | None = None, seed: int = 0,
             degree: int | None = None, harmonics: int | None = None,
             tolerance: float | None = None, floor: float | None = None,
             ensemble: int | None = None, sr_options: dict | None = None) -> Equations:
    """Discover ``d(state)/dt = f(state)`` as SymPy equations.

    Parameters
    ----------
    source : trained model or Trajectories
        A model (HNN, LNN, NeuralODE or any System): clean data is first regenerated with
        :func:`regenerate` (rollouts from ``data``'s initial states, or states sampled in
        ``box``, or the training states kept by :func:`physnode.fit`) with derivatives from
        the model itself. An :class:`~physnode.models.Ensemble`: every member, combined by
        :meth:`Equations.consensus` (term inclusion frequencies and coefficient spreads).
        With ``data``, how well the model reproduces the observations is
        measured first (``Equations.fit_quality``), with a warning when it is too poor to
        trust what follows, or when the observations are sampled too coarsely for their
        dynamics to measure it (:func:`~physnode.discovery.quality.coarse_sampling`).
        Raw ``Trajectories``: their ``dy`` if present, otherwise local polynomial estimates on
        the actual sample times, without the one-sided ones at each trajectory's ends — the
        baseline that the model-based route is compared to.
    method : :class:`Sindy`, :class:`SymbolicRegression`, ``"sindy"`` or ``"sr"``
        The regression: sparse regression on a library of candidate terms (default
        ``Sindy()``), or symbolic regression with pyoperon (``pip install physnode[sr]``).
        The names build the default objects.
    library, degree, harmonics, tolerance, floor, ensemble : older spellings of
        ``Sindy(library=, degree=, harmonics=, tolerance=, floor=, ensemble=)``.
    sr_options : older spelling of ``SymbolicRegression(options=)``.
    second_order : bool, optional
        State ``concat(q, q̇)``: discover only the accelerations ``q̈ = f(q, q̇)``; the
        kinematics ``dq/dt = q̇`` are exact. Defaults to True for a model whose kinematics
        are exact by construction (``exact_kinematics``: an LNN, a SecondOrderNeuralODE).
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
    method = _method(method, library=library, degree=degree, harmonics=harmonics,
                     tolerance=tolerance, floor=floor, ensemble=ensemble,
                     sr_options=sr_options)
    if isinstance(source, Ensemble):        # every member, then their consensus
        return Equations.consensus(
            discover(member, method, data=data, second_order=second_order, n_points=n_points,
                     box=box, seed=seed) for member in source.members)
    quality = None
    if data is not None and not isinstance(source, Trajectories) and isinstance(
            data, Trajectories) and len(data) and hasattr(source, "parameters"):
        quality = fit_quality(source, data)
        warn_if_untrusted(quality)
    clean = _clean_data(source, data, n_points, box, seed)
    names = clean.state_names
    symbols = tuple(sympy.Symbol(n, real=True) for n in names)
    if second_order is None:
        second_order = bool(getattr(source, "exact_kinematics", False))
    if second_order and len(symbols) % 2:
        raise ValueError(f"`second_order=True` needs a state concat(q, qdot) of even width; "
                         f"got {len(symbols)} states {names}")
    y, dy, held_out = _samples(clean, seed)
    dof = len(symbols) // 2
    targets = range(dof, len(symbols)) if second_order else range(len(symbols))
    equations = {s: symbols[i + dof] for i, s in enumerate(symbols[:dof])} if second_order \
        else {}
    noise = (quality.noise if quality is not None
             else relative_noise(source) if isinstance(source, Trajectories) else None)
    found = method.regress(y, dy, symbols, targets, held_out, seed,
                           angles=declared_angles(clean, source), noise=noise)
    for i in targets:
        equations[symbols[i]] = found[i].expression
    return Equations(
        equations, second_order, method.name,
        inclusion={symbols[i]: f.inclusion for i, f in found.items() if f.inclusion},
        pareto={symbols[i]: f.front for i, f in found.items() if f.front is not None},
        scores={symbols[i]: f.score for i, f in found.items()}, fit_quality=quality)


def _method(method, sr_options=None, **sindy) -> DiscoveryMethod:
    """The method object for ``method``, with the older keyword options folded in."""
    given = {k: v for k, v in sindy.items() if v is not None}
    if isinstance(method, DiscoveryMethod):
        if given or sr_options is not None:
            raise ValueError(f"pass {', '.join(sorted(given) or ['sr_options'])} to the "
                             f"method object itself when `method` is an object; got both")
        return method
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"`method` must be Sindy(...), SymbolicRegression(...) or one of "
                         f"{', '.join(map(repr, METHODS))}; got {method!r}")
    if method == "sr":
        if given:
            raise ValueError(f"{', '.join(sorted(given))} are options of method='sindy'; got "
                             f"method='sr'")
        return SymbolicRegression(options=dict(sr_options or {}))
    if sr_options is not None:
        raise ValueError("`sr_options` are options of method='sr'; got method='sindy'")
    return Sindy(**given)


def _clean_data(source, data, n_points, box, seed) -> Trajectories:
    if isinstance(source, Trajectories):
        if len(source) == 0:
            raise ValueError("`source` data is empty; expected at least one trajectory")
        return source
    return regenerate(source, data, n_points=n_points, box=box, seed=seed)


def _samples(data: Trajectories, seed: int):
    """The regression's rows: states ``y``, derivatives ``dy`` (float64 arrays) and the
    held-out mask. With estimated derivatives, the ``window // 2`` samples at each end of a
    trajectory are dropped: their local polynomials are one-sided, with several times the
    variance of a centred fit, and a recording's first and last frames are the likeliest to
    be off (a tracker settling, velocities that are themselves one-sided differences). On the
    real coupled carts those few frames alone turned both accelerations' linear laws into
    10-term polynomials."""
    held_out = _held_out_mask(data, seed)
    if data.has_derivatives:
        keep = np.ones(len(held_out), bool)
        derivatives = [tr.dy for tr in data]
    else:
        if min(len(tr) for tr in data) < 3:
            raise ValueError("the data is too short: estimating derivatives needs at least 3 "
                             "samples per trajectory")
        fits = [smooth(tr.t.double(), tr.y.double()) for tr in data]
        keep = np.concatenate([_interior(len(tr), fit.neighbours // 2)
                               for tr, fit in zip(data, fits)])
        derivatives = [fit.dy for fit in fits]
    y = torch.cat([tr.y for tr in data]).detach().cpu().double().numpy()
    dy = torch.cat(derivatives).detach().cpu().double().numpy()
    return y[keep], dy[keep], held_out[keep]


def _interior(n: int, edge: int) -> np.ndarray:
    """Mask of the samples of an ``n``-sample trajectory without ``edge`` at each end, or of
    all of them when too few would be left."""
    keep = np.ones(n, bool)
    if n - 2 * edge >= max(3, n // 2):
        keep[:edge] = keep[n - edge:] = False
    return keep


def _held_out_mask(data: Trajectories, seed: int) -> np.ndarray:
    """Every fourth trajectory when there are enough multi-sample ones, else 25% of samples."""
    lengths = [len(tr) for tr in data]
    if len(data) >= 4 and min(lengths) > 1:
        return np.concatenate([np.full(n, i % 4 == 3) for i, n in enumerate(lengths)])
    rng = np.random.default_rng(seed)
    return rng.random(sum(lengths)) < 0.25
