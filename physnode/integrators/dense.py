"""Dense output: a polynomial over every accepted step, and the record of a whole solve.

Every adaptive method describes its accepted step ``[t, t + h]`` by the coefficients of one
polynomial in ``θ = (s − t)/h ∈ [0, 1]``,

    y(t + θh) = y + Σ_{k=1}^{m} θᵏ C_k,        C: (B, m, n),

from :meth:`~physnode.integrators.base.AdaptiveIntegrator.interpolant`: Dormand–Prince's
continuous extension of order 4, the collocation polynomial of Radau IIA (order ``s``), a
cubic Hermite polynomial (order 3) for ``kvaerno5``; fixed-step methods get the cubic Hermite
polynomial of each step from the loop. Event location solves on it, and :class:`DenseOutput`
keeps it for :meth:`physnode.Solution.interpolate`.
"""

from __future__ import annotations

import torch


def hermite(y0: torch.Tensor, y1: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor,
            h: torch.Tensor) -> torch.Tensor:
    """Coefficients ``(B, 3, n)`` of the cubic Hermite polynomial through ``y0``, ``y1`` with
    slopes ``f0``, ``f1`` at the ends of steps ``h (B, 1)``: a local error ``O(h⁴)`` (order 3)
    for a solution of order at least 3 (Hairer, Nørsett & Wanner I, §II.6)."""
    delta, hf0, hf1 = y1 - y0, h * f0, h * f1
    return torch.stack([hf0, 3 * delta - 2 * hf0 - hf1, hf0 + hf1 - 2 * delta], dim=-2)


def sample_order(ids: torch.Tensor, t: torch.Tensor, direction: float) -> torch.Tensor:
    """The permutation that sorts records by sample ``ids``, then by time in the direction of
    integration."""
    order = torch.argsort(direction * t.detach(), stable=True)
    return order[torch.argsort(ids[order], stable=True)]


def evaluate(y0: torch.Tensor, coefficients: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``y0 + Σ_k θᵏ C_k`` by Horner's rule: ``y0 (..., n)``, ``C (..., m, n)``, ``θ (...)``."""
    theta = theta.unsqueeze(-1).to(coefficients.dtype)
    value = coefficients[..., -1, :]
    for k in range(coefficients.shape[-2] - 2, -1, -1):
        value = coefficients[..., k, :] + theta * value
    return y0 + theta * value


class DenseOutput:
    """The polynomials of every accepted step of a solve, per sample.

    Steps arrive in the order the loop takes them (:meth:`add`); :meth:`finish` sorts them by
    sample and time once. Memory: per accepted step and sample, ``m + 1`` states of ``n``
    values and two times (``dopri5``: 5 states, ``radau9``: 6, the others 4).

    Parameters
    ----------
    batch : int
        The number of samples ``B``.
    direction : float
        ``+1`` forward in time, ``−1`` backward.
    """

    def __init__(self, batch: int, direction: float):
        self.batch, self.direction = batch, direction
        self._parts = []

    def add(self, ids, t, h, y, coefficients):
        """Steps ``[t, t + h]`` of the samples ``ids`` from ``y (K, n)``, ``C (K, m, n)``."""
        self._parts.append((ids, t, h, y, coefficients))

    def finish(self, t0: torch.Tensor, t_end: torch.Tensor, y0: torch.Tensor) -> DenseOutput:
        """Sort the steps (per sample, in time) and fix the range ``[t0, t_end]`` of each
        (``y0 (B, n)``: the states at ``t0``, all there is when no step was taken)."""
        if not self._parts:
            B, n = y0.shape
            self.add(torch.arange(B, device=y0.device), t0.expand(B), torch.ones_like(t_end),
                     y0, y0.new_zeros(B, 1, n))
        ids, t, h, y, coefficients = (torch.cat(x) for x in zip(*self._parts))
        order = sample_order(ids, t, self.direction)
        self.ids, self.t, self.h = ids[order], t[order], h[order]
        self.y, self.coefficients = y[order], coefficients[order]
        self.counts = torch.bincount(self.ids, minlength=self.batch)
        self.offsets = torch.cumsum(self.counts, 0) - self.counts
        self.t_end = t_end
        # Each sample's step starts in a row (padded with +inf), for searchsorted.
        position = torch.arange(self.ids.shape[0], device=self.ids.device) \
            - self.offsets[self.ids]
        self._starts = torch.full((self.batch, int(self.counts.max())), torch.inf,
                                  dtype=self.t.dtype, device=self.t.device)
        self._starts[self.ids, position] = self.direction * self.t
        del self._parts
        return self

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        """States ``(B, Q, n)`` at the times ``t (Q,)``, inside every sample's range (checked
        by the caller)."""
        queries = (self.direction * t).expand(self.batch, -1).contiguous()
        index = torch.searchsorted(self._starts, queries, right=True) - 1
        index = torch.minimum(index.clamp_min(0), (self.counts - 1).unsqueeze(-1))
        index = index + self.offsets.unsqueeze(-1)                          # (B, Q)
        theta = (t - self.t[index]) / self.h[index]
        return evaluate(self.y[index], self.coefficients[index], theta)
