"""Latent ODEs (Rubanova, Chen & Duvenaud 2019, "Latent ODEs for Irregularly-Sampled Time
Series", NeurIPS; Chen et al. 2018 §5): a variational auto-encoder whose latent state follows
an ODE, for systems observed partially, noisily and at irregular times.

An ODE-RNN encoder reads a series backwards in time (hidden state evolved by a learned ODE
between observations, a GRU update at each) and gives a Gaussian ``q(z0 | x)``; the latent
state then follows ``dz/dt = f_θ(z)`` (a :class:`NeuralODE`, or an :class:`HNN` when the latent
is meant to be mechanical) from the series' first time; a decoder maps ``z(t)`` to the
observations. It is trained on the evidence lower bound (ELBO)

    log p(x) ≥ E_q[Σ_observed log N(x_ij | dec(z(t_i))_j, σ²)] − KL(q(z0 | x) ‖ N(0, I)).

Missing values are NaN in the observations (:meth:`physnode.data.Trajectories.padded` turns
them into a mask), so a series may observe only some coordinates at some times.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .._solve import resolve_method, solve
from .._validation import check_int, check_real
from ..data import Trajectories, Trajectory
from .base import mlp, save_model
from .hnn import HNN
from .neural_ode import NeuralODE

#: The latent dynamics a LatentODE can be built with (by class name, for loading).
DYNAMICS = {cls.__name__: cls for cls in (NeuralODE, HNN)}


def advance(field, y: torch.Tensor, dt: torch.Tensor, method, substeps: int) -> torch.Tensor:
    """``y(t + Δt)`` for each row's own ``Δt`` (``dt``, shape ``(B,)``) under ``dy/dt =
    field(t, y)``, in ``substeps`` steps of ``method``.

    Each row integrates ``dy/ds = Δt_i · field(s, y)`` over ``s ∈ [0, 1]`` (a change of time
    variable, exact; :class:`~physnode.training.losses.IntervalField`): series with
    different time grids then advance together as one batch, each on
    its own interval, and give the same numbers as one at a time (a union grid would make
    every series stop at every other series' times). ``Δt = 0`` leaves a row unchanged and
    a negative ``Δt`` integrates backwards.
    """
    from ..training.losses import IntervalField  # (training imports the models)
    unit = torch.tensor([0.0, 1.0], dtype=y.dtype, device=y.device)
    return solve(IntervalField(field, dt), y, unit, method=method, dt=1.0 / substeps).ys[-1]


class Autonomous(nn.Module):
    """``(t, h) -> net(h)``: a network as an autonomous vector field."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, t, h):
        return self.net(h)


class ODERNN(nn.Module):
    """ODE-RNN (Rubanova et al. 2019, Algorithm 1): a GRU whose hidden state ``h`` follows a
    learned ODE ``dh/dt = g(h)`` between observations.

    At each time ``t_j`` (in order, or backwards with ``reverse=True``) ``h`` is first
    evolved from the previous time (:func:`advance`, fixed steps of ``method``) and then, if
    anything is observed at ``t_j``, updated by ``GRUCell([x_j ⊙ m_j, m_j], h)``, the
    observations with their mask ``m_j`` (Rubanova et al.'s input). With ``g ≡ 0`` this is a
    GRU over the observations (tested). Rows with nothing observed at ``t_j`` (missing values,
    padding at the end of a shorter series) keep their ``h``.

    Parameters
    ----------
    input_dim : int
        Observed coordinates per time.
    hidden : int
        Width of ``h``.
    units : int
        Width of the hidden layer of ``g``.
    """

    def __init__(self, input_dim: int, hidden: int, units: int, method="rk4",
                 substeps: int = 2):
        super().__init__()
        self.gru = nn.GRUCell(2 * input_dim, hidden)
        self.field = Autonomous(mlp(hidden, hidden, units, 1, "tanh"))
        self.method, self.substeps, self.hidden = method, substeps, hidden

    def forward(self, t: torch.Tensor, x: torch.Tensor, mask: torch.Tensor,
                reverse: bool = False):
        """Run over times ``t`` ``(B, K)`` with observations ``x`` and mask ``mask``
        ``(B, K, input_dim)``. Returns ``(before, after)``, each ``(B, K, hidden)``: the
        hidden state at each ``t_j`` before and after its update (in ``t``'s order)."""
        h = x.new_zeros(x.shape[0], self.hidden)
        order = range(t.shape[1] - 1, -1, -1) if reverse else range(t.shape[1])
        before, after, previous = {}, {}, None
        for j in order:
            if previous is not None:
                h = advance(self.field, h, t[:, j] - t[:, previous], self.method, self.substeps)
            before[j] = h
            m = mask[:, j]
            seen = m.any(-1, keepdim=True)
            h = torch.where(seen, self.gru(torch.cat([x[:, j] * m, m], -1), h), h)
            after[j] = h
            previous = j
        index = range(t.shape[1])
        return (torch.stack([before[j] for j in index], 1),
                torch.stack([after[j] for j in index], 1))


@dataclass(frozen=True)
class LatentPrediction:
    """What :meth:`LatentODE.predict` returns.

    Attributes
    ----------
    t : torch.Tensor
        The prediction times, ``(B, K)``.
    samples : torch.Tensor
        Decoded observations for samples of ``z0 ~ q(z0 | x)``, ``(S, B, K, obs_dim)``.
    """

    t: torch.Tensor
    samples: torch.Tensor

    @property
    def mean(self) -> torch.Tensor:
        """``(B, K, obs_dim)``: the mean over the samples."""
        return self.samples.mean(0)

    @property
    def std(self) -> torch.Tensor:
        """``(B, K, obs_dim)``: the spread over the samples (the model's uncertainty about
        ``z0``, not the observation noise)."""
        return self.samples.std(0) if self.samples.shape[0] > 1 else torch.zeros_like(
            self.samples[0])


class LatentODE(nn.Module):
    """Latent ODE (Rubanova, Chen & Duvenaud 2019): ODE-RNN encoder, Gaussian ``q(z0)``,
    latent dynamics ``dz/dt = f_θ(z)``, decoder; trained on the ELBO by :func:`physnode.fit`
    (its default loss is :class:`physnode.training.ELBOLoss`).

    Numerics. The encoder (:class:`ODERNN`) runs backwards from each series' last time to its
    first; its ODE takes ``substeps`` fixed steps of ``method`` per interval between
    consecutive times. ``z0`` lives at each series' first time ``t_0`` and the latent ODE is
    integrated interval by interval with the same fixed steps, each series on its own grid
    (:func:`advance`: per-sample ``Δt`` through ``solve``'s ``args``, exact and batched), so
    a batch of series with different times gives the numbers of one-at-a-time solves. Times
    are divided by ``time_scale`` (the mean duration of the training series, set by
    :meth:`adapt_data`), observations are normalised per coordinate (mean and spread of the
    observed values); both are buffers saved with the weights.

    Likelihood: each observed value is Gaussian around the decoded one with standard
    deviation ``noise`` times that coordinate's spread; the KL term is the closed form of
    ``KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ (σ² + μ² − 1 − 2 log σ)``.

    Parameters
    ----------
    obs_dim : int
        Observed coordinates (missing ones are NaN in the data).
    latent_dim : int
        Width of ``z``.
    dynamics : NeuralODE or HNN, optional
        The latent vector field, of width ``latent_dim`` (an HNN with ``dof = latent_dim / 2``
        makes the latent mechanical: ``z = (q, p)``). Default ``NeuralODE(latent_dim,
        hidden=hidden)``.
    encoder_dim : int
        Width of the ODE-RNN's hidden state.
    hidden : int
        Width of the hidden layers of the encoder's ODE, the ``q(z0)`` head and the decoder.
    decoder_layers : int
        Hidden layers of the decoder (0: linear, as Rubanova et al.).
    noise : float
        Observation noise of the likelihood, relative to each coordinate's spread.
    method : str
        Fixed-step integrator of the encoder and the latent ODE (``"rk4"``).
    substeps : int
        Steps per interval between consecutive times.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> model = pn.models.LatentODE(obs_dim=1, latent_dim=2, hidden=8, encoder_dim=8)
    >>> data = pn.data.Trajectories([pn.data.Trajectory(torch.linspace(0, 1, 5),
    ...                                                 torch.zeros(5, 1))])
    >>> model.predict(data, torch.linspace(0, 2, 7), samples=4).samples.shape
    torch.Size([4, 1, 7, 1])
    """

    #: Missing observations (NaN) are allowed: they are masked out of the likelihood.
    accepts_missing = True

    def __init__(self, obs_dim: int, latent_dim: int, *, dynamics=None, encoder_dim: int = 40,
                 hidden: int = 64, decoder_layers: int = 1, noise: float = 0.05,
                 method: str = "rk4", substeps: int = 2):
        super().__init__()
        check_int("obs_dim", obs_dim, minimum=1)
        check_int("latent_dim", latent_dim, minimum=1)
        check_int("encoder_dim", encoder_dim, minimum=1)
        check_int("hidden", hidden, minimum=1)
        check_int("decoder_layers", decoder_layers, minimum=0)
        check_int("substeps", substeps, minimum=1)
        check_real("noise", noise, positive=True)
        if not isinstance(method, str):
            raise TypeError(f"`method` must be a method name (saved with the model); got "
                            f"{type(method).__name__}")
        if resolve_method(method).adaptive or resolve_method(method).implicit:
            raise ValueError(f"`method` must be an explicit fixed-step method; got {method!r}")
        self.dynamics = self._dynamics(dynamics, latent_dim, hidden)
        self.config = {"obs_dim": obs_dim, "latent_dim": latent_dim,
                       "dynamics": {"class": type(self.dynamics).__name__,
                                    "config": dict(self.dynamics.config)},
                       "encoder_dim": encoder_dim, "hidden": hidden,
                       "decoder_layers": decoder_layers, "noise": noise, "method": method,
                       "substeps": substeps}
        self.observed_dim, self.latent_dim = obs_dim, latent_dim
        self.method, self.substeps, self.noise = method, substeps, noise
        self.encoder = ODERNN(obs_dim, encoder_dim, hidden, method, substeps)
        self.posterior = mlp(encoder_dim, 2 * latent_dim, hidden, 1, "tanh")
        self.decoder = (nn.Linear(latent_dim, obs_dim) if decoder_layers == 0 else
                        mlp(latent_dim, obs_dim, hidden, decoder_layers, "tanh"))
        self.register_buffer("x_loc", torch.zeros(obs_dim))
        self.register_buffer("x_scale", torch.ones(obs_dim))
        self.register_buffer("time_scale", torch.ones(()))
        self.register_buffer("adapted", torch.zeros((), dtype=torch.bool))

    @staticmethod
    def _dynamics(dynamics, latent_dim, hidden):
        if dynamics is None:
            return NeuralODE(latent_dim, hidden=hidden)
        if isinstance(dynamics, dict):           # as saved in the config
            if dynamics.get("class") not in DYNAMICS:
                raise ValueError(f"`dynamics` must name one of {', '.join(DYNAMICS)}; got "
                                 f"{dynamics.get('class')!r}")
            dynamics = DYNAMICS[dynamics["class"]](**dynamics["config"])
        if not isinstance(dynamics, tuple(DYNAMICS.values())):
            raise TypeError(f"`dynamics` must be a NeuralODE or an HNN; got "
                            f"{type(dynamics).__name__}")
        if dynamics.dim != latent_dim:
            raise ValueError(f"`dynamics` must have width latent_dim = {latent_dim}; got "
                             f"{type(dynamics).__name__} of width {dynamics.dim}")
        return dynamics

    # --- data -------------------------------------------------------------------------

    def adapt_data(self, data: Trajectories) -> bool:
        """Set the normalisation from training series, once (called by :func:`physnode.fit`):
        each coordinate's mean and spread over its observed values, and the time scale, the
        mean duration of a series. Returns whether it was set now."""
        if bool(self.adapted):
            return False
        y = torch.cat([tr.y for tr in data]).double()
        observed = torch.isfinite(y)
        count = observed.sum(0).clamp_min(1)
        filled = torch.where(observed, y, torch.zeros_like(y))
        loc = filled.sum(0) / count
        spread = (torch.where(observed, y - loc, torch.zeros_like(y)).pow(2).sum(0)
                  / count).sqrt()
        self.x_loc.copy_(loc)
        self.x_scale.copy_(torch.where(spread > 0, spread, torch.ones_like(spread)))
        duration = torch.stack([(tr.t[-1] - tr.t[0]).double() for tr in data]).mean()
        self.time_scale.fill_(float(duration) if float(duration) > 0 else 1.0)
        self.adapted.fill_(True)
        return True

    def _batch(self, data):
        """``(t, y, mask)`` padded tensors from Trajectories or a Trajectory, in the model's
        precision, each series' times relative to its first, and those first times ``(B, 1)``
        in the data's precision (the model depends on time differences only, and a clock's
        absolute times lose their gaps in float32)."""
        if isinstance(data, Trajectory):
            data = Trajectories([data])
        if not isinstance(data, Trajectories):
            raise TypeError(f"`data` must be physnode.data.Trajectories or a Trajectory; got "
                            f"{type(data).__name__}")
        if data.dim != self.observed_dim:
            raise ValueError(f"`data` must have {self.observed_dim} observed coordinates; got "
                             f"{data.dim}")
        like = self.x_loc
        t, y, mask = data.padded()
        first = t[:, :1]
        return (*(x.to(like.device, like.dtype) for x in (t - first, y, mask)), first)

    # --- the model --------------------------------------------------------------------

    def encode(self, t: torch.Tensor, y: torch.Tensor, mask: torch.Tensor):
        """``(mean, std)`` of ``q(z0 | x)``, each ``(B, latent_dim)``, from times ``t``
        ``(B, K)``, observations ``y`` and mask ``mask`` ``(B, K, obs_dim)`` (values where the
        mask is 0 are ignored)."""
        x = torch.where(mask > 0, (y - self.x_loc) / self.x_scale, torch.zeros_like(y))
        before, after = self.encoder(t / self.time_scale, x, mask.to(x), reverse=True)
        mean, raw = self.posterior(after[:, 0]).chunk(2, -1)
        return mean, nn.functional.softplus(raw) + 1e-4

    def decode(self, z0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Decoded observations ``(*S, B, K, obs_dim)`` (user's units) along the latent
        trajectories from ``z0`` ``(*S, B, latent_dim)`` at times ``t[:, 0]`` through the
        series' times ``t`` ``(B, K)``."""
        lead = z0.shape[:-2]
        z = z0.reshape(-1, self.latent_dim)
        tau = (t / self.time_scale).expand(*lead, *t.shape).reshape(-1, t.shape[-1])
        states = [z]
        for j in range(1, t.shape[-1]):
            z = advance(self.dynamics, z, tau[:, j] - tau[:, j - 1], self.method,
                        self.substeps)
            states.append(z)
        out = self.decoder(torch.stack(states, 1)) * self.x_scale + self.x_loc
        return out.reshape(*lead, *t.shape, self.observed_dim)

    @staticmethod
    def kl(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """``KL(N(mean, diag std²) ‖ N(0, I))`` in closed form, ``(*batch,)``."""
        return 0.5 * (std.pow(2) + mean.pow(2) - 1 - 2 * std.log()).sum(-1)

    def elbo_terms(self, batch, samples: int = 1, generator: torch.Generator | None = None):
        """``(log_likelihood, kl, count)`` per series, each ``(B,)``: the expected Gaussian
        log-likelihood of the observed values (a mean over ``samples`` draws of ``z0``, by
        reparametrisation), the closed-form KL and the number of observed values. The ELBO
        is ``log_likelihood − kl``."""
        t, y, mask = batch
        mean, std = self.encode(t, y, mask)
        noise = torch.randn((samples, *mean.shape), generator=generator, dtype=mean.dtype,
                            device="cpu" if generator is not None else mean.device)
        z0 = mean + std * noise.to(mean.device)
        predicted = self.decode(z0, t)                              # (S, B, K, D)
        sigma = self.noise * self.x_scale
        residual = torch.where(mask > 0, (y - predicted) / sigma, torch.zeros_like(predicted))
        log_density = -0.5 * residual.pow(2) - (sigma.log() + 0.5 * torch.log(
            torch.tensor(2 * torch.pi, dtype=y.dtype, device=y.device)))
        log_likelihood = (log_density * mask).sum((-1, -2)).mean(0)
        return log_likelihood, self.kl(mean, std), mask.sum((-1, -2))

    def predict(self, data, t_new, samples: int = 32, seed: int | None = 0) -> LatentPrediction:
        """Decoded observations at the times ``t_new`` (before, between or after the
        observed ones: interpolation and extrapolation) for ``samples`` draws of ``z0`` from
        ``q(z0 | data)``.

        Parameters
        ----------
        data : Trajectories or Trajectory
            The observed series (NaN for missing values).
        t_new : tensor or sequence of float
            ``(K,)`` times shared by every series, or ``(B, K)`` one row per series.
        samples : int
            Draws of ``z0``.
        seed : int or None
            Seeds the draws (None: the global generator).
        """
        check_int("samples", samples, minimum=1)
        t, y, mask, first = self._batch(data)
        t_new = torch.as_tensor(t_new, device=t.device)
        if t_new.ndim == 1:
            t_new = t_new.expand(t.shape[0], -1)
        if t_new.ndim != 2 or t_new.shape[0] != t.shape[0] or t_new.shape[1] == 0:
            raise ValueError(f"`t_new` must have shape (K,) or ({t.shape[0]}, K) with K ≥ 1; "
                             f"got {tuple(t_new.shape)}")
        t_new = t_new.to(torch.promote_types(t_new.dtype, first.dtype))
        if not bool(torch.isfinite(t_new).all()):
            raise ValueError("`t_new` has non-finite values; expected finite times")
        relative = (t_new - first.to(t_new)).to(t)
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        with torch.no_grad():
            mean, std = self.encode(t, y, mask)
            noise = torch.randn((samples, *mean.shape), generator=generator, dtype=mean.dtype)
            z0 = mean + std * noise.to(mean.device)
            decoded = self.decode(z0, torch.cat([t[:, :1], relative], 1))[..., 1:, :]
        return LatentPrediction(t_new, decoded)

    def default_stages(self) -> list:
        """What :func:`physnode.fit` trains with ``loss="auto"``: ``[ELBOLoss()]``."""
        from ..training.losses import ELBOLoss
        return [ELBOLoss()]

    def save(self, path):
        """Write weights and configuration to ``path`` atomically; :func:`physnode.models.load`
        rebuilds the model."""
        return save_model(self, path)
