"""Continuous normalizing flows on FFJORD's 2-D toy densities, with and without RNODE.

Protocol: the densities of the FFJORD repository (Grathwohl et al. 2019), re-implemented
from their definitions below. For each, a CNF (``pn.models.CNF(dim=2)``: 3×64 tanh, exact
trace, dopri5 at rtol = atol = 1e-5, T = 1) is trained by ``pn.fit`` on ``--samples`` draws
(5% held out for validation, Adam 1e-3, batches of 512, ``--epochs`` passes), once by
maximum likelihood alone and once with the RNODE regularisers (Finlay et al. 2020,
``DensityLoss(kinetic=0.01, jacobian=0.01)``; ``--rnode`` changes both weights). Reported:
the test NLL in nats on 5000 fresh draws (exact trace), the field evaluations per sample of
the training solves (mean over all training iterations, and over the last epoch) and of the
test solve, and the training time. ``--trace hutchinson`` trains with Hutchinson's estimator
(one probe per sample, as FFJORD does) and still scores with the exact trace.

Floors: the NLL of the true density is its entropy. 8gaussians: a mixture of 8 equal
Gaussians (centres 4/1.414 on the unit circle's 8 compass points, std 0.5/1.414); its entropy
by Monte Carlo, ``−mean log p(x)`` over 200 000 draws with the exact mixture density
(≈ 2.839 nats; the Gaussians barely overlap, so it is close to ``ln 8 + ln(2πe σ²)``).
Checkerboard: uniform on 8 squares of side 2 (area 32), entropy ``ln 32 = 3.466``. Two
spirals and pinwheel have no closed-form density; no floor is given.

    python benchmarks/cnf.py [--quick] [--datasets 8gaussians checkerboard] [--epochs 8]
                             [--trace exact|hutchinson] [--variants mle rnode]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time

import torch

import physnode as pn
from physnode._atomic import write_text_atomic
from physnode.models import CNF

SQRT2 = 1.414          # FFJORD divides 8gaussians by this rounded constant


def eight_gaussians(n: int, generator: torch.Generator) -> torch.Tensor:
    angles = torch.arange(8, dtype=torch.float64) * math.pi / 4
    centres = 4 * torch.stack([angles.cos(), angles.sin()], -1)
    pick = torch.randint(8, (n,), generator=generator)
    return (centres[pick] + 0.5 * torch.randn(n, 2, generator=generator,
                                               dtype=torch.float64)) / SQRT2


def eight_gaussians_log_prob(x: torch.Tensor) -> torch.Tensor:
    angles = torch.arange(8, dtype=torch.float64) * math.pi / 4
    centres = 4 * torch.stack([angles.cos(), angles.sin()], -1) / SQRT2
    std = 0.5 / SQRT2
    d2 = (x[:, None, :] - centres).pow(2).sum(-1)
    return torch.logsumexp(-0.5 * d2 / std ** 2, -1) - math.log(8) - math.log(2 * math.pi
                                                                              * std ** 2)


def checkerboard(n: int, generator: torch.Generator) -> torch.Tensor:
    x1 = 4 * torch.rand(n, generator=generator, dtype=torch.float64) - 2
    x2 = (torch.rand(n, generator=generator, dtype=torch.float64)
          - 2 * torch.randint(2, (n,), generator=generator)) + torch.floor(x1) % 2
    return 2 * torch.stack([x1, x2], -1)


def two_spirals(n: int, generator: torch.Generator) -> torch.Tensor:
    half = n // 2
    turn = torch.rand(half, generator=generator, dtype=torch.float64).sqrt() * 3 * math.pi
    arm = torch.stack([-turn.cos() * turn, turn.sin() * turn], -1)
    arm = arm + 0.5 * torch.rand(half, 2, generator=generator, dtype=torch.float64)
    x = torch.cat([arm, -arm]) / 3
    return x + 0.1 * torch.randn(x.shape, generator=generator, dtype=torch.float64)


def pinwheel(n: int, generator: torch.Generator) -> torch.Tensor:
    arms, per = 5, n // 5
    radial = 0.3 * torch.randn(arms * per, generator=generator, dtype=torch.float64) + 1
    tangential = 0.1 * torch.randn(arms * per, generator=generator, dtype=torch.float64)
    label = torch.arange(arms).repeat_interleave(per)
    angle = 2 * math.pi * label / arms + 0.25 * radial.exp()
    c, s = angle.cos(), angle.sin()
    return 2 * torch.stack([radial * c - tangential * s, radial * s + tangential * c], -1)


DATASETS = {"8gaussians": eight_gaussians, "checkerboard": checkerboard,
            "2spirals": two_spirals, "pinwheel": pinwheel}
PUBLISHED = {"8gaussians": "FFJORD/RNODE figures only (no NLL table for the toys)",
             "checkerboard": "FFJORD/RNODE figures only"}


def floor(name: str) -> float | None:
    if name == "8gaussians":
        x = eight_gaussians(200_000, torch.Generator().manual_seed(123))
        return float(-eight_gaussians_log_prob(x).mean())
    if name == "checkerboard":
        return math.log(32)
    return None


class CountingCNF(CNF):
    """A CNF that records the mean field evaluations per sample of every training solve."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.counts = []

    def flow(self, x, regularise=False, generator=None):
        result = super().flow(x, regularise, generator)
        if torch.is_grad_enabled():
            self.counts.append(float(result.nfev.double().mean()))
        return result


def run(name: str, regularised: bool, args) -> dict:
    generator = torch.Generator().manual_seed(0)
    train = DATASETS[name](args.samples, generator).float()
    test = DATASETS[name](5000, torch.Generator().manual_seed(1)).float()
    torch.manual_seed(0)
    model = CountingCNF(dim=2, hidden=args.hidden, trace=args.trace)
    weight = args.rnode if regularised else 0.0
    loss = pn.training.DensityLoss(kinetic=weight, jacobian=weight, max_epochs=args.epochs)
    start = time.perf_counter()
    result = pn.fit(model, train, loss=loss, val_fraction=0.05, progress=args.progress)
    seconds = time.perf_counter() - start
    per_epoch = math.ceil(0.95 * args.samples / loss.batch_size)
    # The test NLL always with the exact trace (the same weights), so that estimators compare.
    exact = CNF(dim=2, hidden=args.hidden, trace="exact")
    exact.load_state_dict(model.state_dict())
    with torch.no_grad():
        flow = exact.flow(test)
    return {"dataset": name, "rnode": regularised, "trace": args.trace,
            "test_nll": float(-flow.log_prob.mean()),
            "test_nfe": float(flow.nfev.double().mean()),
            "train_nfe_mean": sum(model.counts) / len(model.counts),
            "train_nfe_last_epoch": sum(model.counts[-per_epoch:]) / len(
                model.counts[-per_epoch:]),
            "iterations": len(model.counts), "epochs": len(result.history),
            "train_seconds": seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run (CI)")
    parser.add_argument("--datasets", nargs="+", default=["8gaussians", "checkerboard"],
                        choices=list(DATASETS))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--samples", type=int, default=40_000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--rnode", type=float, default=0.01,
                        help="weight of both RNODE regularisers in the regularised runs")
    parser.add_argument("--variants", nargs="+", default=["mle", "rnode"],
                        choices=["mle", "rnode"], help="which trainings to run")
    parser.add_argument("--trace", default="exact", choices=["exact", "hutchinson"],
                        help="the trace in training (FFJORD's protocol: hutchinson, one "
                             "Gaussian probe per sample); the test NLL uses the exact one")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.epochs, args.samples, args.hidden = ["8gaussians"], 1, 1000, 16
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.datasets:
        best = floor(name)
        for regularised in [v == "rnode" for v in args.variants]:
            row = {**run(name, regularised, args), "floor": best}
            rows.append(row)
            gap = "" if best is None else f", {row['test_nll'] - best:+.3f} from the floor"
            print(f"{name:13s} {'RNODE' if regularised else 'MLE  '} ({args.trace}): test NLL "
                  f"{row['test_nll']:.3f}{gap} (floor {best if best is None else f'{best:.3f}'}); "
                  f"NFE/sample train {row['train_nfe_mean']:.1f} (last epoch "
                  f"{row['train_nfe_last_epoch']:.1f}), test {row['test_nfe']:.1f}; "
                  f"{row['iterations']} iterations in {row['train_seconds']:.0f} s", flush=True)
    record = {"machine": f"{platform.processor() or platform.machine()}, "
                         f"{torch.get_num_threads()} torch thread(s)",
              "torch": torch.__version__, "args": vars(args), "rows": rows}
    if args.out:
        write_text_atomic(args.out, json.dumps(record, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
