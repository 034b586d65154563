"""The real pendulum recording's Lagrangian and friction with the defaults: Schmidt &
Lipson's damped pendulum (``../shared/data/real_pendulum``, angle and angular velocity, 6
frames per time unit, 12 frames missing), fitted on its first 80% by an LNN and by a
velocity-coordinate HNN (both dissipative), then ``pn.discovery.lagrangian``; compared with
least squares of the recorded accelerations (central differences of the velocity column).

    python benchmarks/real_pendulum_lagrangian.py [--data ../shared/data]
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import physnode as pn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args(argv)
    a = np.loadtxt(args.data / "real_pendulum" / "real_pend_h_1.txt", comments="%")
    t, y = torch.tensor(a[:, 1]), torch.tensor(a[:, 2:4])
    n = int(0.8 * len(t))
    data = pn.data.Trajectories([pn.data.Trajectory(t[:n], y[:n])], ("q", "qdot"),
                                angles=(0,))
    models = {"LNN": lambda: pn.models.LNN(dof=1, angles=(0,), dissipative=True),
              "HNN (velocity, diagonal mass)": lambda: pn.models.HNN(
                  dof=1, coordinates="velocity", angles=(0,), dissipative=True,
                  mass=pn.models.DiagonalMass())}
    for name, build in models.items():
        torch.manual_seed(0)
        model = build()
        start = time.perf_counter()
        pn.fit(model, data, progress=False, seed=0)
        seconds = time.perf_counter() - start
        found = pn.discovery.lagrangian(model, data=data)
        print(f"{name} (fit {seconds:.0f} s): L = {found}, R = {found.dissipation}, "
              f"held-out acceleration error {100 * found.held_out_error:.1f}%")
        print("   ", str(found.equations()).replace("\n", "; "))
    q, v = a[:, 2], a[:, 3]
    acc = np.gradient(v, a[:, 1])
    sine, friction = np.linalg.lstsq(np.stack([np.sin(q), v], 1), acc, rcond=None)[0]
    print(f"least squares of the recorded accelerations: dqdot/dt = {sine:.4f} sin q "
          f"{friction:+.4f} qdot")


if __name__ == "__main__":
    main()
