"""SecondOrderNeuralODE: exact kinematics for any weights, shapes, saving, fitting on (q, q̇)
and on positions only, second-order discovery by default, and the SONODE paper's damped
oscillator recovered."""

import pytest
import sympy
import torch
from torch import nn

import physnode as pn
from physnode.data import Trajectories, Trajectory
from physnode.models.base import DataScales

GAMMA, OMEGA = 0.1, 1.0


def damped_oscillators(n=30, n_points=100, seed=0, derivatives=False) -> Trajectories:
    """ẍ = −2γẋ − (γ² + ω²)x (γ = 0.1, ω = 1) from (x, ẋ) uniform in [−2.5, 2.5]², over
    t ∈ [0, 10] (the SONODE paper's set)."""
    system = pn.systems.MassSpring(k=GAMMA ** 2 + OMEGA ** 2, mass=1.0, damping=2 * GAMMA)
    y0 = 5 * (torch.rand(n, 2, generator=torch.Generator().manual_seed(seed),
                         dtype=torch.float64) - 0.5)
    data = pn.data.simulate(system, t_span=(0.0, 10.0), n_points=n_points, y0=y0, seed=seed,
                            derivatives=derivatives)
    return Trajectories(list(data), ("q", "qdot"))


def acceleration_coefficients(equations):
    """``(2γ, γ² + ω²)`` as read from the discovered ``d qdot/dt``."""
    q, v = sympy.Symbol("q", real=True), sympy.Symbol("qdot", real=True)
    expr = sympy.expand(equations.equations[v])
    return -float(expr.coeff(v, 1).subs({q: 0})), -float(expr.coeff(q, 1).subs({v: 0}))


class TrueAcceleration(nn.Module):
    """Stands in for the network: the damped oscillator's acceleration."""

    def forward(self, y):
        return -2 * GAMMA * y[..., 1:] - (GAMMA ** 2 + OMEGA ** 2) * y[..., :1]


@pytest.mark.parametrize("batch", [(), (5,), (3, 4)])
def test_dq_dt_is_the_velocity_exactly_for_any_weights(batch):
    torch.manual_seed(0)
    model = pn.models.SecondOrderNeuralODE(dof=2, hidden=16).double()
    y = torch.randn(*batch, 4, dtype=torch.float64)
    rate = model(0.0, y)
    assert rate.shape == (*batch, 4)
    assert torch.equal(rate[..., :2], y[..., 2:])
    torch.testing.assert_close(rate[..., 2:], model.acceleration(0.0, y))
    assert model.state_names == ("q1", "q2", "qdot1", "qdot2")


def test_time_dependent_field_takes_per_sample_times():
    model = pn.models.SecondOrderNeuralODE(dof=1, hidden=8, time_dependent=True).double()
    y = torch.randn(6, 2, dtype=torch.float64)
    t = torch.linspace(0, 1, 6, dtype=torch.float64)[:, None]
    assert model(t, y).shape == (6, 2)
    assert not torch.equal(model(t, y)[:, 1], model(0.0, y)[:, 1])


def test_adapt_scales_the_accelerations_and_keeps_the_kinematics():
    torch.manual_seed(0)
    model = pn.models.SecondOrderNeuralODE(dof=1, hidden=8).double()
    y = torch.randn(50, 2, dtype=torch.float64) * torch.tensor([3.0, 7.0]) + 10
    dy = torch.randn(50, 2, dtype=torch.float64) * torch.tensor([7.0, 20.0])
    before = model(0.0, y)
    assert model.adapt(DataScales(y, dy))
    after = model(0.0, y)
    assert torch.equal(after[:, 0], y[:, 1])
    assert not torch.allclose(after[:, 1], before[:, 1])
    torch.testing.assert_close(model.field.out, DataScales(y, dy).rate[1:])


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = pn.models.SecondOrderNeuralODE(dof=2, hidden=8, layers=3, angles=(1,))
    y = torch.randn(20, 4)
    model.adapt(DataScales(y, 3 * y))
    loaded = pn.models.load(model.save(tmp_path / "sonode.pt"))
    assert type(loaded) is pn.models.SecondOrderNeuralODE
    assert loaded.config == model.config
    torch.testing.assert_close(loaded(0.0, y), model(0.0, y), rtol=0, atol=0)


def test_discover_defaults_to_second_order_and_recovers_a_known_field():
    model = pn.models.SecondOrderNeuralODE(dof=1, hidden=8).double()
    model.field = TrueAcceleration()
    data = damped_oscillators(n=6, n_points=60)
    found = pn.discover(model, data=data, library="poly", degree=2)
    assert found.second_order
    q, v = sympy.Symbol("q", real=True), sympy.Symbol("qdot", real=True)
    assert found.equations[q] == v
    two_gamma, stiffness = acceleration_coefficients(found)
    assert two_gamma == pytest.approx(2 * GAMMA, rel=1e-3)
    assert stiffness == pytest.approx(GAMMA ** 2 + OMEGA ** 2, rel=1e-3)
    assert not pn.discover(model, data=data, library="poly", degree=2,
                           second_order=False).second_order
    node = pn.models.NeuralODE(dim=2, hidden=8).double()
    assert not pn.discover(node, data=data, library="poly", degree=2).second_order


def test_fit_on_positions_only_runs_and_keeps_exact_kinematics():
    data = damped_oscillators(n=4, n_points=40)
    positions = Trajectories([Trajectory(tr.t, tr.y[:, :1]) for tr in data], ("q",))
    torch.manual_seed(0)
    model = pn.models.SecondOrderNeuralODE(dof=1, hidden=16)
    result = pn.fit(model, positions, epochs=3, progress=False)
    assert result.stages == ["derivative", "rollout"]
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in result.history)
    assert bool(model.adapted)
    found = pn.discover(model, data=positions, library="poly", degree=2)
    assert found.second_order and set(map(str, found.equations)) == {"q", "qdot"}


def test_derivative_matching_learns_the_damped_oscillator():
    # The fast, weaker check: 300 epochs of derivative matching on exact derivatives.
    data = damped_oscillators(n_points=40, derivatives=True)
    torch.manual_seed(0)
    model = pn.models.SecondOrderNeuralODE(dof=1, hidden=32)
    pn.fit(model, data, loss="derivative", epochs=300, progress=False)
    two_gamma, stiffness = acceleration_coefficients(
        pn.discover(model, data=data, library="poly", degree=2))
    assert two_gamma == pytest.approx(2 * GAMMA, rel=0.03)
    assert stiffness == pytest.approx(GAMMA ** 2 + OMEGA ** 2, rel=0.03)


@pytest.mark.slow
def test_the_damped_oscillator_is_recovered_within_one_percent():
    # fit's and discover's defaults on the paper's set (3 to 7 minutes on two shared cores).
    data = damped_oscillators()
    torch.manual_seed(0)
    model = pn.models.SecondOrderNeuralODE(dof=1)
    pn.fit(model, data, progress=False)
    two_gamma, stiffness = acceleration_coefficients(pn.discover(model, data=data))
    assert two_gamma == pytest.approx(2 * GAMMA, rel=0.01)
    assert stiffness == pytest.approx(GAMMA ** 2 + OMEGA ** 2, rel=0.01)


@pytest.mark.parametrize("build,error,message", [
    (lambda: pn.models.SecondOrderNeuralODE(dof=0), ValueError,
     "`dof` must be at least 1; got 0"),
    (lambda: pn.models.SecondOrderNeuralODE(dof=1.5), TypeError,
     "`dof` must be an integer; got float"),
    (lambda: pn.models.SecondOrderNeuralODE(dof=1, hidden=0), ValueError,
     "`hidden` must be at least 1; got 0"),
    (lambda: pn.models.SecondOrderNeuralODE(dof=1, angles=(1,)), ValueError,
     "`angles` entries must be indices of positions q, 0..0; got 1"),
    (lambda: pn.models.SecondOrderNeuralODE(dof=1, activation="relu"), ValueError,
     "`activation` must be one of 'tanh', 'softplus', 'silu', 'gelu'; got 'relu'"),
    (lambda: pn.models.SecondOrderNeuralODE(dof=1)(0.0, torch.zeros(3, 3)), ValueError,
     "`y` must have last dimension 2 for SecondOrderNeuralODE (q, qdot); got shape (3, 3)"),
])
def test_bad_input_is_named(build, error, message):
    with pytest.raises(error) as caught:
        build()
    assert str(caught.value) == message


def test_fit_names_a_state_width_the_model_cannot_take():
    data = damped_oscillators(n=2, n_points=10)
    wide = Trajectories([Trajectory(tr.t, torch.cat([tr.y, tr.y[:, :1]], -1)) for tr in data],
                        ("a", "b", "c"))
    with pytest.raises(ValueError) as caught:
        pn.fit(pn.models.SecondOrderNeuralODE(dof=1), wide, epochs=1, progress=False)
    assert str(caught.value) == ("`data` has 3 states (a, b, c) but SecondOrderNeuralODE "
                                 "expects 2 (q, qdot) (or 1 positions)")
