"""The invariant density of a chaotic system: a continuous normalizing flow learns the
Lorenz attractor's natural measure, projected on the (x, z) plane.

Long orbits of the Lorenz system (σ = 10, ρ = 28, β = 8/3) visit the attractor with the
frequencies of its invariant (SRB) measure, whatever their start: time averages along the
orbit are averages over that density. Samples of (x, z) taken along many orbits after a
transient are therefore draws from the measure's projection, the two-lobed "butterfly". A
CNF (``pn.models.CNF``, exact trace, dopri5) fitted by maximum likelihood with ``pn.fit``
turns the samples into a smooth density with a log-likelihood we can evaluate anywhere
and draw new states from; we compare its held-out NLL with a Gaussian's and plot the two
beside the samples' histogram.

    python examples/cnf_density.py [--quick] [--out DIR]
"""

import argparse
from pathlib import Path

import torch

import physnode as pn


def attractor_samples(n_orbits: int, per_orbit: int, seed: int) -> torch.Tensor:
    """(x, z) along ``n_orbits`` Lorenz orbits, every 0.1 time units after a transient of 10."""
    lorenz = pn.systems.Lorenz()
    generator = torch.Generator().manual_seed(seed)
    low, high = torch.tensor([-10.0, -10.0, 15.0]), torch.tensor([10.0, 10.0, 35.0])
    y0 = low + (high - low) * torch.rand(n_orbits, 3, generator=generator, dtype=torch.float64)
    t = torch.linspace(0.0, 10.0 + 0.1 * per_orbit, per_orbit + 101, dtype=torch.float64)
    ys = pn.solve(lorenz, y0.double(), t, method="dopri5", rtol=1e-8, atol=1e-8).ys[101:]
    return ys[..., [0, 2]].reshape(-1, 2).float()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small, fast run (CI)")
    parser.add_argument("--out", default="out/cnf_density", help="output folder")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)

    # 1. Samples of the invariant measure, and held-out ones from other orbits.
    orbits, per_orbit = (10, 200) if args.quick else (50, 400)
    train = attractor_samples(orbits, per_orbit, seed=0)
    test = attractor_samples(5, per_orbit, seed=1)
    print(f"{len(train)} training states of (x, z) on the attractor")

    # 2. A CNF fitted by maximum likelihood (with light RNODE regularisation, for fewer
    #    solver steps); the flow normalises the data by its own mean and spread.
    torch.manual_seed(0)
    cnf = pn.models.CNF(dim=2, hidden=32 if args.quick else 64)
    loss = pn.training.DensityLoss(kinetic=0.01, jacobian=0.01, batch_size=256,
                                   max_epochs=15 if args.quick else 40)
    pn.fit(cnf, train, loss=loss)
    saved = cnf.save(out / "cnf.pt")
    cnf = pn.models.load(saved)

    # 3. Held-out NLL against a Gaussian with the data's mean and covariance.
    with torch.no_grad():
        nll = -cnf.log_prob(test).mean().item()
    gaussian = torch.distributions.MultivariateNormal(train.mean(0), torch.cov(train.T))
    print(f"held-out NLL: CNF {nll:.3f} nats, Gaussian {-gaussian.log_prob(test).mean():.3f} "
          f"nats (model saved to {saved})")

    # 4. The learned density beside the held-out samples' histogram.
    path = pn.analysis.plot_density(cnf, out / "lorenz_density.png", box=((-25, 25), (0, 55)),
                                    samples=test, resolution=60 if args.quick else 150,
                                    labels=("x", "z"))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
