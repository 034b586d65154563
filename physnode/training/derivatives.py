"""Derivative targets for the derivative-matching loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data import Trajectories

#: Window sizes (samples) that :func:`local_polynomial` chooses among by generalised
#: cross-validation; the smallest leaves a degree-4 fit two residual degrees of freedom.
WINDOWS = (7, 9, 11, 13, 17, 21, 25, 33, 41)


@dataclass(frozen=True)
class Smoothing:
    """A local polynomial fit of one trajectory: smoothed values and derivatives ``(n, dim)``,
    the window it used, and the noise standard deviation it implies per coordinate
    (residual sum of squares over the residual degrees of freedom ``n − tr S``)."""

    y: torch.Tensor
    dy: torch.Tensor
    neighbours: int
    noise: torch.Tensor


def local_polynomial_derivative(t: torch.Tensor, y: torch.Tensor, neighbours: int | None = None,
                                degree: int = 4):
    """See :func:`local_polynomial`; returns only the derivative."""
    return local_polynomial(t, y, neighbours, degree)[1]


def local_polynomial(t: torch.Tensor, y: torch.Tensor, neighbours: int | None = None,
                     degree: int = 4):
    """Smoothed ``y`` and ``dy/dt`` at every sample by a least-squares polynomial of
    ``degree`` through the ``neighbours`` samples nearest in index (a window shifted inward at
    the ends), on the actual times. ``(smoothed, derivatives)``, each ``(n, dim)``; see
    :func:`smooth` for the window chosen when ``neighbours`` is None."""
    fit = smooth(t, y, neighbours, degree)
    return fit.y, fit.dy


def smooth(t: torch.Tensor, y: torch.Tensor, neighbours: int | None = None,
           degree: int = 4) -> Smoothing:
    """Local polynomial smoothing of one trajectory (``t`` is ``(n,)``, ``y`` ``(n, dim)``).

    The window has a fixed number of samples rather than a fixed duration, so sparse
    stretches of irregular sampling still get a well-posed fit. With ``neighbours=None`` its
    size is chosen among :data:`WINDOWS` by generalised cross-validation of the smoothed
    values, the product over coordinates of ``n · RSS / (n − tr S)²`` (``S`` the smoother's
    hat matrix; a product, so that the choice does not depend on the units): wide windows
    for slow, noisy records, narrow ones where the sampling is coarse for the dynamics.
    Relative RMS error of the derivative on 8 irregularly sampled trajectories of 200
    samples over 10 s, a fixed window of 17 / chosen: pendulum clean 1.4% / 0.08%, 1% noise
    4.2% / 3.4%, 5% noise 20% / 9.9%; spring 5% noise 44% / 18%; Van der Pol 1% noise
    4.4% / 4.6%, 5% noise 18% / 13%; Lorenz (coarse for its dynamics) clean 60% / 20%,
    1% noise 60% / 21%.

    Exact for polynomials of degree ≤ ``degree``; with fewer than ``degree + 1`` samples the
    degree drops to fit.
    """
    n = t.shape[0]
    if neighbours is not None:
        return _fit(t, y, min(neighbours, n), degree)[0]
    best, best_score = None, None
    for k in [k for k in WINDOWS if k <= n] or [n]:
        fit, trace = _fit(t, y, k, degree)
        gcv = n * (y - fit.y).pow(2).sum(0) / (n - trace).clamp_min(1e-12) ** 2
        score = gcv.clamp_min(torch.finfo(gcv.dtype).tiny).log().sum()   # unit-free
        if best is None or score < best_score:
            best, best_score = fit, score
    return best


def _fit(t, y, k, degree) -> tuple[Smoothing, torch.Tensor]:
    """The fit with windows of ``k`` samples, and the trace of its hat matrix."""
    n = t.shape[0]
    degree = min(degree, k - 1)
    rows = torch.arange(n, device=t.device)
    start = (rows - k // 2).clamp(0, n - k)
    window = start.unsqueeze(-1) + torch.arange(k, device=t.device)    # (n, k)
    dt = t[window] - t.unsqueeze(-1)                                   # centred times
    scale = dt.abs().amax(-1, keepdim=True)                            # conditioning
    x = dt / scale
    V = torch.stack([x ** i for i in range(degree + 1)], -1)           # (n, k, degree+1)
    weights = torch.linalg.pinv(V)                                     # (n, degree+1, k)
    coefficients = weights @ y[window]                                 # (n, degree+1, dim)
    trace = weights[rows, 0, rows - start].sum()        # each sample's weight on itself
    residual = (y - coefficients[:, 0]).pow(2).sum(0)
    noise = (residual / (n - trace).clamp_min(1e-12)).sqrt()
    return Smoothing(coefficients[:, 0], coefficients[:, 1] / scale, k, noise), trace


def estimate_derivatives(data: Trajectories, neighbours: int | None = None,
                         degree: int = 4) -> list[torch.Tensor]:
    """Derivatives of every trajectory by :func:`local_polynomial_derivative` (float64)."""
    return [local_polynomial_derivative(tr.t.double(), tr.y.double(), neighbours, degree)
            for tr in data]
