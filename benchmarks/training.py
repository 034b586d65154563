"""Training throughput of the models, on the states of a double pendulum (4 components).

    python benchmarks/training.py [--batches 256 4096] [--repeats 5] [--threads N] [--only 2]

1. Optimisation steps per second (Adam, float32) of NeuralODE, HNN, separable HNN and LNN with
   the derivative loss and with the rollout loss (8-sample windows, the model's explicit
   integrator, 2 sub-steps per interval), per batch size (states or windows).
2. One evaluation of the vector field, as an integrator makes it, without and with a graph
   (forward and backward): the LNN's cost over the HNN's (target at most 4×), the two
   interleaved and the ratio taken per repeat.
3. The LNN's Euler–Lagrange Hessian, vectorised over the batch (physnode) against one
   ``torch.autograd.functional.hessian`` per sample.
4. Peak memory (growth of a fresh process's peak resident set, Linux ``VmHWM``) of the
   gradient of a 1000-step rk4 rollout of an HNN, batch 64: backpropagation against
   ``adjoint=True`` (checkpoints).

Each figure is the median over ``--repeats`` timings after a warm-up; the spread is the
range over the repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

import physnode as pn
from physnode.systems.lagrangian import euler_lagrange_acceleration
from physnode.training.losses import derivative_loss, explicit_integrator, rollout_loss

MODELS = {
    "NeuralODE": lambda: pn.models.NeuralODE(dim=4),
    "HNN": lambda: pn.models.HNN(dof=2),
    "separable HNN": lambda: pn.models.HNN(dof=2, separable=True),
    "LNN": lambda: pn.models.LNN(dof=2),
}


def timings(step, repeats):
    step()                                                  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def states(batch, generator):
    return torch.randn(batch, 4, generator=generator)


def optimisation_step(model, loss, inputs):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        optimizer.zero_grad()
        loss(*inputs).backward()
        optimizer.step()
    return step


def evaluations(model, t, y):
    """One evaluation without a graph, and one forward and backward."""
    def plain():
        with torch.no_grad():
            model(t, y)

    def graph():
        model(t, y).sum().backward()
    return plain, graph


def throughput(batches, repeats):
    rows = []
    generator = torch.Generator().manual_seed(0)
    for batch in batches:
        y, dy = states(batch, generator), states(batch, generator)
        windows = torch.randn(batch, 8, 4, generator=generator) * 0.1 + y[:, None]
        t = torch.arange(8, dtype=torch.float32).expand(batch, 8) * 0.1
        for name, build in MODELS.items():
            torch.manual_seed(0)
            model = build()
            method = explicit_integrator(model)
            losses = {"derivative": (derivative_loss, (model, y, dy)),
                      "rollout": (rollout_loss, (model, t, windows, method, 2))}
            for loss_name, (loss, inputs) in losses.items():
                step = optimisation_step(model, loss, inputs)
                median, low, high = timings(step, repeats)
                rows.append({"model": name, "loss": loss_name, "batch": batch,
                             "steps_per_s": 1 / median, "range": [1 / high, 1 / low]})
                print(f"| {name} | {loss_name} | {batch} | {1 / median:.1f} "
                      f"({1 / high:.1f}–{1 / low:.1f}) |", flush=True)
    return rows


def field_cost(batches, repeats):
    """HNN and LNN evaluations interleaved (HNN, LNN, HNN, LNN, ...; each the best of 3 calls),
    so that both see the same load; the ratio is taken per repeat, its median and range
    reported. The LNN through autograd's backward passes (its Lagrangian without the closed
    forms) runs in the same rotation, without a graph."""
    rows = []
    generator = torch.Generator().manual_seed(1)
    for batch in batches:
        y = states(batch, generator)
        t = torch.zeros(batch, 1)
        models = {}
        for name in ("HNN", "LNN"):
            torch.manual_seed(0)
            models[name] = MODELS[name]()
        plain = models["LNN"].lagrangian.forward

        def backward_passes(plain=plain, y=y):
            with torch.no_grad():
                euler_lagrange_acceleration(lambda x: plain(x), y, 2)

        calls = {}
        for name, model in models.items():
            calls[name + " plain"], calls[name + " graph"] = evaluations(model, t, y)
        calls["LNN backward passes"] = backward_passes
        times = {name: [] for name in calls}
        for call in calls.values():
            call()                                          # warm-up
        for _ in range(repeats):
            for name, call in calls.items():
                best = float("inf")
                for _ in range(3):
                    start = time.perf_counter()
                    call()
                    best = min(best, time.perf_counter() - start)
                times[name].append(best)

        def ratio(a, b, times=times):
            r = [x / y for x, y in zip(times[a], times[b])]
            return statistics.median(r), min(r), max(r)

        row = {"batch": batch,
               **{name + "_s": statistics.median(v) for name, v in times.items()},
               "lnn_over_hnn_plain": ratio("LNN plain", "HNN plain"),
               "lnn_over_hnn_graph": ratio("LNN graph", "HNN graph"),
               "backward_passes_over_hnn_plain": ratio("LNN backward passes", "HNN plain")}
        rows.append(row)

        def ms(name, times=times):
            return f"{1e3 * statistics.median(times[name]):.2f}"

        def fmt(r):
            return f"{r[0]:.2f}× ({r[1]:.2f}–{r[2]:.2f})"
        print(f"| {batch} | {ms('HNN plain')} / {ms('HNN graph')} | {ms('LNN plain')} / "
              f"{ms('LNN graph')} | {fmt(row['lnn_over_hnn_plain'])} / "
              f"{fmt(row['lnn_over_hnn_graph'])} | {ms('LNN backward passes')}, "
              f"{fmt(row['backward_passes_over_hnn_plain'])} |", flush=True)
    return rows


def hessian_speedup(batch, repeats):
    torch.manual_seed(0)
    lnn = MODELS["LNN"]()
    y = states(batch, torch.Generator().manual_seed(2))
    lagrangian = lnn.lagrangian

    def vectorised():
        with torch.no_grad():
            euler_lagrange_acceleration(lagrangian, y, 2)

    def looped():
        for row in y:
            torch.autograd.functional.hessian(lambda x: lagrangian(x), row)

    ours, loop = timings(vectorised, repeats)[0], timings(looped, max(1, repeats // 2))[0]
    print(f"| {batch} | {1e3 * ours:.1f} | {1e3 * loop:.1f} | {loop / ours:.0f}× |", flush=True)
    return {"batch": batch, "vectorised_s": ours, "loop_s": loop, "speedup": loop / ours}


MEMORY = """
import torch, physnode as pn


def high_water():   # this process's peak resident set (MiB), fresh after exec, unlike
    with open("/proc/self/status") as fh:               # ru_maxrss, which a forked child
        for line in fh:                                # inherits from its parent
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024


torch.manual_seed(0)
hnn = pn.models.HNN(dof=2).double()
y0 = torch.randn(64, 4, dtype=torch.float64)
t = torch.linspace(0, 100, 2, dtype=torch.float64)
before = high_water()
pn.solve(hnn, y0, t, method="rk4", dt=0.1, adjoint={adjoint}).ys[-1].pow(2).sum().backward()
print(high_water() - before)
"""


def memory():
    result = {}
    for adjoint in (False, True):
        out = subprocess.run([sys.executable, "-c", MEMORY.format(adjoint=adjoint)],
                             capture_output=True, text=True, check=True)
        result["adjoint" if adjoint else "backprop"] = float(out.stdout.split()[-1])
    print(f"| backprop | {result['backprop']:.0f} MiB |\n| adjoint=True | "
          f"{result['adjoint']:.0f} MiB |", flush=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="*", default=[256, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    parser.add_argument("--threads", type=int, default=None, help="torch's CPU threads")
    parser.add_argument("--only", type=int, nargs="*", default=None,
                        help="run only these sections (1-4)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sections = set(args.only or range(1, 5))
    results = {}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if 1 in sections:
        print("\n1. optimisation steps per second (median, range)\n")
        print("| model | loss | batch | steps/s |\n|---|---|---|---|")
        results["throughput"] = throughput(args.batches, args.repeats)
    if 2 in sections:
        print("\n2. one field evaluation, ms: no graph / forward and backward; LNN / HNN "
              "median (range) over the repeats; the LNN without a graph through backward "
              "passes\n")
        print("| batch | HNN | LNN | LNN / HNN | backward passes, / HNN |\n|---|---|---|---|---|")
        results["field"] = field_cost(args.batches, args.repeats)
    if 3 in sections:
        print("\n3. Euler–Lagrange Hessian, ms\n")
        print("| batch | vectorised | per-sample loop | speed-up |\n|---|---|---|---|")
        results["hessian"] = hessian_speedup(256, args.repeats)
    if 4 in sections:
        print("\n4. peak memory growth, gradient of a 1000-step rk4 rollout, batch 64\n")
        print("| gradient | memory |\n|---|---|")
        results["memory"] = memory()
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
