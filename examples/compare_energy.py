"""Energy drift: an HNN with a symplectic integrator against a NeuralODE, over long times.

Both models are fitted to the same mass–spring data. Rolled out far beyond the training
window, the NeuralODE's energy drifts (its learned field is not exactly conservative), while
the separable HNN integrated with Yoshida's 4th-order symplectic method keeps a bounded energy
error with no trend.

    python examples/compare_energy.py [--quick] [--out DIR]
"""

import argparse
from pathlib import Path

import torch

import physnode as pn


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="t = 200 instead of 1000, fits capped (CI)")
    parser.add_argument("--out", default="out/compare_energy", help="output folder")
    args = parser.parse_args()
    out = Path(args.out)

    # 1. The HNN paper's spring task: 25 trajectories of 30 points on t in [0, 3].
    spring = pn.systems.MassSpring()
    data = pn.data.simulate(spring, n_trajectories=25, t_span=(0.0, 3.0), n_points=30,
                            seed=0, derivatives=True)

    # 2. Fit a separable HNN (H = T(p) + V(q)) and a NeuralODE on the same data.
    torch.manual_seed(0)
    models = {"HNN": pn.models.HNN(dof=1, separable=True),
              "NeuralODE": pn.models.NeuralODE(dim=2)}
    for model in models.values():
        pn.fit(model, data, epochs=200 if args.quick else None)   # quick: each stage capped

    # 3. Roll out from 4 new initial states; measure the true energy along each rollout.
    y0 = spring.sample_initial_states(4, torch.Generator().manual_seed(1))
    report = pn.compare_energy(models, system=spring, y0=y0,
                               t_end=200.0 if args.quick else 1000.0, dt=0.1,
                               integrators={"NeuralODE": "rk4"})
    print(report.to_markdown())
    hnn, node = report.table
    print(f"NeuralODE / HNN max energy error: "
          f"{node['max_rel_energy_error'] / hnn['max_rel_energy_error']:.0f}x")
    for path in report.plot(out / "energy.png"):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
