"""How well a trained model reproduces the observations, measured before anyone trusts the
equations discovered from it."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from ..data import Trajectories
from ..models.base import parameter_placement
from ..training.derivatives import WINDOWS, smooth
from ..training.losses import RolloutLoss, observed_width, positions_only

#: Noise below this fraction of a coordinate's spread counts as this much: errors that small
#: do not mislead sparse regression.
NOISE_FLOOR = 0.005
#: A model whose rollout error exceeds this many noise levels is not good enough.
TRUSTED_RATIO = 3.0
#: The residual, as a fraction of the spread, above which local fits of the narrowest window
#: count as not resolving the observations (:func:`coarse_sampling`).
COARSE_RESIDUAL = 0.02
#: Samples per window of :func:`fit_quality`, and for positions-only data.
HORIZON, POSITIONS_ONLY_HORIZON = 8, 16


@dataclass(frozen=True)
class FitQuality:
    """The model's short-horizon prediction error on the observations against their noise.

    Attributes
    ----------
    rollout_error : float
        RMS over coordinates and samples of (prediction − observation), each coordinate in
        units of its :func:`spread`, predicting every observed sample from the one
        ``horizon − 1`` samples before it (back-to-back windows of the observations, the model's own
        rollouts in between). For positions-only data each window starts from the smoothed
        positions and the velocity that best reproduces its positions (least squares, two
        Gauss–Newton steps from the estimated velocity): the velocities are not observed, and
        an estimate's error would otherwise dominate the figure (a damped pendulum's exact
        field, positions at 1% noise: 3.1× the noise from the estimated velocities over 8
        samples, above the warning's 3×; 1.0× from refined ones over 16).
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
    coarse : bool
        Whether the observations are sampled coarsely for their dynamics
        (:func:`coarse_sampling`): the noise figure is then an upper bound, which also holds
        the signal that the local fits could not follow.
    """

    rollout_error: float
    noise: float
    ratio: float
    horizon: int
    coarse: bool = False

    @property
    def trusted(self) -> bool:
        """Whether the ratio is at most 3: good enough to discover equations from."""
        return self.ratio <= TRUSTED_RATIO

    def __str__(self) -> str:
        return (f"rollout error {100 * self.rollout_error:.2g}% of the spread over "
                f"{self.horizon}-sample windows, {self.ratio:.2g}× the noise "
                f"({100 * self.noise:.2g}%{', at most: coarse sampling' if self.coarse else ''})")

    def as_dict(self) -> dict:
        return {"rollout_error": self.rollout_error, "noise": self.noise, "ratio": self.ratio,
                "horizon": self.horizon, "coarse": self.coarse}


def noise_level(data: Trajectories) -> torch.Tensor:
    """Per-coordinate noise standard deviation of the observations, from the local polynomial
    smoothing of each trajectory (:func:`physnode.training.derivatives.smooth`: residuals
    over the residual degrees of freedom), pooled over trajectories of at least 7 samples;
    ``(dim,)``, float64 (NaN when none is that long). An upper bound where the sampling is
    coarse for the dynamics (:func:`coarse_sampling`)."""
    return _pooled_noise(_smoothings(data), data.dim)


def _smoothings(data: Trajectories) -> list:
    """``(samples, Smoothing)`` of every trajectory of at least 7 samples."""
    return [(len(tr), smooth(tr.t.double(), tr.y.double())) for tr in data if len(tr) >= 7]


def _pooled_noise(fits: list, dim: int) -> torch.Tensor:
    """:func:`noise_level` from :func:`_smoothings`."""
    if not fits:
        return torch.full((dim,), math.nan, dtype=torch.float64)
    return (sum(n * fit.noise.pow(2) for n, fit in fits) / sum(n for n, _ in fits)).sqrt()


def coarse_sampling(data: Trajectories) -> bool:
    """Whether the observations are sampled too coarsely for their dynamics to tell noise from
    signal: on most trajectories long enough to choose (at least ``4 × 7`` samples), the
    local fits chose their narrowest window (7 samples) and still left a residual above
    :data:`COARSE_RESIDUAL` (2%) of the spread.

    Cross-validation prefers that window only when the signal changes faster than wider
    windows can follow, and the residual then holds unresolved signal as well as noise:
    the noise figure is an upper bound, and derivative estimates and smoothed states are
    biased. Lorenz's system, 200 irregular samples over 10 s (about 14 per turn about a
    focus): every trajectory chose 7 samples and left 4.9% of the spread with no noise at
    all, 5.1% at 1%. A pendulum of period 1.4 s at 10 samples a second and 1% noise (half
    its trajectories chose 7) left 0.93%, close to its noise; the zoo's other systems at 1%
    and 5% noise chose 9 to 41 samples and estimated their noise to within 4%, and the real
    recordings in ``../shared/data`` chose 9 to 13. Coarse data need not give wrong
    equations: pendulums of period 0.9 and 1.1 s at 10 samples a second and 1% noise are
    flagged (noise figures 6.8% and 3.6%) and their HNNs still give ``g/L`` to 0.3% and
    0.13%; Lorenz's Neural ODE is 6–9% off in its field and misses the ``−y`` of ``dy/dt``."""
    return _coarse(_smoothings(data), spread(data))


def _coarse(fits: list, scale: torch.Tensor) -> bool:
    """:func:`coarse_sampling` from :func:`_smoothings` and the data's :func:`spread`."""
    narrowest = WINDOWS[0]
    fits = [fit for n, fit in fits if n >= 4 * narrowest]
    narrow = [fit for fit in fits if fit.neighbours == narrowest]
    if not fits or 2 * len(narrow) <= len(fits):
        return False
    residual = torch.stack([fit.noise / scale for fit in narrow]).pow(2).mean().sqrt()
    return bool(residual > COARSE_RESIDUAL)


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
    return _relative(noise_level(data), spread(data))


def _relative(noise: torch.Tensor, spreads: torch.Tensor) -> float:
    """The RMS over coordinates of ``noise / spreads``."""
    return (noise / spreads).pow(2).mean().sqrt().item()


def fit_quality(model, data: Trajectories, horizon: int | None = None) -> FitQuality | None:
    """:class:`FitQuality` of ``model`` on ``data`` (None when no trajectory has ``horizon``
    samples). ``horizon`` defaults to 8 samples, and to 16 for positions-only data, whose
    windows start from refined velocities: a field error then shows over a longer window
    about as strongly as over 8 samples from observed velocities (a pendulum with ``g`` 20%
    off, positions at 1% noise: 6.7× the noise over 16 samples, the exact field 1.0×)."""
    width = observed_width(model, data.dim)
    velocities_free = positions_only(model, data, width)
    if horizon is None:
        horizon = POSITIONS_ONLY_HORIZON if velocities_free else HORIZON
    loss = RolloutLoss(window=horizon)
    batch = loss.batches(data, width, validation=True)
    if batch is None:
        return None
    place = parameter_placement(model)
    batch = tuple(x.to(**place) for x in batch)
    spreads = spread(data)
    scale = spreads.to(**place)
    with torch.no_grad():
        if velocities_free:
            batch = _best_start_velocities(loss, model, batch, scale)
        error = loss.errors(model, batch).double().cpu() / scale.double().cpu()
    fits = _smoothings(data)                             # each trajectory smoothed once
    noise = _relative(_pooled_noise(fits, data.dim), spreads)
    rollout = error.pow(2).mean().sqrt().item()
    floor = max(noise, NOISE_FLOOR) if math.isfinite(noise) else NOISE_FLOOR
    return FitQuality(rollout, noise, rollout / floor, horizon, _coarse(fits, spreads))


def _best_start_velocities(loss: RolloutLoss, model, batch, scale, steps: int = 2):
    """``batch`` with each window's start velocity replaced by the least-squares one: the
    velocity whose rollout best matches the window's positions (in units of ``scale``), by
    ``steps`` Gauss–Newton steps with forward-difference sensitivities (the positions
    depend on the start velocity almost linearly over a short window)."""
    t, y, start, origin = batch
    dof = y.shape[-1]

    def residuals(s):
        return (loss.errors(model, (t, y, s, origin)) / scale).reshape(len(s), -1)

    velocities = start[:, dof:]
    delta = 1e-4 * velocities.abs().amax(0).clamp_min(torch.finfo(start.dtype).eps ** 0.5)
    for _ in range(steps):
        r = residuals(start)
        columns = []
        for j in range(dof):
            moved = start.clone()
            moved[:, dof + j] += delta[j]
            columns.append((residuals(moved) - r) / delta[j])
        J = torch.stack(columns, -1)                                  # (B, (K−1)·dof, dof)
        # A window whose rollout is not finite keeps its velocity (and its error shows).
        usable = (torch.isfinite(J).all(-1).all(-1) & torch.isfinite(r).all(-1))[:, None]
        J, r = torch.where(usable[..., None], J, 0.0), torch.where(usable, r, 0.0)
        step = torch.linalg.lstsq(J, -r.unsqueeze(-1)).solution[..., 0]
        start = torch.cat([start[:, :dof], start[:, dof:] + step], -1)
    return t, y, start, origin


def warn_if_untrusted(quality: FitQuality | None) -> None:
    if quality is not None and not quality.trusted:
        warnings.warn(f"the model reproduces the observations poorly: {quality}, more than "
                      f"{TRUSTED_RATIO:g}× — equations discovered from it are not to be "
                      f"trusted; fit longer or with another model first", UserWarning,
                      stacklevel=3)
    elif quality is not None and quality.coarse:
        warnings.warn(f"the observations are sampled coarsely for their dynamics: local "
                      f"fits of {WINDOWS[0]} samples, the narrowest, still leave "
                      f"{100 * quality.noise:.2g}% of the spread, signal they cannot follow as "
                      f"well as noise. The noise figure is an upper bound, so the fit quality "
                      f"({quality}) can look better than the model is, and derivative "
                      f"estimates are biased; check the equations on held-out data, or sample "
                      f"more densely", UserWarning, stacklevel=3)
