"""A sweep of the zoo's one-degree-of-freedom cases: serially in one process against two
one-thread dask workers (``LocalCluster``), the same cases and defaults, the same results.

Cases (each ``pn.parallel.Case``'s defaults: 8 irregular trajectories of 200 samples on
t ∈ [0, 10], 1% noise, ``fit``'s and ``discover``'s defaults, the model chosen from the
system): the pendulum (seeds 0 and 1), a pendulum with length 0.5 and mass 2, a spring
(k = 2), a damped spring, the Duffing oscillator, Lotka–Volterra and Van der Pol.

    python benchmarks/sweep.py [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import physnode as pn
from physnode.parallel import Case

CASES = [
    Case(system="pendulum", seed=0),
    Case(system="pendulum", seed=1),
    Case(system="pendulum", parameters={"length": 0.5, "mass": 2.0}),
    Case(system="massspring", parameters={"k": 2.0}),
    Case(system="massspring", parameters={"k": 3.0, "mass": 0.5, "damping": 0.2}),
    Case(system="duffing", parameters={"alpha": 1.0, "beta": 1.0}),
    Case(system="lotkavolterra"),
    Case(system="vanderpol", parameters={"mu": 1.0}),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        serial = pn.sweep(CASES, Path(tmp) / "serial.csv", client="serial")
        serial_s = time.perf_counter() - start
        start = time.perf_counter()
        parallel = pn.sweep(CASES, Path(tmp) / "parallel.csv", workers=args.workers)
        parallel_s = time.perf_counter() - start
    compared = ("status", "error", "equations", "max_coefficient_error")
    differing = [(case.key, name) for case, a, b in zip(CASES, serial, parallel)
                 for name in compared if a.get(name) != b.get(name)]
    same = not differing
    print("| case | model | exact support | worst coefficient error | serial time (s) | "
          "time on a worker (s) |")
    print("|---|---|---|---|---|---|")
    for case, row, other in zip(CASES, serial, parallel):
        error = row.get("max_coefficient_error")
        print(f"| {case.system} {case.parameters or ''} seed {case.seed} | {row.get('model')} | "
              f"{row.get('exact_support')} | "
              f"{'–' if error is None else f'{100 * error:.2f}%'} | {row['seconds']:.0f} | "
              f"{other['seconds']:.0f} |")
    for key, name in differing:
        print(f"differs: {name} of {key}")
    print(f"\nserial {serial_s:.0f} s; {args.workers} workers {parallel_s:.0f} s (cluster start "
          f"included); speed-up {serial_s / parallel_s:.2f}×; identical results: {same}")


if __name__ == "__main__":
    main()
