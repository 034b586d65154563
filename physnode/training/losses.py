"""Training losses: derivative matching and rollout (multiple shooting), as objects that
know how to cut trajectories into training batches and how to score a model on them.

Both are mean squared errors in the data's own units of each coordinate (the rates of the
derivatives, the spread of the states, as the model's :meth:`~PhysicsModel.adapt` recorded
them), so a loss means the same whatever units the user measured in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from .._solve import resolve_method, solve
from .._validation import check_int, check_real
from ..data import Trajectories
from ..integrators import Integrator
from ..systems.base import sample_times
from .derivatives import estimate_derivatives, local_polynomial, local_polynomial_derivative


def _weights(model, name: str, width: int, like: torch.Tensor) -> torch.Tensor | None:
    scale = getattr(model, name, None)
    return None if scale is None else scale[:width].to(like)


def explicit_integrator(model) -> str:
    """The model's ``default_integrator`` when it is an explicit fixed-step method (a
    separable HNN's ``yoshida4``), else ``"rk4"``: fast short rollouts for training and
    regeneration, where an implicit or adaptive method's cost buys nothing."""
    default = resolve_method(getattr(model, "default_integrator", "rk4"))
    return default.name if not (default.adaptive or default.implicit) else "rk4"


def derivative_loss(model, y: torch.Tensor, dy: torch.Tensor,
                    scale: torch.Tensor | None = None,
                    t: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error between ``model(t, y)`` and the target derivatives ``dy``;
    ``y`` and ``dy`` are ``(B, dim)``, ``t`` the samples' times ``(B,)`` (default 0, for a
    model of the state alone); each coordinate divided by ``scale`` when given."""
    t = (torch.zeros((), dtype=y.dtype, device=y.device) if t is None
         else t.to(y).reshape(-1, 1))
    error = model(t, y) - dy
    if scale is not None:
        error = error / scale
    return error.pow(2).mean()


class IntervalField(torch.nn.Module):
    """``model`` in local time ``s ∈ [0, 1]`` over one interval per sample: the real time is
    ``t_j + s·Δt_j``, so ``dy/ds = Δt_j · f(t_j + s·Δt_j, y)``. Windows with different
    (irregular) times then share one grid and integrate as one batch. Scaling a Hamiltonian
    field by ``Δt_j > 0`` keeps it Hamiltonian, so symplectic methods stay symplectic."""

    def __init__(self, model, dt: torch.Tensor, t0: torch.Tensor | None = None):
        super().__init__()
        # (B,) for the current interval; t_j = 0 when not given.
        self.model, self.dt = model, dt
        self.t0 = torch.zeros_like(dt) if t0 is None else t0

    def forward(self, s, y):
        # Implicit methods evaluate all stages at once: y is (B, stages, dim) then.
        shape = (-1, *([1] * (y.ndim - 1)))
        dt = self.dt.reshape(shape)
        return dt * self.model(self.t0.reshape(shape) + sample_times(s, y) * dt, y)


class StretchedField(torch.nn.Module):
    """Like :class:`IntervalField` for states ``concat(y, Δt, t_j)``, so that the interval
    rides along with each sample when an adaptive solve compacts its batch: ``d/ds (y, Δt,
    t_j) = (Δt · f(t_j + s·Δt, y), 0, 0)``."""

    def __init__(self, model, dim: int):
        super().__init__()
        self.model, self.dim = model, dim

    def forward(self, s, z):
        y, dt, t0 = z[..., :self.dim], z[..., self.dim:self.dim + 1], z[..., self.dim + 1:]
        rate = dt * self.model(t0 + sample_times(s, y) * dt, y)
        return torch.cat([rate, torch.zeros_like(z[..., self.dim:])], -1)


def rollout_loss(model, t: torch.Tensor, y: torch.Tensor, method, substeps: int = 2,
                 start: torch.Tensor | None = None, adjoint: bool = False,
                 scale: torch.Tensor | None = None):
    """Multiple-shooting loss: from the first state of each window, integrate through the
    window's own (possibly irregular) times and compare with the observed states.

    ``t`` is ``(B, K)`` and ``y`` is ``(B, K, width)``; each interval between samples takes
    ``substeps`` steps of ``method`` (adaptive methods use their own steps, rtol 1e-6).
    ``start`` (``(B, dim)``, default ``y[:, 0]``) is the state each window starts from; only
    its first ``width`` components are compared (positions-only observations), each divided
    by ``scale`` when given.
    """
    error = rollout_errors(model, t, y, method, substeps, start, adjoint)
    if scale is not None:
        error = error / scale
    return error.pow(2).mean()


def rollout_errors(model, t: torch.Tensor, y: torch.Tensor, method, substeps: int = 2,
                   start: torch.Tensor | None = None, adjoint: bool = False,
                   origin: torch.Tensor | None = None) -> torch.Tensor:
    """Predicted minus observed states of :func:`rollout_loss`, ``(B, K − 1, width)``.
    ``origin`` (``(B,)``, default 0) is added to ``t`` for the model's time: windows can then
    carry their times relative to their first sample, whose gaps survive a cast to float32
    where absolute times (a clock's seconds, ``1.7e9``) would not."""
    state = y[:, 0] if start is None else start
    width, dim = y.shape[-1], state.shape[-1]
    adaptive = resolve_method(method).adaptive
    predictions = []
    unit = torch.tensor([0.0, 1.0], dtype=y.dtype, device=y.device)
    origin = torch.zeros_like(t[:, 0]) if origin is None else origin.to(t)
    for j in range(t.shape[1] - 1):
        dt = t[:, j + 1] - t[:, j]
        t0 = origin + t[:, j]
        if adaptive:
            # Adaptive solves work on a shrinking set of samples, so the interval rides
            # along as constant state components instead of per-batch buffers.
            field = StretchedField(model, dim)
            state = torch.cat([state, dt[:, None], t0[:, None]], -1)
        else:
            field = IntervalField(model, dt, t0)
        state = solve(field, state, unit, method=method, dt=1.0 / substeps, rtol=1e-6,
                      atol=1e-8, adjoint=adjoint).ys[-1][..., :dim]
        predictions.append(state[..., :width])
    return torch.stack(predictions, 1) - y[:, 1:]


def kinematic_errors(model, y: torch.Tensor) -> torch.Tensor:
    """``dq/dt`` of the model at states ``y = concat(q, q̇)`` minus their velocities ``q̇``,
    in units of the velocities' spread when the model knows it: zero for a model whose
    kinematics are exact (an LNN), a constraint on one whose ``dq/dt`` is learned (an HNN in
    velocity coordinates, where ``q̇`` is ``dq/dt`` by definition)."""
    dof = y.shape[-1] // 2
    rate = model(torch.zeros((), dtype=y.dtype, device=y.device), y)[..., :dof]
    scale = _weights(model, "y_scale", 2 * dof, y)
    error = rate - y[..., dof:]
    return error if scale is None else error / scale[dof:]


def observed_width(model, default):
    """The states of the data a model is trained on: its ``observed_dim`` (a NeuralODE's when
    augmented), else its ``dim``, else ``default``."""
    return getattr(model, "observed_dim", getattr(model, "dim", default))


def positions_only(model, data: Trajectories, width: int) -> bool:
    """Whether ``data`` holds only the positions of a model of ``width`` states
    ``concat(q, q̇)`` (velocities then estimated from the positions)."""
    return 2 * data.dim == width and getattr(model, "dof", None) == data.dim


@dataclass(frozen=True, kw_only=True)
class DerivativeLoss:
    """Derivative matching: ``model(t, y)`` against ``dy/dt`` at every observed sample — the
    data's ``dy`` when present, otherwise local polynomial estimates on the actual sample
    times (:func:`physnode.training.estimate_derivatives`). Fast and well conditioned, but
    the estimates carry the noise's and the sampling's bias, which :class:`RolloutLoss`
    then removes.

    Positions-only data (a model with twice the data's width): the velocities and their
    derivatives are both estimated from the positions.

    Attributes
    ----------
    lr : float
        The stage's default Adam learning rate (normalised units).
    max_epochs : int
        The stage's default cap; it usually stops earlier, on convergence.
    patience : int
        Epochs without improvement before the learning rate is halved; converged after the
        last halving.
    """

    name: ClassVar[str] = "derivative"
    #: Fraction of the training batch drawn per epoch.
    epoch_fraction: ClassVar[float] = 1.0
    lr: float = 3e-3
    max_epochs: int = 5000
    patience: int = 60

    def check(self, model, data: Trajectories, width: int) -> None:
        observed = getattr(model, "observed_dim", None)    # a NeuralODE's, when augmented
        if observed is not None and observed != getattr(model, "dim", observed):
            raise ValueError("loss='derivative' cannot train the augmented dimensions of a "
                             "NeuralODE (they are never observed); use loss='rollout'")

    def targets(self, data: Trajectories, model_width: int):
        """``(states, derivatives)`` per trajectory, in the model's coordinates (float64)."""
        ys, dys = [], []
        derivatives = ([tr.dy for tr in data] if data.has_derivatives
                       else estimate_derivatives(data))
        for tr, dy in zip(data, derivatives):
            y = tr.y.double()
            if model_width == 2 * data.dim:                     # positions only
                v = dy.double()
                y, dy = torch.cat([y, v], -1), torch.cat(
                    [v, local_polynomial_derivative(tr.t.double(), v)], -1)
            ys.append(y)
            dys.append(dy.double())
        return ys, dys

    def batches(self, data: Trajectories, model_width: int, validation: bool = False):
        """All samples as one table: ``(t, y, dy)``, the times ``(n,)`` (a time-dependent
        model is evaluated at them) and states and derivatives ``(n, model_width)``; None
        without data."""
        if len(data) == 0:
            return None
        ys, dys = self.targets(data, model_width)
        return torch.cat([tr.t.double() for tr in data]), torch.cat(ys), torch.cat(dys)

    def __call__(self, model, batch) -> torch.Tensor:
        t, y, dy = batch
        return derivative_loss(model, y, dy, _weights(model, "dy_scale", dy.shape[-1], dy),
                               t if getattr(model, "time_dependent", False) else None)


@dataclass(frozen=True, kw_only=True)
class RolloutLoss:
    """Multiple shooting: from every observed state, integrate the model through the next
    ``window − 1`` observed times (irregular gaps included) and match the observed states,
    each coordinate in units of its spread. No derivative estimate enters, only the
    observations, so the noise averages out instead of biasing the field.

    Positions-only data (a model of ``concat(q, q̇)`` trained on ``q``): each window starts
    from the smoothed positions with velocities estimated from them, and the velocities are
    otherwise unobserved, so the loss adds the model's kinematic error at those starts
    (:func:`kinematic_errors`, in the same units): a model whose ``dq/dt`` is learned can
    otherwise match the positions with a second coordinate that is not the velocity. On the
    pendulum at 1% noise (8 irregular trajectories of 200 positions) the learned
    ``dq/dt`` was 13.7% off without it and 0.8% with it, the acceleration 6.8% and 2.5%.
    A model with ``exact_kinematics`` (an LNN, whose ``dq/dt`` is ``q̇`` by construction)
    skips the term, which is exactly zero for it.

    Attributes
    ----------
    window : int
        Samples per window (the first is the start). :func:`physnode.fit`'s default stages
        use :attr:`positions_only_window` for positions-only data.
    method : str, Integrator or None
        The rollout integrator: by default the model's ``default_integrator`` when it is an
        explicit fixed-step method (a separable HNN's ``yoshida4``), else ``"rk4"``.
    substeps : int or None
        Fixed steps per sample interval; by default from the gaps between samples and the
        data's time scale (see :meth:`steps`).
    adjoint : bool
        Save memory with the same forward pass (see :func:`physnode.solve`): the exact
        reversible adjoint (O(1) memory) for symmetric symplectic methods, checkpointed
        backpropagation (O(√N) memory in the number of steps) for the others.
    lr, max_epochs, patience : as for :class:`DerivativeLoss`.
    """

    name: ClassVar[str] = "rollout"
    #: The default window of positions-only data (:func:`physnode.fit`'s default stages):
    #: each window then starts from an estimated velocity, and a longer window lets the
    #: observed positions outweigh that estimate. On the pendulum at 1% noise (8 irregular
    #: trajectories of 200 positions, five seeds) the worst acceleration error was 2.9% with
    #: 12 samples against 5.1% with 8 (``benchmarks/positions_only.py``; 2.0% with 12 since
    #: windows start from velocities estimated on the whole trajectory).
    positions_only_window: ClassVar[int] = 12
    window: int = 8
    method: str | Integrator | None = None
    substeps: int | None = None
    adjoint: bool = False
    smooth_start: bool = True
    lr: float = 1e-3
    max_epochs: int = 400
    patience: int = 25

    @property
    def epoch_fraction(self) -> float:
        """An epoch draws ``1/(window − 1)`` of the (overlapping) windows at random: every
        observed sample is a target about once per epoch, as in the derivative stage."""
        return 1 / (self.window - 1)

    def __post_init__(self):
        check_int("window", self.window, minimum=2)
        if self.substeps is not None:
            check_int("substeps", self.substeps, minimum=1)
        if self.method is not None:
            resolve_method(self.method)

    def check(self, model, data: Trajectories, width: int) -> None:
        for i, tr in enumerate(data):
            if len(tr) < self.window:
                raise ValueError(f"`data[{i}]` has {len(tr)} samples, fewer than the rollout "
                                 f"`window` of {self.window}")

    def integrator(self, model):
        return self.method if self.method is not None else explicit_integrator(model)

    def steps(self, model, t: torch.Tensor) -> int:
        """Sub-steps per interval: the given number, or enough that 90% of the steps are at
        most half the data's time scale ``T`` (``ωh ≤ 0.5``: rk4's relative error per step
        below 1e-4) and the longest at most ``2T`` (well inside rk4's stability limit)."""
        if self.substeps is not None:
            return self.substeps
        scale, rate = getattr(model, "y_scale", None), getattr(model, "dy_scale", None)
        if scale is None:
            return 2
        time = (scale / rate).log().mean().exp().item()
        gaps = (t[:, 1:] - t[:, :-1]).abs().reshape(-1).double()
        typical = torch.quantile(gaps, 0.9).item() if gaps.numel() < 2 ** 24 else gaps.max()
        return max(1, math.ceil(typical / (0.5 * time)), math.ceil(gaps.max().item() / (2 * time)))

    def batches(self, data: Trajectories, model_width: int, validation: bool = False):
        """All windows of ``window`` consecutive samples (for ``validation``, back to back
        ones: each sample once): ``(t, y, start, origin)``, the times relative to the
        window's first sample (taken in float64, so that casting them to the model's dtype
        keeps the gaps of absolute clock times), the observed states, the state each window
        starts from (the first observed state, or for positions-only data the first
        positions with velocities estimated from the samples), and the first sample's time.
        None when no trajectory is long enough."""
        ts, ys, starts_, origins = [], [], [], []
        for tr in data:
            if len(tr) < self.window:       # a short piece left by a validation block
                continue
            starts = range(0, len(tr) - self.window + 1, self.window - 1 if validation else 1)
            times = torch.stack([tr.t[s:s + self.window] for s in starts]).double()
            ts.append(times - times[:, :1])
            origins.append(times[:, 0])
            ys.append(torch.stack([tr.y[s:s + self.window] for s in starts]))
            smooth, velocity = local_polynomial(tr.t.double(), tr.y.double())
            first = (smooth if self.smooth_start else tr.y.double())[list(starts)]
            if model_width == 2 * data.dim:
                # A piece cut by fit's validation split carries dy estimated on the whole
                # trajectory: no one-sided estimate at the piece's first sample.
                velocity = velocity if tr.dy is None else tr.dy.double()
                first = torch.cat([first, velocity[list(starts)]], -1)
            starts_.append(first)
        if not ts:
            return None
        return tuple(torch.cat(x).double() for x in (ts, ys, starts_, origins))

    def __call__(self, model, batch, substeps: int | None = None) -> torch.Tensor:
        error = self.errors(model, batch, substeps)
        scale = _weights(model, "y_scale", error.shape[-1], error)
        value = (error if scale is None else error / scale).pow(2).mean()
        t, y, start, _ = batch
        if start.shape[-1] == 2 * y.shape[-1] == 2 * getattr(model, "dof", -1) \
                and not getattr(model, "exact_kinematics", False):
            value = value + kinematic_errors(model, start).pow(2).mean()
        return value

    def errors(self, model, batch, substeps: int | None = None) -> torch.Tensor:
        """Predicted minus observed states over the windows, ``(B, window − 1, width)``."""
        t, y, start, origin = batch
        augment = getattr(model, "augment_state", None)
        start = augment(start) if augment is not None else start
        steps = substeps if substeps is not None else self.steps(model, t)
        return rollout_errors(model, t, y, method=self.integrator(model), substeps=steps,
                              start=start, adjoint=self.adjoint, origin=origin)


@dataclass(frozen=True, kw_only=True)
class DensityLoss:
    """Maximum likelihood for a density model (:class:`physnode.models.CNF`) on samples
    ``(N, dim)``: the mean negative log-likelihood in nats, plus the RNODE regularisers
    (Finlay et al. 2020) ``kinetic · ∫₀ᵀ ‖f‖² dt + jacobian · ∫₀ᵀ ‖∂f/∂z‖²_F dt`` averaged
    over the batch, in the flow's normalised coordinates. They favour straight, slowly
    varying flows that an adaptive solver crosses in fewer steps (0.01 for both is the
    starting point used in ``benchmarks/cnf.py``). The validation loss is the same objective
    on the held-out samples.

    Attributes
    ----------
    kinetic, jacobian : float
        Weights of the two regularisers (0: the term is not integrated at all).
    batch_size : int
        Samples per optimiser step (``fit(batch_size=)`` overrides it); an epoch is one pass
        over the training samples.
    lr, max_epochs, patience : as for :class:`DerivativeLoss`.
    """

    name: ClassVar[str] = "density"
    epoch_fraction: ClassVar[float] = 1.0
    kinetic: float = 0.0
    jacobian: float = 0.0
    batch_size: int = 512
    lr: float = 1e-3
    max_epochs: int = 500
    patience: int = 10

    def __post_init__(self):
        check_real("kinetic", self.kinetic, nonnegative=True)
        check_real("jacobian", self.jacobian, nonnegative=True)
        check_int("batch_size", self.batch_size, minimum=1)

    @property
    def regularised(self) -> bool:
        return self.kinetic > 0 or self.jacobian > 0

    def check(self, model, data, width: int) -> None:
        if not callable(getattr(model, "flow", None)):
            raise TypeError(f"DensityLoss trains a density model with a `flow` method "
                            f"(physnode.models.CNF); got {type(model).__name__}")

    def batches(self, data: torch.Tensor, model_width: int, validation: bool = False):
        """The samples as a one-element tuple; None without any."""
        return None if len(data) == 0 else (data,)

    def __call__(self, model, batch) -> torch.Tensor:
        flow = model.flow(batch[0], regularise=self.regularised)
        value = -flow.log_prob.mean()
        if self.regularised:
            value = value + self.kinetic * flow.kinetic.mean() \
                + self.jacobian * flow.jacobian.mean()
        return value



@dataclass(frozen=True, kw_only=True)
class ELBOLoss:
    """The negative evidence lower bound of a model of whole series (a
    :class:`~physnode.models.LatentODE`), per observed value:
    ``−Σ_series (E_q[log p(x | z0)] − KL(q(z0 | x) ‖ p(z0))) / Σ_series (observed values)``,
    with the expectation over ``samples`` reparametrised draws of ``z0``. Series are whole
    (no windows); missing values (NaN) and padding are masked out. Validation (the model in
    ``eval`` mode) draws with a fixed seed, so that its loss does not jitter from one epoch to
    the next.

    Attributes
    ----------
    samples : int
        Draws of ``z0`` per series and step.
    batch_size : int or None
        Series per optimiser step when :func:`physnode.fit` is not given one (None: all).
    kl_warmup : int
        KL annealing (Bowman et al. 2016; the Latent ODE's released training anneals its KL
        weight too): the KL term of the training loss is weighted by ``min(1, e / kl_warmup)``
        in the stage's epoch ``e = 1, 2, …``, so that the encoder first learns to carry
        information before the prior pulls ``q(z0)`` towards it. The validation loss is
        always the full ELBO. 0 (the default): no annealing.
    lr, max_epochs, patience : as for :class:`DerivativeLoss`.
    """

    name: ClassVar[str] = "elbo"
    epoch_fraction: ClassVar[float] = 1.0
    #: Validation holds out whole series, however few.
    whole_series: ClassVar[bool] = True
    samples: int = 1
    batch_size: int | None = 50
    kl_warmup: int = 0
    lr: float = 1e-2
    max_epochs: int = 300
    patience: int = 20

    def __post_init__(self):
        check_int("samples", self.samples, minimum=1)
        check_int("kl_warmup", self.kl_warmup, minimum=0)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, minimum=1)

    def epoch_options(self, stage_epoch: int) -> dict:
        """Keyword arguments of the training loss in the stage's epoch ``stage_epoch``
        (from 0): the annealed KL weight."""
        if not self.kl_warmup:
            return {}
        return {"kl_weight": min(1.0, (stage_epoch + 1) / self.kl_warmup)}

    def check(self, model, data: Trajectories, width: int) -> None:
        if not callable(getattr(model, "elbo_terms", None)):
            raise TypeError(f"ELBOLoss trains a model of whole series with an `elbo_terms` "
                            f"method (a LatentODE); got {type(model).__name__}")

    def batches(self, data: Trajectories, model_width: int, validation: bool = False):
        """The series as padded tensors ``(t, y, mask)`` (see
        :meth:`physnode.data.Trajectories.padded`), each series' times relative to its first
        (a model of whole series depends on time differences only; these survive a cast to
        float32 where a clock's absolute times do not); None without data."""
        if not len(data):
            return None
        t, y, mask = data.padded()
        return t - t[:, :1], y, mask

    def __call__(self, model, batch, kl_weight: float = 1.0) -> torch.Tensor:
        generator = None if model.training else torch.Generator().manual_seed(0)
        log_likelihood, kl, count = model.elbo_terms(batch, self.samples, generator)
        return -(log_likelihood - kl_weight * kl).sum() / count.sum()



LOSSES = {"derivative": DerivativeLoss, "rollout": RolloutLoss, "elbo": ELBOLoss,
          "density": DensityLoss}
