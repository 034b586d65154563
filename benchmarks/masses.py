"""Which model for recorded positions and velocities of a linkage: an HNN in velocity
coordinates with a constant diagonal mass, with a learned configuration-dependent mass
``M(q)``, and an LNN, each with ``fit``'s defaults, on a simulated double pendulum.

Data: ``DoublePendulum()`` (unit masses and lengths, g = 9.81), 8 trajectories of 200 random
sample times on t ∈ [0, 10], converted to ``(q1, q2, q1dot, q2dot)``, 1% noise relative to
each coordinate's spread, angles declared. Reported: the relative RMS error of the learned
accelerations against the true ones at the clean states, and the fit's wall time.

    python benchmarks/masses.py [--seeds 1] [--models config diag lnn]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

import physnode as pn
from physnode.data import Trajectories, Trajectory

MODELS = {
    "config": lambda: pn.models.HNN(dof=2, coordinates="velocity", angles=(0, 1),
                                    mass=pn.models.ConfigurationMass()),
    "diag": lambda: pn.models.HNN(dof=2, coordinates="velocity", angles=(0, 1),
                                  mass=pn.models.DiagonalMass()),
    "lnn": lambda: pn.models.LNN(dof=2, angles=(0, 1)),
}


def recording(seed: int, system=None, turns: int = 0):
    """Noisy velocity-coordinate data, and the clean states with their true rates. ``turns``:
    each trajectory's angles are shifted by up to that many whole turns (unwrapped angles as
    a tracker counts them)."""
    system = system or pn.systems.DoublePendulum()
    clean = pn.data.simulate(system, n_trajectories=8, t_span=(0.0, 10.0), n_points=200,
                             noise=0.0, irregular=True, seed=seed)
    states = [system.to_velocities(tr.y.double()) for tr in clean]
    spread = torch.cat(states).std(0)
    generator = torch.Generator().manual_seed(seed + 1)
    noisy = []
    for tr, x in zip(clean, states):
        x = x + 0.01 * spread * torch.randn(x.shape, generator=generator, dtype=torch.float64)
        if turns:
            shift = torch.randint(-turns, turns + 1, (2,), generator=generator) * 2 * math.pi
            x = x + torch.cat([shift, torch.zeros(2)]).double()
        noisy.append(Trajectory(tr.t, x))
    data = Trajectories(noisy, ("q1", "q2", "q1dot", "q2dot"), angles=(0, 1))
    y = torch.cat([tr.y.double() for tr in clean])
    dy = system(0.0, y)
    eps = 1e-6                      # d(q, q̇)/dt by the chain rule through to_velocities
    rates = (system.to_velocities(y + eps * dy) - system.to_velocities(y - eps * dy)) / (2 * eps)
    return data, torch.cat(states), rates


def acceleration_error(model, x, rates) -> float:
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        predicted = model(0.0, x.to(dtype)).double()
    return float((predicted - rates)[:, 2:].norm() / rates[:, 2:].norm())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    print("| model | seed | acceleration error | fit (s) | epochs |")
    print("|---|---|---|---|---|")
    for seed in range(args.seeds):
        data, x, rates = recording(seed)
        for name in args.models:
            torch.manual_seed(seed)
            model = MODELS[name]()
            start = time.perf_counter()
            result = pn.fit(model, data, progress=False, seed=seed)
            seconds = time.perf_counter() - start
            epochs = ", ".join(f"{s} {sum(h['stage'] == s for h in result.history)}"
                               for s in result.stages)
            print(f"| {name} | {seed} | {100 * acceleration_error(model, x, rates):.1f}% | "
                  f"{seconds:.0f} | {epochs} |", flush=True)


if __name__ == "__main__":
    main()
