"""Sparse regression (SINDy) with pysindy's STLSQ, with the threshold chosen without tuning.

Each equation is solved on its own, on standardised columns, so one threshold means "a term
contributing less than this fraction of the derivative's RMS". The candidate supports are
those of a sweep of STLSQ thresholds plus greedy forward and backward paths; each is scored on
held-out samples, and the chosen support is the sparsest whose
held-out error is at most ``tolerance`` times the best plus ``floor`` (1% of the derivative's
RMS): an extra term must *clearly* improve the prediction to be kept. The floor matters for
learned models: their small systematic errors can be fitted by cancelling combinations of
near-collinear terms (q, q³, sin q), which the held-out score alone would reward.
"""

from __future__ import annotations

import contextlib
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


def sparse_regression(theta: np.ndarray, target: np.ndarray, held_out: np.ndarray,
                      tolerance: float = 1.5, floor: float = 0.01, ensemble: int = 0,
                      seed: int = 0) -> SparseFit:
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
    """
    scale = np.sqrt(np.mean(theta ** 2, axis=0))
    scale[scale == 0] = 1.0
    # Errors are relative to the target's spread, so an additive offset (an energy's
    # arbitrary constant) does not make every fit look good.
    target_scale = max(float(np.std(target)), np.finfo(float).tiny)
    x, y = theta / scale, target / target_scale
    train = ~held_out
    candidates = {}
    for threshold in THRESHOLDS:
        with warnings.catch_warnings():
            # Large thresholds eliminating every term are part of the sweep, not a problem.
            warnings.simplefilter("ignore", UserWarning)
            xi = _stlsq(threshold).fit(x[train], y[train]).coef_[0]
        support = tuple(np.flatnonzero(xi))
        if support and support not in candidates:
            candidates[support] = (_held_out_error(x, y, support, train, held_out), threshold)
    for support in _stepwise_paths(x, y, train, held_out):
        if support not in candidates:
            candidates[support] = (_held_out_error(x, y, support, train, held_out), 0.0)
    best = min(error for error, _ in candidates.values())
    acceptable = [(len(s), err, s) for s, (err, _) in candidates.items()
                  if err <= tolerance * best + floor]
    _, _, support = min(acceptable)
    error, threshold = candidates[support]
    # Refit the chosen support on all samples (train and held out) without thresholding.
    xi = np.zeros(theta.shape[1])
    xi[list(support)] = np.linalg.lstsq(x[:, support], y, rcond=None)[0]
    inclusion = _inclusion(x, y, threshold, ensemble, seed) if ensemble else None
    return SparseFit(xi * target_scale / scale, float(error), float(threshold), inclusion)


def _held_out_error(x, y, support, train, held_out) -> float:
    """Relative RMS error on the held-out samples of a least-squares fit on ``support``."""
    columns = list(support)
    xi = np.linalg.lstsq(x[train][:, columns], y[train], rcond=None)[0]
    return float(np.sqrt(np.mean((x[held_out][:, columns] @ xi - y[held_out]) ** 2)))


def _stepwise_paths(x, y, train, held_out):
    """Greedy supports scored on held-out samples: forward selection (add the term that helps
    most, from one term up) and backward elimination (drop the term that hurts least, from
    all terms down). Thresholding alone can jump past the right sparse support when terms are
    nearly collinear (sin q against q and q³ on small swings)."""
    def error(support):
        return _held_out_error(x, y, tuple(sorted(support)), train, held_out)

    every = list(range(x.shape[1]))
    chosen, paths = [], []
    while len(chosen) < len(every):
        rest = [i for i in every if i not in chosen]
        chosen.append(rest[int(np.argmin([error(chosen + [i]) for i in rest]))])
        paths.append(tuple(sorted(chosen)))
    support = list(every)
    while len(support) > 1:
        support.pop(int(np.argmin([error(support[:i] + support[i + 1:])
                                   for i in range(len(support))])))
        paths.append(tuple(support))
    return paths


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
