"""Dense output: the interpolant of every adaptive method has its declared order, and
``Solution.interpolate`` reproduces closed-form solutions between the steps."""

import math

import pytest
import torch

import physnode as pn
from physnode.integrators import METHODS, Newton
from physnode.integrators.base import Field, Tolerance
from physnode.integrators.dense import evaluate
from physnode.integrators.explicit import DOPRI5_TABLEAU
from physnode.integrators.tableau import ButcherTableau
from tests._devices import seeded

DENSE = [name for name, cls in METHODS.items() if cls.adaptive]
FIXED = [name for name, cls in METHODS.items() if not cls.adaptive]
F64 = torch.float64


def test_every_method_declares_the_order_of_its_dense_output():
    # Adaptive methods: their own interpolants; fixed-step ones: cubic Hermite, order 3 or
    # the method's order when lower.
    assert {name: cls.dense_order for name, cls in METHODS.items()} == {
        "dopri5": 4, "radau5": 3, "radau9": 5, "kvaerno5": 3,
        **{name: min(3, METHODS[name].order) for name in FIXED}}


@pytest.mark.parametrize("theta", [0.0, 0.3, 0.5, 0.77, 1.0])
def test_dopri5_continuous_extension_meets_the_order_conditions_of_order_4(theta):
    # y(θ) = y0 + h Σ b_i(θ) k_i is of order 4 when Σ b_i(θ) Φ_i(τ) = θ^|τ|/γ(τ) for every
    # tree τ with at most 4 nodes (Hairer, Nørsett & Wanner I, §II.6); order 5 fails.
    A, _, c, _ = DOPRI5_TABLEAU.tensors(F64, "cpu")
    P = DOPRI5_TABLEAU.dense_tensor(F64, "cpu")
    b = P @ torch.tensor([theta ** k for k in range(1, P.shape[1] + 1)], dtype=F64)
    conditions = [(b.sum(), theta), (b @ c, theta ** 2 / 2), (b @ c ** 2, theta ** 3 / 3),
                  (b @ A @ c, theta ** 3 / 6), (b @ c ** 3, theta ** 4 / 4),
                  (b @ (c * (A @ c)), theta ** 4 / 8), (b @ A @ c ** 2, theta ** 4 / 12),
                  (b @ A @ A @ c, theta ** 4 / 24)]
    # Round-off: sums of seven products with coefficients up to 10 in size (b(θ) up to
    # about 3), so a few ulps of 10, which differ between CPUs' summation orders.
    for value, expected in conditions:
        assert float(value) == pytest.approx(expected, abs=1e-14)
    if 0 < theta < 1:
        assert abs(float(b @ c ** 4) - theta ** 5 / 5) > 1e-5


def test_a_tableau_with_an_inconsistent_dense_output_is_refused():
    with pytest.raises(ValueError, match=r"^tableau `dense` must have one row of θ-coefficients "
                                         r"per stage, with Σ_i b_i\(θ\) = θ and b_i\(1\) = b_i"):
        ButcherTableau(a=((0.0,),), b=(1.0,), c=(0.0,), order=1, dense=((0.5,),))


@pytest.mark.parametrize("name", DENSE)
def test_interpolant_local_error_has_the_declared_order(name):
    # y' = 1 + y², y = tan(t + 0.3): one step of size h, error of the interpolant inside it
    # O(h^(q+1)); halving h divides it by about 2^(q+1).
    cls = METHODS[name]
    method = cls(newton=Newton(max_iter=50, tol=1e-3)) if cls.implicit else cls()
    y0 = torch.tensor([[math.tan(0.3)]], dtype=F64)
    theta = torch.tensor([0.3, 0.5, 0.8], dtype=F64)
    errors = []
    for h in (0.1, 0.05, 0.025):
        field = Field(lambda t, y: 1 + y ** 2)
        t = torch.zeros(1, dtype=F64)
        state = method.init(field, t, y0, field(t, y0))
        step = torch.tensor([[h]], dtype=F64)
        attempt = method.attempt(field, t, y0, step, state, Tolerance(rtol=1e-13, atol=1e-13))
        C = method.interpolant(y0, step, attempt)
        values = evaluate(y0.expand(3, 1), C.expand(3, -1, -1), theta)
        errors.append(float((values[:, 0] - torch.tan(0.3 + theta * h)).abs().max()))
        assert float((evaluate(y0, C, torch.ones(1, dtype=F64)) - attempt.y).abs()) < 1e-14
    slope = math.log2(errors[-2] / errors[-1])
    assert abs(slope - (cls.dense_order + 1)) < 0.3, (errors, slope)


@pytest.mark.parametrize("name", FIXED)
def test_fixed_step_interpolate_converges_at_the_order_of_method_and_interpolant(name):
    # x = cos t between the steps: global error O(dt^min(p, 4)) with the cubic Hermite
    # polynomial of every step (p the method's order).
    cls = METHODS[name]
    mid = torch.tensor([0.3, 0.9, 1.5], dtype=F64)
    errors = []
    for dt in (0.02, 0.01):
        sol = pn.solve(pn.systems.MassSpring(), torch.tensor([1.0, 0.0], dtype=F64),
                       [0.0, 2.0], method=name, dt=dt, dense=True)
        queries = mid + dt / 2
        errors.append(float((sol.interpolate(queries)[:, 0] - torch.cos(queries)).abs().max()))
    slope = math.log2(errors[0] / errors[1])
    assert abs(slope - min(cls.order, 4)) < 0.3, (errors, slope)


def oscillator(phases):
    """x = cos(t + φ) for each phase: y0 and the closed form."""
    y0 = torch.stack([torch.cos(phases), -torch.sin(phases)], -1)
    return y0, lambda t: torch.stack([torch.cos(t[:, None] + phases),
                                      -torch.sin(t[:, None] + phases)], -1)


# Largest error of sol.interpolate at rtol 1e-8 over 10 time units (measured: dopri5 1.2e-8,
# radau5 1.5e-9, radau9 6.9e-10, kvaerno5 2.9e-7), with room.
BOUND = {"dopri5": 1e-7, "radau5": 2e-8, "radau9": 1e-8, "kvaerno5": 2e-6}


@pytest.mark.parametrize("name", DENSE)
def test_interpolate_matches_the_closed_form_between_the_steps(name):
    phases = torch.tensor([0.0, 0.3, 1.0, 2.5], dtype=F64)
    y0, exact = oscillator(phases)
    t = torch.tensor([0.0, 4.0, 10.0], dtype=F64)
    with torch.no_grad():
        sol = pn.solve(pn.systems.MassSpring(), y0, t, method=name, rtol=1e-8, atol=1e-10,
                       dense=True)
    queries = torch.rand(200, dtype=F64, generator=seeded(0)) * 10
    values = sol.interpolate(queries)
    assert values.shape == (200, 4, 2)
    assert float((values - exact(queries)).abs().max()) < BOUND[name]
    # At the output times the interpolant gives the outputs, and it is continuous.
    assert torch.allclose(sol.interpolate(t), sol.ys, rtol=0, atol=1e-13)
    assert sol.interpolate(4.0).shape == (4, 2)


def test_interpolate_keeps_the_batch_shape_and_runs_backwards():
    phases = torch.tensor([[0.0, 0.5, 1.0], [1.5, 2.0, 2.5]], dtype=F64)
    y0 = torch.stack([torch.cos(phases), -torch.sin(phases)], -1)       # at t = 3
    t = torch.tensor([3.0, 0.0], dtype=F64)
    sol = pn.solve(pn.systems.MassSpring(), y0, t, method="dopri5", rtol=1e-10, atol=1e-12,
                   dense=True)
    values = sol.interpolate(torch.tensor([2.5, 0.2], dtype=F64))
    assert values.shape == (2, 2, 3, 2)
    expected = torch.cos(phases + torch.tensor([-0.5, -2.8], dtype=F64)[:, None, None])
    assert float((values[..., 0] - expected).abs().max()) < 1e-8


@pytest.mark.parametrize("name", DENSE)
def test_interpolate_is_differentiable(name):
    # x(t) = x0 cos t: ∂x(t)/∂x0 = cos t at a time between the steps.
    x0 = torch.tensor(1.5, dtype=F64, requires_grad=True)
    y0 = torch.stack([x0, torch.zeros((), dtype=F64)])
    sol = pn.solve(pn.systems.MassSpring(), y0, [0.0, 3.0], method=name, rtol=1e-10,
                   atol=1e-12, dense=True)
    (grad,) = torch.autograd.grad(sol.interpolate(1.234)[0], x0)
    assert float(grad) == pytest.approx(math.cos(1.234), abs=1e-7)
