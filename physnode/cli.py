"""The ``physnode`` command.

Every subcommand prints where it wrote its outputs. Bad input exits with status 2 and one line
naming the problem; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import data as pndata
from ._atomic import write_text_atomic
from .systems import REFERENCE_SYSTEMS

MODEL_CHOICES = ("hnn", "lnn", "node", "sonode")


def _system(name: str):
    if name.lower() not in REFERENCE_SYSTEMS:
        raise ValueError(f"unknown system {name!r}; choose one of "
                         f"{', '.join(sorted(REFERENCE_SYSTEMS))}")
    return REFERENCE_SYSTEMS[name.lower()]()


def _simulate(args) -> None:
    system = _system(args.system)
    trajectories = pndata.simulate(system, n_trajectories=args.n_trajectories,
                                   t_span=(args.t0, args.t1), n_points=args.n_points,
                                   noise=args.noise, irregular=args.irregular, seed=args.seed,
                                   derivatives=args.derivatives)
    path = pndata.save(trajectories, args.out)
    print(f"wrote {len(trajectories)} trajectories of {system.name} "
          f"({', '.join(system.state_names)}) to {path}")


def _demo(args) -> None:
    from .demo import run_demo
    run_demo(args.out, quick=args.quick)


def _fit(args) -> None:
    import torch

    from .models import HNN, LNN, NeuralODE, SecondOrderNeuralODE
    from .parallel.distributed import finish, init_from_environment
    from .runs import CHECKPOINT, save_run
    from .training import fit

    if args.model not in MODEL_CHOICES:
        raise ValueError(f"unknown model {args.model!r}; choose one of "
                         f"{', '.join(MODEL_CHOICES)}")
    try:
        data = pndata.load(args.data, columns=_columns(args.columns))
    except ValueError as err:
        if args.columns or "Pass `columns=`" not in str(err):
            raise
        raise ValueError(f"{err} (on the command line: --columns NAME=COLUMN ...)") from None
    # The models' own defaults unless given: the command line is not a second recipe.
    options = {k: v for k, v in (("hidden", args.hidden), ("layers", args.layers))
               if v is not None}
    if args.angles:
        options["angles"] = tuple(args.angles)
    torch.manual_seed(args.seed)        # the initial weights follow --seed
    if args.model == "node":
        if args.positions_only:
            raise ValueError("--positions-only needs a model of positions and velocities "
                             "(hnn, lnn or sonode); got --model node")
        model = NeuralODE(dim=data.dim, **options)
    else:
        if data.dim % 2 and not args.positions_only:
            raise ValueError(f"{args.data}: an {args.model.upper()} needs an even number of "
                             f"state columns (q and p, or q and qdot); got {data.dim} "
                             f"{data.state_names} (pass --positions-only if they are "
                             f"positions alone)")
        dof = data.dim if args.positions_only else data.dim // 2
        if args.model == "sonode":
            model = SecondOrderNeuralODE(dof=dof, **options)
        else:
            if args.model == "hnn" and args.positions_only:
                options["coordinates"] = "velocity"    # velocities are what is estimated
            kind = HNN if args.model == "hnn" else LNN
            model = kind(dof=dof, dissipative=args.dissipative, **options)
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    group = init_from_environment()     # launched by torchrun: train data-parallel
    try:
        result = fit(model, data, epochs=args.epochs, lr=args.lr, loss=args.loss, dtype=dtype,
                     seed=args.seed, checkpoint=out / CHECKPOINT, resume=args.resume,
                     patience=args.patience)
    finally:
        if group is not None:
            finish()
    if group is not None and not group.main:
        return
    settings = {k: v for k, v in vars(args).items() if k not in ("run", "debug", "command")}
    save_run(out, model, data, result.history, settings)
    page = _fit_report(out, model, data, result.history, settings)
    best = result.history[result.best_epoch - 1]
    print(f"fitted {type(model).__name__} on {len(data)} trajectories from {args.data}: "
          f"train loss {best['train_loss']:.3g}, validation loss "
          f"{best['val_loss'] if best['val_loss'] is None else format(best['val_loss'], '.3g')}"
          f" (epoch {result.best_epoch})")
    print(f"wrote run {out} (model.pt, data.npz, fit.json, checkpoint.pt)"
          + (f"; trained on {group.size} ranks" if group is not None else ""))
    print(f"wrote {page}")


def _columns(items):
    """``--columns NAME=COLUMN ...`` as :func:`physnode.data.load`'s ``columns`` (a column
    is a 0-based index or a header label), or None."""
    if not items:
        return None
    columns = {}
    for item in items:
        name, sep, column = item.partition("=")
        if not sep or not name or not column:
            raise ValueError(f"--columns entries must be NAME=COLUMN (a 0-based index or a "
                             f"header label); got {item!r}")
        columns[name] = int(column) if column.isdigit() else column
    return columns


def _fit_report(out: Path, model, data, history, settings) -> Path:
    """``report.html`` of a fit: data, loss history, fitted against observed, fit quality."""
    from .analysis import html, plot_fit, plot_history
    from .discovery import fit_quality

    name = type(model).__name__
    sections = [html.data_section(data),
                html.history_section(history, plot_history(history, out / "history.png")),
                html.Section("Fitted against observed",
                             [html.Figure(plot_fit({name: model}, data, out / "fit.png"),
                                          "The first trajectory's observations (dots) and "
                                          "the model's rollout from its first observed "
                                          "state")]),
                html.quality_section(fit_quality(model, data)),
                html.settings_section(settings)]
    return html.write_html(out / "report.html", f"physnode fit: {name} on {settings['data']}",
                           sections)


def _discover(args) -> None:
    import sympy

    from .discovery import discover, hamiltonian, lagrangian, round_floats
    from .runs import load_run

    model, data, _ = load_run(args.run_dir)
    equations = discover(model, method=args.method, library=args.library, data=data,
                         degree=args.degree)
    print(equations)
    print(f"LaTeX:\n{equations.to_latex()}")
    energy = {"hamiltonian": hamiltonian, "lagrangian": lagrangian}
    learned = {}
    for attribute, function in energy.items():
        if hasattr(model, attribute):
            found = function(model, data=data)
            if hasattr(found, "to_latex"):      # a Lagrangian, which prints itself rounded
                shown, learned[attribute] = found, found.to_latex(digits=4)
            else:                               # a Hamiltonian: a SymPy expression
                shown = round_floats(found, 4)
                learned[attribute] = f"H = {sympy.latex(shown)}"
            print(f"learned {attribute}: {shown}")
    print(f"wrote {write_text_atomic(args.out, equations.to_json())}")
    settings = {k: v for k, v in vars(args).items() if k not in ("run", "debug", "command")}
    page = equations.to_html(Path(args.out).with_suffix(".html"), data=data, energies=learned,
                             title=f"physnode discover: {args.run_dir}", settings=settings)
    print(f"wrote {page}")


def _compare(args) -> None:
    from .analysis import compare_energy, html, plot_fit
    from .runs import load_run

    models, data = {}, None
    for run in args.runs:
        model, run_data, _ = load_run(run)
        name = f"{Path(run).name} ({type(model).__name__})"
        models[name] = model
        data = data if data is not None else run_data
    system = _system(args.system) if args.system else None
    report = compare_energy(models, system=system, data=data, t_end=args.t_end, dt=args.dt)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figures = report.plot(out / "energy.png") + [plot_fit(models, data, out / "fit.png")]
    markdown = write_text_atomic(out / "report.md", report.to_markdown() + "\n")
    settings = {k: v for k, v in vars(args).items() if k not in ("run", "debug", "command")}
    page = report.to_html(out / "report.html", figures=figures, sections=[html.data_section(data)],
                          title="physnode compare: " + ", ".join(models), settings=settings)
    print(report.to_markdown())
    for path in [markdown, page, *figures]:
        print(f"wrote {path}")


def _sweep(args) -> None:
    from .parallel import cases, load_config, sweep

    config = load_config(args.config)
    # The configuration's own `out` is relative to the configuration file, as the default is.
    out = args.out or str(Path(args.config).parent / config.get(
        "out", Path(args.config).with_suffix(".csv").name))
    todo = cases(config)
    client = "serial" if args.serial else args.scheduler
    rows = sweep(todo, out, client=client, workers=args.workers)
    failed = [r for r in rows if r["status"] != "ok"]
    exact = [r for r in rows if r.get("exact_support") is not None]
    print(f"{len(rows)} cases: {len(rows) - len(failed)} ok, {len(failed)} failed"
          + (f"; exact support in {sum(bool(r['exact_support']) for r in exact)} of "
             f"{len(exact)} scored" if exact else ""))
    for row in failed:
        print(f"  failed: {row['system'] or row['data']} seed {row['seed']}: {row['error']}")
    print(f"wrote {out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="physnode", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sim = commands.add_parser("simulate", help="write trajectories of a reference system",
                              description="Simulate noisy trajectories of a reference system "
                                          "and write them as CSV or NPZ.")
    sim.add_argument("system", help=f"one of: {', '.join(sorted(REFERENCE_SYSTEMS))}")
    sim.add_argument("--out", required=True, help="output file, .csv or .npz")
    sim.add_argument("--n-trajectories", type=int, default=25)
    sim.add_argument("--t0", type=float, default=0.0, help="start time (default 0)")
    sim.add_argument("--t1", type=float, default=3.0, help="end time (default 3)")
    sim.add_argument("--n-points", type=int, default=30, help="samples per trajectory")
    sim.add_argument("--noise", type=float, default=0.0,
                     help="Gaussian noise relative to each state's spread (default 0)")
    sim.add_argument("--irregular", action="store_true", help="random sorted sample times")
    sim.add_argument("--derivatives", action="store_true",
                     help="also write exact derivatives d<state>/dt")
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(run=_simulate)

    demo = commands.add_parser("demo", help="the whole pipeline on built-in pendulum data",
                               description="Fit an HNN and a NeuralODE to noisy, irregularly "
                                           "sampled pendulum data, discover the equations and "
                                           "the learned energy as SymPy, and write the "
                                           "energy-drift report with figures.")
    demo.add_argument("--quick", action="store_true",
                      help="smaller networks and a t=100 comparison (about 1 minute)")
    demo.add_argument("--out", default="physnode-demo", help="output directory")
    demo.set_defaults(run=_demo)

    fit = commands.add_parser("fit", help="fit a model to trajectories",
                              description="Fit an HNN, LNN, NeuralODE or second-order NeuralODE "
                                          "to a CSV/NPZ file of "
                                          "trajectories and write a run directory.")
    fit.add_argument("data", help="trajectories, .csv or .npz (columns trajectory,t,<states>)")
    fit.add_argument("--model", required=True,
                     help="hnn, lnn, node or sonode (second-order NeuralODE, states q and qdot)")
    fit.add_argument("--out", required=True, help="run directory to write")
    fit.add_argument("--epochs", type=int, default=None,
                     help="cap on each stage's epochs (default: the stage's own cap; stages "
                          "stop on convergence)")
    fit.add_argument("--lr", type=float, default=None,
                     help="learning rate of every stage (default: each stage's own)")
    fit.add_argument("--hidden", type=int, default=None,
                     help="hidden width (default: the model's, 200)")
    fit.add_argument("--layers", type=int, default=None,
                     help="hidden layers (default: the model's, 2)")
    fit.add_argument("--angles", type=int, nargs="*", default=[],
                     help="indices of the positions (or states, for node) that are angles")
    fit.add_argument("--loss", default="auto",
                     help="auto (derivative matching, then rollouts), derivative or rollout")
    fit.add_argument("--columns", nargs="+", default=None, metavar="NAME=COLUMN",
                     help="for a plain text table: which columns are t, trajectory and the "
                          "states, each a 0-based index or a header label, e.g. trajectory=0 "
                          "t=1 x=x v=v (see physnode.data.load)")
    fit.add_argument("--dissipative", action="store_true", help="learn a damping (hnn, lnn)")
    fit.add_argument("--positions-only", action="store_true",
                     help="the state columns are positions alone (hnn, lnn, sonode): their "
                          "velocities are estimated, and an HNN works in velocity coordinates")
    fit.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    fit.add_argument("--patience", type=int, default=None, help="early-stopping patience")
    fit.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    fit.add_argument("--seed", type=int, default=0)
    fit.set_defaults(run=_fit)

    disc = commands.add_parser("discover", help="discover equations from a fitted run",
                               description="Regenerate clean data from a run's model and "
                                           "discover its equations as SymPy.")
    disc.add_argument("run_dir", metavar="RUN", help="run directory written by `physnode fit`")
    disc.add_argument("--out", required=True, help="equations JSON file to write")
    disc.add_argument("--method", default="sindy", help="sindy or sr")
    disc.add_argument("--library", default="poly+trig", help="e.g. poly, trig, poly+trig")
    disc.add_argument("--degree", type=int, default=3, help="polynomial degree")
    disc.set_defaults(run=_discover)

    comp = commands.add_parser("compare", help="energy-drift report of fitted runs",
                               description="Roll the runs' models out and report energy "
                                           "drift and trajectory error, with figures.")
    comp.add_argument("runs", nargs="+", help="run directories")
    comp.add_argument("--out", required=True, help="report directory")
    comp.add_argument("--system", help="the true system, if known (e.g. pendulum)")
    comp.add_argument("--t-end", type=float, default=100.0)
    comp.add_argument("--dt", type=float, default=0.1)
    comp.set_defaults(run=_compare)

    swp = commands.add_parser("sweep", help="run the pipeline over a grid of cases on dask",
                              description="Simulate (or load), fit, discover and score every "
                                          "case of a TOML or JSON configuration, each case a "
                                          "task on dask.distributed; one CSV row per case.")
    swp.add_argument("config", help="sweep configuration, .toml or .json ([case], [grid])")
    swp.add_argument("--out", default=None,
                     help="table to write (default: the config's `out`, relative to the "
                          "config file, else CONFIG.csv beside it); "
                          "cases already finished there are skipped")
    where = swp.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None,
                       help="address of a running dask scheduler (default: a LocalCluster)")
    where.add_argument("--serial", action="store_true", help="run here, one case at a time")
    swp.add_argument("--workers", type=int, default=None,
                     help="LocalCluster workers, one thread each (default: the CPU count)")
    swp.set_defaults(run=_sweep)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, TypeError, FileNotFoundError, OSError, ImportError, RuntimeError,
            KeyboardInterrupt) as exc:
        if args.debug:
            raise
        print(f"physnode {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
