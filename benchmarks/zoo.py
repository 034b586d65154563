"""The zoo: physnode's defaults on systems, noise levels and units no test was tuned on.

    python benchmarks/zoo.py                       # every case (hours on 2 CPU cores)
    python benchmarks/zoo.py --quick               # one seed, 1% noise, no unit change
    python benchmarks/zoo.py --systems pendulum --seeds 1 --noise 0.05
    python benchmarks/zoo.py --jobs 16             # 16 dask workers, one thread each
    python benchmarks/zoo.py --scheduler tcp://host:8786   # a running dask scheduler

One code path for every case, defaults only: the script chooses the model family from what
the system is (an HNN for a conservative mechanical system, a dissipative HNN for a damped
one, a NeuralODE otherwise) and nothing else. Every case:

- data: ``pn.data.simulate(system, n_trajectories=8, t_span=(0, 10), n_points=200,
  noise=..., irregular=True, seed=...)``; with ``units``, every coordinate converted to other
  units with an offset (positions and non-mechanical states ``50 x + 120``, momenta
  ``0.2 p − 3``, angles shifted by ``4π``: radians stay radians), the truth converted alike;
- physnode: ``pn.fit(model, data)`` then ``pn.discover(model, data=data)``, timed together;
- baselines on the same data: physnode's raw-data route ``pn.discover(data)`` and plain
  pysindy (``pn.discovery.pysindy_raw``: finite differences, and smoothed finite
  differences, its default STLSQ);
- conservative systems without a unit change: a NeuralODE fitted with the same defaults, and
  the maximum relative true-energy error of both models over t = 1000 (``compare_energy``,
  dt = 0.1, each model's default integrator) from the first four trajectories' initial
  states.

Reported per case: exact support, the worst relative coefficient error over the true terms,
the fit quality, the energy-error ratio NeuralODE/HNN and the wall time. The cases run as a
sweep (:func:`physnode.sweep` with this script's pipeline as ``run``, every case on one
thread): JSON lines to ``--out`` keyed by the case's settings, so a rerun skips the cases
already there and a failing case is recorded with its error; the summary table with
``--table``.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
import warnings

import numpy as np
import sympy
import torch

import physnode as pn

#: label: (reference system, its parameters)
SYSTEMS = {
    "pendulum": ("pendulum", {}),
    "pendulum L=0.5 m=2": ("pendulum", {"length": 0.5, "mass": 2.0}),
    "spring": ("massspring", {"k": 2.0, "mass": 1.0}),
    "damped spring": ("massspring", {"k": 3.0, "mass": 0.5, "damping": 0.2}),
    "Duffing": ("duffing", {"alpha": 1.0, "beta": 1.0}),
    "coupled springs": ("coupledsprings", {"k1": 1.0, "k2": 0.5, "k3": 1.5, "m1": 1.0,
                                           "m2": 2.0}),
    "Henon-Heiles": ("henonheiles", {}),
    "Lotka-Volterra": ("lotkavolterra", {}),
    "Van der Pol": ("vanderpol", {"mu": 1.0}),
    "Lorenz": ("lorenz", {}),
}
ONE_DOF = ("pendulum", "pendulum L=0.5 m=2", "spring", "damped spring", "Duffing",
           "Lotka-Volterra", "Van der Pol")


def model_for(system):
    """The model family from what the system is: the only choice the script makes."""
    if system.hamiltonian:
        return pn.models.HNN(dof=system.dim // 2, dissipative=system.dissipative)
    return pn.models.NeuralODE(dim=system.dim)


def unit_change(system):
    """Per coordinate ``(a, b)`` of ``x → a x + b``: positions and non-mechanical states
    ``50 x + 120``, momenta ``0.2 p − 3``, angles ``x + 4π``."""
    n = system.dim
    scale, offset = np.full(n, 50.0), np.full(n, 120.0)
    if system.hamiltonian:
        scale[n // 2:], offset[n // 2:] = 0.2, -3.0
    for i in system.angles:
        scale[i], offset[i] = 1.0, 4 * math.pi
    return scale, offset


def convert(data, system, units):
    """The data in other units, and the truth ``{symbol: expr}`` in those units."""
    truth = system.equations()
    if not units:
        return data, truth
    a, b = unit_change(system)
    symbols = list(truth)
    # angles: exactly q + 4π, so that sin and cos of the converted truth simplify
    exact = [(1, 4 * sympy.pi) if i in system.angles else (a[i], b[i]) for i in range(len(a))]
    old = {s: (s - exact[i][1]) / exact[i][0] for i, s in enumerate(symbols)}
    converted = {s: sympy.expand(a[i] * truth[s].subs(old, simultaneous=True))
                 for i, s in enumerate(symbols)}
    return data.with_trajectories(
        [pn.data.Trajectory(tr.t, tr.y * torch.as_tensor(a) + torch.as_tensor(b))
         for tr in data]), _clean(converted)


def _clean(equations, relative=1e-12):
    """Drop the round-off terms a unit change leaves after expansion."""
    out = {}
    for s, e in equations.items():
        terms = sympy.expand(e).as_coefficients_dict()
        biggest = max(abs(float(c)) for c in terms.values())
        out[s] = sympy.Add(*[sympy.Float(float(c)) * t for t, c in terms.items()
                             if abs(float(c)) > relative * biggest])
    return out


def score(found, truth):
    report = found.compare(truth)
    return {"exact_support": report["exact_support"],
            "max_coefficient_error": report["max_relative_coefficient_error"],
            "spurious": sum(len(e["spurious"]) for e in report["equations"].values()),
            "missing": sum(len(e["missing"]) for e in report["equations"].values())}


def build(name):
    system, parameters = SYSTEMS[name]
    return pn.systems.REFERENCE_SYSTEMS[system](**parameters)


def case(name, noise, seed, units, energy=True):
    """The zoo case as a sweep :class:`~physnode.parallel.Case`: the system and its
    parameters, noise and seed as fields, the label, the unit change and the energy
    comparison as options of :func:`zoo_case`."""
    system, parameters = SYSTEMS[name]
    return pn.parallel.Case(system=system, parameters=parameters, noise=noise, seed=seed,
                            options={"label": name, "units": units, "energy": energy})


def zoo_case(case):
    """A sweep's ``run``: :func:`run_case` of the case's settings."""
    options = case.options
    return run_case(options["label"], case.noise, case.seed, options["units"],
                    options["energy"])


def run_case(name, noise, seed, units, energy=True):
    system = build(name)
    data = pn.data.simulate(system, n_trajectories=8, t_span=(0.0, 10.0), n_points=200,
                            noise=noise, irregular=True, seed=seed)
    data, truth = convert(data, system, units)
    torch.manual_seed(seed)
    model = model_for(system)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = pn.fit(model, data, progress=False, seed=seed)
        found = pn.discover(model, data=data, seed=seed)
    seconds = time.perf_counter() - start
    row = {"system": name, "noise": noise, "seed": seed, "units": units,
           "model": type(model).__name__ + (" (dissipative)" if system.dissipative else ""),
           "seconds": round(seconds, 1), "epochs": {s: sum(h["stage"] == s
                                                          for h in fitted.history)
                                                     for s in fitted.stages},
           "converged": fitted.converged, "fit_quality": found.fit_quality.as_dict(),
           "warned": any("poorly" in str(w.message) for w in caught),
           "equations": str(found), **score(found, truth)}
    row["raw_physnode"] = score(pn.discover(data, seed=seed), truth)
    for smoothed in (False, True):
        key = "pysindy_smoothed_fd" if smoothed else "pysindy_fd"
        try:
            row[key] = score(pn.discovery.pysindy_raw(data, smoothed=smoothed), truth)
        except Exception as error:                     # recorded, not fatal
            row[key] = {"error": f"{type(error).__name__}: {error}"}
    if energy and system.conservative and not units:
        row["energy_ratio"] = energy_ratio(system, model, data, seed)
    return row


def energy_ratio(system, hnn, data, seed):
    torch.manual_seed(seed)
    node = pn.models.NeuralODE(dim=system.dim)
    pn.fit(node, data, progress=False, seed=seed)
    y0 = torch.stack([tr.y[0] for tr in data[:4]])
    report = pn.compare_energy({"HNN": hnn, "NeuralODE": node}, system=system, y0=y0,
                               t_end=1000.0, dt=0.1)
    h, n = report.table
    return {"hnn": h["max_rel_energy_error"], "node": n["max_rel_energy_error"],
            "ratio": n["max_rel_energy_error"] / h["max_rel_energy_error"],
            "integrators": [h["integrator"], n["integrator"]]}


def table(rows):
    """Markdown summary per (system, noise, units): exact support over seeds, the worst
    coefficient error where exact, the energy ratio range, the time."""
    groups = {}
    for r in rows:
        groups.setdefault((r["system"], r["noise"], r["units"]), []).append(r)
    lines = ["| system | noise | units | model | exact (physnode) | worst coef. error | "
             "raw physnode | pysindy FD | pysindy SFD | energy ratio | fit+discover (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]

    def exact(rs, key=None):
        picked = [r if key is None else r[key] for r in rs]
        return f"{sum(bool(p.get('exact_support')) for p in picked)}/{len(picked)}"

    for (system, noise, units), rs in groups.items():
        errors = [r["max_coefficient_error"] for r in rs if r["exact_support"]]
        ratios = [r["energy_ratio"]["ratio"] for r in rs if "energy_ratio" in r]
        lines.append(
            f"| {system} | {100 * noise:g}% | {'other' if units else 'SI'} | {rs[0]['model']} "
            f"| {exact(rs)} | {f'{100 * max(errors):.2f}%' if errors else '–'} "
            f"| {exact(rs, 'raw_physnode')} | {exact(rs, 'pysindy_fd')} "
            f"| {exact(rs, 'pysindy_smoothed_fd')} "
            f"| {f'{min(ratios):.3g}–{max(ratios):.3g}' if ratios else '–'} "
            f"| {min(r['seconds'] for r in rs):.0f}–{max(r['seconds'] for r in rs):.0f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--systems", nargs="*", default=list(SYSTEMS))
    parser.add_argument("--noise", type=float, nargs="*", default=[0.01, 0.05])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--units", choices=("both", "si", "other"), default="both")
    parser.add_argument("--no-energy", dest="energy", action="store_false",
                        help="skip the NeuralODE fit and the energy comparison")
    parser.add_argument("--jobs", type=int, default=1,
                        help="dask workers (one-thread processes); 1: in this process")
    parser.add_argument("--scheduler", default=None,
                        help="a running dask scheduler's address instead of --jobs")
    parser.add_argument("--out", default="benchmarks/zoo.jsonl")
    parser.add_argument("--table", action="store_true", help="print the table of --out")
    args = parser.parse_args(argv)
    if args.table:
        print(table(pn.parallel.read_table(args.out)))
        return
    if args.quick:
        args.noise, args.seeds, args.units = [0.01], 1, "si"
    unit_options = {"both": (False, True), "si": (False,), "other": (True,)}[args.units]
    print(f"# {platform.processor() or platform.machine()}, one thread per case, "
          f"torch {torch.__version__}", flush=True)
    todo = [case(name, noise, seed, units, args.energy) for units in unit_options
            for noise in args.noise for name in args.systems for seed in range(args.seeds)]
    client = args.scheduler or ("serial" if args.jobs == 1 else None)
    rows = pn.sweep(todo, args.out, client=client, workers=args.jobs, run=zoo_case)
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed:
        print(f"failed: {r['system']} noise {r['noise']} seed {r['seed']}: {r['error']}")
    print(table([r for r in rows if r["status"] == "ok"]))


if __name__ == "__main__":
    main()
