"""Solver benchmarks: physnode against the tools users would otherwise pick, in one run.

    python benchmarks/solvers.py            # full run (minutes), figures for RESULTS.md
    python benchmarks/solvers.py --quick    # small sizes, a smoke run
    python benchmarks/solvers.py --device cuda --batches 1024 16384 65536   # on a GPU

1. Batched stiff: Van der Pol oscillators with μ log-uniform in [10, 1000], y0 = (2, 0),
   t ∈ [0, 200], rtol 1e-6, atol 1e-8. One physnode call (radau5, the same method as scipy's,
   and radau9) against scipy solve_ivp(method="Radau") looped over the problems, all with the
   analytic Jacobian. Accuracy is measured against scipy Radau at rtol 1e-11 on a subset.
2. Fixed-step overhead: rk4 on a 2→200→200→2 tanh MLP, batch 64, 200 steps: wall time over
   the time of the same number of bare network evaluations; torchdiffeq in the same run.
3. Adaptive overhead: dopri5 at batch 1, wall time per evaluation over a bare evaluation;
   torchdiffeq in the same run.
4. ROBER to 1e11 and HIRES at rtol 1e-8: nfev, njev, nlu, wall time of radau5, radau9 and
   kvaerno5 against scipy Radau and BDF.
5. A large stiff system: reaction–diffusion u_t = u_xx + u − u³ on 400 grid points (method
   of lines), 4 initial states, t ∈ [0, 0.5], rtol 1e-6, atol 1e-8, with the analytic
   Jacobian and with autograd's: Radau's stage system split into n × n ones (one real,
   (s − 1)/2 complex) as in scipy, against kvaerno5's n × n LU and scipy's Radau.
6. Sparse Jacobians: the 1-D Brusselator (Hairer & Wanner II, §IV.1) on N = 150 and 600
   grid points (n = 300 and 1200 states), t ∈ [0, 10], rtol 1e-6, atol 1e-8, one state:
   physnode with and without ``jac_sparsity`` (coloured autograd Jacobian, SuperLU) against
   scipy Radau with its dense finite-difference Jacobian and with ``jac_sparsity``. Wall
   times are the best of 3 runs, with the slowest.

    python benchmarks/solvers.py --only 6     # one section
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torchdiffeq
from scipy.integrate import solve_ivp

import physnode as pn

SHARED = Path(__file__).resolve().parents[2] / "shared"


def best_of(fn, repeats=3):
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


# 1. Batched stiff Van der Pol -------------------------------------------------------------

def vdp_field(t, y, mu):
    """Van der Pol with a per-sample μ (``solve``'s ``args``, shape ``(*y.shape[:-1],)``)."""
    x, v = y.unbind(-1)
    return torch.stack([v, mu * (1 - x ** 2) * v - x], -1)


def vdp_jacobian(t, y, mu):
    x, v = y.unbind(-1)
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    rows = [torch.stack([zero, one], -1),
            torch.stack([-2 * mu * x * v - 1, mu * (1 - x ** 2)], -1)]
    return torch.stack(rows, -2)


def scipy_vdp(mu, rtol, atol, t_end):
    def f(_, y):
        return [y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]]

    def jac(_, y):
        return [[0.0, 1.0], [-2 * mu * y[0] * y[1] - 1, mu * (1 - y[0] ** 2)]]

    sol = solve_ivp(f, (0, t_end), [2.0, 0.0], method="Radau", rtol=rtol, atol=atol, jac=jac)
    return sol.y[:, -1]


METHODS_STIFF = ("radau5", "radau9")


def batched_stiff(batches, device, scipy_max, t_end=200.0, rtol=1e-6, atol=1e-8):
    """Batch sizes share one μ draw (the first k values of a seeded stream), so scipy's time
    per problem is measured once on ``scipy_max`` of them and scaled linearly (scipy solves
    one problem at a time)."""
    mu_all = 10 ** np.random.default_rng(0).uniform(1, 3, max(batches))
    n_scipy = min(scipy_max, max(batches))
    start = time.perf_counter()
    scipy_end = np.stack([scipy_vdp(m, rtol, atol, t_end) for m in mu_all[:n_scipy]])
    scipy_per_problem = (time.perf_counter() - start) / n_scipy
    n_ref = min(n_scipy, 32)
    ref = np.stack([scipy_vdp(m, 1e-11, 1e-13, t_end) for m in mu_all[:n_ref]])
    scipy_err = float(np.abs(scipy_end[:n_ref] - ref).max())
    if device != "cpu":  # CUDA context, kernels and allocator caches outside the timings
        y0 = torch.tensor([[2.0, 0.0]] * 8, dtype=torch.float64, device=device)
        pn.solve(vdp_field, y0, torch.tensor([0.0, 1.0], dtype=torch.float64, device=device),
                 method="radau5", jac=vdp_jacobian, args=torch.full((8,), 100.0,
                                                               dtype=torch.float64,
                                                               device=device))
    rows = []
    for batch in batches:
        mu = torch.tensor(mu_all[:batch], dtype=torch.float64, device=device)
        y0 = torch.tensor([[2.0, 0.0]], dtype=torch.float64, device=device).repeat(batch, 1)
        t = torch.tensor([0.0, t_end], dtype=torch.float64, device=device)
        scipy_time = scipy_per_problem * batch
        row = {"batch": batch, "scipy_s": scipy_time, "scipy_measured_on": n_scipy,
               "scipy_max_err": scipy_err}
        for method in METHODS_STIFF:
            start = time.perf_counter()
            with torch.no_grad():
                sol = pn.solve(vdp_field, y0, t, method=method, rtol=rtol, atol=atol,
                               jac=vdp_jacobian, args=mu, max_steps=1_000_000)
            if device == "cuda":
                torch.cuda.synchronize()
            ours = time.perf_counter() - start
            ours_end = sol.ys[-1, :n_ref, :2].cpu().numpy()
            row.update({f"{method}_s": ours, f"{method}_speedup": scipy_time / ours,
                        f"{method}_max_err": float(np.abs(ours_end - ref).max()),
                        f"{method}_slowest_attempts": int((sol.stats["steps"]
                                                           + sol.stats["rejected"]).max())})
        rows.append(row)
        print(f"  batch {batch}: scipy {scipy_time:.2f}s (measured on {n_scipy}); " + ", ".join(
            f"{m} {row[m + '_s']:.2f}s ({row[m + '_speedup']:.1f}x)" for m in METHODS_STIFF),
            flush=True)
    return rows


# 2 and 3. Overhead over bare network evaluations -------------------------------------------

def mlp(device):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2, 200), torch.nn.Tanh(),
                               torch.nn.Linear(200, 200), torch.nn.Tanh(),
                               torch.nn.Linear(200, 2)).to(device)


def fixed_step_overhead(device, batch=64, steps=200):
    net = mlp(device)

    def f(t, y):
        return net(y)

    y0 = torch.randn(batch, 2, device=device)
    t = torch.tensor([0.0, 2.0], device=device)
    dt = 2.0 / steps
    with torch.no_grad():
        bare = best_of(lambda: [net(y0) for _ in range(4 * steps)], 7)
        ours = best_of(lambda: pn.solve(f, y0, t, method="rk4", dt=dt), 7)
        theirs = best_of(lambda: torchdiffeq.odeint(f, y0, t, method="rk4",
                                                    options={"step_size": dt}), 7)
    return {"physnode": ours / bare, "torchdiffeq": theirs / bare}


def adaptive_overhead(device, rtol=1e-7, atol=1e-9):
    net = mlp(device)
    count = [0]

    def f(t, y):
        count[0] += 1
        return net(y)

    y0 = torch.randn(1, 2, device=device)
    t = torch.tensor([0.0, 5.0], device=device)
    with torch.no_grad():
        bare = best_of(lambda: [net(y0) for _ in range(1000)], 5) / 1000
        count[0] = 0
        pn.solve(f, y0, t, method="dopri5", rtol=rtol, atol=atol)
        ours_n = count[0]
        ours = best_of(lambda: pn.solve(f, y0, t, method="dopri5", rtol=rtol, atol=atol), 5)
        count[0] = 0
        torchdiffeq.odeint(f, y0, t, method="dopri5", rtol=rtol, atol=atol)
        theirs_n = count[0]
        theirs = best_of(lambda: torchdiffeq.odeint(f, y0, t, method="dopri5", rtol=rtol,
                                                    atol=atol), 5)
    return {"physnode": ours / ours_n / bare, "torchdiffeq": theirs / theirs_n / bare,
            "physnode_nfev": ours_n, "torchdiffeq_nfev": theirs_n}


# 4. Stiff reference problems ----------------------------------------------------------------

def stiff_problems(rtol=1e-8):
    reference = json.loads((SHARED / "reference" / "stiff.json").read_text())
    rows = []
    for name, system, atol in (("ROBER", pn.systems.Robertson(), 1e-14),
                               ("HIRES", pn.systems.HIRES(), 1e-10)):
        ref = reference[name]
        y_ref = np.array(ref["y_end"])
        y0 = torch.tensor(ref["y0"], dtype=torch.float64)
        t = torch.tensor(ref["t_span"], dtype=torch.float64)
        for method in (*METHODS_STIFF, "kvaerno5"):
            with torch.no_grad():
                start = time.perf_counter()
                sol = pn.solve(system, y0, t, method=method, rtol=rtol, atol=atol)
                wall = time.perf_counter() - start
            digits = float((-np.log10(np.abs(sol.ys[-1].numpy() - y_ref)
                                      / np.abs(y_ref))).min())
            rows.append({"problem": name, "solver": f"physnode {method}", "wall_s": wall,
                         "min_digits": digits, **{k: int(v) for k, v in sol.stats.items()}})

        def f(_, y, system=system):
            return system(0.0, torch.from_numpy(y)).numpy()

        def jac(_, y, system=system):
            return pn.integrators.newton.jacobian(system, torch.tensor(0.0),
                                                  torch.from_numpy(y)).numpy()

        for method in ("Radau", "BDF"):
            start = time.perf_counter()
            res = solve_ivp(f, ref["t_span"], ref["y0"], method=method, rtol=rtol, atol=atol,
                            jac=jac)
            wall = time.perf_counter() - start
            digits = float((-np.log10(np.abs(res.y[:, -1] - y_ref) / np.abs(y_ref))).min())
            rows.append({"problem": name, "solver": f"scipy {method}", "wall_s": wall,
                         "min_digits": digits, "nfev": res.nfev, "steps": len(res.t) - 1,
                         "njev": res.njev, "nlu": res.nlu})
    return rows


# 5. A large stiff system ----------------------------------------------------------------------

def reaction_diffusion(n):
    """``u_t = u_xx + u − u³`` on (0, 1) with u = 0 at both ends, n interior points."""
    dx = 1.0 / (n + 1)

    def field(t, u):
        padded = torch.nn.functional.pad(u, (1, 1))
        return (padded[..., 2:] - 2 * u + padded[..., :-2]) / dx ** 2 + u - u ** 3

    laplacian = (torch.diag(torch.full((n - 1,), 1.0), 1) + torch.diag(torch.full((n - 1,), 1.0),
                 -1) - 2 * torch.eye(n)).double() / dx ** 2

    def jac(t, u):
        return laplacian + torch.diag_embed(1 - 3 * u ** 2)

    return field, jac


def large_system(n=400, rtol=1e-6, atol=1e-8, t_end=0.5):
    field, jac = reaction_diffusion(n)
    x = torch.linspace(0, 1, n + 2, dtype=torch.float64)[1:-1]
    y0 = torch.stack([torch.sin(torch.pi * k * x) for k in (1, 2, 3, 4)])
    t = torch.tensor([0.0, t_end], dtype=torch.float64)
    with torch.no_grad():
        ref = pn.solve(field, y0, t, method="radau9", rtol=1e-11, atol=1e-13, jac=jac).ys[-1]
    rows = []
    for method in (*METHODS_STIFF, "kvaerno5"):
        for given, label in ((jac, "analytic J"), (None, "autograd J")):
            with torch.no_grad():
                start = time.perf_counter()
                sol = pn.solve(field, y0, t, method=method, rtol=rtol, atol=atol, jac=given)
                wall = time.perf_counter() - start
            rows.append({"solver": f"physnode {method}, {label}", "wall_s": wall,
                         "max_err": float((sol.ys[-1] - ref).abs().max()),
                         **{k: int(v.sum()) for k, v in sol.stats.items()}})
    for given, label in ((jac, "analytic J"), (None, "finite-difference J")):
        start = time.perf_counter()
        stats = {"nfev": 0, "njev": 0, "nlu": 0, "steps": 0}
        err = 0.0
        for i in range(len(y0)):
            res = solve_ivp(lambda _, u: field(0.0, torch.from_numpy(u)).numpy(), (0, t_end),
                            y0[i].numpy(), method="Radau", rtol=rtol, atol=atol,
                            jac=None if given is None else
                            (lambda _, u: jac(0.0, torch.from_numpy(u)).numpy()))
            err = max(err, float(np.abs(res.y[:, -1] - ref[i].numpy()).max()))
            for key, value in (("nfev", res.nfev), ("njev", res.njev), ("nlu", res.nlu),
                               ("steps", len(res.t) - 1)):
                stats[key] += value
        rows.append({"solver": f"scipy Radau (looped), {label}",
                     "wall_s": time.perf_counter() - start, "max_err": err, **stats})
    return rows


# 6. Sparse Jacobians -------------------------------------------------------------------------

def sparse_jacobians(sizes=(150, 600), rtol=1e-6, atol=1e-8, t_end=10.0, repeats=3):
    return [row for N in sizes for row in _sparse_case(N, rtol, atol, t_end, repeats)]


def _sparse_case(N, rtol, atol, t_end, repeats):
    field = pn.systems.Brusselator(points=N)
    pattern, y0 = field.jac_sparsity(), torch.tensor(field.reference_y0, dtype=torch.float64)
    t = torch.tensor([0.0, t_end], dtype=torch.float64)

    def f_np(_, y):
        return field(None, torch.from_numpy(y)).numpy()

    ref = solve_ivp(f_np, (0, t_end), y0.numpy(), method="Radau", rtol=1e-11, atol=1e-13,
                    jac_sparsity=pattern).y[:, -1]

    def physnode_run(method, sparsity):
        with torch.no_grad():
            sol = pn.solve(field, y0[None], t, method=method, rtol=rtol, atol=atol,
                           jac_sparsity=sparsity)
        return float(np.abs(sol.ys[-1, 0].numpy() - ref).max()), {
            k: int(v.sum()) for k, v in sol.stats.items()}

    def scipy_run(_, sparsity):
        res = solve_ivp(f_np, (0, t_end), y0.numpy(), method="Radau", rtol=rtol, atol=atol,
                        jac_sparsity=sparsity)
        return float(np.abs(res.y[:, -1] - ref).max()), {
            "nfev": res.nfev, "njev": res.njev, "nlu": res.nlu, "steps": len(res.t) - 1}

    runs = []
    for label, sparsity in (("dense J", None), ("jac_sparsity", pattern)):
        if sparsity is None and N > 300:
            continue                                         # minutes of dense algebra
        runs += [(f"physnode {m}, {label}", physnode_run, m, sparsity)
                 for m in (*METHODS_STIFF, "kvaerno5")]
        runs.append((f"scipy Radau, {label if sparsity is not None else 'dense FD J'}",
                     scipy_run, None, sparsity))
    rows = []
    for label, run, method, sparsity in runs:
        walls = []
        for _ in range(repeats):
            start = time.perf_counter()
            err, stats = run(method, sparsity)
            walls.append(time.perf_counter() - start)
        rows.append({"n": 2 * N, "solver": label, "wall_s": min(walls),
                     "slowest_s": max(walls), "max_err": err, **stats})
    return rows


def markdown(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = []
        for h in headers:
            v = row.get(h, "")
            cells.append(f"{v:.3g}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, nargs="*", default=None)
    parser.add_argument("--scipy-max", type=int, default=128,
                        help="problems solved by scipy per batch; the time is scaled linearly")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    parser.add_argument("--only", type=int, nargs="*", default=None,
                        help="run only these sections (1-6)")
    args = parser.parse_args(argv)
    sections = set(args.only or range(1, 7))
    batches = args.batches or ([16, 64] if args.quick else [64, 256, 1024, 4096])
    scipy_max = 16 if args.quick else args.scipy_max
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, device {args.device}")
    results = {}
    if 1 in sections:
        print("1. batched stiff Van der Pol (radau5 and radau9 vs scipy Radau looped)")
        results["batched_stiff"] = batched_stiff(batches, args.device, scipy_max,
                                                 t_end=20.0 if args.quick else 200.0)
        print(markdown(["batch", "scipy_s", *(f"{m}_{k}" for m in METHODS_STIFF for k in (
            "s", "speedup", "max_err", "slowest_attempts")), "scipy_max_err"],
            results["batched_stiff"]))
    if 2 in sections:
        print("2. fixed-step overhead (rk4, MLP 2x200 tanh, batch 64, 200 steps)")
        results["fixed_overhead"] = fixed_step_overhead(args.device)
        print(f"  wall / bare evaluations: physnode "
              f"{results['fixed_overhead']['physnode']:.2f}, "
              f"torchdiffeq {results['fixed_overhead']['torchdiffeq']:.2f}")
    if 3 in sections:
        print("3. adaptive overhead (dopri5, batch 1)")
        results["adaptive_overhead"] = adaptive_overhead(args.device)
        r = results["adaptive_overhead"]
        print(f"  per evaluation / bare evaluation: physnode {r['physnode']:.2f} "
              f"({r['physnode_nfev']} evals), torchdiffeq {r['torchdiffeq']:.2f} "
              f"({r['torchdiffeq_nfev']} evals)")
    if 4 in sections and args.device == "cpu" and (SHARED / "reference" / "stiff.json").is_file():
        print("4. ROBER to 1e11 and HIRES at rtol 1e-8")
        results["stiff_problems"] = stiff_problems()
        print(markdown(["problem", "solver", "wall_s", "min_digits", "nfev", "njev", "nlu",
                        "steps"], results["stiff_problems"]))
    if 5 in sections:
        print("5. large stiff system (reaction-diffusion, 400 points, 4 states)")
        results["large_system"] = large_system(n=100 if args.quick else 400)
        print(markdown(["solver", "wall_s", "max_err", "nfev", "njev", "nlu", "steps"],
                       results["large_system"]))
    if 6 in sections and args.device == "cpu":
        print("6. sparse Jacobians (1-D Brusselator, one state)")
        results["sparse_jacobians"] = sparse_jacobians(
            sizes=(50,) if args.quick else (150, 600), repeats=1 if args.quick else 3)
        print(markdown(["n", "solver", "wall_s", "slowest_s", "max_err", "nfev", "njev", "nlu",
                        "steps"], results["sparse_jacobians"]))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
