"""Latent ODE against an ODE-RNN and a plain RNN, in one run, on the toy periodic set of
Rubanova, Chen & Duvenaud (2019) and the spirals of torchdiffeq's ``examples/latent_ode.py``
(Chen et al. 2018, §5.1).

Periodic: ``x(t) = sin(2π f t) + 0.01 ε``, ``f ~ U[0.4, 0.8]`` per series, 100 sorted uniform
times on [0, 5] shared by all series (t = 0 included), 50 of them observed at random per
series (each series its own grid). Spirals: torchdiffeq's ``generate_spiral2d`` (a = 0,
b = 0.3, 1000 points on [0, 6π], clockwise or counter-clockwise at random, a random start in
the first 800 points, noise 0.3): 100 consecutive points per training series, 50 of them
observed at random.

Every model trains on the observed points of the training series only, with the same
epochs, batches of 50 and Adam (lr 1e-2): the Latent ODE through ``pn.fit`` with its
defaults for everything but the epoch cap (ELBO, 20% of the series held out, best validation
weights); the ODE-RNN (``physnode.models.latent.ODERNN``, run forwards) and the RNN (a GRU fed
``[x ⊙ m, m, Δt]``) on the squared error of their prediction of each observed value from the
values before it. Errors are on values no model saw, against the noise-free signal:

* interpolation (periodic): the 50 unobserved of the 100 times, given the 50 observed;
* extrapolation (periodic): the times in (2.5, 5], given the observed ones in [0, 2.5];
* spirals: the 100 points after the window, given 50 random of the window's 100 (the
  Neural ODE paper's Table 2 setting: predictive RMSE, 50 irregular observations).

The Latent ODE predicts from the mean of ``q(z0)``; the ODE-RNN and the RNN predict from their
state evolved (or fed Δt) past the last observation.

    python benchmarks/latent_ode.py [--quick] [--series 300] [--epochs 40] [--kl-warmup N]
                                    [--only periodic|spirals] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
from torch import nn

import physnode as pn
from physnode.models.base import mlp
from physnode.models.latent import ODERNN

# --- data -------------------------------------------------------------------------------

def periodic(n: int, seed: int):
    """``(t (n, 100), clean (n, 100, 1), noisy, observed mask)``."""
    g = torch.Generator().manual_seed(seed)
    t = torch.cat([torch.zeros(1), torch.sort(torch.rand(99, generator=g) * 5).values]).double()
    f = (0.4 + 0.4 * torch.rand(n, 1, generator=g)).double()
    clean = torch.sin(2 * math.pi * f * t)[..., None]
    noisy = clean + 0.01 * torch.randn(clean.shape, generator=g, dtype=clean.dtype)
    return t.expand(n, -1), clean, noisy, random_half(n, 100, g)


def random_half(n, k, g):
    """A mask ``(n, k, 1)`` with k/2 random ones per row (the first point always observed:
    ``z0`` lives at the first time)."""
    keys = torch.rand(n, k, generator=g)
    keys[:, 0] = -1
    mask = torch.zeros(n, k)
    mask.scatter_(1, keys.argsort(1)[:, :k // 2], 1.0)
    return mask[..., None].double()


def spirals(n: int, seed: int, total=1000, window=100):
    """torchdiffeq's ``generate_spiral2d`` (a = 0, b = 0.3, noise 0.3) with two windows per
    series: ``(t (n, 200), clean (n, 200, 2), noisy, mask of 50 random of the first 100)``."""
    rng = np.random.RandomState(seed)
    orig_ts = np.linspace(0, 6 * np.pi, total)
    zs_cw = 6 * np.pi + 1.0 - orig_ts
    rs_cw = 0.3 * 50.0 / zs_cw
    cw = np.stack((rs_cw * np.cos(zs_cw) - 5.0, rs_cw * np.sin(zs_cw)), 1)
    rw_cc = 0.3 * orig_ts
    cc = np.stack((rw_cc * np.cos(orig_ts) + 5.0, rw_cc * np.sin(orig_ts)), 1)
    clean = []
    for _ in range(n):
        start = rng.randint(total - 2 * window)
        traj = cc if rng.rand() > 0.5 else cw
        clean.append(traj[start:start + 2 * window])
    clean = torch.tensor(np.stack(clean))
    noisy = clean + 0.3 * torch.tensor(rng.randn(*clean.shape))
    t = torch.tensor(orig_ts[:2 * window]).expand(n, -1)
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(n, 2 * window, 2, dtype=torch.float64)
    mask[:, :window] = random_half(n, window, g)          # both coordinates at a time
    return t, clean, noisy, mask


def observed(t, y, mask) -> pn.data.Trajectories:
    """Each series' observed points as a Trajectory of its own times."""
    keep = mask[..., 0] > 0
    return pn.data.Trajectories([pn.data.Trajectory(t[i][keep[i]], y[i][keep[i]])
                                 for i in range(len(t))])


# --- baselines ------------------------------------------------------------------------

class GRUDelta(nn.Module):
    """A plain RNN: a GRU fed ``[x ⊙ m, m, Δt]`` at every time; the state before the update
    comes from the same GRU fed ``[0, 0, Δt]``."""

    def __init__(self, input_dim, hidden):
        super().__init__()
        self.gru, self.hidden = nn.GRUCell(2 * input_dim + 1, hidden), hidden

    def forward(self, t, x, mask):
        h = x.new_zeros(x.shape[0], self.hidden)
        before, after = [], []
        for j in range(t.shape[1]):
            dt = (t[:, j] - t[:, j - 1] if j else torch.zeros_like(t[:, 0]))[:, None]
            h0 = self.gru(torch.cat([torch.zeros_like(x[:, j]), torch.zeros_like(x[:, j]), dt],
                                    -1), h)
            m = mask[:, j]
            h1 = self.gru(torch.cat([x[:, j] * m, m, dt], -1), h)
            seen = m.any(-1, keepdim=True)
            h = torch.where(seen, h1, h0)
            before.append(h0)
            after.append(h)
        return torch.stack(before, 1), torch.stack(after, 1)


class Forecaster(nn.Module):
    """A recurrent model (ODE-RNN or RNN) with a decoder: the prediction at each time comes
    from the state before that time's observation. Inputs and times are normalised."""

    def __init__(self, cell, hidden, obs_dim, loc, scale, time_scale):
        super().__init__()
        self.cell, self.decoder = cell, mlp(hidden, obs_dim, 64, 1, "tanh")
        self.loc, self.scale, self.time_scale = loc, scale, time_scale

    def forward(self, t, y, mask):
        x = (y - self.loc) / self.scale * mask
        before, _ = self.cell(t / self.time_scale, x, mask)
        return self.decoder(before) * self.scale + self.loc


def train_forecaster(model, t, y, mask, epochs, seed):
    t, y, mask = t.double(), y.double(), mask.double()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(t), generator=g)
        for start in range(0, len(t), 50):
            idx = order[start:start + 50]
            opt.zero_grad()
            error = (model(t[idx], y[idx], mask[idx]) - y[idx]) / model.scale
            loss = (error.pow(2) * mask[idx]).sum() / mask[idx].sum()
            loss.backward()
            opt.step()
    return model


# --- the run ----------------------------------------------------------------------------

def latent_predict(model, t, y, mask, t_out):
    with torch.no_grad():
        mean, _ = model.encode(t, y, mask)
        return model.decode(mean, t_out)


def rmse(prediction, truth, where):
    return ((prediction - truth).pow(2) * where).sum().div(where.sum()).sqrt().item()


def mse(prediction, truth, where):
    return rmse(prediction, truth, where) ** 2


def run(name, make, n, epochs, tasks, seed=0, kl_warmup=0):
    t, clean, noisy, mask = make(n, seed)
    n_train = int(0.8 * n)
    tr, te = slice(0, n_train), slice(n_train, n)
    k_train = int(mask[tr, :, 0].sum(0).nonzero().max()) + 1          # columns training sees
    data = observed(t[tr, :k_train], noisy[tr, :k_train], mask[tr, :k_train])
    obs_dim = clean.shape[-1]
    latent_dim = 4 if obs_dim == 2 else 10
    results = {}
    torch.manual_seed(seed)
    model = pn.models.LatentODE(obs_dim, latent_dim, encoder_dim=25, hidden=64,
                                noise=0.05).double()
    start = time.perf_counter()
    loss = pn.training.ELBOLoss(kl_warmup=kl_warmup) if kl_warmup else "auto"
    fit = pn.fit(model, data, epochs=epochs, seed=seed, progress=False, loss=loss)
    results["Latent ODE"] = {"seconds": time.perf_counter() - start,
                             "epochs": len(fit.history)}
    print(f"{name}: Latent ODE trained in {results['Latent ODE']['seconds']:.0f} s", flush=True)
    values = noisy[tr][mask[tr, :, 0].bool()]                         # (observed, obs_dim)
    loc, y_scale = values.mean(0), values.std(0)
    duration = float(t[0, k_train - 1] - t[0, 0])
    cells = {"ODE-RNN": lambda: ODERNN(obs_dim, 25, 64), "RNN": lambda: GRUDelta(obs_dim, 25)}
    forecasters = {}
    for label, cell in cells.items():
        torch.manual_seed(seed)
        forecaster = Forecaster(cell(), 25, obs_dim, loc, y_scale, duration).double()
        start = time.perf_counter()
        train_forecaster(forecaster, *data.padded(), epochs, seed)   # observed times only
        results[label] = {"seconds": time.perf_counter() - start, "epochs": epochs}
        print(f"{name}: {label} trained in {results[label]['seconds']:.0f} s", flush=True)
        forecasters[label] = forecaster
    for task, (given, target, k_in) in tasks(t, mask).items():
        tt, yy, gg, tg, cl = t[te], noisy[te], given[te], target[te], clean[te]
        predictions = {"Latent ODE": latent_predict(model, tt[:, :k_in], yy[:, :k_in],
                                                    gg[:, :k_in], tt)}
        for label, forecaster in forecasters.items():
            with torch.no_grad():
                predictions[label] = forecaster(tt, yy, gg)
        for label, p in predictions.items():
            results[label][f"{task} mse"] = mse(p, cl, tg)
            results[label][f"{task} rmse"] = rmse(p, cl, tg)
    print(f"\n{name}: {n} series ({n_train} for training), {epochs} epochs")
    for label, r in results.items():
        figures = ", ".join(f"{k} {v:.4g}" for k, v in r.items() if k not in ("epochs",))
        print(f"  {label:<11} {figures}", flush=True)
    return results


def periodic_tasks(t, mask):
    first_half = (t <= 2.5)[..., None].double()
    return {"interpolation": (mask, 1 - mask, 100),
            "extrapolation": (mask * first_half, 1 - first_half, int(first_half[0].sum()))}


def spiral_tasks(t, mask):
    future = torch.zeros_like(mask)
    future[:, 100:] = 1
    return {"extrapolation": (mask, future, 100)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run (CI)")
    parser.add_argument("--series", type=int, default=300, help="series per data set")
    parser.add_argument("--epochs", type=int, default=40, help="epochs of every model")
    parser.add_argument("--only", choices=("periodic", "spirals"), default=None)
    parser.add_argument("--json", default=None, help="write the figures to this file")
    parser.add_argument("--kl-warmup", type=int, default=0,
                        help="the Latent ODE's KL annealing epochs (ELBOLoss(kl_warmup=))")
    args = parser.parse_args()
    n, epochs = (30, 2) if args.quick else (args.series, args.epochs)
    out = {}
    if args.only in (None, "periodic"):
        out["periodic"] = run("toy periodic (Rubanova et al.)", periodic, n, epochs,
                              periodic_tasks, kl_warmup=args.kl_warmup)
    if args.only in (None, "spirals"):
        out["spirals"] = run("spirals (torchdiffeq)", spirals, n, epochs, spiral_tasks,
                             kl_warmup=args.kl_warmup)
    if args.json:
        from physnode._atomic import atomic_path
        with atomic_path(args.json) as tmp, open(tmp, "w") as handle:
            json.dump(out, handle, indent=1)


if __name__ == "__main__":
    main()
