"""Ensembles of models: members equal separate fits with the same seeds, discovery reports
inclusion frequencies and coefficient spreads, compare_energy reports the members' band."""

import numpy as np
import pytest
import sympy
import torch

import physnode as pn
from physnode.discovery import Equations


@pytest.fixture(scope="module")
def spring_data():
    return pn.data.simulate(pn.systems.MassSpring(k=2.0), n_trajectories=4, n_points=40,
                            noise=0.01, seed=3)


def test_members_equal_separate_fits_with_the_same_seeds(spring_data):
    """Member i is built under seed i and fitted with seed + i: its weights are exactly those
    of a model built and fitted alone with those seeds."""
    def factory():
        return pn.models.HNN(dof=1, hidden=16)

    ensemble = pn.models.Ensemble(factory, n=3, seed=5)
    result = pn.fit(ensemble, spring_data, epochs=4, seed=10, progress=False)
    assert isinstance(result, pn.models.EnsembleFit) and len(result.members) == 3
    assert {r["member"] for r in result.history} == {0, 1, 2}
    weights = []
    for i in range(3):
        torch.manual_seed(5 + i)
        alone = factory()
        pn.fit(alone, spring_data, epochs=4, seed=10 + i, progress=False)
        for (name, a), b in zip(alone.state_dict().items(),
                                ensemble.members[i].state_dict().values()):
            assert torch.equal(a, b), name
        weights.append(torch.cat([p.flatten() for p in alone.parameters()]))
    assert not torch.equal(weights[0], weights[1])       # the members differ


def test_bootstrap_resamples_trajectories_per_member(spring_data):
    plain = pn.models.Ensemble(lambda: pn.models.NeuralODE(dim=2), n=2)
    assert plain.training_data(spring_data, 1) is spring_data
    boot = pn.models.Ensemble(lambda: pn.models.NeuralODE(dim=2), n=3, seed=1, bootstrap=True)
    draws = [boot.training_data(spring_data, i) for i in range(3)]
    assert all(len(d) == len(spring_data) for d in draws)
    originals = [tr.y[0].tolist() for tr in spring_data]
    picks = [[originals.index(tr.y[0].tolist()) for tr in d] for d in draws]
    assert picks == [[originals.index(tr.y[0].tolist()) for tr in
                      boot.training_data(spring_data, i)] for i in range(3)]   # seeded
    assert len({tuple(p) for p in picks}) > 1
    samples = torch.arange(20.0).reshape(10, 2)             # a density's samples: rows
    rows = boot.training_data(samples, 2)
    assert rows.shape == samples.shape and set(rows[:, 0].tolist()) < set(samples[:, 0].tolist())
    assert torch.equal(rows, boot.training_data(samples, 2))


def _pendulum_member():
    """A pendulum field whose g is off by a seeded random amount (a stand-in for a fit)."""
    q, p = sympy.symbols("q p", real=True)
    g = 9.81 + 0.3 * torch.randn(()).item()
    return Equations({q: p, p: -g * sympy.sin(q)}).to_system()


@pytest.mark.filterwarnings("ignore:the model reproduces the observations poorly")
def test_discover_on_an_ensemble_reports_inclusion_and_spread():
    data = pn.data.simulate(pn.systems.Pendulum(), n_trajectories=4, n_points=60, seed=0)
    ensemble = pn.models.Ensemble(_pendulum_member, n=4)
    found = pn.discover(ensemble, data=data)
    q, p = found.symbols
    gs = []
    for member in ensemble.members:
        (g,) = [-c for t, c in member.source.coefficients[p].items() if t == sympy.sin(q)]
        gs.append(g)
    sin_q = sympy.sin(q)
    assert len(found.members) == 4 and found.inclusion[p][sin_q] == 1.0
    mean, std = found.spread[p][sin_q]
    np.testing.assert_allclose(-mean, np.mean(gs), rtol=1e-3)
    np.testing.assert_allclose(std, np.std(gs, ddof=1), rtol=1e-2)
    np.testing.assert_allclose(-found.coefficients[p][sin_q], np.median(gs), rtol=1e-3)
    assert std > 0.05


def test_consensus_keeps_terms_most_members_select():
    x = sympy.Symbol("x", real=True)
    members = [Equations({x: -1.0 * x + 0.2 * x ** 2}), Equations({x: -1.2 * x}),
               Equations({x: -1.1 * x + 0.4 * x ** 2}), Equations({x: -0.5 * x})]
    both = Equations.consensus(members)      # medians: -1.05 (the mean would be -0.95)
    assert both.coefficients[x] == pytest.approx({x: -1.05, x ** 2: 0.3})
    assert both.inclusion[x] == {x: 1.0, x ** 2: 0.5}
    assert both.spread[x][x ** 2] == pytest.approx((0.3, np.std([0.2, 0.4], ddof=1)))
    members.append(Equations({x: -1.0 * x}))
    assert x ** 2 not in Equations.consensus(members).coefficients[x]   # 2 of 5


def test_compare_energy_reports_the_members_band():
    pend = pn.systems.Pendulum()
    ensemble = pn.models.Ensemble(_pendulum_member, n=3)
    y0 = torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=torch.float64)
    options = {"system": pend, "y0": y0, "t_end": 5.0, "dt": 0.05}
    report = pn.compare_energy({"ensemble": ensemble}, integrators={"ensemble": "rk4"},
                               **options)
    alone = [pn.compare_energy({"m": m}, integrators={"m": "rk4"}, **options).table[0]
             for m in ensemble.members]
    row, band = report.table[0], report.bands["ensemble"]
    for column in ("trajectory_rmse", "max_rel_energy_error"):
        values = [r[column] for r in alone]
        assert row[column] == pytest.approx(np.median(values))
        assert band[column] == pytest.approx((min(values), max(values)))
    low, high = band["energy_error"]
    assert (low <= report.energy_errors["ensemble"]).all()
    assert (report.energy_errors["ensemble"] <= high).all()
    assert " [" in report.to_markdown()


@pytest.mark.parametrize("make,error,message", [
    (lambda: pn.models.Ensemble(lambda: pn.models.HNN(dof=1), n=1), ValueError,
     "`n` must be"),
    (lambda: pn.models.Ensemble("hnn", n=2), TypeError,
     r"`factory` must be callable \(factory\(\) -> model\); got str"),
    (lambda: pn.models.Ensemble(lambda: 3, n=2), TypeError,
     r"`factory\(\)` must return a model \(an nn.Module\); got int"),
    (lambda: pn.models.Ensemble(iter([pn.models.HNN(dof=1), pn.models.LNN(dof=1)]).__next__,
                                n=2), TypeError,
     "`factory\\(\\)` must return models of one kind; got HNN and LNN"),
    (lambda: pn.models.Ensemble(lambda: pn.models.HNN(dof=1), n=2, bootstrap="yes"),
     TypeError, "`bootstrap` must be True or False; got 'yes'"),
])
def test_bad_ensembles_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()
