"""Real recordings (Schmidt & Lipson 2009, ``../shared/data/real_oscillators``): an air-track
cart on springs and two coupled carts, filmed and tracked, positions in pixels.

Each record is split in time: ``fit``'s defaults and ``discover`` on the first 80%, and the
last 20% is predicted. One code path for both records: an HNN in velocity coordinates with a
learned constant diagonal mass and damping (carts have constant masses and friction), and a
NeuralODE, against physnode's raw-data route on the same 80% and the baseline a user would
otherwise run, pysindy with its defaults (:func:`physnode.discovery.baseline.pysindy_raw`).

Reported per record and route: the recovered equations; the prediction error of the last
20% over 1 s horizons (from every 5th recorded state of the held-out part, the recorded
positions 1 s later, RMS relative to the positions' spread), for the trained model and for
the discovered equations integrated as a system; the coefficients of each acceleration
against a plain least-squares fit of the recording's accelerations (the single cart's file
``real_linear_a_1.txt`` has them; for the coupled carts, local polynomial derivatives of the
recorded velocities) on the positions, velocities and a constant.

    python benchmarks/real_data.py [--data ../shared/data] [--records single coupled]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import sympy
import torch

import physnode as pn
from physnode.discovery.baseline import pysindy_raw
from physnode.training.derivatives import smooth

LIPSON = {"trajectory": 0, "t": 1}
RECORDS = {
    "single": ("real_oscillators/real_linear_h_1.txt", {"x": "x", "v": "v"}),
    "coupled": ("real_oscillators/real_double_linear_h_1.txt",
                {"x1": "x1", "x2": "x2", "v1": "v1", "v2": "v2"}),
}
HORIZON = 1.0       # seconds


def models(dof):
    return {
        "HNN (velocity, diagonal mass, dissipative)": pn.models.HNN(
            dof=dof, coordinates="velocity", mass=pn.models.DiagonalMass(), dissipative=True),
        "NeuralODE": pn.models.NeuralODE(dim=2 * dof),
    }


def split(data, fraction=0.8):
    tr = data[0]
    cut = int(fraction * len(tr))
    piece = lambda a, b: data.with_trajectories([pn.data.Trajectory(tr.t[a:b], tr.y[a:b])])  # noqa: E731
    return piece(0, cut), piece(cut, len(tr))


def prediction_error(field, test, dof) -> float:
    """RMS of predicted minus recorded positions ``HORIZON`` after every 5th held-out state,
    relative to the positions' spread; inf when the prediction blows up."""
    t, y = test[0].t.double(), test[0].y.double()
    step = int(round(HORIZON / float(t.diff().median())))
    starts = list(range(0, len(t) - step, 5))
    grid = t[:step + 1] - t[0]
    place = pn.models.base.parameter_placement(field)
    with torch.no_grad():
        try:
            ys = pn.solve(field, y[starts].to(**place), grid.to(**place), method="rk4",
                          dt=float(grid[1]) / 4).ys
        except Exception:                        # an unstable discovered system
            return float("inf")
    predicted = ys[-1, :, :dof].double().cpu()
    recorded = torch.stack([y[s + step, :dof] for s in starts])
    error = ((predicted - recorded).pow(2).mean(0).sqrt() / y[:, :dof].std(0)).pow(2).mean()
    error = float(error.sqrt())
    return error if np.isfinite(error) else float("inf")


def least_squares_reference(name, data, root):
    """``{acceleration symbol: {term: coefficient}}`` on positions, velocities and 1."""
    y = data[0].y.double().numpy()
    dof = y.shape[1] // 2
    if name == "single":
        table = np.loadtxt(root / "real_oscillators/real_linear_a_1.txt", comments="%")
        x, a, v = table[:, 2], table[:, 3], table[:, 4]
        states, accelerations = np.stack([x, v], 1), a[:, None]
    else:
        states = y
        accelerations = smooth(data[0].t.double(), data[0].y.double()[:, dof:]).dy.numpy()
    design = np.column_stack([states, np.ones(len(states))])
    names = list(data.state_names) + ["1"]
    solution = np.linalg.lstsq(design, accelerations, rcond=None)[0]
    return {data.state_names[dof + i]: dict(zip(names, solution[:, i])) for i in range(dof)}


def compare_coefficients(equations, reference, data):
    """Per acceleration: the found terms, and the relative error of each reference linear
    coefficient (the constant and terms missing from the result count as found = 0)."""
    symbols = {s.name: s for s in equations.symbols}
    out = {}
    for target, ref in reference.items():
        found = equations.coefficients.get(symbols[target], {})
        by_name = {str(term): float(c) for term, c in found.items()}
        linear = {k: v for k, v in ref.items() if k != "1"}
        scale = max(abs(v) for v in linear.values())
        out[target] = {
            "terms": sorted(by_name),
            "errors": {k: abs(by_name.get(k, 0.0) - v) / abs(v) for k, v in linear.items()
                       if abs(v) > 0.05 * scale},
        }
    return out


def run(name, root):
    path, columns = RECORDS[name]
    data = pn.data.load(root / path, columns={**LIPSON, **columns})
    dof = data.dim // 2
    train, test = split(data)
    reference = least_squares_reference(name, data, root)
    print(f"\n## {name}: {root / path} ({len(data[0])} frames; fit on {len(train[0])}, "
          f"predict {len(test[0])})\n")
    print("least squares of the recorded accelerations: " + "; ".join(
        f"d{k}/dt = " + " ".join(f"{c:+.4g}·{t}" for t, c in v.items())
        for k, v in reference.items()))
    rows = []
    routes = {}
    for label, model in models(dof).items():
        torch.manual_seed(0)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pn.fit(model, train, progress=False)
            equations = pn.discover(model, data=train)
        seconds = time.perf_counter() - start
        routes[label] = (model, equations, seconds, [str(w.message) for w in caught
                                                     if "poorly" in str(w.message)])
    start = time.perf_counter()
    raw = pn.discover(train)
    routes["raw-data route"] = (None, raw, time.perf_counter() - start, [])
    start = time.perf_counter()
    plain = pysindy_raw(train)
    routes["pysindy, its defaults"] = (None, plain, time.perf_counter() - start, [])
    for label, (model, equations, seconds, warned) in routes.items():
        compared = compare_coefficients(equations, reference, data)
        model_error = prediction_error(model, test, dof) if model is not None else None
        system_error = prediction_error(equations.to_system(), test, dof)
        rows.append((label, equations, model_error, system_error, compared, seconds, warned))
        print(f"\n### {label} ({seconds:.0f} s)\n\n```\n{equations}\n```")
        if equations.fit_quality is not None:
            print(f"fit quality: {equations.fit_quality}" + (" — warned" if warned else ""))
        print(f"prediction of the last 20% over {HORIZON:g} s: model "
              f"{'–' if model_error is None else f'{100 * model_error:.1f}%'}, discovered "
              f"equations {100 * system_error:.1f}%")
        for target, c in compared.items():
            errors = ", ".join(f"{k} {100 * e:.1f}%" for k, e in c["errors"].items())
            print(f"d{target}/dt: {len(c['terms'])} terms {c['terms']}; coefficient errors "
                  f"against least squares: {errors}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--records", nargs="*", default=list(RECORDS), choices=list(RECORDS))
    args = parser.parse_args(argv)
    if not (args.data / RECORDS["single"][0]).is_file():
        raise SystemExit(f"the recordings are not at {args.data} (third-party data, not "
                         f"shipped); pass --data")
    sympy.init_printing(use_unicode=False)
    for name in args.records:
        run(name, args.data)


if __name__ == "__main__":
    main()
