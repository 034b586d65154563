import math

import numpy as np
import pytest
import sympy
import torch
from scipy.integrate import solve_ivp

from physnode import IntegrationError, systems
from tests._devices import as_numpy, scipy_field, seeded
from tests.conftest import all_reference_systems

SYSTEMS = all_reference_systems()


def _random_states(system, n=16, seed=0):
    return system.sample_initial_states(n, torch.Generator().manual_seed(seed)) \
        + 0.1 * torch.randn(n, system.dim, generator=seeded(seed + 1),
                            dtype=torch.float64)


@pytest.mark.parametrize("system", SYSTEMS, ids=repr)
def test_equations_lambdified_equal_vector_field(system):
    y = _random_states(system)
    t = 0.7
    eqs = system.equations()
    assert list(eqs) == list(system.symbols())
    fn = sympy.lambdify([sympy.Symbol("t", real=True), *system.symbols()], list(eqs.values()),
                        "numpy")
    expected = np.stack(np.broadcast_arrays(*fn(t, *as_numpy(y).T)), axis=-1)
    got = as_numpy(system(torch.tensor(t, dtype=torch.float64), y))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,system", [("HIRES", systems.HIRES()),
                                         ("ROBER", systems.Robertson()),
                                         ("OREGO", systems.Oregonator()),
                                         ("VDPOL_mu", systems.VanDerPol(mu=1000.0)),
                                         ("VDPOL_eps", systems.VanDerPol(eps=1e-6))])
def test_stiff_systems_match_the_test_set_equations(stiff_reference, name, system):
    ref = stiff_reference[name]
    y = np.abs(as_numpy(_random_states(system))) + 0.01
    expected = np.stack([eval(expr, {"y": y.T}) for expr in ref["rhs"]], axis=-1)
    got = scipy_field(system)(0.0, y)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    assert tuple(system.reference_y0) == tuple(ref["y0"])
    assert tuple(system.reference_t_span) == tuple(ref["t_span"])


@pytest.mark.parametrize("damping", [0.0, 0.3, 2 * math.sqrt(2.5 * 1.7), 6.0],
                         ids=["undamped", "underdamped", "critical", "overdamped"])
def test_mass_spring_matches_closed_form(damping):
    spring = systems.MassSpring(k=2.5, mass=1.7, damping=damping)
    y0 = torch.tensor([[0.8, -0.3], [-0.2, 1.1]], dtype=torch.float64)
    t = torch.linspace(0, 6, 31, dtype=torch.float64)
    closed = spring.solution(t, y0)
    for i in range(2):
        sol = solve_ivp(scipy_field(spring), (0, 6), as_numpy(y0[i]), t_eval=as_numpy(t),
                        rtol=1e-12, atol=1e-13, method="DOP853")
        np.testing.assert_allclose(as_numpy(closed[:, i]), sol.y.T, atol=1e-9)


def test_undamped_spring_and_pendulum_conserve_energy_along_closed_form():
    spring = systems.MassSpring(k=3.0, mass=2.0)
    y0 = torch.tensor([0.5, 0.2], dtype=torch.float64)
    e = spring.energy(spring.solution(torch.linspace(0, 20, 50), y0))
    assert torch.allclose(e, e[0], rtol=1e-13)


def test_hamiltonian_system_of_pendulum_energy_equals_pendulum():
    pend = systems.Pendulum(g=9.81, length=1.3, mass=0.7)
    hs = systems.HamiltonianSystem(pend.energy, dof=1)
    y = _random_states(pend, 64)
    torch.testing.assert_close(hs(0.0, y), pend(0.0, y), rtol=1e-13, atol=1e-13)


def test_separable_hamiltonian_equals_pendulum():
    pend = systems.Pendulum(g=2.0, length=1.5, mass=3.0)
    sep = systems.SeparableHamiltonian(
        lambda p: (p ** 2).sum(-1) / (2 * pend.inertia),
        lambda q: (pend.mass * pend.g * pend.length * (1 - torch.cos(q))).sum(-1), dof=1)
    y = _random_states(pend, 32)
    torch.testing.assert_close(sep(0.0, y), pend(0.0, y), rtol=1e-13, atol=1e-13)


def test_hamiltonian_vector_field_keeps_graph_for_training():
    pend = systems.Pendulum()
    scale = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    hs = systems.HamiltonianSystem(lambda y: scale * pend.energy(y), dof=1)
    loss = hs(0.0, _random_states(pend, 4)).pow(2).sum()
    (grad,) = torch.autograd.grad(loss, scale)
    # loss is quadratic in scale: d/ds (s² |f|²) = 2 s |f|² at s = 1
    torch.testing.assert_close(grad, 2 * loss.detach())


def test_double_pendulum_field_is_the_gradient_of_its_energy():
    dp = systems.DoublePendulum(m1=1.3, m2=0.7, l1=1.1, l2=0.8, g=9.8)
    y = _random_states(dp, 32)
    hs = systems.HamiltonianSystem(dp.energy, dof=2)
    torch.testing.assert_close(dp(0.0, y), hs(0.0, y), rtol=1e-12, atol=1e-12)


def test_double_pendulum_conserves_energy_under_a_tight_reference_solve():
    dp = systems.DoublePendulum()
    y0 = dp.sample_initial_states(3, torch.Generator().manual_seed(5))
    for start in y0:
        sol = solve_ivp(scipy_field(dp), (0, 20), as_numpy(start), rtol=1e-12, atol=1e-12,
                        method="DOP853", dense_output=True)
        energy = dp.energy(torch.as_tensor(sol.sol(np.linspace(0, 20, 200)).T,
                                           device=start.device))
        scale = dp.energy(start).abs() + 1.0
        assert ((energy - energy[0]).abs().max() / scale) < 1e-9


def test_double_pendulum_velocity_map_round_trips():
    dp = systems.DoublePendulum(m1=2.0, l2=0.5)
    y = _random_states(dp)
    torch.testing.assert_close(dp.from_velocities(dp.to_velocities(y)), y)


def test_lagrangian_of_pendulum_gives_its_accelerations():
    pend = systems.Pendulum(g=9.81, length=1.3, mass=0.7)
    inertia, mgl = pend.inertia, pend.mass * pend.g * pend.length
    ls = systems.LagrangianSystem(
        lambda x: 0.5 * inertia * x[..., 1] ** 2 - mgl * (1 - torch.cos(x[..., 0])), dof=1)
    y = _random_states(pend, 64)                          # (q, p)
    x = torch.stack([y[:, 0], y[:, 1] / inertia], -1)     # (q, q̇)
    dx = ls(0.0, x)
    dy = pend(0.0, y)
    torch.testing.assert_close(dx[:, 0], dy[:, 0], rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(dx[:, 1], dy[:, 1] / inertia, rtol=1e-13, atol=1e-13)


def test_lagrangian_of_double_pendulum_matches_hamiltonian_form():
    dp = systems.DoublePendulum(m1=1.3, m2=0.7, l1=1.1, l2=0.8, g=9.8)

    def L(x):
        q, v = x[..., :2], x[..., 2:]
        kinetic = 0.5 * (v.unsqueeze(-2) @ dp.mass_matrix(q) @ v.unsqueeze(-1))[..., 0, 0]
        potential = dp.energy(torch.cat([q, torch.zeros_like(q)], -1))
        return kinetic - potential

    y = _random_states(dp)
    x = dp.to_velocities(y)
    dx = systems.LagrangianSystem(L, dof=2)(0.0, x)
    # q̈ by finite differences of q̇(y) along the Hamiltonian flow: d/dt M⁻¹p = J_v · dy/dt
    _, jvp = torch.func.jvp(lambda z: dp.to_velocities(z)[..., 2:], (y,), (dp(0.0, y),))
    torch.testing.assert_close(dx[..., 2:], jvp, rtol=1e-10, atol=1e-10)


def test_singular_lagrangian_raises_naming_it():
    ls = systems.LagrangianSystem(lambda x: x[..., 0] * x[..., 1] - x[..., 0] ** 2, dof=1)
    with pytest.raises(IntegrationError, match=r"the mass matrix ∂²L/∂q̇² is singular at batch "
                                               r"samples \[0, 1\]"):
        ls(0.0, torch.ones(2, 2, dtype=torch.float64))


def test_state_shape_error_is_pinned():
    with pytest.raises(ValueError, match=r"^`y` must have last dimension 2 for Pendulum \(q, p\); "
                                         r"got shape \(32, 3\)$"):
        systems.Pendulum()(0.0, torch.zeros(32, 3))


@pytest.mark.parametrize("make,message", [
    (lambda: systems.Pendulum(g=-1), r"^`g` must be positive; got -1.0$"),
    (lambda: systems.MassSpring(damping=-0.1), r"^`damping` must be non-negative; got -0.1$"),
    (lambda: systems.Pendulum(length=float("nan")), r"^`length` must be finite; got nan$"),
    (lambda: systems.VanDerPol(mu=1.0, eps=0.1),
     r"^give `mu` or `eps` to VanDerPol, not both; got mu=1.0, eps=0.1$"),
    (lambda: systems.HamiltonianSystem(lambda y: y.sum(-1), dof=0),
     r"^`dof` must be at least 1; got 0$"),
])
def test_bad_parameters_are_pinned(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("make,message", [
    (lambda: systems.Pendulum(mass="1"), r"^`mass` must be a real number; got str$"),
    (lambda: systems.HamiltonianSystem(3.0, dof=1), r"^`H` must be callable; got float$"),
    (lambda: systems.LagrangianSystem(lambda x: x, dof=1.5),
     r"^`dof` must be an integer; got float$"),
])
def test_bad_parameter_types_are_pinned(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def test_vanderpol_analytic_jacobian_matches_autograd():
    for vdp in (systems.VanDerPol(mu=30.0), systems.VanDerPol(eps=1e-3)):
        y = _random_states(vdp, 8)
        auto = torch.func.vmap(torch.func.jacrev(lambda z, f=vdp: f.rhs(0.0, z)))(y)
        torch.testing.assert_close(vdp.jacobian(0.0, y), auto)


def test_conserved_quantities_of_chemical_systems_have_zero_rate():
    for system, key in ((systems.Robertson(), "mass"), (systems.HIRES(), "y7+y8")):
        y = _random_states(system)
        invariant = system.invariants
        rate = torch.func.jvp(lambda z, f=invariant, k=key: f(z)[k], (y,), (system(0.0, y),))[1]
        assert rate.abs().max() < 1e-10
