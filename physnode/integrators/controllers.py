"""Per-sample step-size control for adaptive methods.

Error norms are weighted RMS norms ``‖e / (atol + rtol·max(|y|, |y_new|))‖`` per sample; a
step is accepted when the norm is at most 1 (Hairer, Nørsett & Wanner, *Solving ODEs I*,
§II.4).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._validation import check_real


@dataclass(frozen=True)
class StepSizeController:
    """Elementary controller ``h_new = h · clip(safety · err^(−exponent), min, max)``.

    Parameters
    ----------
    safety : float
        Safety factor in (0, 1).
    min_factor, max_factor : float
        Bounds on the change of step size per step.
    """

    safety: float = 0.9
    min_factor: float = 0.2
    max_factor: float = 10.0

    def __post_init__(self):
        check_real("safety", self.safety, positive=True)
        check_real("min_factor", self.min_factor, positive=True)
        if not self.min_factor < 1 < self.max_factor:
            raise ValueError(f"`min_factor` < 1 < `max_factor` is required; got "
                             f"{self.min_factor} and {self.max_factor}")

    def factor(self, error_norm: torch.Tensor, exponent: float,
               safety: torch.Tensor | float | None = None) -> torch.Tensor:
        """Step-size multiplier per sample (detached: step sizes are not differentiated)."""
        safety = self.safety if safety is None else safety
        err = error_norm.detach().clamp_min(1e-10)
        return (safety * err.pow(-exponent)).clamp(self.min_factor, self.max_factor)


def initial_step(f, t0, y0, f0, order: int, rtol: float, atol: float,
                 direction: float) -> torch.Tensor:
    """Starting step per sample (Hairer, Nørsett & Wanner I, §II.4, algorithm of p. 169).

    ``y0`` and ``f0`` are ``(B, n)`` (real or complex); returns ``(B,)`` positive sizes
    (multiply by direction).
    """
    from .explicit import rms

    with torch.no_grad():
        scale = atol + rtol * y0.abs()
        d0 = rms(y0 / scale)
        d1 = rms(f0 / scale)
        h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), torch.full_like(d0, 1e-6), 0.01 * d0 / d1)
        y1 = y0 + direction * h0.unsqueeze(-1) * f0
        f1 = f(t0 + direction * h0, y1)
        d2 = rms((f1 - f0) / scale) / h0
        big = torch.maximum(d1, d2)
        h1 = torch.where(big <= 1e-15, torch.maximum(torch.full_like(h0, 1e-6), h0 * 1e-3),
                         (0.01 / big.clamp_min(1e-300)).pow(1.0 / (order + 1)))
        return torch.minimum(100 * h0, h1)
