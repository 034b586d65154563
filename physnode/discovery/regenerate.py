"""Regenerate clean, dense data from a trained model: the model's own trajectories on a
regular grid, with derivatives taken from its vector field (never finite differences)."""

from __future__ import annotations

import torch

from .._solve import solve
from .._validation import check_int
from ..data import Trajectories, Trajectory
from ..models.base import parameter_placement
from ..training.derivatives import smooth
from ..training.losses import explicit_integrator, observed_width, positions_only
from .library import declared_angles


def regenerate(model, data: Trajectories | None = None, *, n_points: int | None = None,
               box: dict | None = None, n_samples: int = 2000, method: str | None = None,
               substeps: int = 1, seed: int = 0) -> Trajectories:
    """Clean data from a trained model, with exact derivatives ``dy = model(t, y)``.

    With ``data``: from each trajectory's first observed state (positions-only data: the
    first positions, smoothed, with velocities estimated from them; the velocities are
    named after the data's positions, ``x`` → ``xdot``), the model is rolled out
    over that trajectory's time span on a regular grid of ``n_points`` (default: four times
    the observed samples, at least 200; an autonomous model runs the trajectories whose
    spacings are within 2× of each other in one batch, on the finest of theirs) with
    ``method`` (default: the model's
    ``default_integrator`` when explicit and fixed-step, else ``rk4``), taking ``substeps``
    steps per grid interval for fixed-step methods. Integration error only moves where the
    samples lie: the derivatives there are exact.

    Without ``data``: the vector field is evaluated at ``n_samples`` states drawn uniformly
    from ``box`` (``{state name: (low, high)}``), or by default at the training states
    :func:`physnode.fit` kept with the model; each is returned as a one-sample trajectory
    at ``t = 0``.

    Returns
    -------
    Trajectories
        With ``dy``, states in the model's dtype (times, when ``data`` is given, in its
        dtype), on the CPU.

    Examples
    --------
    >>> import physnode as pn
    >>> data = pn.data.simulate(pn.systems.MassSpring(), n_trajectories=2, n_points=10)
    >>> clean = regenerate(pn.systems.MassSpring(), data, n_points=50)
    >>> len(clean), clean[0].y.shape, clean.has_derivatives
    (2, torch.Size([50, 2]), True)
    """
    names = tuple(getattr(model, "state_names", ()))
    width = observed_width(model, None)
    if width is None or not callable(model):
        raise TypeError(f"`model` must be a trained physnode model or a System; "
                        f"got {type(model).__name__}")
    names = names[:width] if names else tuple(f"y{i + 1}" for i in range(width))
    place = parameter_placement(model)
    if data is not None:
        if not isinstance(data, Trajectories):
            raise TypeError(f"`data` must be physnode.data.Trajectories; "
                            f"got {type(data).__name__}")
        if len(data) == 0:
            raise ValueError("`data` is empty; expected at least one trajectory")
        only_positions = positions_only(model, data, width)
        if data.dim != width and not only_positions:
            raise ValueError(f"`data` has {data.dim} states {data.state_names} but the model "
                             f"has {width} {names}")
        rolled = [Trajectory(*parts) for parts in
                  _rollouts(model, data, n_points, method, substeps, place)]
        if only_positions:
            return Trajectories(rolled, names_from_data(model, data, names),
                                angles=declared_angles(data, model))
        return data.with_trajectories(rolled)
    return Trajectories(_state_samples(model, names, box, n_samples, seed, place), names,
                        angles=declared_angles(model=model))


def names_from_data(model, data: Trajectories, names: tuple) -> tuple:
    """The names of ``data``'s states in the model's coordinates, as :func:`regenerate` and
    :func:`physnode.discover` give them: the data's own, for positions-only data completed
    with velocities (:func:`velocity_names_of`), or ``names`` (the model's) when the data
    hold other states."""
    if positions_only(model, data, observed_width(model, data.dim)):
        return velocity_names_of(data.state_names, names)
    return tuple(data.state_names) if data.dim == len(names) else tuple(names)


def velocity_names_of(positions: tuple, fallback: tuple) -> tuple:
    """The state names of positions-only data completed with velocities: each position's
    name followed by ``dot`` (``theta`` → ``thetadot``, which SymPy prints as a dotted
    symbol), or ``fallback`` (the model's names) when those would collide."""
    names = tuple(positions) + tuple(f"{name}dot" for name in positions)
    return names if len(set(names)) == len(names) else fallback


def model_states(model, data: Trajectories) -> list[torch.Tensor]:
    """Each trajectory's states in the model's coordinates, ``(n, width)`` float64: its
    samples, or for positions-only data (a model of ``concat(q, q̇)`` and ``q`` observed)
    the smoothed positions with the velocities estimated from them
    (:func:`~physnode.training.derivatives.smooth`)."""
    if not positions_only(model, data, observed_width(model, data.dim)):
        return [tr.y.double() for tr in data]
    fits = [smooth(tr.t.double(), tr.y.double()) for tr in data]
    return [torch.cat([f.y, f.dy], -1) for f in fits]


def _rollouts(model, data, n_points, method, substeps, place):
    """Roll out from every trajectory's first state (:func:`model_states`: for
    positions-only data, the smoothed first positions and velocities estimated from them).
    An autonomous model runs trajectories with similar requested spacings (within 2×) in
    one solve on a shared relative-time grid (the finest of theirs); a time-dependent one
    runs trajectory by trajectory on its own times."""
    counts = [n_points if n_points is not None else max(200, 4 * len(tr)) for tr in data]
    for n in counts:
        check_int("n_points", n, minimum=2)
    method = method or explicit_integrator(model)
    # In the data's own precision: a clock's absolute times (1.7e9 s) lose their gaps in
    # float32, so the model runs on times relative to each start.
    starts = torch.stack([tr.t[0] for tr in data]).cpu()
    spans = torch.stack([tr.t[-1] - tr.t[0] for tr in data]).to(**place)
    y0 = torch.stack([y[0] for y in model_states(model, data)]).to(**place)
    augment = getattr(model, "augment_state", None)
    y0 = augment(y0) if augment is not None else y0
    if getattr(model, "time_dependent", False):
        return [_solve_on(model, y0[i], starts[i].to(**place)
                          + torch.linspace(0, spans[i], n, **place), method, substeps)
                for i, n in enumerate(counts)]
    steps = [span / (n - 1) for span, n in zip(spans.tolist(), counts)]
    out = [None] * len(data)
    for group in _similar_steps(steps):
        step = min(steps[i] for i in group)
        relative = torch.arange(round(max(spans[i].item() for i in group) / step) + 1,
                                **place) * step
        relative, ys, dys = _solve_on(model, y0[group], relative, method, substeps)
        for j, i in enumerate(group):
            keep = relative <= spans[i].item() + 1e-9 * step
            out[i] = (starts[i] + relative[keep].to(starts.dtype), ys[keep, j], dys[keep, j])
    return out


def _similar_steps(steps: list, ratio: float = 2.0) -> list:
    """Indices grouped so that the steps in a group are within ``ratio`` of each other: each
    group shares one solve on its finest step. One batch for all would give a long
    trajectory the step of a short one (a 3-sample piece of 0.1 s beside 10 s trajectories
    made each of these 20,000 samples instead of 800)."""
    order = sorted(range(len(steps)), key=steps.__getitem__)
    groups = []
    for i in order:
        if groups and steps[i] <= ratio * steps[groups[-1][0]]:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _solve_on(model, y0, t, method, substeps):
    # Integration error only moves the sample locations; the derivatives are exact there.
    with torch.no_grad():
        ys = solve(model, y0, t, method=method, dt=(t[1] - t[0]).item() / substeps).ys
    times = t.reshape(-1, *([1] * (ys.ndim - 1))).expand(*ys.shape[:-1], 1)
    # Regenerated data lives on the CPU, like observed data, whatever the model's device.
    return tuple(x.cpu() for x in (t, *_field(model, times, ys)))


def sample_states(model, names, box, n, seed, dtype) -> torch.Tensor:
    """``n`` states drawn uniformly from ``box``; without a box, the training states the
    model kept (see :meth:`PhysicsModel.record_training_states`)."""
    if box is None:
        kept = model.training_states() if hasattr(model, "training_states") else None
        if kept is None:
            raise ValueError("`box` is needed: the model has no training states (it was not "
                             "trained with physnode.fit); pass data= or "
                             "box={name: (low, high)}")
        return kept[:, :len(names)].to(device="cpu", dtype=dtype)
    missing = [k for k in names if k not in box]
    if missing:
        raise ValueError(f"`box` must give (low, high) for every state {names}; "
                         f"missing {missing}")
    check_int("n_samples", n, minimum=1)
    # Drawn on the CPU, so that a seed gives the same states on every device.
    low = torch.tensor([box[k][0] for k in names], dtype=dtype, device="cpu")
    high = torch.tensor([box[k][1] for k in names], dtype=dtype, device="cpu")
    generator = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(n, len(names), generator=generator, dtype=dtype,
                                           device="cpu")


def _state_samples(model, names, box, n, seed, place):
    y = sample_states(model, names, box, n, seed, place["dtype"]).to(**place)
    augment = getattr(model, "augment_state", None)
    y = augment(y) if augment is not None else y
    y, dy = (x.cpu() for x in _field(model, torch.zeros((), **place), y))
    t = torch.zeros(1, dtype=place["dtype"], device="cpu")
    return [Trajectory(t, y[i:i + 1], dy[i:i + 1]) for i in range(len(y))]


def _field(model, t, ys):
    """Observed states and the model's exact derivatives there (autograd on for HNN/LNN)."""
    width = getattr(model, "observed_dim", ys.shape[-1])
    with torch.enable_grad():
        dy = model(t, ys)
    return ys[..., :width].detach(), dy[..., :width].detach()
