"""The CNF's mathematics: the instantaneous change of variables against exact Gaussians, the
trace estimators, the RNODE integrals against closed forms, sampling, saving, fitting."""

import math

import pytest
import torch
from torch import nn

import physnode as pn
from physnode.models.cnf import AugmentedField

A = torch.tensor([[-0.4, 0.7], [-0.3, 0.2]], dtype=torch.float64)
LOC = torch.tensor([1.5, -2.0], dtype=torch.float64)
SCALE = torch.tensor([3.0, 0.5], dtype=torch.float64)


def linear_cnf(matrix=A, trace="exact", t_end=1.0, tol=1e-10):
    """A CNF whose field is ``f(z, t) = A z`` (one linear layer), in data units with offset
    ``LOC`` and spread ``SCALE``."""
    cnf = pn.models.CNF(dim=2, hidden=4, trace=trace, t_end=t_end, rtol=tol, atol=tol)
    cnf.net = nn.Sequential(nn.Linear(3, 2))
    cnf.double()
    with torch.no_grad():
        cnf.net[0].weight.copy_(torch.cat([matrix, torch.zeros(2, 1, dtype=torch.float64)], 1))
        cnf.net[0].bias.zero_()
        cnf.y_loc.copy_(LOC)
        cnf.y_scale.copy_(SCALE)
    return cnf


def nonlinear_field(dim=3, seed=0):
    torch.manual_seed(seed)
    return pn.models.base.mlp(dim + 1, dim, 16, 2, "tanh").double()


def test_linear_flow_log_density_is_the_exact_gaussian_change_of_variables():
    # z(T) = e^{AT} u with u = (x − loc)/scale and z(T) ~ N(0, I): x is Gaussian with mean loc
    # and covariance S e^{−AT} e^{−AᵀT} S.
    cnf, T = linear_cnf(t_end=1.3), 1.3
    back = torch.linalg.matrix_exp(-A * T)
    covariance = torch.diag(SCALE) @ back @ back.T @ torch.diag(SCALE)
    exact = torch.distributions.MultivariateNormal(LOC, covariance)
    x = exact.sample((50,), ) + torch.randn(50, 2, dtype=torch.float64)
    with torch.no_grad():
        got = cnf.log_prob(x)
    torch.testing.assert_close(got, exact.log_prob(x), rtol=0, atol=1e-7)
    # and its samples come from that Gaussian: the reverse flow is e^{−AT}
    torch.manual_seed(1)
    samples = cnf.sample(4000)
    torch.testing.assert_close(torch.cov(samples.T), covariance, rtol=0.1, atol=0.05)


def test_exact_trace_and_frobenius_equal_the_autograd_jacobian():
    net, dim = nonlinear_field(), 3
    field = AugmentedField(net, dim, regularise=True)
    z, t = torch.randn(5, dim, dtype=torch.float64), torch.rand(5, 1, dtype=torch.float64)
    out = field(t, torch.cat([z, torch.zeros(5, 3, dtype=torch.float64)], -1))
    for i in range(5):
        jacobian = torch.autograd.functional.jacobian(
            lambda zi, ti=t[i]: net(torch.cat([zi, ti])), z[i])
        torch.testing.assert_close(out[i, :dim], net(torch.cat([z[i], t[i]])))
        torch.testing.assert_close(out[i, dim], jacobian.trace())
        torch.testing.assert_close(out[i, dim + 1], net(torch.cat([z[i], t[i]])).pow(2).sum())
        torch.testing.assert_close(out[i, dim + 2], jacobian.pow(2).sum())


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hutchinson_estimates_are_unbiased(probe):
    net, dim, n = nonlinear_field(), 3, 20_000
    estimator = pn.models.Hutchinson(probe=probe)
    y = torch.cat([torch.randn(1, dim, dtype=torch.float64).expand(n, dim),
                   torch.zeros(n, 1, dtype=torch.float64)], -1)
    t = torch.full((n, 1), 0.3, dtype=torch.float64)
    exact = AugmentedField(net, dim, regularise=True)(t[:1], y[:1])[0]
    torch.manual_seed(0)
    probes = estimator.draw((n, dim), y)
    estimates = AugmentedField(net, dim, regularise=True)(t, y, probes)
    for k in (dim, dim + 2):                # the trace and the Frobenius norm
        mean, sigma = estimates[:, k].mean(), estimates[:, k].std() / math.sqrt(n)
        assert abs(mean - exact[k]) < 3 * sigma, (k, mean, exact[k], sigma)
        assert sigma > 0
    # and through a whole solve: the mean log-density over probes is the exact one.
    cnf = pn.models.CNF(dim=2, hidden=8, trace=estimator, rtol=1e-9, atol=1e-9).double()
    exact_cnf = pn.models.CNF(dim=2, hidden=8, trace="exact", rtol=1e-9, atol=1e-9).double()
    exact_cnf.load_state_dict(cnf.state_dict())
    x = torch.tensor([[0.3, -0.8]], dtype=torch.float64)
    with torch.no_grad():
        reference = exact_cnf.log_prob(x)[0]
        values = cnf.log_prob(x.expand(2000, 2))
    mean, sigma = values.mean(), values.std() / math.sqrt(len(values))
    assert abs(mean - reference) < 3 * sigma and sigma > 0


def test_rnode_integrals_match_closed_forms_for_a_linear_field():
    # f = A z with A = diag(a): ∫₀ᵀ ‖f‖² dt = Σ a_i u_i² (e^{2 a_i T} − 1)/2, ‖∂f/∂z‖²_F = Σ a_i².
    a, T = torch.tensor([-0.5, 0.8], dtype=torch.float64), 0.7
    cnf = linear_cnf(torch.diag(a), t_end=T)
    x = torch.randn(6, 2, dtype=torch.float64) * SCALE + LOC
    u = (x - LOC) / SCALE
    with torch.no_grad():
        flow = cnf.flow(x, regularise=True)
    kinetic = (a * u.pow(2) * (torch.exp(2 * a * T) - 1) / 2).sum(-1)
    torch.testing.assert_close(flow.kinetic, kinetic, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(flow.jacobian, torch.full((6,), a.pow(2).sum().item() * T,
                                                         dtype=torch.float64))
    torch.testing.assert_close(flow.z, u * torch.exp(a * T))
    assert flow.nfev.shape == (6,) and bool((flow.nfev > 0).all())


def bent_cnf(tol):
    """A CNF whose pushforward is clearly not Gaussian, in data units."""
    torch.manual_seed(0)
    cnf = pn.models.CNF(dim=2, hidden=16, rtol=tol, atol=tol).double()
    with torch.no_grad():
        for p in cnf.parameters():
            p.mul_(3.0)
        cnf.y_loc.copy_(LOC)
        cnf.y_scale.copy_(SCALE)
    return cnf


def test_samples_log_density_matches_log_prob_of_the_samples():
    cnf = bent_cnf(1e-9)
    with torch.no_grad():
        x, log_prob = cnf.sample(64, with_log_prob=True)
        torch.testing.assert_close(cnf.log_prob(x), log_prob, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_the_density_integrates_to_one():
    cnf = bent_cnf(1e-6)
    grid = torch.stack(torch.meshgrid(torch.linspace(-20, 24, 200, dtype=torch.float64),
                                      torch.linspace(-6, 2, 200, dtype=torch.float64),
                                      indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        mass = cnf.log_prob(grid).exp().sum() * (44 / 199) * (8 / 199)
    assert abs(mass.item() - 1) < 0.02


def test_save_and_load_round_trip(tmp_path):
    cnf = pn.models.CNF(dim=3, hidden=8, layers=2, trace=pn.models.Hutchinson(probe="gaussian"),
                        t_end=0.5)
    with torch.no_grad():
        cnf.y_loc.fill_(2.0)
        cnf.y_scale.fill_(0.3)
    loaded = pn.models.load(cnf.save(tmp_path / "cnf.pt"))
    assert isinstance(loaded, pn.models.CNF) and loaded.config == cnf.config
    assert loaded.trace == pn.models.Hutchinson(probe="gaussian")
    x = torch.randn(4, 3) * 0.3 + 2
    torch.manual_seed(3)
    a = cnf.log_prob(x)
    torch.manual_seed(3)
    torch.testing.assert_close(loaded.log_prob(x), a)


def test_fit_trains_on_samples_with_checkpoints(tmp_path):
    torch.manual_seed(0)
    samples = torch.randn(600, 2) * torch.tensor([4.0, 0.25]) + torch.tensor([10.0, -3.0])
    cnf = pn.models.CNF(dim=2, hidden=16, layers=2)
    path = tmp_path / "fit.ckpt"
    loss = pn.training.DensityLoss(batch_size=128, kinetic=0.01, jacobian=0.01)
    result = pn.fit(cnf, samples, loss=loss, epochs=3, checkpoint=path, progress=False)
    assert result.stages == ["density"] and len(result.history) == 3 and path.is_file()
    torch.testing.assert_close(cnf.y_loc, samples.mean(0), rtol=0, atol=0.6)  # 80% of them
    # the data's own units: a Gaussian fitted in normalised coordinates is near the truth
    truth = torch.distributions.Normal(torch.tensor([10.0, -3.0]), torch.tensor([4.0, 0.25]))
    with torch.no_grad():
        nll = -cnf.log_prob(samples).mean()
    assert abs(nll - (-truth.log_prob(samples).sum(-1).mean())) < 0.1
    again = pn.fit(cnf, samples, loss=loss, epochs=3, checkpoint=path, resume=True,
                   progress=False)
    assert len(again.history) == 3                  # nothing left to do


@pytest.mark.parametrize("build, error, message", [
    (lambda: pn.models.CNF(dim=0), ValueError, r"^`dim` must be"),
    (lambda: pn.models.CNF(dim=2, trace="hutch"), ValueError,
     r"^`trace` must be 'auto', 'exact', 'hutchinson', ExactTrace\(\) or "
     r"Hutchinson\(probe=...\); got 'hutch'$"),
    (lambda: pn.models.Hutchinson(probe="uniform"), ValueError,
     r"^`probe` must be one of 'rademacher', 'gaussian'; got 'uniform'$"),
    (lambda: pn.models.CNF(dim=2, method=pn.integrators.METHODS["dopri5"]()), TypeError,
     r"^`method` must be an integrator name \(saved with the model\); got Dopri5$"),
    (lambda: pn.models.CNF(dim=2, t_end=0.0), ValueError, r"^`t_end` must be positive"),
    (lambda: pn.models.CNF(dim=2).log_prob(torch.zeros(4, 3)), ValueError,
     r"^`x` must have last dimension 2 for CNF \(x1, x2\); got shape \(4, 3\)$"),
    (lambda: pn.models.CNF(dim=2).log_prob(torch.tensor([[0.0, float("nan")]])), ValueError,
     r"^`x` must be finite; got a non-finite value at index \(0, 1\)$"),
    (lambda: pn.models.CNF(dim=2).sample(0), ValueError, r"^`n` must be"),
    (lambda: pn.training.DensityLoss(kinetic=-1.0), ValueError,
     r"^`kinetic` must be non-negative; got -1.0$"),
    (lambda: pn.fit(pn.models.CNF(dim=2), torch.zeros(10, 3)), ValueError,
     r"^`data` must be samples of shape \(N, 2\) for CNF; got shape \(10, 3\)$"),
    (lambda: pn.fit(pn.models.CNF(dim=2), torch.full((10, 2), float("inf"))), ValueError,
     r"^`data` has non-finite values; expected finite numbers$"),
    (lambda: pn.fit(pn.models.CNF(dim=2), torch.zeros(1, 2)), ValueError,
     r"^`data` has 1 samples; expected at least 2$"),
    (lambda: pn.fit(pn.models.HNN(dof=1), torch.zeros(10, 2)), TypeError,
     r"^DensityLoss trains a density model with a `flow` method \(physnode.models.CNF\); "
     r"got HNN$"),
    (lambda: pn.fit(pn.models.CNF(dim=2), torch.zeros(10, 2), loss="derivative"), TypeError,
     r"^`data` is a tensor of samples, which only DensityLoss trains on; got a "
     r"DerivativeLoss$"),
    (lambda: pn.fit(pn.models.CNF(dim=2), pn.data.simulate(pn.systems.MassSpring(), 2),
                    loss=pn.training.DensityLoss()), TypeError,
     r"^DensityLoss trains on samples, a tensor \(N, dim\); got "
     r"physnode.data.Trajectories$"),
])
def test_bad_input_is_refused(build, error, message):
    with pytest.raises(error, match=message):
        build()
