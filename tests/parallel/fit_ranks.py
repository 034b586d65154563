"""Fit an HNN in float64 and write this rank's weights and history: run alone, or under
``torchrun`` (data-parallel), by tests/parallel/test_distributed.py.

Usage: python fit_ranks.py OUT [--stop EPOCH] [--resume] [--fail-rank R] [--data-per-rank]
"""

import argparse
import json
from pathlib import Path

import torch

import physnode as pn
from physnode.parallel.distributed import init_from_environment


class Interrupt(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--stop", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--fail-rank", type=int, default=None,
                        help="this rank's model raises on its 50th call")
    parser.add_argument("--data-per-rank", action="store_true",
                        help="each rank simulates its own data (a mistake fit must name)")
    args = parser.parse_args()
    out = Path(args.out)
    group = init_from_environment()
    rank = 0 if group is None else group.rank
    torch.set_num_threads(1)
    data = pn.data.simulate(pn.systems.Pendulum(), n_trajectories=4, n_points=40,
                            seed=rank if args.data_per_rank else 0, noise=0.01)
    torch.manual_seed(rank + 11)             # ranks start apart: fit must broadcast rank 0's
    model = pn.models.HNN(dof=1, hidden=16)
    checkpoint = out / "checkpoint.pt"
    if args.stop is not None:
        def crash(*_):
            if checkpoint.is_file() and \
                    torch.load(checkpoint, weights_only=True)["state"]["epoch"] >= args.stop:
                raise Interrupt
        model.register_forward_pre_hook(crash)
    if args.fail_rank == rank:
        calls = [0]

        def fail(*_):
            calls[0] += 1
            if calls[0] == 50:
                raise ValueError("this rank's rows broke the model")
        model.register_forward_pre_hook(fail)
    # 25 epochs a stage, 50 in all; minibatches of 7 rows split 4/3 between two ranks.
    result = pn.fit(model, data, epochs=25, lr=1e-2, batch_size=7, progress=False, seed=3,
                    dtype=torch.float64, checkpoint=checkpoint, checkpoint_every=1,
                    resume=args.resume)
    torch.save(model.state_dict(), out / f"rank{rank}.pt")
    (out / f"rank{rank}.json").write_text(json.dumps(result.history))


if __name__ == "__main__":
    main()
