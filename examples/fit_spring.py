"""Learn friction: a dissipative HNN on a damped mass–spring.

A plain HNN conserves energy, so it cannot model friction. `dissipative=True` adds a learned,
non-negative viscous damping D (port-Hamiltonian: dp/dt = −∂H/∂q − D ∂H/∂p) while H stays an
energy. We recover the damping coefficient and the stiffness from noisy data.

    python examples/fit_spring.py [--quick] [--out DIR]
"""

import argparse
from pathlib import Path

import torch

import physnode as pn


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted; already quick (CI)")
    parser.add_argument("--out", default="out/fit_spring", help="output folder")
    args = parser.parse_args()
    out = Path(args.out)

    # 1. A damped spring: k = 2, m = 1, c = 0.3, observed with 1% noise.
    spring = pn.systems.MassSpring(k=2.0, mass=1.0, damping=0.3)
    data = pn.data.simulate(spring, n_trajectories=20, t_span=(0.0, 5.0), n_points=50,
                            noise=0.01, seed=0)

    # 2. Fit a dissipative HNN.
    torch.manual_seed(0)
    hnn = pn.models.HNN(dof=1, dissipative=True)
    pn.fit(hnn, data)
    print(f"learned damping c = {hnn.damping.item():.3f} (true 0.3)")

    # 3. The conservative part as an equation: H ≈ p²/2 + k q²/2.
    energy = pn.discovery.hamiltonian(hnn, data=data, library="poly", degree=2)
    print(f"learned energy H = {pn.discovery.round_floats(energy, 3)} (true 0.5 p² + 1.0 q²)")

    # 4. The whole vector field as equations, discovered from the model.
    equations = pn.discover(hnn, data=data, library="poly", degree=2)
    print(equations)
    print("against the truth:", equations.compare(spring)["equations"])
    figure = pn.analysis.plot_fit({"dissipative HNN": hnn}, data, out / "fit.png")
    print(f"wrote {figure}")


if __name__ == "__main__":
    main()
