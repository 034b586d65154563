"""A pendulum seen only through x = L sin q, at random times: a Latent ODE with a 2-D
mechanical latent (an HNN, z = (q, p)) learns it and extrapolates two periods.

Nothing tells the model the angle or the momentum: each series is ~25 noisy values of the
bob's horizontal position at random times in [0, 3] s. The ODE-RNN encoder reads a series
backwards into q(z0); the latent HNN rolls z forward; the decoder maps z to x. We then
predict, from the observations in [0, 3] s alone, up to two periods (≈ 4 s) past them, with
the spread over samples of z0 as the uncertainty, and compare with the truth.

    python examples/latent_pendulum.py [--quick] [--out DIR]
"""

import argparse
import math
import time
from pathlib import Path

import torch

import physnode as pn

LENGTH, T_OBS = 1.0, 3.0


def observed(pendulum, y0, t_span, n_points, noise, irregular, seed):
    """Series of x = L sin q (with Gaussian noise of std ``noise``) from states ``y0``."""
    data = pn.data.simulate(pendulum, t_span=t_span, n_points=n_points, irregular=irregular,
                            seed=seed, y0=y0)
    g = torch.Generator().manual_seed(seed + 1)
    return pn.data.Trajectories([
        pn.data.Trajectory(tr.t, LENGTH * torch.sin(tr.y[:, :1])
                           + noise * torch.randn(len(tr), 1, generator=g, dtype=tr.y.dtype))
        for tr in data], ("x",))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (CI, < 1 min)")
    parser.add_argument("--out", default="out/latent_pendulum", help="output folder")
    args = parser.parse_args()
    out = Path(args.out)
    torch.manual_seed(0)

    # 1. Data: amplitudes up to ~70°, x observed at 25 random times in [0, 3] s, 2% noise.
    pendulum = pn.systems.Pendulum(g=9.81, length=LENGTH)
    period = 2 * math.pi * math.sqrt(LENGTH / 9.81)           # small-angle period, ≈ 2.0 s
    n_train = 64 if args.quick else 256
    g = torch.Generator().manual_seed(0)
    y0 = torch.cat([2.4 * torch.rand(n_train + 8, 1, generator=g) - 1.2,
                    torch.zeros(n_train + 8, 1)], 1).double()
    data = observed(pendulum, y0[:n_train], (0.0, T_OBS), 25, 0.02, True, seed=0)
    test = observed(pendulum, y0[n_train:], (0.0, T_OBS), 25, 0.02, True, seed=1)

    # 2. A Latent ODE whose latent is mechanical: an HNN of one degree of freedom.
    model = pn.models.LatentODE(obs_dim=1, latent_dim=2,
                                dynamics=pn.models.HNN(dof=1, hidden=32), encoder_dim=24,
                                hidden=32, noise=0.05).double()
    start = time.time()
    result = pn.fit(model, data, epochs=20 if args.quick else 200, seed=0)
    print(f"trained {len(result.history)} epochs in {time.time() - start:.0f} s; "
          f"final ELBO loss {result.history[-1]['train_loss']:.3g}")

    # 3. Predict from the observations in [0, 3] s up to two periods past them.
    t_new = torch.linspace(0.0, T_OBS + 2 * period, 160, dtype=torch.float64)
    prediction = model.predict(test, t_new, samples=32)
    truth = torch.stack([tr.y[:, 0] for tr in observed(pendulum, y0[n_train:], (0.0, float(
        t_new[-1])), len(t_new), 0.0, False, seed=2)])
    after = t_new > T_OBS
    rmse_in = (prediction.mean[..., 0] - truth)[:, ~after].pow(2).mean().sqrt().item()
    rmse_out = (prediction.mean[..., 0] - truth)[:, after].pow(2).mean().sqrt().item()
    spread = truth.std().item()
    print(f"RMSE of x on the observed window {rmse_in:.3f}, over the two periods after it "
          f"{rmse_out:.3f} (spread of x {spread:.3f})")

    # 4. A figure of the decoded extrapolation with its uncertainty.
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True, sharey=True)
    for i, ax in enumerate(axes.flat):
        mean, std = prediction.mean[i, :, 0], prediction.std[i, :, 0]
        ax.plot(t_new, truth[i], color="0.6", lw=1, label="truth")
        ax.plot(test[i].t, test[i].y[:, 0], "k.", ms=4, label="observed")
        ax.plot(t_new, mean, color="C0", label="Latent ODE (mean)")
        ax.fill_between(t_new, mean - 2 * std, mean + 2 * std, color="C0", alpha=0.25,
                        label="± 2 std over z0")
        ax.axvline(T_OBS, color="C3", ls="--", lw=1)
    axes[0, 0].legend(fontsize=8, loc="lower left")
    fig.suptitle("x = L sin q at random times in [0, 3] s; extrapolation of two periods")
    for ax in axes[1]:
        ax.set_xlabel("t (s)")
    out.mkdir(parents=True, exist_ok=True)
    figure = out / "latent_pendulum.png"
    tmp = out / ".latent_pendulum.png.tmp"
    fig.savefig(tmp, dpi=110, format="png")
    tmp.replace(figure)
    model.save(out / "latent_pendulum.pt")
    print(f"wrote {figure}")


if __name__ == "__main__":
    main()
