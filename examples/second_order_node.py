"""A second-order Neural ODE on damped oscillators (Norcliffe et al. 2020).

A SecondOrderNeuralODE learns only the accelerations, q̈ = f(q, q̇); dq/dt = q̇ holds exactly
for any weights. We fit it to the SONODE paper's damped oscillators,
ẍ = −2γẋ − (γ² + ω²)x with γ = 0.1, ω = 1, and read 2γ = 0.2 and γ² + ω² = 1.01 off the
equations that `pn.discover` finds (second order by default for this model).

    python examples/second_order_node.py [--quick] [--out DIR]
"""

import argparse
from pathlib import Path

import sympy
import torch

import physnode as pn
from physnode.data import Trajectories

GAMMA, OMEGA = 0.1, 1.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer oscillators, a smaller network, fits capped (CI)")
    parser.add_argument("--out", default="out/second_order_node", help="output folder")
    args = parser.parse_args()
    out = Path(args.out)

    # 1. 30 oscillators with initial (x, ẋ) uniform in [−2.5, 2.5]², 100 samples over 10 s
    #    (quick: 15 of 60 samples; m = 1, so the spring's momentum is the velocity).
    spring = pn.systems.MassSpring(k=GAMMA ** 2 + OMEGA ** 2, mass=1.0, damping=2 * GAMMA)
    n, n_points = (15, 60) if args.quick else (30, 100)
    y0 = 5 * (torch.rand(n, 2, generator=torch.Generator().manual_seed(0),
                         dtype=torch.float64) - 0.5)
    simulated = pn.data.simulate(spring, t_span=(0.0, 10.0), n_points=n_points, y0=y0, seed=0)
    data = Trajectories(list(simulated), ("x", "v"))

    # 2. Fit with the recipe's defaults (quick: a narrower network, stages capped).
    torch.manual_seed(0)
    model = pn.models.SecondOrderNeuralODE(dof=1, hidden=32 if args.quick else 200)
    pn.fit(model, data, epochs=60 if args.quick else None)

    # 3. The equations: dx/dt = v exactly, and the learned acceleration.
    equations = pn.discover(model, data=data)
    print(equations)
    x, v = sympy.Symbol("x", real=True), sympy.Symbol("v", real=True)
    acceleration = sympy.expand(equations.equations[v])
    two_gamma = -float(acceleration.coeff(v, 1).subs({x: 0}))
    stiffness = -float(acceleration.coeff(x, 1).subs({v: 0}))
    for name, found, true in (("2γ", two_gamma, 2 * GAMMA),
                              ("γ² + ω²", stiffness, GAMMA ** 2 + OMEGA ** 2)):
        print(f"{name} = {found:.4f} (true {true:.4f}, {100 * abs(found - true) / true:.2f}% off)")
    model.save(out / "sonode.pt")
    figure = pn.analysis.plot_fit({"SecondOrderNeuralODE": model}, data, out / "fit.png")
    print(f"wrote {figure} and {out / 'sonode.pt'}")


if __name__ == "__main__":
    main()
