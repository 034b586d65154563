"""Fit a Hamiltonian neural network to noisy, irregularly sampled pendulum trajectories.

The HNN learns one scalar, the energy H(q, p); its dynamics are dq/dt = ∂H/∂p,
dp/dt = −∂H/∂q, so whatever it learns conserves its own energy. We fit it, measure how close
its vector field is to the true pendulum, and plot the fit against the observations.

    python examples/fit_pendulum.py [--quick] [--out DIR]
"""

import argparse
from pathlib import Path

import torch

import physnode as pn


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trajectories (CI)")
    parser.add_argument("--out", default="out/fit_pendulum", help="output folder")
    args = parser.parse_args()
    out = Path(args.out)

    # 1. Data: 5 trajectories, 1% noise, random sample times (each trajectory its own).
    pendulum = pn.systems.Pendulum(g=9.81)
    data = pn.data.simulate(pendulum, n_trajectories=3 if args.quick else 5,
                            t_span=(0.0, 10.0), n_points=200,
                            noise=0.01, irregular=True, seed=0)
    print(data)

    # 2. Fit with the defaults: derivative matching (derivatives estimated by local
    #    polynomial fits on the actual times), then rollouts over windows of the observed
    #    states; each stage stops when it has converged.
    torch.manual_seed(0)
    hnn = pn.models.HNN(dof=1)
    result = pn.fit(hnn, data)
    print(f"stages {result.stages}, converged {result.converged}, "
          f"{len(result.history)} epochs in all")

    # 3. How good is the learned field? Compare with the truth on fresh states.
    y = pendulum.sample_initial_states(1000, torch.Generator().manual_seed(1)).float()
    with torch.no_grad():
        error = (hnn(0.0, y) - pendulum(0.0, y.double()).float()).norm(dim=-1)
    scale = pendulum(0.0, y.double()).norm(dim=-1).float()
    print(f"median relative vector-field error: {100 * (error / scale).median():.2f}%")

    # 4. Save the model (weights + configuration) and the figure of fit vs observations.
    saved = hnn.save(out / "hnn.pt")
    figure = pn.analysis.plot_fit({"HNN": hnn}, data, out / "fit.png")
    print(f"wrote {saved} and {figure}")


if __name__ == "__main__":
    main()
