"""Sparse regression (SINDy) with pysindy's STLSQ, with the threshold chosen without tuning.

Each equation is solved on its own, on standardised columns, so one threshold means "a term
contributing less than this fraction of the derivative's RMS". The candidate supports are
those of a sweep of STLSQ thresholds, greedy forward and backward paths, and every support of
up to four terms; each is scored on held-out samples (from moment matrices, the competitors
for the choice again from the samples), and the chosen support is the sparsest, then least
complex, whose held-out error is at most ``tolerance`` times the best plus ``floor`` (a
fraction of the derivative's RMS; :class:`physnode.discovery.Sindy` sets it from the data's
noise): an extra term must *clearly* improve the prediction to be kept. The floor matters
for learned models: their small systematic errors can be fitted by cancelling combinations
of near-collinear terms (q, q³, sin q) or a small constant, which the held-out score alone
would reward.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pysindy as ps

THRESHOLDS = np.concatenate([[0.0], np.logspace(-4, 0, 33)])


@dataclass(frozen=True)
class SparseFit:
    """One equation's result: coefficients on the library, the held-out relative RMS error,
    and (with ensembling) the fraction of bagged models that selected each term."""

    coefficients: np.ndarray
    score: float
    threshold: float
    inclusion: np.ndarray | None = None


class NoAdmissibleSupport(ValueError):
    """Every candidate support was rejected by :func:`sparse_regression`'s ``rescore``."""


def sparse_regression(theta: np.ndarray, target: np.ndarray, held_out: np.ndarray,
                      tolerance: float = 1.5, floor: float = 0.01, ensemble: int = 0,
                      seed: int = 0, complexity: np.ndarray | None = None,
                      rescore=None, exhaustive_limit: int | None = None) -> SparseFit:
    """Sparse coefficients ``ξ`` with ``theta @ ξ ≈ target``.

    Parameters
    ----------
    theta : (n, k) library matrix.
    target : (n,) derivative of one state.
    held_out : (n,) bool mask of samples used only to score supports.
    tolerance, floor : a support is acceptable when its held-out relative RMS error is at
        most ``tolerance * best + floor``; the sparsest acceptable one is chosen.
    ensemble : number of bagged STLSQ models (pysindy ``EnsembleOptimizer``) run at the chosen
        threshold to report inclusion frequencies; 0 for none.
    complexity : (k,) cost of each term (e.g. its polynomial degree); among acceptable
        supports of the same size the least complex is chosen (default: all equal). With
        offset coordinates ``1, x, x²`` are nearly collinear, and ``{1, x}`` and ``{x, x²}``
        then predict equally well.
    rescore : ``rescore(ξ, residual) -> float``, or None: the held-out error of a support
        that competes for the choice by another measure than the residual's, from its
        coefficients ``ξ`` (``(k,)``, in the units of ``theta`` and ``target``, fitted on the
        training samples) and its residual ``theta @ ξ − target`` (``(n,)``); ``inf`` when it
        is no candidate at all (it neither wins nor sets the best error that the others are
        measured against). Used where a small residual can be reached by a degenerate answer
        (a Lagrangian whose mass matrix is nearly singular satisfies its own equations
        almost trivially, and its accelerations are far off).
    exhaustive_limit : every support of up to ``EXHAUSTIVE_TERMS`` terms is scored for each
        size with at most this many supports (default ``EXHAUSTIVE_LIMIT``).
    """
    scale = np.sqrt(np.mean(theta ** 2, axis=0))
    scale[scale == 0] = 1.0
    # Errors are relative to the target's spread, so an additive offset (an energy's
    # arbitrary constant) does not make every fit look good.
    target_scale = max(float(np.std(target)), np.finfo(float).tiny)
    x, y = theta / scale, target / target_scale
    train = ~held_out
    score = _Scorer(x, y, train, held_out)
    candidates = {}
    for threshold in THRESHOLDS:
        with warnings.catch_warnings():
            # Large thresholds eliminating every term are part of the sweep, not a problem.
            warnings.simplefilter("ignore", UserWarning)
            xi = _stlsq(threshold).fit(x[train], y[train]).coef_[0]
        support = tuple(np.flatnonzero(xi))
        if support and support not in candidates:
            candidates[support] = (score(support), threshold)
    for support in _stepwise_paths(score, x.shape[1]):
        candidates.setdefault(support, (score(support), 0.0))
    for support, error in score.small_supports(EXHAUSTIVE_LIMIT if exhaustive_limit is None
                                               else exhaustive_limit):
        candidates.setdefault(support, (error, 0.0))
    # Moment-matrix errors can be inaccurate on ill-conditioned supports: every support that
    # competes for the choice is rescored from the samples (or by `rescore`, and dropped if
    # that rejects it) until the competitors are exact.
    exact = set()
    while True:
        if not candidates:
            raise NoAdmissibleSupport("no candidate support is admissible: `rescore` rejected "
                                      "every sparse fit of the library")
        best = min(error for error, _ in candidates.values())
        pending = [s for s, (err, _) in candidates.items()
                   if err <= tolerance * best + floor and s not in exact]
        if not pending:
            break
        for support in pending:
            xi = score.fit(support)
            if rescore is None:
                error = score.exact(support, xi)
            else:
                full = _unscaled(xi, support, scale, target_scale)
                error = rescore(full, theta @ full - target)
                if not np.isfinite(error):
                    del candidates[support]
                    continue
            candidates[support] = (error, candidates[support][1])
            exact.add(support)
    cost = np.zeros(theta.shape[1]) if complexity is None else np.asarray(complexity, float)
    acceptable = [(len(s), float(cost[list(s)].sum()), err, s)
                  for s, (err, _) in candidates.items() if err <= tolerance * best + floor]
    *_, support = min(acceptable)
    error, threshold = candidates[support]
    # Refit the chosen support on all samples (train and held out) without thresholding.
    xi = np.zeros(theta.shape[1])
    xi[list(support)] = np.linalg.lstsq(x[:, support], y, rcond=None)[0]
    inclusion = _inclusion(x, y, threshold, ensemble, seed) if ensemble else None
    return SparseFit(xi * target_scale / scale, float(error), float(threshold), inclusion)


def _unscaled(xi, support, scale, target_scale) -> np.ndarray:
    """Coefficients ``xi`` of standardised columns ``support`` as a full-length vector in the
    units of the library and the target."""
    full = np.zeros(len(scale))
    full[list(support)] = xi * target_scale / scale[list(support)]
    return full


class _Scorer:
    """Held-out relative RMS error of the least-squares fit on a support, from the training
    and held-out moment matrices: the cost per support does not grow with the samples."""

    def __init__(self, x, y, train, held_out):
        self.xt, self.yt, self.xh, self.yh = x[train], y[train], x[held_out], y[held_out]
        self.gram, self.moment = self.xt.T @ self.xt, self.xt.T @ self.yt
        self.hgram, self.hmoment = self.xh.T @ self.xh, self.xh.T @ self.yh
        self.hnorm = float(self.yh @ self.yh)
        self.n = max(len(self.yh), 1)

    def __call__(self, support) -> float:
        return float(self.batch(np.asarray([sorted(support)]))[0])

    def fit(self, support) -> np.ndarray:
        """Least-squares coefficients of ``support`` on the training samples themselves."""
        return np.linalg.lstsq(self.xt[:, list(support)], self.yt, rcond=None)[0]

    def exact(self, support, xi=None) -> float:
        """The same error by least squares on the samples themselves (``xi``: that fit, when
        already made)."""
        xi = self.fit(support) if xi is None else xi
        return float(np.sqrt(np.mean((self.xh[:, list(support)] @ xi - self.yh) ** 2)))

    def batch(self, supports: np.ndarray) -> np.ndarray:
        """Errors of ``S`` supports of ``m`` terms each, given as an ``(S, m)`` index array."""
        rows, cols = supports[:, :, None], supports[:, None, :]
        G, b = self.gram[rows, cols], self.moment[supports]
        try:
            xi = np.linalg.solve(G, b[..., None])[..., 0]
        except np.linalg.LinAlgError:       # a singular support (collinear terms): least norm
            xi = (np.linalg.pinv(G, hermitian=True) @ b[..., None])[..., 0]
        sq = (self.hnorm - 2 * np.einsum("sm,sm->s", xi, self.hmoment[supports])
              + np.einsum("sm,smk,sk->s", xi, self.hgram[rows, cols], xi))
        return np.sqrt(np.maximum(sq, 0.0) / self.n)

    def small_supports(self, limit: int):
        """``(support, error)`` of every support of 1 to ``EXHAUSTIVE_TERMS`` terms, for each
        size with at most ``limit`` supports."""
        k = self.gram.shape[0]
        for m in range(1, min(EXHAUSTIVE_TERMS, k) + 1):
            if math.comb(k, m) > limit:
                break
            supports = np.array(list(itertools.combinations(range(k), m)))
            for support, error in zip(map(tuple, supports), self.batch(supports)):
                if np.isfinite(error):
                    yield support, float(error)


def _stepwise_paths(score, k):
    """Greedy supports scored on held-out samples: forward selection (add the term that helps
    most, from one term up) and backward elimination (drop the term that hurts least, from
    all terms down). Thresholding alone can jump past the right sparse support when terms are
    nearly collinear (sin q against q and q³ on small swings)."""
    every = list(range(k))
    chosen, paths = [], []
    while len(chosen) < k:
        rest = [i for i in every if i not in chosen]
        trials = np.array([sorted(chosen + [i]) for i in rest])
        chosen.append(rest[int(np.nanargmin(score.batch(trials)))])
        paths.append(tuple(sorted(chosen)))
    support = list(every)
    while len(support) > 1:
        trials = np.array([support[:i] + support[i + 1:] for i in range(len(support))])
        support.pop(int(np.nanargmin(score.batch(trials))))
        paths.append(tuple(support))
    return paths


#: Every support of up to this many terms is scored when there are at most
#: ``EXHAUSTIVE_LIMIT`` of them: the sparse answers are never missed for want of a path
#: leading to them (near-collinear candidates, such as polynomials of an offset coordinate,
#: can send thresholding and greedy paths elsewhere; a double pendulum's Lagrangian has four
#: terms besides the one that fixes its scale, and the forward path starts with a stand-in
#: for that one, ``q̇₁² cos q₁``).
EXHAUSTIVE_TERMS, EXHAUSTIVE_LIMIT = 4, 100_000


def _stlsq(threshold):
    return ps.STLSQ(threshold=threshold, alpha=0.0, max_iter=50, unbias=True)


def _inclusion(x, y, threshold, n_models, seed):
    """Fraction of bootstrap (bagged) STLSQ models that keep each term."""
    with _numpy_seed(seed):
        ensemble = ps.EnsembleOptimizer(opt=_stlsq(threshold), bagging=True,
                                        n_models=n_models)
        ensemble.fit(x, y[:, None])
    coefficients = np.asarray(ensemble.coef_list)[:, 0, :]
    return np.mean(coefficients != 0, axis=0)


@contextlib.contextmanager
def _numpy_seed(seed):
    # pysindy's bagging draws from NumPy's global generator; restore it afterwards.
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002
