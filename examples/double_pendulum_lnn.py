"""A Lagrangian neural network on the double pendulum (Cranmer et al. 2020).

The LNN learns L(q, q̇); accelerations follow from the Euler–Lagrange equations,
q̈ = (∂²L/∂q̇²)⁻¹ (∂L/∂q − ∂²L/∂q̇∂q q̇), computed batched with autograd. It works directly in
the coordinates one measures (angles and angular velocities), with no need for canonical
momenta. We fit it on exact derivatives and check its energy along a rollout.

    python examples/double_pendulum_lnn.py [--quick] [--out DIR]
"""

import argparse
from pathlib import Path

import torch

import physnode as pn
from physnode.data import Trajectories, Trajectory


def to_velocity_data(system, data):
    """(q, p) trajectories → (q, q̇) trajectories with exact d(q, q̇)/dt (chain rule)."""
    out = []
    for tr in data:
        x, dx = torch.func.jvp(system.to_velocities, (tr.y,), (tr.dy,))
        out.append(Trajectory(tr.t, x, dx))
    return Trajectories(out, ("q1", "q2", "qdot1", "qdot2"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trajectories, fits capped (CI)")
    parser.add_argument("--out", default="out/double_pendulum_lnn", help="output folder")
    args = parser.parse_args()
    out = Path(args.out)

    # 1. Unit masses and lengths, g = 9.8, as in the LNN paper.
    pendulum = pn.systems.DoublePendulum(g=9.8)
    data = to_velocity_data(pendulum, pn.data.simulate(
        pendulum, n_trajectories=10 if args.quick else 40, t_span=(0.0, 2.0), n_points=50, seed=0,
        derivatives=True))

    # 2. Fit the LNN (softplus activations keep ∂²L/∂q̇² smooth and well conditioned).
    torch.manual_seed(0)
    lnn = pn.models.LNN(dof=2, hidden=128)
    pn.fit(lnn, data, dtype=torch.float64,
           epochs=100 if args.quick else None)      # quick: each stage capped at 100 epochs

    # 3. Roll out from a held-out state and measure the true energy error relative to the
    #    largest potential energy (2 m g l + m g l = 3 · 9.8 for this pendulum's swing).
    x0 = to_velocity_data(pendulum, pn.data.simulate(
        pendulum, n_trajectories=1, n_points=3, seed=7, derivatives=True))[0].y[0]
    t = torch.linspace(0.0, 10.0 if args.quick else 100.0, 1001, dtype=torch.float64)
    xs = pn.solve(lnn, x0, t, method="dopri5", rtol=1e-8, atol=1e-10).ys.detach()
    energy = pendulum.energy(pendulum.from_velocities(xs))
    scale = 3 * 9.8
    print(f"true energy error over t = {t[-1]:.0f}: "
          f"{((energy - energy[0]).abs().max() / scale).item():.2e} of the max potential")
    figure = pn.analysis.plot_fit({"LNN": lnn}, data, out / "fit.png")
    print(f"wrote {figure}")


if __name__ == "__main__":
    main()
