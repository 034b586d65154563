"""PNG figures: energy error over time, phase portraits, fitted against observed. Every
figure is written atomically and its path returned."""

from __future__ import annotations

from pathlib import Path

import torch

from .._atomic import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")                       # files only; never needs a display
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_energy_errors(report, path) -> Path:
    """Relative energy error (mean over initial states) against time, log scale; an
    ensemble's members' range shaded."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    t = report.t[1:].cpu().numpy()
    for row in report.table:
        error = report.energy_errors.get(row["model"])
        if error is not None:
            values = error[1:].mean(-1).clamp_min(1e-17).cpu().numpy()
            line, = ax.plot(t, values, label=f"{row['model']} ({row['integrator']})", lw=1.2)
            band = report.bands.get(row["model"], {}).get("energy_error")
            if band is not None:                # an ensemble: its members' range
                low, high = (b[1:].mean(-1).clamp_min(1e-17).cpu().numpy() for b in band)
                ax.fill_between(t, low, high, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("t")
    known = any(r["max_rel_energy_error"] is not None for r in report.table)
    ax.set_ylabel("|E(t) − E(0)| / |E(0)|" + ("" if known else " (learned energy)"))
    ax.set_title("Energy error along long rollouts")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_phase_portraits(report, path) -> Path:
    """``(q, p)`` of the first degree of freedom, first initial state: each model against the
    truth (dashed) when known. Written to ``<stem>_phase.png`` beside ``path``."""
    plt = _pyplot()
    names = report.state_names or ("y1", "y2")
    half = max(len(names) // 2, 1)
    models = list(report.rollouts)
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 4), squeeze=False)
    for ax, name in zip(axes[0], models):
        ys = report.rollouts[name][:, 0]
        if report.truth is not None:
            truth = report.truth[:, 0]
            ax.plot(truth[:, 0], truth[:, half], "k--", lw=1, label="truth")
        ax.plot(ys[:, 0], ys[:, half], lw=0.8, label=name)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[half] if len(names) > half else names[-1])
        ax.set_title(name)
        ax.legend(loc="upper right")
    path = Path(path)
    return _save(fig, path.with_name(f"{path.stem}_phase.png"))


def plot_fit(models: dict, data, path, trajectory: int = 0, method_dt: float | None = None,
             ) -> Path:
    """Observed samples of one trajectory (dots) and every model's rollout from its first
    observed state (lines; for positions-only data, the smoothed first positions and their
    estimated velocities), one panel per observed coordinate."""
    from .._solve import solve
    from ..discovery.regenerate import model_states
    from ..models.base import parameter_placement

    plt = _pyplot()
    tr = data[trajectory]
    fig, axes = plt.subplots(data.dim, 1, figsize=(7, 2.2 * data.dim), sharex=True,
                             squeeze=False)
    t = torch.linspace(float(tr.t[0]), float(tr.t[-1]), 400, dtype=torch.float64, device="cpu")
    for name, model in models.items():
        place = parameter_placement(model)
        y0 = model_states(model, data.with_trajectories([tr]))[0][0].to(**place)
        augment = getattr(model, "augment_state", None)
        y0 = augment(y0) if augment is not None else y0
        method = getattr(model, "default_integrator", "rk4")
        # Relative times for a model of the state alone: absolute clock times lose their
        # gaps in float32.
        grid = t if getattr(model, "time_dependent", False) else t - t[0]
        with torch.no_grad():
            ys = solve(model, y0, grid.to(**place), method=method,
                       dt=method_dt or (t[1] - t[0]).item()).ys
        for i, ax in enumerate(axes[:, 0]):
            ax.plot(t.cpu().numpy(), ys[:, i].detach().cpu().double().numpy(), lw=1.2, label=name)
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(tr.t.cpu().numpy(), tr.y[:, i].cpu().numpy(), ".", color="k", ms=3,
                label="observed")
        ax.set_ylabel(data.state_names[i])
    axes[0, 0].legend(loc="upper right")
    axes[-1, 0].set_xlabel("t")
    fig.suptitle("Fitted against observed")
    return _save(fig, path)


def plot_density(model, path, box, samples: torch.Tensor | None = None,
                 resolution: int = 100, labels: tuple[str, str] | None = None) -> Path:
    """A 2-D density model's ``exp(log_prob)`` (a :class:`physnode.models.CNF`) on ``box =
    ((x_low, x_high), (y_low, y_high))``, beside a histogram of ``samples`` ``(n, 2)`` when
    given; axes named by ``labels`` (default: the model's state names). Returns the path of
    the PNG."""
    plt = _pyplot()
    (x0, x1), (y0, y1) = box
    place = {"dtype": model.y_loc.dtype, "device": model.y_loc.device}
    xs, ys = torch.linspace(x0, x1, resolution, **place), torch.linspace(y0, y1, resolution,
                                                                        **place)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    with torch.no_grad():
        density = model.log_prob(grid).exp().reshape(resolution, resolution).cpu()
    panels = 1 if samples is None else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.5), sharey=True, squeeze=False)
    if samples is not None:
        s = samples.detach().cpu().double()
        axes[0, 0].hist2d(s[:, 0].numpy(), s[:, 1].numpy(), bins=max(10, resolution // 2),
                          range=[[x0, x1], [y0, y1]], density=True)
        axes[0, 0].set_title("samples")
    axes[0, -1].pcolormesh(xs.cpu().numpy(), ys.cpu().numpy(), density.numpy(), shading="auto")
    axes[0, -1].set_title("model density")
    names = labels if labels is not None else getattr(model, "state_names", ("x1", "x2"))
    for axis in axes[0]:
        axis.set_xlabel(names[0])
    axes[0, 0].set_ylabel(names[1])
    return _save(fig, path)


def plot_history(history: list, path) -> Path:
    """Training and validation loss per epoch (log scale) of a fit's ``history``
    (:attr:`physnode.training.FitResult.history`), a dashed line where each stage after the
    first starts. Returns the path of the PNG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], lw=1.2, label="train")
    val = [(h["epoch"], h["val_loss"]) for h in history if h.get("val_loss") is not None]
    if val:
        ax.plot(*zip(*val), lw=1.2, label="validation")
    for before, h in zip(history, history[1:]):
        if h["stage"] != before["stage"]:
            ax.axvline(h["epoch"] - 0.5, color="k", ls="--", lw=1)
            ax.annotate(f" {h['stage']}", (h["epoch"], 1), xycoords=("data", "axes fraction"),
                        va="top", fontsize=9)
    if history:
        ax.annotate(f" {history[0]['stage']}", (epochs[0], 1),
                    xycoords=("data", "axes fraction"), va="top", fontsize=9)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (each stage its own)")
    ax.set_title("Loss history")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower left")
    return _save(fig, path)
