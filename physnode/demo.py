"""The end-to-end demonstration behind ``physnode demo``.

Noisy, irregularly sampled pendulum trajectories → an HNN and a baseline NeuralODE →
equations discovered from the HNN (and, for contrast, from the raw data) → the learned energy
as a SymPy expression → the energy-drift report with figures.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ._atomic import write_text_atomic
from .analysis import compare_energy, plot_fit
from .data import simulate
from .discovery import discover, hamiltonian, pysindy_raw, round_floats
from .models import HNN, NeuralODE
from .runs import save_run
from .systems import Pendulum
from .training import fit

QUICK = {"t_end": 100.0}
FULL = {"t_end": 1000.0}
NOISE = 0.05


def run_demo(out="physnode-demo", quick: bool = False, progress: bool = True,
             echo=print) -> dict:
    """Run the whole pipeline, write everything under ``out`` and return the main results:
    ``{"equations", "hamiltonian", "comparison", "report", "html", "figures"}`` (``report``
    the markdown report's path, ``html`` the self-contained ``report.html``'s)."""
    settings = QUICK if quick else FULL
    out = Path(out)
    start = time.perf_counter()
    pendulum = Pendulum()
    data = simulate(pendulum, n_trajectories=5, t_span=(0.0, 10.0), n_points=200,
                    noise=NOISE, irregular=True, seed=0)
    out.mkdir(parents=True, exist_ok=True)
    data_path = data.save(out / "pendulum.csv")
    echo(f"1/5 data: {len(data)} noisy ({100 * NOISE:g}%), irregularly sampled pendulum "
         f"trajectories -> {data_path}")

    models = {"HNN": HNN(dof=1), "NeuralODE": NeuralODE(dim=2)}
    histories = {}
    echo("2/5 fitting an HNN and a NeuralODE with fit's defaults (derivative matching, then "
         "rollouts, each until converged)")
    for name, model in models.items():
        torch.manual_seed(0)
        result = fit(model, data, progress=progress)
        histories[name] = result.history
        run = save_run(out / name.lower(), model, data, result.history, {"model": name})
        stages = ", ".join(f"{stage} {sum(h['stage'] == stage for h in result.history)}"
                           for stage in result.stages)
        echo(f"    {name}: epochs {stages}; validation loss "
             f"{result.history[result.best_epoch - 1]['val_loss']:.3g} -> {run}")

    echo("3/5 discovering the equations (HNN -> clean data -> SINDy)")
    equations = discover(models["HNN"], data=data)
    echo(f"    fit quality: {equations.fit_quality}")
    check = equations.compare(pendulum)
    baselines = {"physnode's raw-data route (local polynomial derivatives, same selection)":
                 discover(data).compare(pendulum),
                 "plain pysindy on the raw data (its defaults: finite differences, STLSQ 0.1)":
                 pysindy_raw(data).compare(pendulum)}
    energy = hamiltonian(models["HNN"], data=data)
    write_text_atomic(out / "equations.json", equations.to_json())
    echo(_indent(str(equations)))
    echo(f"    exact support: {check['exact_support']}, largest coefficient error "
         f"{100 * check['max_relative_coefficient_error']:.2f}% (truth: dq/dt = p, "
         f"dp/dt = -9.81 sin q)")
    for name, check in baselines.items():
        echo(f"    {name}: {_summary(check)}")
    echo(f"4/5 learned energy: H = {round_floats(energy, 4)}  (truth: p**2/2 - 9.81*cos(q) "
         f"+ const)")

    echo(f"5/5 energy drift over t = {settings['t_end']:g}")
    comparison = compare_energy(models, system=pendulum, data=data, t_end=settings["t_end"],
                                dt=0.1)
    figures = comparison.plot(out / "energy.png") + [plot_fit(models, data, out / "fit.png")]
    report = _write_report(out / "report.md", comparison, equations, energy, baselines,
                           figures)
    page = _write_html(out / "report.html", data, histories, equations, energy, baselines,
                       comparison, figures, {"quick": quick, "noise": NOISE, **settings,
                                             "dt": 0.1})
    echo(_indent(comparison.to_markdown()))
    for path in [report, page, out / "equations.json", *figures]:
        echo(f"    wrote {path}")
    echo(f"done in {time.perf_counter() - start:.0f} s")
    return {"equations": equations, "hamiltonian": energy, "comparison": comparison,
            "report": report, "html": page, "figures": figures}


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _summary(check: dict) -> str:
    spurious = sum(len(e["spurious"]) for e in check["equations"].values())
    missing = sum(len(e["missing"]) for e in check["equations"].values())
    if check["exact_support"]:
        return (f"exact support, largest coefficient error "
                f"{100 * check['max_relative_coefficient_error']:.2f}%")
    return f"wrong support ({spurious} spurious, {missing} missing terms)"


def _write_report(path, comparison, equations, energy, baselines, figures) -> Path:
    lines = ["# physnode demo: noisy pendulum", "",
             "## Discovered equations (HNN → regenerated data → SINDy)", "", "```",
             str(equations), "```", "", f"Learned energy: `H = {round_floats(energy, 4)}`", "",
             *[f"- {name}: {_summary(check)}." for name, check in baselines.items()],
             "",
             "## Energy drift", "", comparison.to_markdown(), ""]
    lines += [f"![{Path(f).stem}]({Path(f).name})" for f in figures]
    return write_text_atomic(path, "\n".join(lines) + "\n")


def _write_html(path, data, histories, equations, energy, baselines, comparison, figures,
                settings) -> Path:
    """The demo's self-contained ``report.html``: results first (equations, energy, drift),
    then the fit, the data, the training and the settings."""
    import sympy

    from .analysis.html import (
        Figure,
        Section,
        Text,
        data_section,
        energy_section,
        equations_section,
        history_section,
        quality_section,
        settings_section,
        write_html,
    )
    from .analysis.plots import plot_history

    fitted = [f for f in figures if Path(f).name == "fit.png"]
    sections = [
        equations_section(equations, {"energy (Hamiltonian)":
                                      f"H = {sympy.latex(round_floats(energy, 4))}"},
                          title="Discovered equations (HNN → regenerated data → SINDy)"),
        Section("Against the truth and the baselines",
                [Text(r"Truth: $\dot{q} = p$, $\dot{p} = -9.81 \sin q$, "
                      r"$H = p^2/2 - 9.81 \cos q$ + const.")]
                + [Text(f"{name}: {_summary(check)}.") for name, check in baselines.items()]),
        quality_section(equations.fit_quality, title="Fit quality (HNN)"),
        energy_section(comparison, [f for f in figures if f not in fitted],
                       title=f"Energy drift over t = {settings['t_end']:g}"),
        Section("Fitted against observed",
                [Text("The first trajectory's observations (dots) and each model's rollout "
                      "from its first observed state.")]
                + [Figure(f, "Fitted against observed") for f in fitted]),
        data_section(data)]
    for name, history in histories.items():
        loss = plot_history(history, Path(path).with_name(f"history_{name.lower()}.png"))
        sections.append(history_section(history, loss, title=f"Training: {name}"))
    sections.append(settings_section(settings))
    return write_html(path, "physnode demo: noisy pendulum", sections)
