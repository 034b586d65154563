"""The integrator contract: every registered method implements the abstract interface of its
family and declares its order and capabilities at class level; options are keyword-only
fields, coefficients are not options; step-size control is one controller object; solve's
docstring and its unknown-method message come from METHODS."""

import dataclasses
import inspect
import re
from fractions import Fraction as Fr

import numpy as np
import pytest
import torch

import physnode as pn
from physnode.integrators import (
    METHODS,
    AdaptiveIntegrator,
    Attempt,
    ExplicitRungeKutta,
    Field,
    FixedStepIntegrator,
    Integrator,
    PredictiveController,
    SampleState,
    StepSizeController,
    Tolerance,
)
from physnode.integrators.tableau import ButcherTableau, tableau_from_fractions

CAPABILITIES = ("adaptive", "implicit", "symplectic", "reversible")


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_implements_the_contract_and_declares_its_capabilities(name):
    cls = METHODS[name]
    assert issubclass(cls, Integrator) and not inspect.isabstract(cls)
    assert cls.name == name
    assert isinstance(cls.order, int) and not isinstance(cls.order, bool) and cls.order >= 1
    for flag in CAPABILITIES:
        assert isinstance(getattr(cls, flag), bool), flag
    family = AdaptiveIntegrator if cls.adaptive else FixedStepIntegrator
    assert issubclass(cls, family)
    assert not issubclass(cls, FixedStepIntegrator if cls.adaptive else AdaptiveIntegrator)
    if cls.reversible:       # the reversible adjoint steps with −h on a fixed grid
        assert not cls.adaptive
    method = cls()
    assert dataclasses.is_dataclass(method)
    with pytest.raises(dataclasses.FrozenInstanceError):
        method.name = "other"
    # Coefficients are class constants, not options.
    options = {f.name for f in dataclasses.fields(cls)}
    assert not options & {"tableau", "kicks", "drifts", "order", "name", *CAPABILITIES}
    if hasattr(cls, "tableau"):
        assert isinstance(cls.tableau, ButcherTableau) and cls.order == cls.tableau.order
    if cls.adaptive:
        assert isinstance(method.controller, StepSizeController)
        assert isinstance(cls.error_order, int) and 1 <= cls.error_order <= cls.order


@pytest.mark.parametrize("name", [n for n, cls in METHODS.items() if cls.adaptive])
def test_an_attempt_returns_the_typed_result_and_a_state_that_narrows(name):
    method = METHODS[name]()
    field = Field(pn.systems.VanDerPol(mu=5.0))
    y = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.5, -1.0]], dtype=torch.float64)
    t = torch.zeros(3, dtype=torch.float64)
    state = method.init(field, t, y, field(t, y))
    assert isinstance(state, SampleState)
    h = torch.tensor([[1e-3], [1e-3], [2.0]], dtype=torch.float64)
    result = method.attempt(field, t, y, h, state, Tolerance(rtol=1e-6, atol=1e-8))
    assert isinstance(result, Attempt) and isinstance(result.state, type(state))
    assert result.y.shape == y.shape and result.error.shape == result.factor.shape == (3,)
    assert result.accepted.tolist() == [True, True, False]     # the last step is far too long
    assert torch.equal(result.accepted, result.error <= 1)
    assert (result.factor[:2] > 1).all() and result.factor[2] < 1
    for count in (result.nfev, result.njev, result.nlu):
        assert count is None or (count.shape == (3,) and count.dtype == torch.long)
    rows = torch.tensor([2, 0])
    narrowed = result.state.take(rows)
    for before, after in zip(dataclasses.astuple(result.state), dataclasses.astuple(narrowed)):
        if isinstance(before, torch.Tensor):
            assert torch.equal(after.nan_to_num(), before[rows].nan_to_num())


def test_a_new_method_is_one_class():
    """Heun's method (explicit trapezoid) from its tableau alone: solve accepts the object and
    it converges with order 2."""
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Heun(ExplicitRungeKutta):
        """Heun's method: order 2, explicit."""

        name = "heun"
        tableau = tableau_from_fractions([[], [1]], [Fr(1, 2), Fr(1, 2)], [0, 1], order=2)

    assert Heun.order == 2
    spring = pn.systems.MassSpring()
    y0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    steps = [0.02, 0.01, 0.005]
    errors = [(pn.solve(spring, y0, t, method=Heun(), dt=h).ys[-1]
               - spring.solution(t, y0)[-1]).norm().item() for h in steps]
    assert abs(np.polyfit(np.log(steps), np.log(errors), 1)[0] - 2) < 0.1


def test_a_method_without_its_step_is_abstract():
    class Incomplete(FixedStepIntegrator):
        name = "incomplete"
        order = 1

    with pytest.raises(TypeError, match=r"^Can't instantiate abstract class Incomplete"):
        Incomplete()


def test_solve_docstring_lists_every_method():
    doc = pn.solve.__doc__
    for name, cls in METHODS.items():
        line = next(line for line in doc.splitlines() if f'``"{name}"``' in line)
        assert f"{cls.__name__}: order {cls.order}" in line
        for flag in ("adaptive", "reversible"):
            assert (flag in line) == getattr(cls, flag), (name, flag)


def test_unknown_method_message_names_every_method():
    names = ", ".join(re.escape(repr(name)) for name in METHODS)
    with pytest.raises(ValueError, match=rf"^`method` must be one of {names}; got 'rk5'$"):
        pn.solve(pn.systems.MassSpring(), torch.ones(2), [0.0, 1.0], method="rk5")


@pytest.mark.parametrize("cls,kwargs,message", [
    (pn.integrators.Euler, {"tableau": METHODS["rk4"].tableau},
     r"^Euler.__init__\(\) got an unexpected keyword argument 'tableau'$"),
    (pn.integrators.Yoshida4, {"kicks": (1.0,)},
     r"^Yoshida4.__init__\(\) got an unexpected keyword argument 'kicks'$"),
    (pn.integrators.RadauIIA5, {"safety": 0.8},
     r"^RadauIIA5.__init__\(\) got an unexpected keyword argument 'safety'$"),
    (pn.integrators.Dopri5, {"controller": 0.9},
     r"^`controller` must be a StepSizeController; got float$"),
    (pn.integrators.Kvaerno5, {"controller": "predictive"},
     r"^`controller` must be a StepSizeController; got str$"),
    (pn.integrators.RadauIIA9, {"newton": {"max_iter": 8}},
     r"^`newton` must be a Newton; got dict$"),
    (pn.integrators.GaussLegendre4, {"newton": 50}, r"^`newton` must be a Newton; got int$"),
    (pn.integrators.BackwardEuler, {"max_splits": 2.5},
     r"^`max_splits` must be an integer; got float$"),
    (pn.integrators.RadauIIA5, {"state_type": None},
     r"^RadauIIA5.__init__\(\) got an unexpected keyword argument 'state_type'$"),
])
def test_bad_integrator_options_raise_type_error(cls, kwargs, message):
    with pytest.raises(TypeError, match=message):
        cls(**kwargs)


def test_negative_max_splits_is_a_value_error():
    with pytest.raises(ValueError, match=r"^`max_splits` must be at least 0; got -1$"):
        pn.integrators.BackwardEuler(max_splits=-1)


@pytest.mark.parametrize("cls,kwargs,message", [
    (StepSizeController, {"min_factor": 1.0}, r"^`min_factor` must be in \(0, 1\); got 1.0$"),
    (StepSizeController, {"min_factor": 0.0}, r"^`min_factor` must be in \(0, 1\); got 0.0$"),
    (PredictiveController, {"min_factor": 2}, r"^`min_factor` must be in \(0, 1\); got 2.0$"),
    (StepSizeController, {"max_factor": 0.5},
     r"^`max_factor` must be in \(1, inf\); got 0.5$"),
    (StepSizeController, {"safety": 1.5}, r"^`safety` must be in \(0, 1\]; got 1.5$"),
    (PredictiveController, {"safety": -0.1}, r"^`safety` must be in \(0, 1\]; got -0.1$"),
    (PredictiveController, {"keep_step_below": -1.0},
     r"^`keep_step_below` must be non-negative; got -1.0$"),
])
def test_bad_controller_constants_raise_value_error(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


@pytest.mark.parametrize("kwargs,message", [
    ({"safty": 0.8}, r"^StepSizeController.__init__\(\) got an unexpected keyword argument "
                     r"'safty'$"),
    ({"safety": "0.9"}, r"^`safety` must be a real number; got str$"),
])
def test_bad_controller_arguments_raise_type_error(kwargs, message):
    with pytest.raises(TypeError, match=message):
        StepSizeController(**kwargs)


def test_elementary_controller_rule():
    """``clip(safety · err^(−1/(q+1)), min, max)``; the landing rule keeps the longer step
    planned before a step shortened to hit an output."""
    controller = StepSizeController(safety=0.8, min_factor=0.25, max_factor=4.0)
    err = torch.tensor([1e-12, 0.5 ** 5, 1.0, 2.0 ** 5, 1e12], dtype=torch.float64)
    factor = controller.factor(err, 0.2, accepted=err <= 1)
    expected = torch.tensor([4.0, 1.6, 0.8, 0.4, 0.25], dtype=torch.float64)
    torch.testing.assert_close(factor, expected, rtol=1e-15, atol=0)
    assert controller.keep(factor, err <= 1) is None
    h = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    h_try = torch.tensor([0.1, 0.1, 0.1], dtype=torch.float64)
    ones = torch.ones(3, dtype=torch.bool)
    new = controller.next_step(h, h_try, torch.full((3,), 2.0, dtype=torch.float64),
                               accepted=ones, lands=torch.tensor([True, False, True]),
                               error=torch.tensor([0.1, 0.1, 0.7], dtype=torch.float64))
    torch.testing.assert_close(new, torch.tensor([1.0, 0.2, 0.2], dtype=torch.float64))


def test_predictive_controller_rule():
    """Gustafsson: the elementary factor times min(1, (h/h_prev)(err_prev/err)^(1/(q+1))) with
    the last accepted step's h_prev and err_prev (none before the first); accepted steps grow
    by at most max_factor, rejected ones shrink by at most min_factor; accepted factors below
    keep_step_below keep the step."""
    controller = PredictiveController()
    err = torch.tensor([0.5, 0.01, 0.9, 50.0], dtype=torch.float64)
    h = torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    h_prev = torch.tensor([1.0, 0.0, 2.0, 1.0], dtype=torch.float64)   # 0: no previous step
    err_prev = torch.tensor([0.1, 0.0, 0.9, 0.1], dtype=torch.float64)
    accepted = err <= 1
    factor = controller.factor(err, 0.25, accepted=accepted, h=h, h_prev=h_prev,
                               error_prev=err_prev)
    elementary = 0.9 * err ** -0.25
    prediction = torch.tensor([(0.1 / 0.5) ** 0.25, 1.0, 0.5, (0.1 / 50) ** 0.25],
                              dtype=torch.float64)
    expected = (elementary * prediction).clamp(max=10.0)
    expected[3] = expected[3].clamp(min=0.2)
    torch.testing.assert_close(factor, expected, rtol=1e-15, atol=0)
    assert controller.keep(factor, accepted).tolist() == [True, False, True, False]


def test_every_adaptive_method_takes_either_controller():
    """The elementary and the predictive controller with dopri5 and radau5: each reaches the
    tolerance, and the choice changes the steps."""
    spring = pn.systems.MassSpring(k=2.0, damping=0.1)
    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    t = torch.linspace(0, 10, 3, dtype=torch.float64)
    exact = spring.solution(t, y0)
    for cls in (pn.integrators.Dopri5, pn.integrators.RadauIIA5):
        steps = set()
        for controller in (StepSizeController(), PredictiveController()):
            sol = pn.solve(spring, y0, t, method=cls(controller=controller), rtol=1e-8,
                           atol=1e-10)
            assert (sol.ys - exact).abs().max() < 1e-6
            steps.add(int(sol.stats["steps"][0] + sol.stats["rejected"][0]))
        assert len(steps) == 2, cls
