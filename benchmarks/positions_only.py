"""Positions only: the pendulum's field learned from its angles alone, and the real pendulum
recording with its velocity column dropped.

Simulated: ``Pendulum()`` (g = 9.81), 8 trajectories of 200 random frames on t ∈ [0, 10],
1% noise relative to the angle's spread, only the angle kept; ``HNN(dof=1,
coordinates="velocity", angles=(0,))`` with ``fit``'s defaults. Error: the relative RMS error
of each half of the learned field (``dq/dt`` and the acceleration) at the clean states.

Real: Schmidt & Lipson's damped pendulum (``../shared/data/real_pendulum``), its first 80%
with the velocity column dropped, a dissipative HNN in velocity coordinates (and, for
reference, the same model given the velocities), ``fit``'s defaults, then ``discover``;
against least squares of the recorded accelerations (derivatives of the velocity column) on
``sin q`` and ``q̇``, and the prediction of the held-out 20% (angles 1 time unit ahead from
every 5th held-out frame, RMS relative to the angle's spread).

    python benchmarks/positions_only.py [--seeds 5] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import physnode as pn

HORIZON = 1.0


def simulated(seed: int):
    pendulum = pn.systems.Pendulum()
    kwargs = dict(n_trajectories=8, t_span=(0, 10), n_points=200, irregular=True, seed=seed)
    data = pn.data.simulate(pendulum, noise=0.01, **kwargs)
    positions = pn.data.Trajectories(
        [pn.data.Trajectory(tr.t, tr.y[:, :1]) for tr in data], ("q",), angles=(0,))
    torch.manual_seed(seed)
    hnn = pn.models.HNN(dof=1, coordinates="velocity", angles=(0,))
    start = time.perf_counter()
    pn.fit(hnn, positions, progress=False, seed=seed)
    seconds = time.perf_counter() - start
    y = torch.cat([tr.y for tr in pn.data.simulate(pendulum, **kwargs)]).double()
    truth = pendulum(0.0, y)
    error = hnn.double()(0.0, y).detach() - truth
    relative = error.pow(2).mean(0).sqrt() / truth.pow(2).mean(0).sqrt()
    return relative.tolist(), seconds


def prediction(model, t, q) -> float:
    """Angles ``HORIZON`` ahead from every 5th frame (started from the smoothed angle and its
    estimated velocity), RMS relative to the angle's spread."""
    fit = pn.training.derivatives.smooth(t, q[:, None])
    step = int(round(HORIZON / float(t.diff().median())))
    starts = list(range(0, len(t) - step, 5))
    y0 = torch.stack([torch.cat([fit.y[s], fit.dy[s]]) for s in starts])
    grid = torch.linspace(0, float(t[starts[0] + step] - t[starts[0]]), step + 1,
                          dtype=torch.float64)
    with torch.no_grad():
        ys = pn.solve(model.double(), y0, grid, method="rk4", dt=float(grid[1]) / 4).ys
    # Frames are missing here and there: compare at the frame nearest the horizon.
    targets = [int(torch.argmin((t - (t[s] + grid[-1])).abs())) for s in starts]
    error = ys[-1, :, 0] - q[targets]
    return float(error.pow(2).mean().sqrt() / q.std())


def real(root: Path):
    a = np.loadtxt(root / "real_pendulum" / "real_pend_h_1.txt", comments="%")
    t, q, v = (torch.tensor(a[:, i]) for i in (1, 2, 3))
    n = int(0.8 * len(t))
    acc = np.gradient(a[:, 3], a[:, 1])
    sine, friction = np.linalg.lstsq(np.stack([np.sin(a[:, 2]), a[:, 3]], 1), acc,
                                     rcond=None)[0]
    print(f"\nreal pendulum ({len(t)} frames, {n} fitted): least squares of the recorded "
          f"accelerations: dqdot/dt = {sine:.4f} sin q {friction:+.4f} qdot")
    inputs = {
        "positions only": pn.data.Trajectories([pn.data.Trajectory(t[:n], q[:n, None])],
                                               ("q",), angles=(0,)),
        "positions and velocities": pn.data.Trajectories(
            [pn.data.Trajectory(t[:n], torch.stack([q[:n], v[:n]], 1))], ("q", "qdot"),
            angles=(0,)),
    }
    print("\n| data | equations | sin q vs least squares | prediction of the last 20% | fit (s) |")
    print("|---|---|---|---|---|")
    for label, data in inputs.items():
        torch.manual_seed(0)
        hnn = pn.models.HNN(dof=1, coordinates="velocity", angles=(0,), dissipative=True)
        start = time.perf_counter()
        pn.fit(hnn, data, progress=False)
        seconds = time.perf_counter() - start
        found = pn.discover(hnn, data=data)
        qdot = found.symbols[1]
        terms = {str(k): float(c) for k, c in found.coefficients[qdot].items()}
        sin_error = abs(terms.get("sin(q)", 0.0) - sine) / abs(sine)
        print(f"| {label} | {str(found).replace(chr(10), '; ')} | {100 * sin_error:.1f}% | "
              f"{100 * prediction(hnn, t[n:], q[n:]):.1f}% | {seconds:.0f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args(argv)
    print("| seed | dq/dt error | acceleration error | fit (s) |\n|---|---|---|---|")
    for seed in range(args.seeds):
        (dq, dv), seconds = simulated(seed)
        print(f"| {seed} | {100 * dq:.2f}% | {100 * dv:.2f}% | {seconds:.0f} |")
    if (args.data / "real_pendulum" / "real_pend_h_1.txt").is_file():
        real(args.data)
    else:
        print(f"(the real pendulum recording is not at {args.data}; pass --data)")


if __name__ == "__main__":
    main()
