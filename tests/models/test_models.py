"""Models reproduce known physics when given the true energy or Lagrangian, and keep their
structure (conservation, dissipation) for any weights."""

import math
import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

import physnode as pn
from physnode.models.base import GAIN
from physnode.models.mass import Mass
from tests._devices import seeded


class Scalar(nn.Module):
    """Wrap a function of the state as the module an HNN/LNN expects."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, y):
        return self.fn(y)


def _states(n=64, seed=0, dim=2):
    return 2 * torch.rand(n, dim, dtype=torch.float64,
                          generator=seeded(seed)) - 1


def _set_damping(model, c):
    with torch.no_grad():   # softplus(raw) = c
        model.friction.raw.fill_(math.log(math.expm1(c)) / GAIN)


@pytest.mark.parametrize("damping", [0.0, 0.4])
def test_hnn_with_true_hamiltonian_reproduces_the_pendulum(damping):
    pend = pn.systems.Pendulum(g=9.81, length=1.2, mass=0.8, damping=damping)
    hnn = pn.models.HNN(dof=1, hidden=8, dissipative=damping > 0).double()
    hnn.hamiltonian = Scalar(pn.systems.Pendulum(g=9.81, length=1.2, mass=0.8).energy)
    if damping:
        _set_damping(hnn, damping)
    y = 3 * _states()
    torch.testing.assert_close(hnn(0.0, y), pend(0.0, y), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(hnn.energy(y), pend.energy(y))


@pytest.mark.parametrize("damping", [0.0, 0.4])
def test_lnn_with_true_lagrangian_reproduces_the_pendulum(damping):
    pend = pn.systems.Pendulum(g=9.81, length=1.2, mass=0.8, damping=damping)
    inertia, mgl = pend.inertia, pend.mass * pend.g * pend.length
    lnn = pn.models.LNN(dof=1, hidden=8, dissipative=damping > 0).double()
    lnn.lagrangian = Scalar(lambda x: 0.5 * inertia * x[..., 1] ** 2
                            - mgl * (1 - torch.cos(x[..., 0])))
    if damping:
        _set_damping(lnn, damping)
    y = 3 * _states()                                   # canonical (q, p)
    x = torch.stack([y[:, 0], y[:, 1] / inertia], -1)  # (q, q̇)
    expected = pend(0.0, y)
    got = lnn(0.0, x)
    torch.testing.assert_close(got[:, 1], expected[:, 1] / inertia, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lnn.energy(x), pend.energy(y))


def test_lnn_of_the_double_pendulum_gives_the_hamiltonian_accelerations():
    dp = pn.systems.DoublePendulum(g=9.8)

    def L(x):
        q, v = x[..., :2], x[..., 2:]
        kinetic = 0.5 * (v.unsqueeze(-2) @ dp.mass_matrix(q) @ v.unsqueeze(-1))[..., 0, 0]
        return kinetic - dp.energy(torch.cat([q, torch.zeros_like(q)], -1))

    lnn = pn.models.LNN(dof=2, hidden=8).double()
    lnn.lagrangian = Scalar(L)
    y = _states(dim=4)
    _, expected = torch.func.jvp(lambda z: dp.to_velocities(z)[..., 2:], (y,), (dp(0.0, y),))
    torch.testing.assert_close(lnn(0.0, dp.to_velocities(y))[:, 2:], expected, rtol=1e-10,
                               atol=1e-10)


def test_dissipative_hnn_never_gains_energy_for_any_weights():
    torch.manual_seed(0)
    hnn = pn.models.HNN(dof=2, hidden=32, dissipative=True).double()
    _set_damping(hnn, 0.7)
    y = 2 * _states(256, dim=4)
    grad = torch.func.vmap(torch.func.grad(lambda z: hnn.energy(z)))(y)
    rate = (grad * hnn(0.0, y)).sum(-1)                     # dH/dt along the flow
    assert (rate <= 1e-12).all() and (rate < -1e-6).any()
    conservative = pn.models.HNN(dof=2, hidden=32).double()
    grad = torch.func.vmap(torch.func.grad(lambda z: conservative.energy(z)))(y)
    assert (grad * conservative(0.0, y)).sum(-1).abs().max() < 1e-12


@pytest.mark.parametrize("separable", [False, True])
def test_untrained_hnn_conserves_its_energy_along_its_default_integrator(separable):
    torch.manual_seed(1)
    hnn = pn.models.HNN(dof=1, hidden=32, separable=separable).double()
    y0 = _states(4)
    t = torch.linspace(0, 20, 41, dtype=torch.float64)
    with torch.no_grad():
        ys = pn.solve(hnn, y0, t, method=hnn.default_integrator, dt=0.05).ys
    drift = (hnn.energy(ys) - hnn.energy(y0)).abs().max()
    assert hnn.default_integrator == ("yoshida4" if separable else "gauss_legendre4")
    assert drift < 1e-5, drift


def test_training_through_an_implicit_symplectic_rollout_gives_finite_gradients():
    torch.manual_seed(2)
    hnn = pn.models.HNN(dof=1, hidden=16).double()
    y0 = _states(8)
    ys = pn.solve(hnn, y0, torch.tensor([0.0, 0.3, 0.6], dtype=torch.float64),
                  method="gauss_legendre4", dt=0.1).ys
    loss = (ys[-1] - y0).pow(2).mean()
    loss.backward()
    grads = {name: p.grad for name, p in hnn.named_parameters()}
    # An additive constant in H (the output bias) cannot change J∇H: it gets no gradient.
    output_bias = "hamiltonian.net.4.bias"
    assert grads.pop(output_bias) is None
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
               for g in grads.values())


def test_neural_ode_augmentation_and_time_input():
    node = pn.models.NeuralODE(dim=2, hidden=8, augment=3, time_dependent=True).double()
    y = node.augment_state(_states(5))
    assert y.shape == (5, 5) and (y[:, 2:] == 0).all()
    assert node(torch.tensor(0.0), y).shape == (5, 5)
    assert not torch.equal(node(torch.tensor(0.0), y), node(torch.tensor(1.0), y))
    assert node.default_integrator == "dopri5"


@pytest.mark.parametrize("make", [
    lambda: pn.models.NeuralODE(dim=3, hidden=8, augment=1),
    lambda: pn.models.HNN(dof=2, hidden=8, separable=True, dissipative=True),
    lambda: pn.models.LNN(dof=1, hidden=8, dissipative=True),
])
def test_save_and_load_rebuild_the_model(tmp_path, make):
    torch.manual_seed(3)
    model = make()
    for p in model.parameters():                 # make every weight matter
        nn.init.normal_(p, std=0.3)
    path = model.save(tmp_path / "m.pt")
    loaded = pn.models.load(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    y = torch.randn(4, model.dim)
    torch.testing.assert_close(loaded(0.0, y), model(0.0, y))


def test_load_errors_are_pinned(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^no saved model at '.*nope.pt'$"):
        pn.models.load(tmp_path / "nope.pt")
    torch.save({"something": 1}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match=r"x.pt: not a physnode model file"):
        pn.models.load(tmp_path / "x.pt")


@pytest.mark.parametrize("keep", [0, 10, 0.5, -10])
def test_a_truncated_model_file_is_named_not_an_errno(tmp_path, keep):
    whole = pn.models.HNN(dof=1, hidden=8).save(tmp_path / "whole.pt").read_bytes()
    cut = tmp_path / "model.pt"
    cut.write_bytes(whole[:int(keep * len(whole)) if isinstance(keep, float) else keep])
    with pytest.raises(ValueError, match=r"^.*model\.pt: not a complete physnode model "
                                         r"\(written by model\.save\) \(it may be truncated"):
        pn.models.load(cut)


def test_singular_learned_lagrangian_raises():
    lnn = pn.models.LNN(dof=1, hidden=8).double()
    lnn.lagrangian = Scalar(lambda x: x[..., 0] * x[..., 1])      # ∂²L/∂q̇² = 0
    with pytest.raises(pn.IntegrationError, match="singular"):
        lnn(0.0, _states(3))


@pytest.mark.parametrize("make,exc,message", [
    (lambda: pn.models.HNN(dof=0), ValueError, r"^`dof` must be at least 1; got 0$"),
    (lambda: pn.models.NeuralODE(dim=2, hidden=0), ValueError,
     r"^`hidden` must be at least 1; got 0$"),
    (lambda: pn.models.LNN(dof=1, activation="relu"), ValueError,
     r"^`activation` must be one of 'tanh', 'softplus', 'silu', 'gelu'; got 'relu'$"),
    (lambda: pn.models.HNN(dof=1, hidden=8)(0.0, torch.zeros(4, 3)), ValueError,
     r"^`y` must have last dimension 2 for HNN \(q, p\); got shape \(4, 3\)$"),
    (lambda: pn.models.NeuralODE(dim=2.0), TypeError, r"^`dim` must be an integer; got float$"),
    (lambda: pn.models.HNN(dof=1, angles=(1,)), ValueError,
     r"^`angles` entries must be indices of positions q, 0\.\.0; got 1$"),
    (lambda: pn.models.LNN(dof=2, angles=(0, 0)), ValueError,
     r"^`angles` must not repeat an index; got \(0, 0\)$"),
    (lambda: pn.models.NeuralODE(dim=2, angles=0), TypeError,
     r"^`angles` must be a sequence of indices of observed states; got 0$"),
    (lambda: pn.models.HNN(dof=2, angles=("q1",)), ValueError,
     r"^`angles` entries must be indices of positions q, 0\.\.1; got 'q1'$"),
])
def test_bad_model_input_is_pinned(make, exc, message):
    with pytest.raises(exc, match=message):
        make()


@pytest.mark.parametrize("activation", ["tanh", "softplus", "silu"])
@pytest.mark.parametrize("separable", [False, True])
def test_closed_form_energy_gradient_equals_autograd_and_trains_the_same(activation, separable):
    from physnode.systems.hamiltonian import gradient
    hnn = pn.models.HNN(dof=2, hidden=16, separable=separable, activation=activation).double()
    y = 3 * torch.randn(5, 4, 4, dtype=torch.float64)
    closed = hnn.hamiltonian.gradient(y)
    torch.testing.assert_close(closed, gradient(hnn.hamiltonian, y), rtol=1e-12, atol=1e-13)
    # Parameter gradients of a loss through the field (what training needs) agree too.
    params = list(hnn.parameters())
    first = torch.autograd.grad(hnn.hamiltonian.gradient(y).pow(2).sum(), params,
                                allow_unused=True, materialize_grads=True)
    second = torch.autograd.grad(gradient(hnn.hamiltonian, y).pow(2).sum(), params,
                                 allow_unused=True, materialize_grads=True)
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "softplus", "silu"])
@pytest.mark.parametrize("angles", [(), (0,), (0, 1)])
def test_closed_form_lnn_field_equals_euler_lagrange_by_autograd(activation, angles):
    from physnode.systems.lagrangian import euler_lagrange_acceleration
    torch.manual_seed(0)
    lnn = pn.models.LNN(dof=2, hidden=16, activation=activation, angles=angles).double()
    torch.nn.init.normal_(lnn.lagrangian.net[-1].weight, std=0.3)  # not the free particle
    lnn.lagrangian.set_normalization(torch.tensor([0.5, -1.0, 0.2, 0.1]),
                                     torch.tensor([2.0, 0.7, 1.5, 3.0]), 0.8)
    y = 3 * torch.randn(5, 3, 4, dtype=torch.float64)

    def autograd_field(y):
        plain = lnn.lagrangian.forward          # a callable without the closed form
        return euler_lagrange_acceleration(lambda y: plain(y), y, 2)

    assert lnn.lagrangian.velocity_derivatives(y) is not None
    torch.testing.assert_close(lnn(0.0, y)[..., 2:], autograd_field(y), rtol=1e-10, atol=1e-12)
    # Parameter gradients of a loss through the field (what training needs) agree too.
    params = list(lnn.parameters())
    first = torch.autograd.grad(lnn(0.0, y)[..., 2:].pow(2).sum(), params,
                                allow_unused=True, materialize_grads=True)
    second = torch.autograd.grad(autograd_field(y).pow(2).sum(), params,
                                 allow_unused=True, materialize_grads=True)
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("activation", ["tanh", "softplus", "silu"])
@pytest.mark.parametrize("angles", [(), (0,), (0, 1)])
@pytest.mark.parametrize("dissipative", [False, True])
def test_lnn_field_without_a_graph_equals_euler_lagrange_by_autograd(activation, angles,
                                                                     dissipative):
    # Integrators evaluate the field under no_grad: the closed forms run there too, with
    # their in-place updates, and give autograd's accelerations.
    from physnode.systems.lagrangian import euler_lagrange_acceleration
    torch.manual_seed(1)
    lnn = pn.models.LNN(dof=2, hidden=16, layers=3, activation=activation, angles=angles,
                        dissipative=dissipative).double()
    torch.nn.init.normal_(lnn.lagrangian.net[-1].weight, std=0.3)
    lnn.lagrangian.set_normalization(torch.tensor([0.5, -1.0, 0.2, 0.1]),
                                     torch.tensor([2.0, 0.7, 1.5, 3.0]), 0.8)
    y = 3 * torch.randn(7, 4, dtype=torch.float64)
    plain = lnn.lagrangian.forward
    force = None if lnn.friction is None else -lnn.friction(y[..., :2], y[..., 2:]).detach()
    expected = euler_lagrange_acceleration(lambda y: plain(y), y, 2, extra_force=force).detach()
    with torch.no_grad():
        got = lnn(0.0, y)
    torch.testing.assert_close(got[..., 2:], expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got, lnn(0.0, y).detach(), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("grad_mode", [False, True])
def test_mlp_hessian_product_equals_autograd_for_a_deep_network(grad_mode):
    from physnode.models.base import mlp, mlp_hessian_product
    torch.manual_seed(2)
    net = mlp(5, 1, 12, 4, "softplus").double()
    x = torch.randn(6, 5, dtype=torch.float64)
    v = torch.randn(6, 3, 5, dtype=torch.float64)               # batched directions
    with torch.set_grad_enabled(grad_mode):
        g, hv = mlp_hessian_product(net, x, v)
    hessian = torch.func.vmap(torch.func.hessian(lambda x: net(x)[0]))(x)
    gradient = torch.func.vmap(torch.func.grad(lambda x: net(x)[0]))(x)
    torch.testing.assert_close(g, gradient, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(hv, v @ hessian, rtol=1e-12, atol=1e-13)


def test_the_two_by_two_mass_check_is_the_singular_value_test():
    # Away from the threshold (a factor 2 either side) it decides as svdvals does.
    from physnode._validation import IntegrationError
    from physnode.systems.lagrangian import check_mass_matrix
    eps = torch.finfo(torch.float64).eps
    u, _, w = torch.linalg.svd(torch.randn(40, 2, 2, dtype=torch.float64))
    ratio = 100 * eps * torch.tensor([0.5, 2.0], dtype=torch.float64).repeat(20)
    mass = u @ torch.diag_embed(torch.stack([torch.ones_like(ratio), ratio], -1)) @ w * 7.0
    with pytest.raises(IntegrationError) as info:
        check_mass_matrix(mass)
    assert info.value.samples == list(range(0, 40, 2))
    check_mass_matrix(mass[1::2])


def test_hnn_in_velocity_coordinates_with_a_mass_is_the_same_motion():
    pendulum = pn.systems.Pendulum(mass=2.0)                 # p = 2 q̇
    hnn = pn.models.HNN(dof=1, hidden=8, coordinates="velocity", learn_mass=True).double()
    assert hnn.state_names == ("q", "qdot")

    class TrueEnergy(nn.Module):
        def forward(self, y):
            return pendulum.energy(y)

    hnn.hamiltonian = TrueEnergy()
    with torch.no_grad():
        hnn.raw_mass.fill_(math.log(math.exp(2.0) - 1) / GAIN)     # softplus⁻¹(2)
    x = torch.randn(6, 2, dtype=torch.float64)
    y = torch.stack([x[:, 0], 2 * x[:, 1]], -1)
    dy = pendulum(0.0, y)
    expected = torch.stack([dy[:, 0], dy[:, 1] / 2], -1)    # d(q, q̇)/dt
    torch.testing.assert_close(hnn(0.0, x), expected)
    torch.testing.assert_close(hnn.energy(x), pendulum.energy(y))
    unit = pn.models.HNN(dof=1, hidden=8, coordinates="velocity")
    assert unit.raw_mass is None and torch.equal(unit.mass, torch.ones(1))
    # A file saved before masses were objects names the learned mass `raw_mass`.
    saved = pn.models.HNN(dof=1, hidden=8, coordinates="velocity", learn_mass=True)
    with torch.no_grad():
        saved.raw_mass.fill_(0.3)
    state = saved.state_dict()
    state["raw_mass"] = state.pop("inertia.raw")
    again = pn.models.HNN(dof=1, hidden=8, coordinates="velocity", learn_mass=True)
    again.load_state_dict(state)
    torch.testing.assert_close(again.mass, saved.mass)


class DoublePendulumMass(Mass):
    """The true configuration-dependent mass of a double pendulum, as a Mass."""

    def __init__(self, system):
        super().__init__(2)
        self.system = system

    def factor(self, q):
        return torch.linalg.cholesky(self.system.mass_matrix(q))


def test_hnn_with_a_configuration_mass_moves_velocities_as_hamilton_moves_momenta():
    system = pn.systems.DoublePendulum(m1=1.0, m2=2.0, l1=1.0, l2=0.5)
    hnn = pn.models.HNN(dof=2, hidden=8, coordinates="velocity", angles=(0, 1),
                        mass=pn.models.ConfigurationMass(hidden=8)).double()

    class TrueEnergy(nn.Module):
        def forward(self, y):
            return system.energy(y)

    hnn.hamiltonian, hnn.inertia = TrueEnergy(), DoublePendulumMass(system)
    y = system.sample_initial_states(16, torch.Generator().manual_seed(0))
    x = system.to_velocities(y)
    expected = system.to_velocities(y + 1e-6 * system(0.0, y))     # d(q, q̇)/dt by the chain
    expected = (expected - system.to_velocities(y - 1e-6 * system(0.0, y))) / 2e-6
    torch.testing.assert_close(hnn(0.0, x), expected, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(hnn.energy(x), system.energy(y))


def test_a_learned_configuration_mass_is_spd_and_its_tangent_is_exact():
    hnn = pn.models.HNN(dof=3, hidden=8, coordinates="velocity", angles=(1,),
                        mass=pn.models.ConfigurationMass(hidden=16)).double()
    torch.manual_seed(0)
    with torch.no_grad():                       # away from the identity it starts at
        for p in hnn.inertia.parameters():
            p.add_(0.3 * torch.randn_like(p))
    q = 3 * torch.randn(200, 3, dtype=torch.float64)
    M = hnn.mass_matrix(q)
    torch.testing.assert_close(M, M.transpose(-1, -2))
    assert torch.linalg.eigvalsh(M).min() > 0
    assert (M[:, 0, 1].abs() > 1e-3).any()                          # not diagonal
    w = torch.randn(200, 3, dtype=torch.float64)
    L, dL = hnn.inertia.factor_tangent(q, w)
    reference = torch.func.jvp(hnn.inertia.factor, (q,), (w,))
    torch.testing.assert_close((L, dL), reference)
    # Periodic in the angle: a turn changes nothing.
    torch.testing.assert_close(hnn.mass_matrix(q + torch.tensor([0.0, 2 * math.pi, 0.0],
                                                                dtype=torch.float64)), M)
    with pytest.raises(ValueError, match=r"^this HNN's mass depends on the configuration; "
                                         r"use mass_matrix\(q\)$"):
        _ = hnn.mass
    saved = pn.models.HNN(**hnn.config).double()
    saved.load_state_dict(hnn.state_dict())
    x = torch.randn(4, 6, dtype=torch.float64)
    torch.testing.assert_close(saved(0.0, x), hnn(0.0, x))


@pytest.mark.parametrize("model", ["HNN", "LNN"])
def test_a_configuration_damping_is_positive_semidefinite_and_only_takes_energy(model):
    spec = pn.models.ConfigurationDamping(hidden=16)
    make = {"HNN": lambda: pn.models.HNN(dof=2, hidden=8, angles=(0,), dissipative=spec),
            "LNN": lambda: pn.models.LNN(dof=2, hidden=8, angles=(0,), dissipative=spec)}
    torch.manual_seed(0)
    m = make[model]().double()
    with torch.no_grad():                       # away from the start, and not conservative
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
        m.friction.raw.fill_(1.0)
    q = 3 * torch.randn(200, 2, dtype=torch.float64)
    D = m.damping_matrix(q)
    torch.testing.assert_close(D, D.transpose(-1, -2))
    assert torch.linalg.eigvalsh(D).min() > 0 and (D[:, 0, 1].abs() > 1e-3).any()
    # A turn of the angle changes nothing.
    torch.testing.assert_close(m.damping_matrix(q + torch.tensor([2 * math.pi, 0.0],
                                                                  dtype=torch.float64)), D)
    # dE/dt = −q̇ᵀ D(q) q̇ < 0 along the learned motion, and exactly that.
    y = torch.randn(200, 4, dtype=torch.float64).requires_grad_()
    energy = m.energy(y)
    (grad,) = torch.autograd.grad(energy.sum(), y)
    rate = (grad * m(0.0, y)).sum(-1)
    qdot = m(0.0, y)[:, :2] if model == "HNN" else y[:, 2:]
    loss = torch.einsum("bi,bij,bj->b", qdot, m.damping_matrix(y[:, :2]), qdot)
    torch.testing.assert_close(rate, -loss.detach(), rtol=1e-8, atol=1e-10)
    assert (rate < 0).all()
    with pytest.raises(ValueError, match=r"^this model's damping depends on the "
                                         r"configuration; use damping_matrix\(q\)$"):
        _ = m.damping
    saved = pn.models.load(m.save(Path(tempfile.mkdtemp()) / "model.pt")).double()
    assert saved.config["dissipative"] == spec.config()
    # (loading builds float32 parameters: the round trip is exact to float32)
    torch.testing.assert_close(saved(0.0, y.detach()), m(0.0, y.detach()), rtol=1e-5,
                               atol=1e-6)


def test_a_damping_spec_is_checked():
    with pytest.raises(TypeError, match=r"^`dissipative` must be True, False, "
                                        r"ConstantDamping\(\) or ConfigurationDamping\(...\); "
                                        r"got str$"):
        pn.models.LNN(dof=1, dissipative="yes")
    assert pn.models.HNN(dof=1, dissipative=pn.models.ConstantDamping()).config[
        "dissipative"] is True                                 # saved as before


@pytest.mark.parametrize("kwargs,message", [
    ({"coordinates": "polar"}, r"^`coordinates` must be one of 'canonical', 'velocity'; "
                               r"got 'polar'$"),
    ({"learn_mass": True}, r"^`learn_mass=True` needs coordinates='velocity'"),
    ({"mass": pn.models.DiagonalMass()}, r"^`mass` needs coordinates='velocity'"),
    ({"coordinates": "velocity", "learn_mass": True, "mass": pn.models.DiagonalMass()},
     r"^pass either `mass` or its older spelling `learn_mass=True`; got both$"),
])
def test_bad_hnn_coordinates_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pn.models.HNN(dof=1, **kwargs)


@pytest.mark.parametrize("make", [
    lambda: pn.models.HNN(dof=2, angles=(0, 1)),
    lambda: pn.models.HNN(dof=2, angles=(1,), separable=True),
    lambda: pn.models.HNN(dof=2, angles=(0,), dissipative=True, coordinates="velocity"),
    lambda: pn.models.LNN(dof=2, angles=(0,)),
    lambda: pn.models.NeuralODE(dim=4, angles=(0, 1), time_dependent=True),
], ids=["HNN", "separable HNN", "dissipative HNN (velocity)", "LNN", "NeuralODE"])
def test_models_are_periodic_in_their_angles_with_closed_form_gradients(make):
    torch.manual_seed(0)
    model = make().double()
    for p in model.parameters():
        nn.init.normal_(p, std=0.3)
    y = torch.randn(6, 4, dtype=torch.float64)
    turns = torch.zeros(4, dtype=torch.float64)
    turns[list(model.angles)] = 2 * math.pi * torch.tensor([7.0, -40.0],
                                                           dtype=torch.float64)[:len(model.angles)]
    torch.testing.assert_close(model(0.3, y + turns), model(0.3, y), rtol=1e-9, atol=1e-9)
    energy = getattr(model, "hamiltonian", None)
    if energy is not None:                  # the closed-form ∇H through cos and sin
        energy.set_normalization(torch.tensor([0.1, 0.2, 0.3, 0.4]),
                                 torch.tensor([1.5, 0.7, 2.0, 0.5]), 3.0)
        x = y.clone().requires_grad_()
        (auto,) = torch.autograd.grad(energy(x).sum(), x)
        torch.testing.assert_close(energy.gradient(y), auto)
