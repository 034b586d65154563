"""Derivative targets for the derivative-matching loss."""

from __future__ import annotations

import torch

from ..data import Trajectories


def local_polynomial_derivative(t: torch.Tensor, y: torch.Tensor, neighbours: int = 17,
                                degree: int = 4):
    """See :func:`local_polynomial`; returns only the derivative."""
    return local_polynomial(t, y, neighbours, degree)[1]


def local_polynomial(t: torch.Tensor, y: torch.Tensor, neighbours: int = 17, degree: int = 4):
    """Smoothed ``y`` and ``dy/dt`` at every sample by a least-squares polynomial of
    ``degree`` through the ``neighbours`` samples nearest in index (a window shifted inward at
    the ends), on the actual times.

    The window has a fixed number of samples rather than a fixed duration, so sparse
    stretches of irregular sampling still get a well-posed fit. Degree 4 over 17 samples
    balances bias against noise. Measured on 5 irregularly sampled pendulum trajectories
    (200 samples over 10 s), RMS error / bias (slope of estimate against truth):
    clean 1.1–2.0% / 0.4%, 1% noise 2.0–2.5% / 0.4%, 5% noise 8% / 0.5%. A quadratic over 9
    samples gave 5–6% / 3.3% even on clean data and 11% at 5% noise; plain finite
    differences blow up on close samples.

    ``t`` is ``(n,)``, ``y`` is ``(n, dim)``; returns the smoothed values and the
    derivatives, each ``(n, dim)``. Exact for polynomials of degree ≤ ``degree``; with fewer
    than ``degree + 1`` samples the degree drops to fit.
    """
    n = t.shape[0]
    k = min(neighbours, n)
    degree = min(degree, k - 1)
    start = (torch.arange(n, device=t.device) - k // 2).clamp(0, n - k)
    window = start.unsqueeze(-1) + torch.arange(k, device=t.device)    # (n, k)
    dt = t[window] - t.unsqueeze(-1)                                   # centred times
    scale = dt.abs().amax(-1, keepdim=True)                            # conditioning
    x = dt / scale
    V = torch.stack([x ** i for i in range(degree + 1)], -1)           # (n, k, degree+1)
    coefficients = torch.linalg.lstsq(V, y[window]).solution           # (n, degree+1, dim)
    return coefficients[:, 0], coefficients[:, 1] / scale


def estimate_derivatives(data: Trajectories, neighbours: int = 17,
                         degree: int = 4) -> list[torch.Tensor]:
    """Derivatives of every trajectory by :func:`local_polynomial_derivative` (float64)."""
    return [local_polynomial_derivative(tr.t.double(), tr.y.double(), neighbours, degree)
            for tr in data]
