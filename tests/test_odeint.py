"""physnode.odeint, torchdiffeq's interface: torchdiffeq's own test problems against their
closed forms and against torchdiffeq itself, forwards and backwards in time, in float32 and
float64; tuple states, gradients, the 0-d time ``func`` receives, and every refusal."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch
import torchdiffeq

import physnode as pn
from physnode._odeint import _with_controller_options
from physnode._validation import TORCHDIFFEQ_ONLY, UNSUPPORTED_OPTIONS
from tests._devices import as_numpy, seeded

DTYPES = (torch.float32, torch.float64)


# torchdiffeq's tests/problems.py (rtqichen/torchdiffeq), the same fields and solutions.

class ConstantODE(torch.nn.Module):
    """y' = a + (y − (a t + b))⁵: the solution a t + b is linear in t, so every Runge–Kutta
    method integrates it exactly, and any error is round-off or a wrong time."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.2))
        self.b = torch.nn.Parameter(torch.tensor(3.0))

    def forward(self, t, y):
        return self.a + (y - (self.a * t + self.b)) ** 5

    def y_exact(self, t):
        return self.a * t + self.b


class SineODE(torch.nn.Module):
    """y' = 2y/t + t⁴ sin 2t − t² + 4t³, a scalar non-autonomous equation."""

    def forward(self, t, y):
        return 2 * y / t + t ** 4 * torch.sin(2 * t) - t ** 2 + 4 * t ** 3

    def y_exact(self, t):
        return (-0.5 * t ** 4 * torch.cos(2 * t) + 0.5 * t ** 3 * torch.sin(2 * t)
                + 0.25 * t ** 2 * torch.cos(2 * t) - t ** 3 + 2 * t ** 4
                + (math.pi - 0.25) * t ** 2)


class LinearODE(torch.nn.Module):
    """y' = A y with torchdiffeq's A = 2U − (U + Uᵀ), U = 0.1·randn(10, 10) under seed 0
    (drawn on the CPU, so the same matrix on every device); y(0) = 1, y(t) = exp(At)·1."""

    def __init__(self, dim=10):
        super().__init__()
        self.dim = dim
        U = torch.randn(dim, dim, generator=seeded(0)) * 0.1
        self.A = torch.nn.Parameter((2 * U - (U + U.T)).to(torch.get_default_device()))

    def forward(self, t, y):
        return torch.mm(self.A, y.reshape(self.dim, 1)).reshape(-1)

    def y_exact(self, t):
        A = as_numpy(self.A).astype(np.float64)
        exact = [scipy.linalg.expm(A * ti) @ np.ones(self.dim) for ti in as_numpy(t)]
        return torch.tensor(np.stack(exact)).to(t)


PROBLEMS = {"constant": ConstantODE, "sine": SineODE, "linear": LinearODE}


def construct_problem(ode, dtype=torch.float64, reverse=False, npts=10):
    """torchdiffeq's construct_problem: 10 times from 1 to 8 (reversed: from 8 to 1)."""
    f = PROBLEMS[ode]().to(dtype)
    t = torch.linspace(1, 8, npts, dtype=dtype)
    with torch.no_grad():
        sol = f.y_exact(t)
    if reverse:
        t, sol = t.flip(0), sol.flip(0)
    return f, sol[0].clone(), t, sol


class Counted:
    """``func`` counting its evaluations."""

    def __init__(self, func):
        self.func, self.calls = func, 0

    def __call__(self, t, y):
        self.calls += 1
        return self.func(t, y)


def rel_error(true, estimate):
    """torchdiffeq's measure: the largest relative error of an element."""
    return ((true - estimate) / true).abs().max().item()


def scaled_error(true, estimate):
    """Largest error relative to the largest value (elements of LinearODE pass near zero)."""
    return ((true - estimate).abs().max() / true.abs().max()).item()


# torchdiffeq's TestSolverError.test_odeint: adaptive methods on every problem, fixed-step
# methods on the constant one (which they integrate exactly) with t as the grid, at its
# default rtol 1e-7 and atol 1e-9 and its bounds 2e-3 (linear) and 3e-4 (the others).
CASES = [("dopri5", ode) for ode in PROBLEMS] + [(m, "constant") for m in ("rk4", "euler",
                                                                          "midpoint")]


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("method,ode", CASES)
def test_torchdiffeq_problems_match_closed_forms_and_torchdiffeq(method, ode, dtype, reverse):
    eps = 2e-3 if ode == "linear" else 3e-4
    f, y0, t, sol = construct_problem(ode, dtype, reverse)
    with torch.no_grad():
        ys = pn.odeint(f, y0, t, method=method)
        theirs = torchdiffeq.odeint(f, y0, t, method=method)
    assert ys.shape == theirs.shape == sol.shape and ys.dtype == dtype
    assert rel_error(sol, ys) < eps
    assert rel_error(sol, theirs) < eps
    assert rel_error(theirs, ys) < eps


# Fixed steps set by options["step_size"] on the problems that are not trivial for them.
# Bounds follow from the order p: the error falls by 2^p when the step halves (±0.3 in the
# exponent, in float64, where round-off is far below the truncation error).
FIXED = {"euler": (1, 256), "midpoint": (2, 64), "rk4": (4, 8)}   # order, steps per output


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("ode", ["sine", "linear"])
@pytest.mark.parametrize("method", list(FIXED))
def test_step_size_converges_at_the_order_of_the_method(method, ode, reverse):
    order, n = FIXED[method]
    f, y0, t, sol = construct_problem(ode, torch.float64, reverse)
    spacing = 7 / 9                                    # the output spacing
    with torch.no_grad():
        errors = [scaled_error(sol, pn.odeint(f, y0, t, method=method,
                                              options={"step_size": spacing / k}))
                  for k in (n, 2 * n)]
    assert abs(math.log2(errors[0] / errors[1]) - order) < 0.3
    assert errors[1] < {1: 2e-2, 2: 2e-4, 4: 1e-6}[order]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("method", ["euler", "midpoint"])
def test_step_size_on_torchdiffeqs_grid_takes_torchdiffeqs_steps(method, dtype):
    """A step size dividing the output spacing puts every output on torchdiffeq's grid, so
    Euler and midpoint take the very same steps as torchdiffeq: equal up to round-off."""
    f, y0, t, sol = construct_problem("sine", dtype, reverse=False)
    options = {"step_size": 7 / 9 / 16}
    with torch.no_grad():
        ys = pn.odeint(f, y0, t, method=method, options=options)
        theirs = torchdiffeq.odeint(f, y0, t, method=method, options=options)
    assert rel_error(theirs, ys) < (2e-5 if dtype == torch.float32 else 1e-12)


def test_rk4_is_the_classical_tableau_not_torchdiffeqs_three_eighths_rule():
    """One step of y' = t⁴ over [0, 1] is a quadrature of ∫t⁴ = 1/5: the classical RK4 is
    Simpson's rule, 5/24; torchdiffeq's rk4 is Kutta's 3/8 rule, 11/54."""
    y0, t = torch.zeros(1, dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    quartic = lambda t, y: t ** 4 * torch.ones_like(y)                 # noqa: E731
    ours = pn.odeint(quartic, y0, t, method="rk4")[-1].item()
    theirs = torchdiffeq.odeint(quartic, y0, t, method="rk4")[-1].item()
    assert ours == pytest.approx(5 / 24, rel=1e-15)
    assert theirs == pytest.approx(11 / 54, rel=1e-15)


@pytest.mark.parametrize("ode", ["sine", "linear"])
def test_fixed_steps_reach_outputs_where_torchdiffeq_interpolates(ode):
    """step_size 0.1 does not divide the output spacing 7/9: physnode shortens the steps to
    land on every output (rk4's error: 7e-6 sine, 9e-5 linear), torchdiffeq interpolates
    linearly between its grid nodes (an O(h²) error: 3e-3 and 2e-2, 200 to 400 times more)."""
    f, y0, t, sol = construct_problem(ode, torch.float64)
    with torch.no_grad():
        ys = pn.odeint(f, y0, t, method="rk4", options={"step_size": 0.1})
        theirs = torchdiffeq.odeint(f, y0, t, method="rk4", options={"step_size": 0.1})
    assert rel_error(sol, ys) < 2e-4
    assert rel_error(sol, theirs) > 100 * rel_error(sol, ys)


def test_dopri5_reaches_the_outputs_exactly_where_torchdiffeq_interpolates():
    """On the linear field with 100 outputs, physnode's dopri5 lands on every one (602
    evaluations, error 4e-10) where torchdiffeq steps past and interpolates (272 evaluations,
    error 6e-8)."""
    f, y0, _, _ = construct_problem("linear")
    t = torch.linspace(1, 8, 100, dtype=torch.float64)
    with torch.no_grad():
        exact = f.y_exact(t)
    counts = {}
    for name, odeint in (("physnode", pn.odeint), ("torchdiffeq", torchdiffeq.odeint)):
        counted = Counted(f)
        with torch.no_grad():
            ys = odeint(counted, y0, t)
        counts[name] = counted.calls
        assert scaled_error(exact, ys) < 1e-6
    assert counts["physnode"] > counts["torchdiffeq"]


# Tuple states (torchdiffeq's TestCollectionState).

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_tuple_state_gives_a_tuple_of_solutions(dtype):
    f, y0, t, sol = construct_problem("constant", dtype)
    pair = pn.odeint(lambda t, y: (f(t, y[0]), f(t, y[1])), (y0, y0), t)
    theirs = torchdiffeq.odeint(lambda t, y: (f(t, y[0]), f(t, y[1])), (y0, y0), t)
    assert isinstance(pair, tuple) and len(pair) == 2
    for ours, reference in zip(pair, theirs):
        assert ours.shape == sol.shape
        assert rel_error(sol, ours) < 3e-4 and rel_error(reference, ours) < 3e-4


def test_tuple_state_is_its_concatenation():
    """A tuple of parts of different shapes is one flat state: the same numbers as solving
    the concatenated vector, part by part."""
    K = torch.tensor([[0.0, 1.0, 0.0], [-1.0, -0.1, 0.3], [0.2, -0.3, -0.2]],
                     dtype=torch.float64)
    y0 = (torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64),
          torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64))

    def split_field(t, y):
        a, b = y
        return -torch.cos(t) * a, K @ b + a.sum()

    def flat_field(t, y):
        da, db = split_field(t, (y[:4].reshape(2, 2), y[4:]))
        return torch.cat([da.reshape(-1), db])

    t = torch.tensor([0.0, 0.7, 2.0], dtype=torch.float64)
    a, b = pn.odeint(split_field, y0, t)
    flat = pn.odeint(flat_field, torch.cat([y0[0].reshape(-1), y0[1]]), t)
    assert a.shape == (3, 2, 2) and b.shape == (3, 3)
    torch.testing.assert_close(torch.cat([a.reshape(3, -1), b], -1), flat, rtol=0, atol=0)


def test_tuple_error_norm_is_one_rms_over_all_parts():
    """torchdiffeq takes the largest of the parts' RMS norms, physnode one RMS over every
    element: with a 1-element part beside a 99-element one, torchdiffeq controls the small
    part more tightly (428 evaluations against 302); both end within the tolerance's reach
    (errors 1.9e-6 and 1.3e-6 in the small part)."""
    rate = torch.linspace(0.5, 1.5, 99, dtype=torch.float64)

    def field(t, y):
        return -3.0 * torch.sin(3.0 * t) * torch.ones_like(y[0]), -rate * y[1]

    y0 = (torch.ones(1, dtype=torch.float64), torch.ones(99, dtype=torch.float64))
    t = torch.tensor([0.0, 10.0], dtype=torch.float64)
    steps = {}
    for name, odeint in (("physnode", pn.odeint), ("torchdiffeq", torchdiffeq.odeint)):
        counted = Counted(field)
        with torch.no_grad():
            small, large = odeint(counted, y0, t, rtol=1e-6, atol=1e-8)
        steps[name] = counted.calls
        assert abs(small[-1].item() - math.cos(30.0)) < 1e-4
        torch.testing.assert_close(large[-1], torch.exp(-10.0 * rate), rtol=1e-4, atol=1e-8)
    assert steps["physnode"] < steps["torchdiffeq"]


# Gradients (torchdiffeq's gradient_tests: gradcheck with respect to y0 and t).

@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("method", ["dopri5", "rk4", "midpoint", "euler"])
def test_gradcheck_with_respect_to_y0_and_t(method, reverse):
    f, y0, t, _ = construct_problem("constant", torch.float64, reverse)
    y0, t = y0.requires_grad_(True), t.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda y0, t: pn.odeint(f, y0, t, method=method), (y0, t))


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_gradcheck_on_a_small_nonlinear_tuple_problem(method):
    """A damped pendulum as a tuple (q, p) with a parameter: gradients with respect to the
    initial parts, the times and the damping."""
    t = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64, requires_grad=True)
    q0 = torch.tensor([1.0, -0.5], dtype=torch.float64, requires_grad=True)
    p0 = torch.tensor([0.2, 0.3], dtype=torch.float64, requires_grad=True)
    c = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    options = {"step_size": 0.01} if method == "rk4" else None

    def final(q0, p0, t, c):
        q, p = pn.odeint(lambda t, y: (y[1], -torch.sin(y[0]) - c * y[1]), (q0, p0), t,
                         method=method, rtol=1e-10, atol=1e-12, options=options)
        return q, p

    assert torch.autograd.gradcheck(final, (q0, p0, t, c))


def test_time_gradients_are_the_field_at_the_outputs():
    """∂y(t_i)/∂t_i = f(t_i, y(t_i)) and ∂y(t_i)/∂t_0 = −exp(A(t_i − t_0)) A y_0 on the linear
    problem, where the exact derivative is known."""
    f, y0, t, sol = construct_problem("linear")
    t = t.requires_grad_(True)
    ys = pn.odeint(f, y0, t)
    i = 4
    (dt,) = torch.autograd.grad(ys[i, 2], t)
    A = f.A.detach()
    exact_dti = (A @ sol[i])[2]
    flow = torch.linalg.matrix_exp(A * (t[i] - t[0]).detach())
    exact_dt0 = -(flow @ A @ y0)[2]
    assert dt[i].item() == pytest.approx(exact_dti.item(), rel=1e-6)
    assert dt[0].item() == pytest.approx(exact_dt0.item(), rel=1e-6)
    assert dt[1:i].abs().max() == 0 and dt[i + 1:].abs().max() == 0


def test_parameter_gradients_agree_with_torchdiffeq():
    """torchdiffeq's test_adjoint problem: gradients of a weighted sum of the outputs with
    respect to y0, t and the parameters a, b."""
    grads = {}
    for name, odeint in (("physnode", pn.odeint), ("torchdiffeq", torchdiffeq.odeint)):
        f, y0, t, _ = construct_problem("constant")
        y0, t = y0.requires_grad_(True), t.requires_grad_(True)
        ys = odeint(f, y0, t)
        weights = torch.rand(ys.shape, generator=seeded(0),
                             dtype=ys.dtype).to(ys.device)
        grads[name] = torch.autograd.grad((weights * ys).sum(), (y0, t, f.a, f.b))
    for ours, theirs in zip(grads["physnode"], grads["torchdiffeq"]):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


# What func receives.

@pytest.mark.parametrize("method", ["dopri5", "rk4", "euler", "midpoint", "radau5",
                                    "backward_euler", "leapfrog"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_func_receives_a_0d_time_and_the_state_in_its_shape(method, reverse):
    seen = []

    def field(t, y):
        seen.append((tuple(t.shape), t.dtype, tuple(y.shape), float(t)))
        return torch.stack([y[1], -y[0]])                 # a harmonic oscillator in (2, 3)

    y0 = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    t = torch.tensor([0.0, 0.5, 1.0]).flip(0) if reverse else torch.tensor([0.0, 0.5, 1.0])
    integrator = pn.integrators.METHODS[method]()
    ys = pn.odeint(field, y0, t, method=method,
                   options=None if integrator.adaptive else {"step_size": 0.05})
    assert ys.shape == (3, 2, 3)
    assert {(shape, dtype, y_shape) for shape, dtype, y_shape, _ in seen} == {
        ((), torch.float32, (2, 3))}
    times = [time for *_, time in seen]
    assert min(times) >= -1e-7 and max(times) <= 1.0 + 1e-7          # float32 round-off
    exact = torch.cos(t[-1] - t[0]) * y0[0] + torch.sin(t[-1] - t[0]) * y0[1]
    tolerance = 0.2 if integrator.order == 1 else 2e-3                 # h = 0.05
    torch.testing.assert_close(ys[-1, 0], exact, rtol=tolerance, atol=tolerance)


def test_scalar_state():
    ys = pn.odeint(lambda t, y: -2.0 * y, torch.tensor(1.0, dtype=torch.float64),
                   torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert ys.shape == (2,)
    assert ys[-1].item() == pytest.approx(math.exp(-2.0), rel=1e-7)


def test_one_time_returns_y0():
    y0 = torch.tensor([1.0, 2.0])
    ys = pn.odeint(lambda t, y: y, y0, torch.tensor([3.0]))
    assert ys.shape == (1, 2) and torch.equal(ys[0], y0)


def test_complex_state_agrees_with_torchdiffeq_and_the_exponential():
    y0 = torch.tensor([1.0 + 0.5j, -0.3j], dtype=torch.complex128)
    t = torch.linspace(0.0, 3.0, 4, dtype=torch.float64)
    ys = pn.odeint(lambda t, y: 1.7j * y, y0, t)
    theirs = torchdiffeq.odeint(lambda t, y: 1.7j * y, y0, t)
    exact = torch.exp(1.7j * t.to(torch.complex128))[:, None] * y0
    assert (ys - exact).abs().max() < 1e-6 and (ys - theirs).abs().max() < 1e-6


# physnode's own methods and integrator objects.

def test_physnode_methods_and_objects():
    f, y0, t, sol = construct_problem("linear")
    with torch.no_grad():
        by_name = pn.odeint(f, y0, t, method="radau5")
        by_object = pn.odeint(f, y0, t, method=pn.integrators.RadauIIA5())
        default = pn.odeint(f, y0, t)
        dopri = pn.odeint(f, y0, t, method=pn.integrators.Dopri5)
    assert rel_error(sol, by_name) < 2e-3
    assert torch.equal(by_name, by_object) and torch.equal(default, dopri)


def test_symplectic_method_takes_a_tuple_q_p():
    """leapfrog on the tuple (q, p) of a pendulum: concatenated, it is concat(q, p)."""
    def pendulum(t, y):
        q, p = y
        return p, -torch.sin(q)

    y0 = (torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64))
    t = torch.linspace(0.0, 100.0, 11, dtype=torch.float64)
    q, p = pn.odeint(pendulum, y0, t, method="leapfrog", options={"step_size": 0.05})
    energy = p ** 2 / 2 - torch.cos(q)
    assert (energy - energy[0]).abs().max() < 1e-3


# Options.

def test_options_map_onto_the_controller():
    changed = _with_controller_options(pn.integrators.Dopri5(),
                                       {"safety": 0.8, "ifactor": 5.0, "dfactor": 0.5})
    assert changed.controller == pn.integrators.StepSizeController(
        safety=0.8, max_factor=5.0, min_factor=0.5)
    radau = _with_controller_options(pn.integrators.RadauIIA5(), {"ifactor": 4.0})
    assert radau.controller == pn.integrators.PredictiveController(max_factor=4.0)


def test_controller_options_change_the_steps():
    f, y0, t, _ = construct_problem("sine")
    counts = []
    for options in (None, {"ifactor": 1.5}):
        counted = Counted(f)
        with torch.no_grad():
            pn.odeint(counted, y0, t[:2], options=options)
        counts.append(counted.calls)
    assert counts[1] > counts[0]


def test_max_num_steps_is_max_steps():
    f, y0, t, _ = construct_problem("sine")
    with pytest.raises(pn.IntegrationError, match=r"^max_steps=3 reached with 'dopri5'"):
        pn.odeint(f, y0, t, options={"max_num_steps": 3})


def test_none_options_count_as_not_given():
    f, y0, t, sol = construct_problem("constant")
    ys = pn.odeint(f, y0, t, options={"step_size": None, "first_step": None, "norm": None})
    assert rel_error(sol, ys) < 3e-4


# Every refusal, pinned.

SUPPORTED = ("'euler', 'midpoint', 'rk4', 'dopri5', 'symplectic_euler', 'leapfrog', "
             "'yoshida4', 'yoshida6', 'implicit_midpoint', 'gauss_legendre4', "
             "'gauss_legendre6', 'backward_euler', 'radau5', 'radau9', 'kvaerno5'")
TAKES = ("physnode.odeint takes 'step_size' (fixed-step methods), 'max_num_steps', 'safety', "
         "'ifactor' and 'dfactor' (adaptive methods)")
Y0 = torch.tensor([1.0, 0.0])
T = torch.tensor([0.0, 1.0])
DEVICE = Y0.device


def decay(t, y):
    return -y


@pytest.mark.parametrize("method", TORCHDIFFEQ_ONLY)
def test_torchdiffeq_only_methods_are_refused_with_the_list(method):
    message = (f"`method` must be one of {SUPPORTED}: torchdiffeq's '{method}' has no physnode "
               f"equivalent; got '{method}'")
    with pytest.raises(ValueError, match=f"^{_escape(message)}$"):
        pn.odeint(decay, Y0, T, method=method)


@pytest.mark.parametrize("option", list(UNSUPPORTED_OPTIONS))
def test_unsupported_options_are_named(option):
    message = (f"`options['{option}']` is not supported: {UNSUPPORTED_OPTIONS[option]}; "
               f"{TAKES}; got '{option}'")
    with pytest.raises(ValueError, match=f"^{_escape(message)}$"):
        pn.odeint(decay, Y0, T, options={option: 1})


@pytest.mark.parametrize("kwargs,message", [
    ({"method": "rk5"}, f"`method` must be one of {SUPPORTED}; got 'rk5'"),
    ({"options": {"stepsize": 0.1}},
     f"`options` may hold {TAKES.removeprefix('physnode.odeint takes ')}; got 'stepsize'"),
    ({"options": {"step_size": 0.1}},
     "`options['step_size']` applies to fixed-step methods; 'dopri5' is adaptive (its steps "
     "follow rtol and atol); got step_size=0.1"),
    ({"method": "rk4", "options": {"max_num_steps": 10}},
     "`options['max_num_steps']` applies to adaptive methods; 'rk4' is a fixed-step method; "
     "got max_num_steps=10"),
    ({"method": "euler", "options": {"safety": 0.8}},
     "`options['safety']` applies to adaptive methods; 'euler' is a fixed-step method; "
     "got safety=0.8"),
    ({"method": "rk4", "options": {"step_size": -0.1}},
     "`options['step_size']` must be positive; got -0.1"),
    ({"options": {"max_num_steps": 0}}, "`options['max_num_steps']` must be at least 1; got 0"),
    ({"options": {"safety": 0}}, "`options['safety']` must be positive; got 0.0"),
    ({"options": {"safety": 1.5}}, "`options['safety']` must be at most 1 (the step-size "
                                   "controller's safety is in (0, 1]); got 1.5"),
    ({"options": {"dfactor": 1.5}}, "`options['dfactor']` must be in (0, 1); got 1.5"),
    ({"options": {"ifactor": 0.5}}, "`options['ifactor']` must be greater than 1; got 0.5"),
    ({"y0": ()}, "`y0` must be a torch.Tensor or a non-empty tuple of tensors; got ()"),
    ({"y0": (torch.ones(2), torch.tensor([1.0, float("inf")]))},
     "`y0[1]` must be finite; got a non-finite value at index (1,)"),
    ({"func": lambda t, y: -y[:1]}, "`func` must return dy/dt with the shape of y (2,); "
                                    "got (1,)"),
    ({"func": lambda t, y: (-y,)}, "`func` must return dy/dt with the shape of y (2,); "
                                   "got tuple"),
    ({"y0": (torch.ones(2), torch.ones(())), "func": lambda t, y: -y[0]},
     "`func` must return a tuple of dy/dt with the shapes of y's parts ((2,), ()); "
     "got (2,)"),
    ({"y0": (torch.ones(2), torch.ones(())), "func": lambda t, y: (-y[0], -y[0])},
     "`func` must return a tuple of dy/dt with the shapes of y's parts ((2,), ()); "
     "got ((2,), (2,))"),
    ({"event_fn": lambda t, y: y[0]}, "`event_fn` must be None: physnode.odeint does not "
                                      "handle events; got function"),
    ({"t": torch.tensor([0.0, 1.0, 0.5])},
     "`t` must be strictly monotonic; got t[1]=1.0 followed by t[2]=0.5"),
    ({"rtol": -1.0}, "`rtol` must be positive; got -1.0"),
])
def test_bad_input_raises_value_error(kwargs, message):
    args = {"func": decay, "y0": Y0, "t": T, **kwargs}
    with pytest.raises(ValueError, match=f"^{_escape(message)}$"):
        pn.odeint(args.pop("func"), args.pop("y0"), args.pop("t"), **args)


@pytest.mark.parametrize("kwargs,message", [
    ({"y0": [1.0, 0.0]}, "`y0` must be a torch.Tensor or a tuple of tensors; got list"),
    ({"y0": torch.tensor([1, 0])}, "`y0` must have a floating-point dtype; got torch.int64"),
    ({"y0": (torch.ones(2), 1.0)}, "`y0[1]` must be a torch.Tensor; got float"),
    ({"y0": (torch.ones(2), torch.ones(2, dtype=torch.float64))},
     f"`y0` must hold tensors of one dtype and device; got torch.float32 on {DEVICE} for "
     f"`y0[0]` and torch.float64 on {DEVICE} for `y0[1]`"),
    ({"options": [("step_size", 0.1)]}, "`options` must be a dict of torchdiffeq options; "
                                        "got list"),
    ({"method": 5}, "`method` must be a method name or an Integrator; got int"),
    ({"rtol": torch.tensor([1e-6, 1e-7])}, "`rtol` must be a real number; got Tensor"),
])
def test_bad_types_raise_type_error(kwargs, message):
    args = {"func": decay, "y0": Y0, "t": T, **kwargs}
    with pytest.raises(TypeError, match=f"^{_escape(message)}$"):
        pn.odeint(args.pop("func"), args.pop("y0"), args.pop("t"), **args)


def _escape(message):
    import re

    return re.escape(message)
