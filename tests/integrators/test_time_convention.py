"""The time convention of ``solve``: every method hands ``f`` the time of each sample as a
``(*batch, 1)`` tensor, so the same time-dependent field gives the same answer with every
method and batch shape — checked against closed forms and against scipy's ``solve_ivp``."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp
from scipy.linalg import expm

import physnode as pn
from physnode.integrators import METHODS
from tests._devices import as_numpy, seeded

T0, T1 = 0.3, 2.0
OMEGA, FORCE, DRIVE = 1.3, 0.7, 2.1                   # forced oscillator ω, F, Ω
ROTATION = np.array([[0.0, 1.0], [-1.0, 0.0]])        # y' = t K y with K = J
K3 = np.array([[-0.2, 1.0, 0.0], [-1.0, -0.1, 0.4], [0.3, -0.4, -0.3]])


def forced_field(t, y):
    """q' = p, p' = −ω² q + F cos Ωt: a separable, time-dependent Hamiltonian."""
    q, p = y[..., :1], y[..., 1:]
    return torch.cat([p, -OMEGA ** 2 * q + FORCE * torch.cos(DRIVE * t)], -1)


def forced_solution(t, y0):
    # Particular solution A cos Ωt (no damping) plus the free rotation of the rest.
    amplitude = FORCE / (OMEGA ** 2 - DRIVE ** 2)

    def particular(time):
        return np.array([amplitude * math.cos(DRIVE * time),
                         -amplitude * DRIVE * math.sin(DRIVE * time)])

    M = np.array([[0.0, 1.0], [-OMEGA ** 2, 0.0]])
    return particular(t) + (expm(M * (t - T0)) @ (y0 - particular(T0)).T).T


def damped_forced_field(t, y):
    """x'' + 2ζω x' + ω² x = F cos Ωt, ζ = 0.15."""
    x, v = y[..., :1], y[..., 1:]
    return torch.cat([v, -2 * 0.15 * OMEGA * v - OMEGA ** 2 * x + FORCE * torch.cos(DRIVE * t)],
                     -1)


def damped_forced_solution(t, y0):
    zeta = 0.15
    D = (OMEGA ** 2 - DRIVE ** 2) ** 2 + (2 * zeta * OMEGA * DRIVE) ** 2
    a, b = FORCE * (OMEGA ** 2 - DRIVE ** 2) / D, FORCE * 2 * zeta * OMEGA * DRIVE / D

    def particular(time):
        c, s = math.cos(DRIVE * time), math.sin(DRIVE * time)
        return np.array([a * c + b * s, DRIVE * (-a * s + b * c)])

    M = np.array([[0.0, 1.0], [-OMEGA ** 2, -2 * zeta * OMEGA]])
    return particular(t) + (expm(M * (t - T0)) @ (y0 - particular(T0)).T).T


def linear_field(K):
    def field(t, y):
        return t * (y @ torch.as_tensor(K, dtype=y.dtype, device=y.device).T)
    return field


def linear_solution(K):
    def solution(t, y0):        # A(t) = t K commutes with itself: Φ = exp(K (t² − t0²)/2)
        return (expm(K * (t ** 2 - T0 ** 2) / 2) @ y0.T).T
    return solution


PROBLEMS = {
    # name: (field, closed form, state width, separable (splitting methods apply))
    "y'=-ty": (lambda t, y: -t * y, lambda t, y0: y0 * math.exp(-(t ** 2 - T0 ** 2) / 2), 2,
               False),
    "y'=cos t": (lambda t, y: torch.cos(t).expand_as(y),
                 lambda t, y0: y0 + math.sin(t) - math.sin(T0), 2, True),
    "forced oscillator": (forced_field, forced_solution, 2, True),
    "damped forced oscillator": (damped_forced_field, damped_forced_solution, 2, False),
    "y'=tJy": (linear_field(ROTATION), linear_solution(ROTATION), 2, True),
    "y'=tKy, n=3": (linear_field(K3), linear_solution(K3), 3, False),
}
# Batch shapes include B == n (the case a per-sample time of shape (B,) mis-broadcast).
SHAPES = [(), (2,), (3,), (2, 3)]


def step(method):
    """Fixed step per order: error well below ``tolerance`` (the low orders are also checked
    exactly against one-at-a-time solves below, which is what a mis-broadcast time breaks)."""
    return {1: 2e-3, 2: 2e-3}.get(method.order, 1e-2)


def tolerance(method):
    if method.adaptive:
        return 1e-6
    return {1: 1e-2, 2: 4e-5}.get(method.order, 1e-6)


def applies(method, width, separable):
    if method.symplectic and width % 2:
        return False
    return separable or not (method.symplectic and not method.implicit)


def initial_states(shape, width):
    generator = seeded(7)
    return torch.rand(*shape, width, generator=generator, dtype=torch.float64) * 2 - 1


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_closed_forms_match_scipy(problem):
    field, solution, width, _ = PROBLEMS[problem]
    times = [T0, 1.1, T1]
    for start in as_numpy(initial_states((3,), width)):
        ref = solve_ivp(lambda time, y: as_numpy(field(torch.tensor(time), torch.from_numpy(y))),
                        (T0, T1), start, method="DOP853", t_eval=times, rtol=1e-12, atol=1e-12)
        exact = np.stack([solution(time, start[None])[0] for time in times])
        assert np.abs(ref.y.T - exact).max() < 1e-9


def _applicable(problems):
    """``(method name, problem)`` pairs the method can solve (symplectic methods need a
    separable (q, p) field): generated, not skipped."""
    return [(name, problem) for name in METHODS for problem in problems
            if applies(METHODS[name](), PROBLEMS[problem][2], PROBLEMS[problem][3])]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name,problem", _applicable(list(PROBLEMS)))
def test_time_dependent_problem_matches_closed_form(name, problem, shape):
    field, solution, width, separable = PROBLEMS[problem]
    method = METHODS[name]()
    y0 = initial_states(shape, width)
    t = torch.tensor([T0, 1.1, T1], dtype=torch.float64)
    sol = pn.solve(field, y0, t, method=name, dt=step(method), rtol=1e-9, atol=1e-11)
    flat = as_numpy(y0).reshape(-1, width)
    exact = np.stack([solution(float(time), flat) for time in t.tolist()])
    got = as_numpy(sol.ys).reshape(len(t), -1, width)
    assert np.abs(got - exact).max() < tolerance(method), (name, problem, shape)


@pytest.mark.parametrize("name,problem", _applicable(["y'=-ty", "y'=tJy", "y'=tKy, n=3"]))
def test_batch_with_as_many_samples_as_states_equals_one_at_a_time(name, problem):
    field, _, width, separable = PROBLEMS[problem]
    y0 = initial_states((width,), width)
    t = torch.tensor([T0, T1], dtype=torch.float64)
    batch = pn.solve(field, y0, t, method=name, dt=0.01).ys
    single = torch.stack([pn.solve(field, y, t, method=name, dt=0.01).ys for y in y0], 1)
    torch.testing.assert_close(batch, single, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(METHODS))
def test_f_receives_one_time_per_sample_of_shape_batch_by_one(name):
    shapes = set()

    def recording(t, y):
        shapes.add((tuple(t.shape), tuple(y.shape)))
        return -y * t

    y0 = torch.ones(4, 2, dtype=torch.float64)
    pn.solve(recording, y0, torch.tensor([0.0, 0.5], dtype=torch.float64), method=name,
             dt=0.1)
    assert shapes and all(ts == ys[:-1] + (1,) for ts, ys in shapes), shapes


@pytest.mark.parametrize("name", ["rk4", "dopri5", "radau5", "kvaerno5", "gauss_legendre4"])
def test_time_dependent_neural_ode_batch_equals_one_at_a_time(name):
    torch.manual_seed(0)
    node = pn.models.NeuralODE(dim=2, hidden=8, time_dependent=True).double()
    y0 = torch.randn(3, 2, dtype=torch.float64)
    t = torch.linspace(0.0, 1.0, 4, dtype=torch.float64)
    with torch.no_grad():
        batch = pn.solve(node, y0, t, method=name, dt=0.01).ys
        single = torch.stack([pn.solve(node, y, t, method=name, dt=0.01).ys for y in y0], 1)
        reference = pn.solve(node, y0, t, method="rk4", dt=1e-3).ys
    torch.testing.assert_close(batch, single, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(batch, reference, rtol=1e-5, atol=1e-6)


def test_forced_duffing_uses_each_samples_own_time():
    duffing = pn.systems.Duffing(delta=0.2, gamma=0.3, omega=1.2)
    y0 = torch.tensor([[0.5, 0.0], [-0.3, 0.2]], dtype=torch.float64)
    t = torch.tensor([0.0, 5.0], dtype=torch.float64)
    batch = pn.solve(duffing, y0, t, method="dopri5", rtol=1e-10, atol=1e-12).ys[-1]
    fixed = pn.solve(duffing, y0, t, method="rk4", dt=1e-3).ys[-1]
    torch.testing.assert_close(batch, fixed, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("t", [torch.zeros(3), torch.zeros(3, 2), torch.zeros(2, 1)],
                         ids=["(3,)", "(3, 2)", "(2, 1)"])
def test_a_time_of_another_shape_is_refused(t):
    shape = tuple(t.shape)
    with pytest.raises(ValueError, match=r"^`t` must be a scalar or have shape \(\*batch, 1\) "
                                         r"for states of shape \(3, 2\); got shape "
                                         + repr(shape).replace("(", r"\(").replace(")", r"\)")
                                         + "$"):
        pn.systems.sample_times(t, torch.zeros(3, 2))


def _oscillator(t, y):
    return torch.cat([y[..., 1:], -y[..., :1]], -1)


@pytest.mark.parametrize("name", list(METHODS))
def test_gradients_with_respect_to_the_times_are_exact_for_every_method(name):
    # y(t_i) = R(t_i - t_0) y0: ∂/∂t_i = f(y_i), ∂/∂t_0 = -Σ_i ∂y_i/∂y0 · f(y0) = -Σ_i f(y_i)
    method = METHODS[name]()
    t = torch.tensor([0.3, 0.8, 1.5], dtype=torch.float64, requires_grad=True)
    y0 = torch.tensor([[1.0, 0.5], [-0.2, 0.7]], dtype=torch.float64, requires_grad=True)
    weights = torch.tensor([1.0, -2.0], dtype=torch.float64)
    sol = pn.solve(_oscillator, y0, t, method=method,
                   dt=None if method.adaptive else 1e-3, rtol=1e-10, atol=1e-12)
    (grad_t,) = torch.autograd.grad((sol.ys * weights).sum(), t)
    with torch.no_grad():
        slopes = (_oscillator(None, sol.ys) * weights).sum(dim=(-1, -2))
    expected = torch.cat([slopes[:1] - slopes.sum(), slopes[1:]])
    tolerance = 1e-6 if method.order >= 2 else 1e-3
    torch.testing.assert_close(grad_t, expected, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(sol.t, t.detach())
