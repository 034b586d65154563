"""A damped double pendulum's Lagrangian recovered as SymPy from noisy recorded angles, with
``fit`` and ``pn.discovery.lagrangian`` defaults.

Data: ``DoublePendulum(damping=0.05)`` (unit masses and lengths, g = 9.81, friction in each
joint), 8 trajectories of 200 random sample times on t ∈ [0, 10], in ``(q1, q2, q1dot,
q2dot)``, 1% noise, angles unwrapped (each trajectory shifted by up to 20 whole turns) and
declared. The truth, in the gauge of :func:`physnode.discovery.lagrangian` (``q̇₁²`` has
coefficient ½): ``L = ½ q̇₁² + ¼ q̇₂² + ½ q̇₁q̇₂ cos(q₁ − q₂) + 9.81 cos q₁ + 4.905 cos q₂``,
``R = 0.0125 (q̇₁² + q̇₂²)``. Reported: exact support, the worst coefficient error (a ratio to
the ``q̇₁²`` coefficient), the Rayleigh coefficients, the held-out error of the accelerations
that ``L`` gives against the model's, the model's acceleration error at the clean states and
its fit quality, the fit and discovery times. For the HNN, also the energy that
``pn.discovery.hamiltonian`` gives: its support against the truth's energy
``E = Σ q̇ᵢ ∂L/∂q̇ᵢ − L`` and its worst coefficient error after scaling both to the same
``q̇₁²`` coefficient.

With ``--system elastic``: an elastic pendulum (a unit mass on a spring of stiffness 40 and
rest length 1, g = 9.81) in polar coordinates ``(r, θ, ṙ, θ̇)``, no friction, 8 trajectories of
200 random sample times on t ∈ [0, 10], 1% noise, θ declared an angle; its ``L = ½ ṙ² + ½ r²
θ̇² + 9.81 r cos θ − 20 r² + 40 r`` (up to a constant) mixes a length with an angle.

    python benchmarks/lagrangian.py [--seeds 3] [--models lnn config] [--system elastic]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import sympy
import torch
from masses import acceleration_error, recording
from scipy.integrate import solve_ivp

import physnode as pn

MODELS = {
    "lnn": lambda: pn.models.LNN(dof=2, angles=(0, 1), dissipative=True),
    "config": lambda: pn.models.HNN(dof=2, coordinates="velocity", angles=(0, 1),
                                    mass=pn.models.ConfigurationMass(), dissipative=True),
}
DAMPING = 0.05
ELASTIC_MODELS = {
    "lnn": lambda: pn.models.LNN(dof=2, angles=(1,)),
    "config": lambda: pn.models.HNN(dof=2, coordinates="velocity", angles=(1,),
                                    mass=pn.models.ConfigurationMass()),
}
G, STIFFNESS, REST = 9.81, 40.0, 1.0


def elastic_rates(y: np.ndarray) -> np.ndarray:
    """``d(r, θ, ṙ, θ̇)/dt`` of the elastic pendulum, rows of states."""
    r, th, rdot, thdot = y.T
    return np.stack([rdot, thdot, r * thdot ** 2 + G * np.cos(th) - STIFFNESS * (r - REST),
                     (-G * np.sin(th) - 2 * rdot * thdot) / r], -1)


def elastic_recording(seed: int):
    """Noisy ``(r, θ, ṙ, θ̇)`` of the elastic pendulum, and the clean states with their rates."""
    rng = np.random.default_rng(seed)
    noisy, clean = [], []
    for _ in range(8):
        t = np.sort(rng.uniform(0, 10, 200))
        t[0] = 0.0
        y0 = [rng.uniform(1.1, 1.4), rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)]
        y = solve_ivp(lambda _, y: elastic_rates(y[None])[0], (0, 10), y0, t_eval=t,
                      rtol=1e-10, atol=1e-10).y.T
        clean.append((t, y))
    spread = np.concatenate([y for _, y in clean]).std(0)
    for t, y in clean:
        y = y + 0.01 * spread * rng.standard_normal(y.shape)
        noisy.append(pn.data.Trajectory(torch.from_numpy(t), torch.from_numpy(y)))
    data = pn.data.Trajectories(noisy, ("r", "th", "rdot", "thdot"), angles=("th",))
    x = np.concatenate([y for _, y in clean])
    return data, torch.from_numpy(x), torch.from_numpy(elastic_rates(x))


def elastic_truth():
    r, th, rdot, thdot = sympy.symbols("r th rdot thdot", real=True)
    return (0.5 * (rdot ** 2 + r ** 2 * thdot ** 2) + G * r * sympy.cos(th)
            - 0.5 * STIFFNESS * (r ** 2 - 2 * REST * r))


def truth():
    q1, q2, v1, v2 = sympy.symbols("q1 q2 q1dot q2dot", real=True)      # the data's names
    system = pn.systems.DoublePendulum()
    m1, m2, l1, l2, g = system.m1, system.m2, system.l1, system.l2, system.g
    return (0.5 * (m1 + m2) * l1 ** 2 * v1 ** 2 + 0.5 * m2 * l2 ** 2 * v2 ** 2
            + m2 * l1 * l2 * v1 * v2 * sympy.cos(q1 - q2)
            + (m1 + m2) * g * l1 * sympy.cos(q1) + m2 * g * l2 * sympy.cos(q2))


def energy_report(found: sympy.Expr, truth: sympy.Expr) -> str:
    """``exact support?, worst coefficient error`` of an energy ``found`` against the energy
    of the Lagrangian ``truth``, both scaled so that their first velocity squared has
    coefficient ½ (constants dropped)."""
    velocities = sorted((s for s in truth.free_symbols if s.name.endswith("dot")),
                        key=lambda s: s.name)
    energy = sympy.expand(sum(v * sympy.diff(truth, v) for v in velocities) - truth)
    true_terms, found_terms = (
        {t: c / terms[velocities[0] ** 2] / 2 for t, c in terms.items() if t != 1}
        for terms in (energy.as_coefficients_dict(), sympy.expand(found).as_coefficients_dict()))
    if found_terms.keys() != true_terms.keys():
        return "no"
    worst = max(abs(float(found_terms[t] / c) - 1) for t, c in true_terms.items())
    return f"yes, {100 * worst:.1f}%"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--system", default="double", choices=["double", "elastic"])
    args = parser.parse_args(argv)
    elastic = args.system == "elastic"
    models, target = (ELASTIC_MODELS, elastic_truth()) if elastic else (MODELS, truth())
    scale = (1.0 + 1.0) * 1.0 ** 2               # L is divided by (m1 + m2) l1² (q̇₁²: ½)
    print("true R = 0" if elastic else f"true R = {DAMPING / 2 / scale:.4g} (q̇₁² + q̇₂²)")
    print("| model | seed | acceleration error | fit quality | exact support | worst coefficient "
          "| R coefficients | held-out acceleration error of L | energy (hamiltonian) "
          "| fit (s) | lagrangian (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in range(args.seeds):
        data, x, rates = (elastic_recording(seed) if elastic else
                          recording(seed, pn.systems.DoublePendulum(damping=DAMPING), turns=20))
        for name in args.models:
            torch.manual_seed(seed)
            model = models[name]()
            start = time.perf_counter()
            pn.fit(model, data, progress=False, seed=seed)
            fitted = time.perf_counter()
            found = pn.discovery.lagrangian(model, data=data)
            found_at = time.perf_counter()
            report = found.compare(target)
            rayleigh = ", ".join(f"{float(c):.4f}" for c in
                                 sympy.Poly(found.dissipation, *found.velocities).coeffs())
            quality = pn.discovery.fit_quality(model, data)
            energy = (energy_report(pn.discovery.hamiltonian(model, data=data), target)
                      if isinstance(model, pn.models.HNN) else "–")
            print(f"| {name} | {seed} | {100 * acceleration_error(model, x, rates):.1f}% | "
                  f"{quality.ratio:.1f}× noise | {'yes' if report['exact_support'] else 'no'} | "
                  f"{100 * report['max_relative_coefficient_error']:.1f}% | {rayleigh} | "
                  f"{100 * found.held_out_error:.1f}% | {energy} | {fitted - start:.0f} | "
                  f"{found_at - fitted:.0f} |", flush=True)
            if not report["exact_support"]:
                print(f"|   | found | {found} | | | | | | | | |", flush=True)


if __name__ == "__main__":
    main()
