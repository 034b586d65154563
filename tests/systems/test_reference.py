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


# --- LotkaVolterra, Lorenz, CoupledSprings -------------------------------------------------

NEW_SYSTEMS = [systems.LotkaVolterra(), systems.LotkaVolterra(alpha=1.1, beta=0.5, delta=0.2,
                                                              gamma=0.7),
               systems.Lorenz(), systems.Lorenz(sigma=9.0, rho=24.0, beta=2.5),
               systems.CoupledSprings(),
               systems.CoupledSprings(k1=1.3, k2=0.7, k3=2.1, m1=0.8, m2=1.9, damping=0.25)]


def _dense_solve(system, y0, t_end, n=400):
    """DOP853 at rtol 1e-10 (atol 1e-12) from ``y0`` (dim,), sampled at n times: (n, dim)."""
    sol = solve_ivp(scipy_field(system), (0, t_end), as_numpy(y0), rtol=1e-10, atol=1e-12,
                    method="DOP853", dense_output=True)
    assert sol.success
    return torch.as_tensor(sol.sol(np.linspace(0, t_end, n)).T, device=y0.device)


@pytest.mark.parametrize("system", NEW_SYSTEMS, ids=repr)
def test_new_systems_are_autonomous_and_keep_batch_shape_and_dtype(system):
    y = _random_states(system, 15).reshape(3, 5, system.dim)
    f = system(0.0, y)
    assert f.shape == y.shape and f.dtype == y.dtype
    # t never enters the arithmetic: any time, even None, gives the same field
    torch.testing.assert_close(system(None, y), f, rtol=0, atol=0)
    torch.testing.assert_close(system(torch.full((3, 5, 1), 37.5, dtype=y.dtype), y), f,
                               rtol=0, atol=0)
    assert system(0.0, y.float()).dtype == torch.float32
    torch.testing.assert_close(system(0.0, y[1, 2]), f[1, 2], rtol=0, atol=0)
    if hasattr(system, "energy"):
        assert system.energy(y).shape == (3, 5)


@pytest.mark.parametrize("system", NEW_SYSTEMS, ids=repr)
def test_new_systems_sample_inside_their_documented_box(system):
    y0 = system.sample_initial_states(200, torch.Generator().manual_seed(3))
    assert y0.shape == (200, system.dim)
    for i, name in enumerate(system.state_names):
        low, high = system.initial_box[name]
        assert low < high
        assert (y0[:, i] >= low).all() and (y0[:, i] <= high).all()


def test_lotka_volterra_equilibrium_is_a_fixed_point_and_the_invariant_minimum():
    lv = systems.LotkaVolterra(alpha=1.1, beta=0.5, delta=0.2, gamma=0.7)
    eq = torch.tensor(lv.equilibrium, dtype=torch.float64, requires_grad=True)
    assert lv.equilibrium == pytest.approx((3.5, 2.2))
    torch.testing.assert_close(lv(0.0, eq), torch.zeros(2, dtype=torch.float64))
    (grad,) = torch.autograd.grad(lv.energy(eq), eq)
    torch.testing.assert_close(grad, torch.zeros(2, dtype=torch.float64))
    # V is convex: every other state has a larger value
    assert (lv.energy(_random_states(lv, 64)) > lv.energy(eq.detach())).all()


def test_lotka_volterra_invariant_has_zero_rate_along_the_field():
    lv = systems.LotkaVolterra(alpha=1.1, beta=0.5, delta=0.2, gamma=0.7)
    y = _random_states(lv, 64)
    rate = torch.func.jvp(lv.energy, (y,), (lv(0.0, y),))[1]
    scale = torch.func.jvp(lv.energy, (y,), (y,))[1].abs().max()  # a nonzero derivative
    assert scale > 0.1 and rate.abs().max() < 1e-13


def test_lotka_volterra_invariant_is_conserved_and_orbits_stay_in_the_positive_quadrant():
    lv = systems.LotkaVolterra()
    v_eq = lv.energy(torch.tensor(lv.equilibrium, dtype=torch.float64))
    box = lv.initial_box
    corners = torch.tensor([[x, y] for x in box["x"] for y in box["y"]], dtype=torch.float64)
    for start in corners:
        traj = _dense_solve(lv, start, 60.0, 1200)         # about six periods
        v = lv.energy(traj)
        amplitude = v[0] - v_eq                            # V − V(equilibrium) > 0 on the orbit
        assert amplitude > 0.03                            # away from the (linear) equilibrium
        assert ((v - v[0]).abs().max() / amplitude) < 1e-8
        # the documented claim: default orbits stay well away from zero
        assert traj[:, 0].min() > 0.9 and traj[:, 1].min() > 1.0
        # and are visibly nonlinear: prey swings further above its equilibrium than below
        x_eq = lv.equilibrium[0]
        assert traj[:, 0].max() - x_eq > 1.3 * (x_eq - traj[:, 0].min())


@pytest.mark.parametrize("lorenz", [systems.Lorenz(), systems.Lorenz(sigma=9.0, rho=24.0,
                                                                     beta=2.5)], ids=repr)
def test_lorenz_divergence_is_constant_volume_contraction(lorenz):
    y = torch.cat([_random_states(lorenz, 32),
                   50 * torch.randn(32, 3, generator=seeded(7), dtype=torch.float64)])
    jac = torch.func.vmap(torch.func.jacrev(lambda z: lorenz.rhs(0.0, z)))(y)
    divergence = torch.diagonal(jac, dim1=-2, dim2=-1).sum(-1)
    expected = -(lorenz.sigma + 1 + lorenz.beta)
    torch.testing.assert_close(divergence, torch.full_like(divergence, expected),
                               rtol=1e-14, atol=1e-13)


def test_lorenz_equilibria_are_fixed_points_and_it_has_no_energy():
    lorenz = systems.Lorenz()
    r = math.sqrt(lorenz.beta * (lorenz.rho - 1))
    fixed = torch.tensor([[0.0, 0.0, 0.0], [r, r, lorenz.rho - 1], [-r, -r, lorenz.rho - 1]],
                         dtype=torch.float64)
    torch.testing.assert_close(lorenz(0.0, fixed), torch.zeros_like(fixed), atol=1e-12, rtol=0)
    assert not lorenz(0.0, fixed + 0.1).abs().max() < 1e-3
    assert not hasattr(lorenz, "energy") and not lorenz.hamiltonian and not lorenz.stiff


def test_undamped_coupled_springs_field_is_the_symplectic_gradient_of_its_energy():
    cs = systems.CoupledSprings(k1=1.3, k2=0.7, k3=2.1, m1=0.8, m2=1.9)
    assert cs.hamiltonian and cs.separable
    y = _random_states(cs, 32)
    hs = systems.HamiltonianSystem(cs.energy, dof=2)
    torch.testing.assert_close(cs(0.0, y), hs(0.0, y), rtol=1e-13, atol=1e-13)


def test_damped_coupled_springs_lose_energy_at_the_viscous_rate():
    c = 0.25
    cs = systems.CoupledSprings(k1=1.3, k2=0.7, k3=2.1, m1=0.8, m2=1.9, damping=c)
    assert cs.hamiltonian and not cs.separable
    y = _random_states(cs, 64)
    rate = torch.func.jvp(cs.energy, (y,), (cs(0.0, y),))[1]
    qdot = y[:, 2:] / torch.tensor([cs.m1, cs.m2], dtype=torch.float64)
    torch.testing.assert_close(rate, -c * (qdot ** 2).sum(-1), rtol=1e-12, atol=1e-13)


def test_coupled_springs_energy_is_conserved_undamped_and_decreases_when_damped():
    params = dict(k1=1.3, k2=0.7, k3=2.1, m1=0.8, m2=1.9)
    free, damped = systems.CoupledSprings(**params), systems.CoupledSprings(**params,
                                                                             damping=0.25)
    for start in free.sample_initial_states(3, torch.Generator().manual_seed(11)):
        e = free.energy(_dense_solve(free, start, 40.0))
        assert ((e - e[0]).abs().max() / e[0]) < 1e-9
        e = damped.energy(_dense_solve(damped, start, 40.0))
        assert (torch.diff(e) < 0).all()
        assert e[-1] < 0.05 * e[0]


def test_coupled_springs_frequencies_are_the_normal_modes():
    cs = systems.CoupledSprings(k1=1.3, k2=0.7, k3=2.1, m1=0.8, m2=1.9)
    stiffness = np.array([[1.3 + 0.7, -0.7], [-0.7, 0.7 + 2.1]])
    expected = np.sort(np.sqrt(np.linalg.eigvals(np.linalg.solve(np.diag([0.8, 1.9]),
                                                                 stiffness)).real))
    np.testing.assert_allclose(cs.frequencies, expected, rtol=1e-14)
    # equal masses and springs: in phase sqrt(k/m), antiphase sqrt(3k/m)
    np.testing.assert_allclose(systems.CoupledSprings(k1=2.0, k2=2.0, k3=2.0, m1=0.5,
                                                      m2=0.5).frequencies,
                               [2.0, 2 * math.sqrt(3)], rtol=1e-15)


def test_coupled_springs_closed_form_gives_pure_modes_for_equal_springs():
    cs = systems.CoupledSprings(k1=2.0, k2=2.0, k3=2.0, m1=0.5, m2=0.5)
    t = torch.linspace(0, 5, 41, dtype=torch.float64)
    y0 = torch.tensor([[0.3, 0.3, 0.0, 0.0], [0.3, -0.3, 0.0, 0.0]], dtype=torch.float64)
    y = cs.solution(t, y0)
    assert y.shape == (41, 2, 4)
    for i, w in enumerate((2.0, 2 * math.sqrt(3))):
        sign = 1 if i == 0 else -1
        q = 0.3 * torch.cos(w * t)
        p = -0.5 * 0.3 * w * torch.sin(w * t)
        expected = torch.stack([q, sign * q, p, sign * p], -1)
        torch.testing.assert_close(y[:, i], expected, rtol=1e-13, atol=1e-13)


def test_coupled_springs_closed_form_matches_scipy_and_conserves_energy():
    cs = systems.CoupledSprings(k1=1.3, k2=0.7, k3=2.1, m1=0.8, m2=1.9)
    y0 = cs.sample_initial_states(3, torch.Generator().manual_seed(2))
    t = torch.linspace(0, 12, 61, dtype=torch.float64)
    closed = cs.solution(t, y0)
    assert closed.shape == (61, 3, 4)
    torch.testing.assert_close(closed[0], y0, rtol=1e-14, atol=1e-14)
    for i in range(3):
        sol = solve_ivp(scipy_field(cs), (0, 12), as_numpy(y0[i]), t_eval=as_numpy(t),
                        rtol=1e-12, atol=1e-13, method="DOP853")
        np.testing.assert_allclose(as_numpy(closed[:, i]), sol.y.T, atol=1e-9)
    e = cs.energy(closed)
    torch.testing.assert_close(e, e[0].expand_as(e), rtol=1e-13, atol=0)


def test_coupled_springs_closed_form_refuses_damping():
    cs = systems.CoupledSprings(damping=0.1)
    with pytest.raises(ValueError, match=r"^CoupledSprings.solution is the undamped closed form; "
                                         r"it needs `damping` 0, got 0.1$"):
        cs.solution(torch.linspace(0, 1, 3), torch.zeros(4))


def test_brusselator_pattern_is_its_jacobians_support():
    """``jac_sparsity`` marks exactly the entries autograd finds nonzero at a generic state."""
    bruss = systems.Brusselator(points=7)
    y = _random_states(bruss, n=1)[0]
    J = torch.autograd.functional.jacobian(lambda y: bruss(0.0, y), y)
    np.testing.assert_array_equal(bruss.jac_sparsity().toarray() != 0, as_numpy(J) != 0)
    assert bruss.dim == 14 and bruss.state_names[7] == "v1"
    assert bruss.reference_y0[7:] == (3.0,) * 7


def test_new_systems_are_registered_and_exported():
    for name, cls in (("lotkavolterra", systems.LotkaVolterra), ("lorenz", systems.Lorenz),
                      ("coupledsprings", systems.CoupledSprings),
                      ("brusselator", systems.Brusselator)):
        assert systems.REFERENCE_SYSTEMS[name] is cls
        assert cls.__name__ in systems.__all__


@pytest.mark.parametrize("make,message", [
    (lambda: systems.LotkaVolterra(alpha=0), r"^`alpha` must be positive; got 0.0$"),
    (lambda: systems.LotkaVolterra(beta=-0.4), r"^`beta` must be positive; got -0.4$"),
    (lambda: systems.LotkaVolterra(delta=0.0), r"^`delta` must be positive; got 0.0$"),
    (lambda: systems.LotkaVolterra(gamma=float("inf")), r"^`gamma` must be finite; got inf$"),
    (lambda: systems.Lorenz(sigma=-10), r"^`sigma` must be positive; got -10.0$"),
    (lambda: systems.Lorenz(rho=0.0), r"^`rho` must be positive; got 0.0$"),
    (lambda: systems.Lorenz(beta=float("nan")), r"^`beta` must be finite; got nan$"),
    (lambda: systems.CoupledSprings(k1=0), r"^`k1` must be positive; got 0.0$"),
    (lambda: systems.CoupledSprings(k2=-1), r"^`k2` must be positive; got -1.0$"),
    (lambda: systems.CoupledSprings(k3=0), r"^`k3` must be positive; got 0.0$"),
    (lambda: systems.CoupledSprings(m1=0), r"^`m1` must be positive; got 0.0$"),
    (lambda: systems.CoupledSprings(m2=-2.0), r"^`m2` must be positive; got -2.0$"),
    (lambda: systems.CoupledSprings(damping=-0.1), r"^`damping` must be non-negative; got -0.1$"),
])
def test_bad_parameters_of_new_systems_are_pinned(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("make,message", [
    (lambda: systems.LotkaVolterra(alpha="1"), r"^`alpha` must be a real number; got str$"),
    (lambda: systems.Lorenz(beta=[8 / 3]), r"^`beta` must be a real number; got list$"),
    (lambda: systems.CoupledSprings(damping=True), r"^`damping` must be a real number; got bool$"),
])
def test_bad_parameter_types_of_new_systems_are_pinned(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def test_new_systems_state_shape_error_is_pinned():
    with pytest.raises(ValueError, match=r"^`y` must have last dimension 4 for CoupledSprings "
                                         r"\(q1, q2, p1, p2\); got shape \(5, 3\)$"):
        systems.CoupledSprings()(0.0, torch.zeros(5, 3))


def test_double_pendulum_damping_is_a_friction_force_in_each_joint():
    dp = systems.DoublePendulum(m1=1.3, m2=0.7, l1=1.1, l2=0.8, g=9.8, damping=0.4)
    conservative = systems.DoublePendulum(m1=1.3, m2=0.7, l1=1.1, l2=0.8, g=9.8)
    y = _random_states(dp)
    qdot = dp(0.0, y)[..., :2]
    torch.testing.assert_close(dp(0.0, y) - conservative(0.0, y),
                               torch.cat([torch.zeros_like(qdot), -0.4 * qdot], -1))
    symbolic = dp.equations()
    q1, q2, p1, p2 = sympy.symbols("q1 q2 p1 p2", real=True)
    field = sympy.lambdify((q1, q2, p1, p2), [symbolic[s] for s in (q1, q2, p1, p2)])
    row = y[0].tolist()
    torch.testing.assert_close(torch.tensor(field(*row), dtype=y.dtype), dp(0.0, y[0]).cpu(),
                               rtol=1e-10, atol=1e-10)
