"""How well a trained model reproduces the observations, measured before anyone trusts the
equations discovered from it."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from ..data import Trajectories
from ..models.base import parameter_placement
from ..training.derivatives import smooth
from ..training.losses import RolloutLoss, observed_width

#: Noise below this fraction of a coordinate's spread counts as this much: errors that small
#: do not mislead sparse regression.
NOISE_FLOOR = 0.005
#: A model whose rollout error exceeds this many noise levels is not good enough.
TRUSTED_RATIO = 3.0


@dataclass(frozen=True)
class FitQuality:
    """The model's short-horizon prediction error on the observations against their noise.

    Attributes
    ----------
    rollout_error : float
        RMS over coordinates and samples of (prediction − observation), each coordinate in
        units of its :func:`spread`, predicting every observed sample from the one
        ``horizon − 1`` samples before it (back-to-back windows of the observations, the model's own
        rollouts in between).
    noise : float
        The observations' noise, estimated as the residual of local quartic fits (window
        chosen by cross-validation, corrected for the fit's degrees of freedom), in the
        same units.
    ratio : float
        ``rollout_error / max(noise, 0.005)``: about 1 for a model as good as the data
        allows; the noise level is floored at 0.5% of the spread, below which errors do not
        mislead sparse regression.
    horizon : int
        Samples per window.
    """

    rollout_error: float
    noise: float
    ratio: float
    horizon: int

    @property
    def trusted(self) -> bool:
        """Whether the ratio is at most 3: good enough to discover equations from."""
        return self.ratio <= TRUSTED_RATIO

    def __str__(self) -> str:
        return (f"rollout error {100 * self.rollout_error:.2g}% of the spread over "
                f"{self.horizon}-sample windows, {self.ratio:.2g}× the noise "
                f"({100 * self.noise:.2g}%)")

    def as_dict(self) -> dict:
        return {"rollout_error": self.rollout_error, "noise": self.noise, "ratio": self.ratio,
                "horizon": self.horizon}


def noise_level(data: Trajectories) -> torch.Tensor:
    """Per-coordinate noise standard deviation of the observations, from the local polynomial
    smoothing of each trajectory (:func:`physnode.training.derivatives.smooth`: residuals
    over the residual degrees of freedom), pooled over trajectories of at least 7 samples;
    ``(dim,)``, float64 (NaN when none is that long)."""
    fits = [(len(tr), smooth(tr.t.double(), tr.y.double()).noise) for tr in data
            if len(tr) >= 7]
    if not fits:
        return torch.full((data.dim,), math.nan, dtype=torch.float64)
    return (sum(n * s.pow(2) for n, s in fits) / sum(n for n, _ in fits)).sqrt()


def spread(data: Trajectories) -> torch.Tensor:
    """Each coordinate's spread, ``(dim,)`` float64: its standard deviation over all samples,
    after bringing each trajectory's declared angles (``data.angles``) within half a turn of
    zero by whole turns, so that the turns an unwrapped angle has made change nothing (1
    where a coordinate does not vary)."""
    angles = list(getattr(data, "angles", None) or ())
    parts = []
    for tr in data:
        y = tr.y.double()
        if angles:
            turns = torch.round(y[:, angles].mean(0) / (2 * math.pi)) * 2 * math.pi
            y = y.clone()
            y[:, angles] -= turns
        parts.append(y)
    y = torch.cat(parts)
    result = y.std(0) if len(y) > 1 else torch.zeros(y.shape[-1], dtype=torch.float64)
    return torch.where(result > 0, result, torch.ones_like(result))


def relative_noise(data: Trajectories) -> float:
    """The observations' noise as a fraction of their spread: the RMS over coordinates of
    :func:`noise_level` over each coordinate's :func:`spread` (NaN when unknown)."""
    return (noise_level(data) / spread(data)).pow(2).mean().sqrt().item()


def fit_quality(model, data: Trajectories, horizon: int = 8) -> FitQuality | None:
    """:class:`FitQuality` of ``model`` on ``data`` (None when no trajectory has ``horizon``
    samples)."""
    loss = RolloutLoss(window=horizon)
    width = observed_width(model, data.dim)
    batch = loss.batches(data, width, validation=True)
    if batch is None:
        return None
    place = parameter_placement(model)
    batch = tuple(x.to(**place) for x in batch)
    with torch.no_grad():
        error = loss.errors(model, batch).double().cpu() / spread(data)
    noise = relative_noise(data)
    rollout = error.pow(2).mean().sqrt().item()
    floor = max(noise, NOISE_FLOOR) if math.isfinite(noise) else NOISE_FLOOR
    return FitQuality(rollout, noise, rollout / floor, horizon)


def warn_if_untrusted(quality: FitQuality | None) -> None:
    if quality is not None and not quality.trusted:
        warnings.warn(f"the model reproduces the observations poorly: {quality}, more than "
                      f"{TRUSTED_RATIO:g}× — equations discovered from it are not to be "
                      f"trusted; fit longer or with another model first", UserWarning,
                      stacklevel=3)
