"""Data-parallel ``fit`` under torchrun against one process: the same fit (an HNN on 32
pendulum trajectories of 200 samples, both stages capped at --epochs epochs, float64),
timed in one process on one thread, in one process on two threads, and on two gloo ranks of
one thread each; the weights of the two-rank fit against the one-process fit.

    python benchmarks/data_parallel.py [--epochs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import physnode as pn
from physnode.parallel import init_from_environment


def fit_once(out: Path, epochs: int) -> None:
    """The fit being timed (run in a child process, alone or under torchrun)."""
    group = init_from_environment()
    data = pn.data.simulate(pn.systems.Pendulum(), n_trajectories=32, n_points=200, seed=0,
                            noise=0.01, irregular=True)
    torch.manual_seed(0)
    model = pn.models.HNN(dof=1)
    start = time.perf_counter()
    pn.fit(model, data, epochs=epochs, progress=False, dtype=torch.float64)
    seconds = time.perf_counter() - start
    if group is None or group.main:
        torch.save(model.state_dict(), out / "weights.pt")
        (out / "seconds.json").write_text(json.dumps(seconds))


def launch(epochs: int, threads: int, ranks: int) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        command = [__file__, "--child", tmp, "--epochs", str(epochs)]
        command = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc_per_node={ranks}", *command] if ranks > 1
                   else [sys.executable, *command])
        subprocess.run(command, env=env, check=True, capture_output=True)
        return (json.loads((Path(tmp) / "seconds.json").read_text()),
                torch.load(Path(tmp) / "weights.pt", weights_only=True))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        fit_once(Path(args.child), args.epochs)
        return
    one, reference = launch(args.epochs, threads=1, ranks=1)
    two_threads, _ = launch(args.epochs, threads=2, ranks=1)
    two_ranks, weights = launch(args.epochs, threads=1, ranks=2)
    difference = max(((weights[k] - reference[k]).norm() / reference[k].norm()).item()
                     for k in reference if reference[k].is_floating_point()
                     and reference[k].norm() > 0)
    print("| run | fit time (s) | speed-up over one thread |\n|---|---|---|")
    for name, seconds in (("one process, 1 thread", one), ("one process, 2 threads",
                                                           two_threads),
                          ("2 gloo ranks, 1 thread each", two_ranks)):
        print(f"| {name} | {seconds:.1f} | {one / seconds:.2f}× |")
    print(f"\nweights of 2 ranks against one process: {difference:.1e} relative")


if __name__ == "__main__":
    main()
