"""Augmented and second-order Neural ODEs on their papers' toy problems.

1. Concentric spheres (Dupont et al. 2019, "Augmented Neural ODEs", the function g in 2-D):
   points with |x| ≤ 0.5 are labelled −1, points with 1 ≤ |x| ≤ 1.5 are labelled +1. A flow
   ``NeuralODE(dim=2, augment=k)`` over t ∈ [0, 1] followed by a linear readout is trained
   for 30 epochs (Adam 1e-3, minibatches of 64, mean squared error on the labels), with
   adaptive ``dopri5`` (rtol = atol = 1e-3, as in the paper) so that the number of function
   evaluations (NFE) of the forward solve measures how complicated the learned flow is. A
   plain NODE (k = 0) cannot pull the inner disc through the annulus (its flow is a
   homeomorphism of the plane), so its loss plateaus and its NFE grows; the augmented one
   (k ≥ 1) can, with fewer evaluations. Each model is trained ``--repeats`` times (default
   10) from different seeds; the loss and the forward NFE (per sample, averaged over an
   epoch's minibatches; physnode steps every sample on its own) are recorded per epoch.
   This task is classification, not trajectory fitting, so it has its own small training
   loop on :func:`physnode.solve`.

2. The damped oscillators of Norcliffe et al. 2020 ("On Second Order Behaviour in Augmented
   Neural ODEs"): ẍ = −2γẋ − (γ² + ω²)x with γ = 0.1, ω = 1, 30 oscillators whose initial
   position and velocity are uniform in [−2.5, 2.5], 100 samples each over t ∈ [0, 10] (the
   paper's data script). A ``SecondOrderNeuralODE(dof=1)`` and a first-order
   ``NeuralODE(dim=2)`` are fitted with ``pn.fit``'s defaults, then ``pn.discover(model,
   data=data)`` gives the equations, from which the coefficients 2γ = 0.2 and
   γ² + ω² = 1.01 are read with their relative errors.

    python benchmarks/neural_ode_family.py [--quick] [--only spheres|oscillators]
        [--repeats N] [--hidden H] [--json FILE] [--out DIR]

Results go to ``benchmarks/neural_ode_family.json`` (``--json``) and a figure of the loss and
NFE curves to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import sympy
import torch
from torch import nn

import physnode as pn
from physnode.data import Trajectories

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------- concentric spheres


def spheres(n_inner: int, n_outer: int, seed: int):
    """Points uniform in the disc |x| ≤ 0.5 (label −1) and the annulus 1 ≤ |x| ≤ 1.5
    (label +1), in random order: ``(x, labels)``, shapes ``(n, 2)`` and ``(n, 1)``."""
    g = torch.Generator().manual_seed(seed)

    def ring(n, low, high):
        # Uniform in area: r² uniform between low² and high².
        r = (low ** 2 + (high ** 2 - low ** 2) * torch.rand(n, generator=g)).sqrt()
        angle = 2 * math.pi * torch.rand(n, generator=g)
        return torch.stack([r * torch.cos(angle), r * torch.sin(angle)], -1)

    x = torch.cat([ring(n_inner, 0.0, 0.5), ring(n_outer, 1.0, 1.5)])
    labels = torch.cat([-torch.ones(n_inner, 1), torch.ones(n_outer, 1)])
    order = torch.randperm(len(x), generator=g)
    return x[order], labels[order]


class FlowClassifier(nn.Module):
    """A Neural ODE flow of the (zero-padded) inputs over t ∈ [0, 1], then a linear readout."""

    def __init__(self, augment: int, hidden: int):
        super().__init__()
        self.flow = pn.models.NeuralODE(dim=2, hidden=hidden, augment=augment)
        self.readout = nn.Linear(2 + augment, 1)
        self.times = torch.tensor([0.0, 1.0])

    def forward(self, x):
        sol = pn.solve(self.flow, self.flow.augment_state(x), self.times, method="dopri5",
                       rtol=1e-3, atol=1e-3)
        return self.readout(sol.ys[-1]), sol.stats["nfev"].double().mean().item()


def train_spheres(augment: int, seed: int, epochs: int, hidden: int, n_inner: int,
                  n_outer: int, batch_size: int = 64):
    """Per-epoch mean training loss and mean forward NFE of one model, and its seconds."""
    x, labels = spheres(n_inner, n_outer, seed)
    torch.manual_seed(seed)
    model = FlowClassifier(augment, hidden)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    shuffle = torch.Generator().manual_seed(seed + 1)
    losses, nfes = [], []
    start = time.perf_counter()
    for _ in range(epochs):
        total, evaluations, batches = 0.0, 0.0, 0
        for idx in torch.randperm(len(x), generator=shuffle).split(batch_size):
            opt.zero_grad()
            prediction, nfe = model(x[idx])
            loss = (prediction - labels[idx]).pow(2).mean()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            evaluations += nfe
            batches += 1
        losses.append(total / len(x))
        nfes.append(evaluations / batches)
    return {"loss": losses, "nfe": nfes, "seconds": time.perf_counter() - start}


def run_spheres(args) -> dict:
    out = {"settings": {"epochs": args.epochs, "repeats": args.repeats, "hidden": 32,
                        "n_inner": args.n_inner, "n_outer": args.n_outer, "batch_size": 64,
                        "lr": 1e-3, "method": "dopri5", "rtol": 1e-3, "atol": 1e-3},
           "models": {}}
    for name, augment in (("NODE", 0), ("ANODE (augment=1)", 1)):
        runs = []
        for seed in range(args.repeats):
            runs.append(train_spheres(augment, seed, args.epochs, 32, args.n_inner,
                                      args.n_outer))
            r = runs[-1]
            print(f"spheres {name} seed {seed}: loss {r['loss'][0]:.3f} → {r['loss'][-1]:.3f}, "
                  f"NFE {r['nfe'][0]:.1f} → {r['nfe'][-1]:.1f}, {r['seconds']:.0f} s",
                  flush=True)
        loss, nfe = np.array([r["loss"] for r in runs]), np.array([r["nfe"] for r in runs])
        out["models"][name] = {
            "augment": augment, "runs": runs,
            "loss_mean": loss.mean(0).tolist(), "loss_std": loss.std(0).tolist(),
            "nfe_mean": nfe.mean(0).tolist(), "nfe_std": nfe.std(0).tolist(),
            "seconds_mean": float(np.mean([r["seconds"] for r in runs]))}
    return out


# ---------------------------------------------------------------- damped oscillators

GAMMA, OMEGA = 0.1, 1.0


def oscillators(n: int = 30, n_points: int = 100, seed: int = 0) -> Trajectories:
    """The SONODE paper's set: ẍ = −2γẋ − (γ² + ω²)x, initial (x, ẋ) uniform in
    [−2.5, 2.5]², ``n_points`` samples over t ∈ [0, 10]; states ``(x, v)``."""
    system = pn.systems.MassSpring(k=GAMMA ** 2 + OMEGA ** 2, mass=1.0, damping=2 * GAMMA)
    y0 = 5 * (torch.rand(n, 2, generator=torch.Generator().manual_seed(seed),
                         dtype=torch.float64) - 0.5)
    data = pn.data.simulate(system, t_span=(0.0, 10.0), n_points=n_points, y0=y0, seed=seed)
    return Trajectories(list(data), ("x", "v"))        # m = 1: p is the velocity


def coefficients(equations) -> dict:
    """``2γ`` and ``γ² + ω²`` read from the discovered ``dv/dt`` (minus the coefficients of
    ``v`` and ``x``), with the other terms' largest coefficient."""
    x, v = sympy.Symbol("x", real=True), sympy.Symbol("v", real=True)
    expr = sympy.expand(equations.equations[v])
    c_v, c_x = float(expr.coeff(v, 1).subs({x: 0})), float(expr.coeff(x, 1).subs({v: 0}))
    rest = sympy.expand(expr - c_v * v - c_x * x)
    others = [abs(float(c)) for c in sympy.Poly(rest, x, v).coeffs()] if rest != 0 else [0.0]
    found = {"2gamma": -c_v, "gamma2+omega2": -c_x, "largest_other_term": max(others)}
    for key, true in (("2gamma", 2 * GAMMA), ("gamma2+omega2", GAMMA ** 2 + OMEGA ** 2)):
        found[f"{key}_rel_error"] = abs(found[key] - true) / true
    return found


def run_oscillators(args) -> dict:
    data = oscillators()
    out = {"settings": {"n_oscillators": len(data), "n_points": len(data[0]),
                        "t_span": [0.0, 10.0], "gamma": GAMMA, "omega": OMEGA,
                        "hidden": args.hidden, "epochs_cap": args.fit_epochs},
           "true": {"2gamma": 2 * GAMMA, "gamma2+omega2": GAMMA ** 2 + OMEGA ** 2},
           "models": {}}
    models = {"SecondOrderNeuralODE": lambda: pn.models.SecondOrderNeuralODE(
                  dof=1, hidden=args.hidden),
              "NeuralODE": lambda: pn.models.NeuralODE(dim=2, hidden=args.hidden)}
    for name, build in models.items():
        torch.manual_seed(0)
        model = build()
        start = time.perf_counter()
        result = pn.fit(model, data, epochs=args.fit_epochs, progress=False)
        seconds = time.perf_counter() - start
        equations = pn.discover(model, data=data)
        found = coefficients(equations)
        out["models"][name] = {
            "equations": str(equations), "second_order": equations.second_order,
            "fit_seconds": seconds, "epochs": len(result.history),
            "converged": result.converged, **found}
        print(f"oscillators {name} ({seconds:.0f} s, {len(result.history)} epochs):\n"
              f"{equations}\n  2γ = {found['2gamma']:.5f} "
              f"({100 * found['2gamma_rel_error']:.2f}%), γ² + ω² = "
              f"{found['gamma2+omega2']:.5f} ({100 * found['gamma2+omega2_rel_error']:.2f}%)",
              flush=True)
    return out


# ---------------------------------------------------------------- figure and main


def plot(results: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, r in results["models"].items():
        epochs = np.arange(1, len(r["loss_mean"]) + 1)
        for ax, key in zip(axes, ("loss", "nfe")):
            mean, std = np.array(r[f"{key}_mean"]), np.array(r[f"{key}_std"])
            ax.plot(epochs, mean, label=name)
            ax.fill_between(epochs, mean - std, mean + std, alpha=0.25)
    axes[0].set(xlabel="epoch", ylabel="training loss (MSE)", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="forward NFE per sample")
    axes[0].legend()
    fig.suptitle("Concentric spheres (2-D): mean ± std over repeats")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 repeats of 3 epochs on fewer points, fits capped at 50 epochs")
    parser.add_argument("--only", choices=("spheres", "oscillators"), default=None)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=30, help="spheres: training epochs")
    parser.add_argument("--n-inner", type=int, default=500)
    parser.add_argument("--n-outer", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=200,
                        help="oscillators: hidden width of both models (the models' default)")
    parser.add_argument("--fit-epochs", type=int, default=None,
                        help="oscillators: cap on each fit stage (default: fit's own)")
    parser.add_argument("--json", default=str(HERE / "neural_ode_family.json"))
    parser.add_argument("--out", default="out/neural_ode_family", help="figure folder")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.epochs, args.n_inner, args.n_outer = 2, 3, 100, 200
        args.fit_epochs = 50
    torch.set_num_threads(1)
    results = {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
                          f"torch {torch.__version__}, 1 thread",
               "date": time.strftime("%Y-%m-%d"), "quick": args.quick}
    if args.only in (None, "spheres"):
        results["spheres"] = run_spheres(args)
        figure = plot(results["spheres"], Path(args.out) / "spheres.png")
        print(f"wrote {figure}")
    if args.only in (None, "oscillators"):
        results["oscillators"] = run_oscillators(args)
    path = Path(args.json)
    if path.is_file() and not args.quick:          # keep the other part of an earlier run
        results = {**json.loads(path.read_text()), **results}
    if args.quick:
        path = Path(args.out) / "neural_ode_family.json"
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
