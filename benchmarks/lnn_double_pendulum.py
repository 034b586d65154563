"""The LNN paper's double pendulum (Cranmer et al. 2020) under physnode: LNN, HNN and
NeuralODE under one protocol.

    python benchmarks/lnn_double_pendulum.py            # full (about 10 minutes)
    python benchmarks/lnn_double_pendulum.py --quick    # fewer epochs, t = 10 (smoke run)

Protocol: unit masses and lengths, g = 9.8. Training: 2000 states drawn from
`DoublePendulum.initial_box` with exact derivatives (the LNN sees (q, q̇) and q̈, the HNN
(q, p) and ṗ, the NeuralODE (q, q̇)), MLPs 2×128 softplus (LNN) / tanh (HNN, NeuralODE),
Adam lr 1e-3 with a cosine schedule, full batch, float64. Test: 40 new initial states rolled
out to t = 100 with dopri5 (rtol 1e-8); the true energy of each model's trajectory is
compared with its initial value, relative to the largest potential energy measured from the
pivot, (m1 + m2) g l1 + m2 g l2 = 29.4 (the more demanding of the usual normalisations; the
range from hanging to upright, 58.8, would halve every figure). Reported: the median over the
40 states of the error at t = 100, and of the largest error along the way.
Published (Cranmer et al.): LNN 0.0043, baseline ≈ 0.074.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import physnode as pn
from physnode.data import Trajectories, Trajectory

SCALE = 3 * 9.8


def states(system, n, seed):
    y = system.sample_initial_states(n, torch.Generator().manual_seed(seed))
    dy = system(0.0, y)
    x, dx = torch.func.jvp(system.to_velocities, (y,), (dy,))
    return y, dy, x, dx


def as_data(y, dy, names):
    # Independent states: one two-sample "trajectory" each would be wasteful; fit() only
    # needs (y, dy) pairs for the derivative loss, so they ride in one trajectory.
    t = torch.arange(len(y), dtype=y.dtype)
    return Trajectories([Trajectory(t, y, dy)], names)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="benchmarks/lnn_double_pendulum.json")
    parser.add_argument("--models", nargs="*", default=["LNN", "HNN", "NeuralODE"],
                        help="which models to run (each is written as soon as it is done)")
    parser.add_argument("--rtol", type=float, default=1e-8, help="rollout tolerance (dopri5)")
    args = parser.parse_args()
    system = pn.systems.DoublePendulum(g=9.8)
    epochs, t_end = (200, 10.0) if args.quick else (3000, 100.0)
    y, dy, x, dx = states(system, 2000, seed=0)
    test_y, _, test_x, _ = states(system, 40, seed=1)
    torch.manual_seed(0)
    runs = {
        "LNN": (pn.models.LNN(dof=2, hidden=128), as_data(x, dx, ("q1", "q2", "qdot1",
                                                                  "qdot2")), "velocity"),
        "HNN": (pn.models.HNN(dof=2, hidden=128), as_data(y, dy, ("q1", "q2", "p1", "p2")),
                "canonical"),
        "NeuralODE": (pn.models.NeuralODE(dim=4, hidden=128),
                      as_data(x, dx, ("q1", "q2", "qdot1", "qdot2")), "velocity"),
    }
    t = torch.linspace(0.0, t_end, 201, dtype=torch.float64)
    out = Path(args.out)
    rows = [r for r in (json.loads(out.read_text())["rows"] if out.is_file() else [])
            if r["model"] not in args.models]
    for name in args.models:
        model, data, coordinates = runs[name]
        start = time.perf_counter()
        pn.fit(model, data, epochs=epochs, lr=1e-3, schedule="cosine", val_fraction=0.0,
               dtype=torch.float64, progress=False)
        trained = time.perf_counter() - start
        y0 = test_x if coordinates == "velocity" else test_y
        with torch.no_grad():
            path = pn.solve(model, y0, t, method="dopri5", rtol=args.rtol, atol=args.rtol / 100,
                            max_steps=2_000_000).ys
        canonical = system.from_velocities(path) if coordinates == "velocity" else path
        energy = system.energy(canonical)
        error = (energy - energy[0]).abs() / SCALE
        rows.append({"model": name, "median_error_at_t_end": error[-1].median().item(),
                     "median_max_error": error.max(0).values.median().item(),
                     "train_seconds": round(trained), "t_end": t_end, "epochs": epochs,
                     "rtol": args.rtol,
                     "rollout_seconds": round(time.perf_counter() - start - trained)})
        print(json.dumps(rows[-1]), flush=True)
        out.write_text(json.dumps({"rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
