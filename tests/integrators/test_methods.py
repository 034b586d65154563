"""Mathematical properties of every integrator: tableaus, convergence order, symplecticity,
long-time energy behaviour, batch independence, dtype/device, gradients."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import physnode as pn
from physnode.integrators import METHODS
from physnode.integrators.base import Field, Tolerance
from physnode.integrators.implicit import radau_eigensystem, radau_error_estimator
from physnode.integrators.linalg import DenseLU, SparseLU, Sparsity
from physnode.integrators.newton import newton_matrix
from tests._devices import as_numpy, scipy_field, seeded

FIXED = [name for name, cls in METHODS.items() if not cls.adaptive]
ADAPTIVE = [name for name, cls in METHODS.items() if cls.adaptive]
#: every Runge–Kutta method's tableau, by method name
TABLEAUS = {name: cls.tableau for name, cls in METHODS.items() if hasattr(cls, "tableau")}
RADAU_IIA5, RADAU_IIA9 = METHODS["radau5"].tableau, METHODS["radau9"].tableau


def _order_conditions(tab):
    """Residuals of the Runge–Kutta order conditions up to order min(order, 5)."""
    A, b, c = (np.array(x, dtype=float) for x in (tab.a, tab.b, tab.c))
    conditions = {1: [b.sum() - 1],
                  2: [b @ c - 1 / 2],
                  3: [b @ c ** 2 - 1 / 3, b @ A @ c - 1 / 6],
                  4: [b @ c ** 3 - 1 / 4, b @ (c * (A @ c)) - 1 / 8, b @ A @ c ** 2 - 1 / 12,
                      b @ A @ A @ c - 1 / 24],
                  5: [b @ c ** 4 - 1 / 5, b @ (c ** 2 * (A @ c)) - 1 / 10,
                      b @ ((A @ c) ** 2) - 1 / 20, b @ (c * (A @ c ** 2)) - 1 / 15,
                      b @ A @ c ** 3 - 1 / 20, b @ (c * (A @ A @ c)) - 1 / 30,
                      b @ A @ (c * (A @ c)) - 1 / 40, b @ A @ A @ c ** 2 - 1 / 60,
                      b @ A @ A @ A @ c - 1 / 120]}
    return conditions


@pytest.mark.parametrize("name", TABLEAUS)
def test_tableau_satisfies_order_conditions_up_to_its_order(name):
    tab = TABLEAUS[name]
    conditions = _order_conditions(tab)
    for order in range(1, min(tab.order, 5) + 1):
        np.testing.assert_allclose(conditions[order], 0, atol=1e-14, err_msg=f"order {order}")
    if tab.order < 5:   # and fails the next order: the declared order is the true one
        assert np.abs(conditions[tab.order + 1]).max() > 1e-6


@pytest.mark.parametrize("name", [name for name, tab in TABLEAUS.items()
                                  if tab.b_error is not None])
def test_embedded_weights_have_order_4(name):
    from physnode.integrators.tableau import ButcherTableau
    tab = TABLEAUS[name]
    hat = tuple(b - e for b, e in zip(tab.b, tab.b_error))
    embedded = ButcherTableau(tab.a, hat, tab.c, order=4)
    conditions = _order_conditions(embedded)
    for order in range(1, 5):
        np.testing.assert_allclose(conditions[order], 0, atol=1e-14)
    assert np.abs(conditions[5]).max() > 1e-6


def _simplifying_residuals(tab, p, eta, zeta):
    """Largest residuals of Butcher's simplifying assumptions B(p), C(η), D(ζ), which give order
    p whenever p ≤ η + ζ + 1 and p ≤ 2η + 2 (Hairer, Nørsett & Wanner I, Theorem II.7.4)."""
    A, b, c = (np.array(x, dtype=float) for x in (tab.a, tab.b, tab.c))
    B = [b @ c ** (k - 1) - 1 / k for k in range(1, p + 1)]
    C = [A @ c ** (k - 1) - c ** k / k for k in range(1, eta + 1)]
    D = [(b * c ** (k - 1)) @ A - b * (1 - c ** k) / k for k in range(1, zeta + 1)]
    return max(np.abs(B).max(), np.abs(C).max(), np.abs(D).max()), b @ c ** p - 1 / (p + 1)


@pytest.mark.parametrize("tab,stages", [(RADAU_IIA5, 3), (RADAU_IIA9, 5)])
def test_radau_iia_tableaus_have_order_2s_minus_1(tab, stages):
    residual, next_quadrature = _simplifying_residuals(tab, 2 * stages - 1, stages, stages - 1)
    assert residual < 1e-14 and abs(next_quadrature) > 1e-6
    assert tab.c[-1] == 1.0 and tab.b == tab.a[-1]             # stiffly accurate


def test_radau_error_estimator_reproduces_radau5_constants():
    gamma, E = radau_error_estimator(RADAU_IIA5)
    s6 = math.sqrt(6)
    assert gamma == pytest.approx(3 + 3 ** (2 / 3) - 3 ** (1 / 3), rel=1e-15)
    np.testing.assert_allclose(E, np.array([-13 - 7 * s6, -13 + 7 * s6, -1]) / 3, rtol=1e-14)


@pytest.mark.parametrize("tab", [RADAU_IIA5, RADAU_IIA9])
def test_radau_eigensystem_diagonalises_the_inverse_coefficients(tab):
    lam, V, V_inv = (np.array(x) for x in radau_eigensystem(tab))
    s = tab.stages
    np.testing.assert_allclose(V @ np.diag(lam) @ V_inv, np.linalg.inv(np.array(tab.a)),
                               rtol=0, atol=1e-12)
    assert lam[0].imag == 0 and np.all(V[:, 0].imag == 0)      # the real block stays real
    assert np.all(lam[1:(s + 1) // 2].imag > 0)
    np.testing.assert_array_equal(lam[(s + 1) // 2:], lam[1:(s + 1) // 2].conj())


@pytest.mark.parametrize("name", ["radau5", "radau9"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_radau_transformed_newton_step_equals_the_full_stage_solve(name, dtype, sparse):
    """One real n × n and (s − 1)/2 complex n × n systems (all s − 1 for complex states) give
    the same increment as the (s·n) × (s·n) Newton matrix, per sample with its own J and h;
    with dense LU factors and with SuperLU's on a (banded) sparsity pattern."""
    method = METHODS[name]()
    generator = torch.Generator().manual_seed(0)
    B, n, s = 3, 5, method.tableau.stages
    J = torch.randn(B, n, n, dtype=dtype, generator=generator)
    h = torch.tensor([[0.01], [0.3], [2.0]], dtype=torch.float64)
    G = torch.randn(B, s, n, dtype=dtype, generator=generator)
    sparsity = None
    if sparse:
        band = (np.subtract.outer(np.arange(n), np.arange(n)) ** 2 <= 1)
        band[0, -1] = True                       # a periodic corner, outside the band
        J = J * torch.as_tensor(band)
        sparsity = Sparsity(band, n)
    factors = method._factorise(J, h, sparsity)
    assert isinstance(factors["lu"], SparseLU if sparse else DenseLU)
    state = type("Factors", (), factors)
    A = torch.tensor(method.tableau.a, dtype=torch.float64).to(dtype)
    full = torch.linalg.solve(newton_matrix(A, h.to(dtype), J), G.reshape(B, s * n))
    found = method._solver(state, h)(G)
    assert found.dtype == dtype
    torch.testing.assert_close(found, full.reshape(B, s, n), rtol=1e-10, atol=1e-12)
    assert factors["lu"].shape == (B, (s - 1) // (1 if dtype.is_complex else 2))


@pytest.mark.parametrize("name,stages", [("radau5", 3), ("radau9", 5)])
def test_radau_error_estimate_is_of_order_s_plus_1(name, stages):
    """One step of size h from the same state: the embedded estimate scales as h^(s+1) (fitted
    over a 32-fold range of h; the next-order terms make the local slopes wander)."""
    method = METHODS[name](newton=pn.integrators.Newton(max_iter=50, tol=1e-14))
    pend = Field(pn.systems.Pendulum())
    y = torch.tensor([[1.2, 0.5]], dtype=torch.float64)
    t = torch.zeros(1, dtype=torch.float64)
    steps = [0.4 / 2 ** k for k in range(6)]
    norms = []
    unit_weights = Tolerance(rtol=1e-12, atol=1.0)      # error weights 1 + O(1e-12)
    for h in steps:
        state = method.init(pend, t, y, pend(t, y))
        attempt = method.attempt(pend, t, y, torch.tensor([[h]], dtype=torch.float64), state,
                                 unit_weights)
        norms.append(attempt.error.item())
    slope = np.polyfit(np.log(steps), np.log(norms), 1)[0]
    assert abs(slope - (stages + 1)) <= 0.3, (slope, norms)


@pytest.mark.parametrize("kwargs,message", [
    (dict(a=((0.0,),), b=(0.9,), c=(0.0,), order=1), r"^tableau weights `b` must sum to 1"),
    (dict(a=((0.0, 0.0), (0.5, 0.0)), b=(0.0, 1.0), c=(0.0, 0.6), order=2),
     r"^tableau row 1 of `a` sums to 0.5; expected the node c\[1\] = 0.6$"),
    (dict(a=((0.0,),), b=(1.0,), c=(0.0, 1.0), order=1), r"^a tableau needs a 1×1 `a`"),
])
def test_bad_tableau_is_rejected(kwargs, message):
    from physnode.integrators.tableau import ButcherTableau
    with pytest.raises(ValueError, match=message):
        ButcherTableau(**kwargs)


def _pendulum_reference(y0, t_end):
    pend = pn.systems.Pendulum()
    sol = solve_ivp(scipy_field(pend), (0, t_end), as_numpy(y0), method="DOP853", rtol=1e-13,
                    atol=1e-14)
    return torch.as_tensor(sol.y[:, -1], device=y0.device)


@pytest.mark.parametrize("name", FIXED)
def test_empirical_convergence_order(name):
    method = METHODS[name]()
    pend = pn.systems.Pendulum()
    y0 = torch.tensor([1.2, 0.5], dtype=torch.float64)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    exact = _pendulum_reference(y0, 2.0)
    # Step sizes where the error is well above round-off and in the asymptotic regime.
    base = {1: 0.01, 2: 0.02, 4: 0.05, 6: 0.1}[method.order]
    steps = [base, base / 2, base / 4]
    errors = [(pn.solve(pend, y0, t, method=method, dt=h).ys[-1] - exact).norm().item()
              for h in steps]
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - method.order) <= 0.3, (slope, errors)


@pytest.mark.parametrize("name", ADAPTIVE)
def test_adaptive_error_follows_the_tolerance(name):
    spring = pn.systems.MassSpring(k=2.0, damping=0.1)
    y0 = torch.tensor([[1.0, 0.0], [0.3, -0.5]], dtype=torch.float64)
    t = torch.linspace(0, 10, 5, dtype=torch.float64)
    exact = spring.solution(t, y0)
    errors = []
    for rtol in (1e-5, 1e-8, 1e-11):
        sol = pn.solve(spring, y0, t, method=name, rtol=rtol, atol=rtol * 1e-2)
        errors.append((sol.ys - exact).abs().max().item())
    assert errors[2] < 1e-8 and errors[2] < errors[1] < errors[0], errors
    assert errors[0] < 1e-3


def _one_step_jacobian(method, system, y, h):
    def step(z):
        # A loose tolerance makes an adaptive method's map visibly differ from the exact flow.
        return pn.solve(system, z, torch.tensor([0.0, h], dtype=torch.float64),
                        method=method, rtol=1e-3, atol=1e-3).ys[-1]
    return torch.autograd.functional.jacobian(step, y)


SYMPLECTIC = [n for n, cls in METHODS.items() if cls.symplectic]


def _j2():
    return torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)


@pytest.mark.parametrize("name", SYMPLECTIC)
def test_one_step_map_is_symplectic_on_the_pendulum(name):
    M = _one_step_jacobian(name, pn.systems.Pendulum(), torch.tensor([1.3, 0.4],
                                                                     dtype=torch.float64), 0.2)
    J2 = _j2()
    torch.testing.assert_close(M.T @ J2 @ M, J2, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", [n for n in SYMPLECTIC if METHODS[n].implicit])
def test_gauss_legendre_is_symplectic_for_a_non_separable_hamiltonian(name):
    dp = pn.systems.DoublePendulum()
    y = torch.tensor([0.8, -0.4, 1.1, 0.3], dtype=torch.float64)
    M = _one_step_jacobian(name, dp, y, 0.05)
    J4 = torch.zeros(4, 4, dtype=torch.float64)
    J4[:2, 2:], J4[2:, :2] = torch.eye(2), -torch.eye(2)
    torch.testing.assert_close(M.T @ J4 @ M, J4, atol=1e-11, rtol=0)


@pytest.mark.parametrize("name", [n for n, cls in METHODS.items() if not cls.symplectic])
def test_non_symplectic_methods_fail_the_symplecticity_check(name):
    M = _one_step_jacobian(name, pn.systems.Pendulum(), torch.tensor([1.3, 0.4],
                                                                     dtype=torch.float64), 1.0)
    J2 = _j2()
    assert (M.T @ J2 @ M - J2).abs().max() > 1e-7


def _energy_errors(method, steps, h=0.1):
    """Relative energy error of Pendulum(g=1) from (q, p) = (1, 0) at 100 evenly spaced times:
    the set-up of the reference figures (leapfrog 2.3e-3, yoshida4 8.4e-6, RK4 1.0e-3 at 1e5
    steps of h = 0.1)."""
    pend = pn.systems.Pendulum(g=1.0)
    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    t = torch.linspace(0, steps * h, 101, dtype=torch.float64)
    ys = pn.solve(pend, y0, t, method=method, dt=h).ys
    e0 = pend.energy(y0)
    return ((pend.energy(ys) - e0) / e0).abs().max(-1).values   # (101,)


def _assert_bounded_without_trend(name, steps, reference):
    err = _energy_errors(name, steps)
    first, second = err[1:51].max(), err[51:].max()
    assert 0.9 * reference < err.max() < 1.1 * reference, err.max()
    assert second < 1.05 * first, (first, second)       # no growth between the halves


@pytest.mark.parametrize("name,reference", [("leapfrog", 2.3e-3), ("yoshida4", 8.4e-6)])
def test_symplectic_energy_error_is_bounded_without_trend(name, reference):
    _assert_bounded_without_trend(name, 10_000, reference)


@pytest.mark.slow
@pytest.mark.parametrize("name,reference", [("leapfrog", 2.3e-3), ("yoshida4", 8.4e-6)])
def test_symplectic_energy_error_is_bounded_without_trend_over_1e5_steps(name, reference):
    _assert_bounded_without_trend(name, 100_000, reference)


def test_rk4_energy_error_drifts_about_tenfold_per_decade():
    e3 = _energy_errors("rk4", 1_000)[-1].item()
    e4 = _energy_errors("rk4", 10_000)[-1].item()
    assert 8 < e4 / e3 < 12 and 0.9e-4 < e4 < 1.1e-4, (e3, e4)


@pytest.mark.slow
def test_rk4_energy_error_reaches_1e_3_after_1e5_steps():
    e5 = _energy_errors("rk4", 100_000)[-1].item()
    assert 0.9e-3 < e5 < 1.1e-3, e5


def vdp_with_mu(t, y):
    """Van der Pol with a per-sample μ carried as a constant third state component."""
    x, v, mu = y.unbind(-1)
    return torch.stack([v, mu * (1 - x ** 2) * v - x, torch.zeros_like(mu)], -1)


@pytest.mark.parametrize("name", ADAPTIVE)
def test_batch_equals_one_at_a_time(name):
    y0 = torch.tensor([[2.0, 0.0, 0.5], [1.0, 1.0, 3.0], [2.0, 0.0, 10.0], [-1.5, 0.5, 30.0]],
                      dtype=torch.float64)
    t = torch.linspace(0, 5, 4, dtype=torch.float64)
    batch = pn.solve(vdp_with_mu, y0, t, method=name, rtol=1e-7, atol=1e-9)
    for i in range(4):
        single = pn.solve(vdp_with_mu, y0[i:i + 1], t, method=name, rtol=1e-7, atol=1e-9)
        torch.testing.assert_close(batch.ys[:, i], single.ys[:, 0], rtol=1e-12, atol=1e-12)
        for key in ("nfev", "steps", "rejected", "njev", "nlu"):
            assert batch.stats[key][i] == single.stats[key][0], key
    assert len(set(batch.stats["steps"].tolist())) > 1     # samples really stepped differently


@pytest.mark.parametrize("name", list(METHODS))
def test_dtype_and_device_follow_y0(name):
    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float32)
    sol = pn.solve(pn.systems.MassSpring(), y0, torch.tensor([0.0, 0.5]), method=name, dt=0.1,
                   rtol=1e-4, atol=1e-6)
    assert sol.ys.dtype == torch.float32 and sol.ys.device == y0.device
    assert torch.isfinite(sol.ys).all()


SPLITTINGS = [n for n, cls in METHODS.items() if cls.symplectic and not cls.implicit]


@pytest.mark.parametrize("name", list(METHODS))
def test_batch_shape_and_backward_time(name):
    # Splittings assume a separable field, so they get the undamped spring.
    damping = 0.0 if name in SPLITTINGS else 0.2
    spring = pn.systems.MassSpring(k=1.5, damping=damping)
    y0 = torch.randn(3, 2, 2, dtype=torch.float64, generator=seeded(0))
    t = torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64)    # backwards in time
    sol = pn.solve(spring, y0, t, method=name, dt=0.01, rtol=1e-9, atol=1e-11)
    assert sol.ys.shape == (3, 3, 2, 2)
    exact = spring.solution(t - 1.0, y0)
    order = METHODS[name]().order
    tol = 1e-7 if METHODS[name].adaptive else {1: 3e-2, 2: 1e-3}.get(order, 1e-6)
    torch.testing.assert_close(sol.ys, exact, atol=tol, rtol=0)


@pytest.mark.parametrize("name", list(METHODS))
def test_gradcheck(name):
    k = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)

    def f(t, y):
        q, p = y[..., 0], y[..., 1]
        return torch.stack([p, -k * torch.sin(q)], -1)

    t = torch.tensor([0.0, 0.3, 0.6], dtype=torch.float64)
    y0 = torch.tensor([[0.7, 0.1], [-0.4, 0.6]], dtype=torch.float64, requires_grad=True)

    def run(y0, k_):
        k.data = k_.detach().clone()      # the closure reads k; gradcheck perturbs k_
        return pn.solve(f, y0, t, method=name, dt=0.1, rtol=1e-11, atol=1e-12).ys

    # Gradient with respect to y0 (and through k by the closure: checked separately below).
    assert torch.autograd.gradcheck(lambda y: run(y, k.detach()), (y0,), atol=1e-6, rtol=1e-5)
    ys = pn.solve(f, y0.detach(), t, method=name, dt=0.1, rtol=1e-11, atol=1e-12).ys
    (grad_k,) = torch.autograd.grad(ys.sum(), k)
    eps = 1e-6
    with torch.no_grad():
        k += eps
        up = pn.solve(f, y0.detach(), t, method=name, dt=0.1, rtol=1e-11, atol=1e-12).ys.sum()
        k -= 2 * eps
        down = pn.solve(f, y0.detach(), t, method=name, dt=0.1, rtol=1e-11,
                        atol=1e-12).ys.sum()
        k += eps
    assert math.isclose(grad_k.item(), ((up - down) / (2 * eps)).item(), rel_tol=1e-5,
                        abs_tol=1e-7)


@pytest.mark.parametrize("field", ["network", "lagrangian"])
def test_jacobian_rows_from_one_vectorised_pass_equal_one_pass_per_row(field, monkeypatch):
    from physnode.integrators import newton

    generator = torch.Generator().manual_seed(0)
    if field == "network":
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.Tanh(),
                                  torch.nn.Linear(32, 20)).double()

        def f(t, y):
            return net(y) * torch.cos(t)
    else:                          # second derivatives inside f: Euler–Lagrange of an LNN
        torch.manual_seed(0)
        f = pn.models.LNN(dof=10, hidden=16).double()
        torch.nn.init.normal_(f.lagrangian.net[-1].weight, std=0.1)   # not a free particle
    y = torch.randn(3, 5, 20, dtype=torch.float64, generator=generator)
    t = torch.rand(3, 5, 1, dtype=torch.float64, generator=generator)
    assert newton.BATCHED_ROWS <= 20
    vectorised = newton.jacobian(f, t, y)
    monkeypatch.setattr(newton, "BATCHED_ROWS", 10 ** 9)
    torch.testing.assert_close(vectorised, newton.jacobian(f, t, y), rtol=1e-12, atol=1e-12)
    assert vectorised.shape == (3, 5, 20, 20)


def test_the_jacobian_of_a_field_that_ignores_the_state_is_zero():
    from physnode.integrators import newton

    drift = torch.randn(20, dtype=torch.float64, requires_grad=True)    # a learned constant
    y = torch.randn(3, 20, dtype=torch.float64)
    J = newton.jacobian(lambda t, y: drift.expand_as(y), torch.zeros(3), y)
    assert J.shape == (3, 20, 20) and not J.any()
