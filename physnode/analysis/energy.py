"""Energy-drift comparison of learned models over long rollouts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .._solve import solve
from .._validation import check_real
from ..data import Trajectories
from ..data.simulate import reference_solution
from ..discovery.regenerate import model_states
from ..models.base import parameter_placement
from ..models.ensemble import Ensemble
from ..training.losses import observed_width, positions_only

COLUMNS = ("model", "integrator", "max_rel_energy_error", "energy_drift_slope",
           "max_rel_learned_energy_error", "trajectory_rmse")


@dataclass
class EnergyReport:
    """What :func:`compare_energy` measured.

    Attributes
    ----------
    table : list of dict
        One row per model: ``model``, ``integrator``, ``max_rel_energy_error`` (true energy
        ``max_t |E(t) − E(0)| / |E(0)|`` over all initial states; None without a known
        system), ``energy_drift_slope`` (least-squares slope of that relative error against
        ``t``, per unit time), ``max_rel_learned_energy_error`` (the model's own energy along
        its rollout; None for models without one) and ``trajectory_rmse`` (against the true
        solution, or against ``data`` at its observed times).
    t : torch.Tensor
        Rollout times ``(n,)``.
    rollouts : dict
        ``{model name: (n, batch, dim)}`` states.
    truth : torch.Tensor or None
        The reference solution ``(n, batch, dim)`` when the system is known.
    energy_errors : dict
        ``{model name: (n, batch)}`` relative true-energy error (learned energy without a
        system).
    state_names : tuple of str
    bands : dict
        For each :class:`~physnode.models.Ensemble`: ``{name: {column: (min, max)}}`` over its
        members, and ``"energy_error"``: the members' ``(min, max)`` curves ``(n, batch)``.
        The ensemble's row, rollout and energy error are the members' medians.
    """

    table: list
    t: torch.Tensor
    rollouts: dict
    truth: torch.Tensor | None
    energy_errors: dict
    state_names: tuple = field(default=())
    bands: dict = field(default_factory=dict)

    def to_markdown(self) -> str:
        """The table as GitHub markdown, numbers to 3 significant digits; an ensemble's cells
        read ``median [min, max]`` over its members."""
        header = "| " + " | ".join(COLUMNS) + " |"
        rule = "|" + "---|" * len(COLUMNS)
        rows = ["| " + " | ".join(_cell(row.get(c), self.bands.get(row["model"], {}).get(c))
                                  for c in COLUMNS) + " |"
                for row in self.table]
        return "\n".join([header, rule, *rows])

    def plot(self, path) -> list:
        """Write the relative energy error over time (log scale, all models) to ``path`` and
        phase portraits of every model against the truth to ``<stem>_phase.png`` beside it;
        returns the paths written."""
        from .plots import plot_energy_errors, plot_phase_portraits
        return [plot_energy_errors(self, path), plot_phase_portraits(self, path)]

    def to_html(self, path, figures=None, sections=(), title: str = "Energy drift",
                settings: dict | None = None):
        """Write a self-contained HTML report (:func:`~physnode.analysis.write_html`): the
        table, the figures embedded (``figures``, PNG paths; by default those of
        :meth:`plot`, drawn in a temporary directory), any extra ``sections`` before them,
        and the settings and versions. Returns the path written."""
        import tempfile

        from .html import energy_section, settings_section, write_html

        with tempfile.TemporaryDirectory() as tmp:
            if figures is None:
                figures = self.plot(Path(tmp) / "energy.png")
            body = [*sections, energy_section(self, figures),
                    settings_section(settings or {})]
            return write_html(path, title, body)


def _cell(value, band=None):
    if value is None:
        return "–"
    if band is not None:
        return f"{value:.3g} [{band[0]:.3g}, {band[1]:.3g}]"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def compare_energy(models: dict, system=None, data: Trajectories | None = None, y0=None,
                   t_end: float = 100.0, dt: float = 0.1,
                   integrators: dict | None = None) -> EnergyReport:
    """Roll every model out over ``[0, t_end]`` and measure energy drift and trajectory error.

    Parameters
    ----------
    models : dict
        ``{name: model}``; each is rolled out with its ``default_integrator`` unless
        ``integrators`` names another (``{name: method}``), with step ``dt`` (adaptive methods
        choose their own steps and report at the grid). An
        :class:`~physnode.models.Ensemble` is measured member by member: its row holds the
        members' medians and ``EnergyReport.bands`` their range.
    system : reference system, optional
        The truth: its ``energy`` is measured along every rollout and its solution
        (scipy DOP853 at rtol 1e-10, as in :func:`physnode.data.simulate`) is the reference
        for ``trajectory_rmse``.
    data : Trajectories, optional
        Initial states when ``y0`` is not given (positions-only data: the smoothed first
        positions with their estimated velocities); without a ``system``, the observed states
        are the reference for ``trajectory_rmse`` (each trajectory over its own times).
    y0 : tensor ``(dim,)`` or ``(batch, dim)``, optional
        Initial states.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> pend = pn.systems.Pendulum()
    >>> report = pn.compare_energy({"exact field": pend}, system=pend,
    ...                            y0=torch.tensor([1.0, 0.0], dtype=torch.float64),
    ...                            t_end=10.0, dt=0.1, integrators={"exact field": "leapfrog"})
    >>> row = report.table[0]
    >>> row["integrator"], f"{row['max_rel_energy_error']:.3g}", f"{row['energy_drift_slope']:.2g}"
    ('leapfrog', '0.0227', '-1.9e-05')
    """
    if not isinstance(models, dict) or not models:
        raise TypeError("`models` must be a non-empty dict {name: model}; "
                        f"got {type(models).__name__}")
    check_real("t_end", t_end, positive=True)
    check_real("dt", dt, positive=True)
    integrators = dict(integrators or {})
    unknown = set(integrators) - set(models)
    if unknown:
        raise ValueError(f"`integrators` names models not in `models`: {sorted(unknown)}")
    if system is None and data is None:
        raise ValueError("pass `system` (the truth) or `data` (observations) to compare with")
    # Each model's states of the data (positions-only data completed with estimated
    # velocities), estimated once per kind of model, where they are used: for the initial
    # states, or as the reference without a system.
    used = data is not None and (y0 is None or system is None)
    observed = _observed_states(models, data) if used else None
    y0 = _initial_states(y0, data, observed)
    dtype = y0.dtype
    # The report lives on the CPU; each model rolls out on its own device (see _rollout).
    t = torch.arange(0.0, t_end + 0.5 * dt, dt, dtype=dtype, device="cpu")
    truth = None
    if system is not None:
        truth = torch.from_numpy(reference_solution(system, y0.detach().cpu().double().numpy(),
                                                    t.detach().cpu().double().numpy())).to(dtype)
    table, rollouts, errors, bands = [], {}, {}, {}
    for name, model in models.items():
        method = integrators.get(name, getattr(model, "default_integrator", "rk4"))
        states = None if observed is None else observed[name]
        if not isinstance(model, Ensemble):
            row, rollouts[name], error = _measure(model, method, y0, t, dt, system, truth, data,
                                                  states)
        else:
            measured = [_measure(member, method, y0, t, dt, system, truth, data, states)
                        for member in model.members]
            row, rollouts[name], error, bands[name] = _median(measured)
        row = {"model": name, **row}
        if error is not None:
            errors[name] = error
        table.append(row)
    names = tuple(getattr(system, "state_names", ()) or (data.state_names if data else ()))
    return EnergyReport(table, t, rollouts, truth, errors, names, bands)


def _measure(model, method, y0, t, dt, system, truth, data, states):
    """One model's row (without its name), rollout and relative energy error (or None);
    ``states``: the model's states of ``data`` (:func:`_observed_states`)."""
    dtype = y0.dtype
    ys = _rollout(model, y0, t, method, dt)
    row = {"integrator": method, "max_rel_energy_error": None, "energy_drift_slope": None,
           "max_rel_learned_energy_error": None, "trajectory_rmse": None}
    learned = (_relative_error(model.energy, ys.to(**parameter_placement(model, dtype)))
               .cpu() if hasattr(model, "energy") else None)
    if learned is not None:
        row["max_rel_learned_energy_error"] = learned.max().item()
    true_energy = getattr(system, "energy", None)
    error = _relative_error(true_energy, ys, y0) if true_energy is not None else learned
    if error is not None:
        row["energy_drift_slope"] = _slope(t, error.mean(-1))
        if true_energy is not None:
            row["max_rel_energy_error"] = error.max().item()
    if truth is not None:
        row["trajectory_rmse"] = (ys - truth).pow(2).mean().sqrt().item()
    elif data is not None:
        row["trajectory_rmse"] = _data_rmse(model, data, states, method, dt, dtype)
    return row, ys, error


def _median(measured):
    """An ensemble's row, rollout and energy error (the members' medians) and its band."""
    rows, rollouts, errors = zip(*measured)
    row, band = dict(rows[0]), {}
    for column, value in rows[0].items():
        if isinstance(value, float):
            values = torch.tensor([r[column] for r in rows], dtype=torch.float64)
            row[column] = values.median().item()
            band[column] = (values.min().item(), values.max().item())
    error = None
    if errors[0] is not None:
        stacked = torch.stack(errors)
        error = stacked.median(0).values
        band["energy_error"] = (stacked.min(0).values, stacked.max(0).values)
    return row, torch.stack(rollouts).median(0).values, error, band


def _observed_states(models, data) -> dict:
    """``{name: model_states(model, data)}`` (an ensemble's members share their kind of
    states), each kind of model (positions-only or not) estimated once."""
    by_kind, out = {}, {}
    for name, model in models.items():
        one = model.members[0] if isinstance(model, Ensemble) else model
        kind = positions_only(one, data, observed_width(one, data.dim))
        if kind not in by_kind:
            by_kind[kind] = model_states(one, data)
        out[name] = by_kind[kind]
    return out


def _initial_states(y0, data, observed):
    """``y0`` as a ``(batch, dim)`` CPU tensor, or the first states of ``data`` in the
    models' coordinates (``observed``: positions-only data completed with estimated
    velocities)."""
    if y0 is None:
        if data is None:
            raise ValueError("pass `y0` or `data` to take initial states from")
        widths = {name: states[0].shape[-1] for name, states in observed.items()}
        if len(set(widths.values())) > 1:
            raise ValueError(f"the models take states of different widths from `data` "
                             f"({data.dim} states {data.state_names}): {widths}; compare "
                             f"models of the same states, or pass `y0`")
        return torch.stack([y[0] for y in next(iter(observed.values()))]).cpu()
    y0 = torch.as_tensor(y0).detach().cpu()
    y0 = y0.double() if not y0.is_floating_point() else y0
    return y0.unsqueeze(0) if y0.ndim == 1 else y0


def _rollout(model, y0, t, method, dt):
    """Observed-state rollout ``(n, batch, width)`` in the dtype of ``y0``."""
    place = parameter_placement(model, y0.dtype)
    start = y0.to(**place)
    augment = getattr(model, "augment_state", None)
    start = augment(start) if augment is not None else start
    with torch.no_grad():
        ys = solve(model, start, t.to(**place), method=method, dt=dt).ys
    return ys[..., :y0.shape[-1]].to(device=y0.device, dtype=y0.dtype)


def _relative_error(energy, ys, y0=None):
    """``|E(y(t)) − E(y(0))| / |E(y(0))|``, shape ``(n, batch)``; ``y0`` overrides ``y(0)``
    (the true initial energy for the true-energy error)."""
    with torch.enable_grad():
        values = energy(ys).detach()
        start = energy(y0).detach() if y0 is not None else values[0]
    error = (values - start).abs() / start.abs().clamp_min(torch.finfo(values.dtype).tiny)
    return error.to(ys.dtype if y0 is None else y0.dtype)


def _slope(t, values) -> float:
    tc = t - t.mean()
    return ((tc * (values - values.mean())).sum() / (tc * tc).sum()).item()


def _data_rmse(model, data, states, method, dt, dtype) -> float:
    squares, count = 0.0, 0
    for tr, y in zip(data, states):
        ys = _rollout(model, y[:1].to(dtype), (tr.t - tr.t[0]).to(dtype),
                      method, dt)[:, 0, :data.dim]
        squares += (ys - tr.y.to(dtype)).pow(2).sum().item()
        count += ys.numel()
    return (squares / count) ** 0.5
