"""Every bad input to solve() and every numerical failure has a pinned message (the unknown
method's, generated from METHODS, in test_contract.py)."""

import pytest
import torch

import physnode as pn

SPRING = pn.systems.MassSpring()
Y0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
T = torch.tensor([0.0, 1.0], dtype=torch.float64)


@pytest.mark.parametrize("kwargs,message", [
    ({"y0": torch.tensor([1.0, float("nan")])},
     r"^`y0` must be finite; got a non-finite value at index \(1,\)$"),
    ({"t": torch.tensor([0.0, 1.0, 0.5])},
     r"^`t` must be strictly monotonic; got t\[1\]=1.0 followed by t\[2\]=0.5$"),
    ({"t": torch.tensor([[0.0, 1.0]])}, r"^`t` must be a 1-D tensor of at least 1 times; "
                                        r"got shape \(1, 2\)$"),
    ({"rtol": -1e-6}, r"^`rtol` must be positive; got -1e-06$"),
    ({"atol": 0.0}, r"^`atol` must be positive; got 0.0$"),
    ({"dt": -0.1}, r"^`dt` must be positive; got -0.1$"),
    ({"max_steps": 0}, r"^`max_steps` must be at least 1; got 0$"),
    ({"method": "leapfrog", "f": lambda t, y: -y, "y0": torch.ones(4, 3)},
     r"^`y0` must have an even last dimension, concat\(q, p\), for the symplectic method "
     r"'leapfrog'; got shape \(4, 3\)$"),
    ({"f": lambda t, y: y[..., :1]},
     r"^`f` must return dy/dt with the shape of y \(1, 2\); got \(1, 1\)$"),
    ({"f": lambda t, y: 3.0}, r"^`f` must return dy/dt with the shape of y \(1, 2\); got float$"),
    ({"y0": torch.tensor(1.0)}, r"^`y0` must have shape \(\*batch, dim\); got shape \(\)$"),
])
def test_bad_input_raises_value_error(kwargs, message):
    args = {"f": SPRING, "y0": Y0, "t": T, **kwargs}
    with pytest.raises(ValueError, match=message):
        pn.solve(args.pop("f"), args.pop("y0"), args.pop("t"), **args)


@pytest.mark.parametrize("kwargs,message", [
    ({"method": 4}, r"^`method` must be a method name or an Integrator; got int$"),
    ({"y0": [1.0, 0.0]}, r"^`y0` must be a torch.Tensor; got list$"),
    ({"y0": torch.tensor([1, 0])}, r"^`y0` must have a floating-point dtype; got torch.int64$"),
    ({"jac": 3}, r"^`jac` must be callable; got int$"),
])
def test_bad_types_raise_type_error(kwargs, message):
    args = {"f": SPRING, "y0": Y0, "t": T, **kwargs}
    with pytest.raises(TypeError, match=message):
        pn.solve(args.pop("f"), args.pop("y0"), args.pop("t"), **args)


def test_unknown_integrator_option_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'safty'"):
        pn.integrators.RadauIIA5(safty=0.8)


def test_integrator_objects_and_names_resolve_to_the_same_method():
    by_name = pn.solve(SPRING, Y0, T, method="radau5", rtol=1e-7)
    by_object = pn.solve(SPRING, Y0, T, method=pn.integrators.RadauIIA5(), rtol=1e-7)
    assert torch.equal(by_name.ys, by_object.ys)
    assert by_object.method == pn.integrators.RadauIIA5()


def test_max_steps_names_samples_and_time():
    y0 = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    with pytest.raises(pn.IntegrationError,
                       match=r"^max_steps=5 reached with 'dopri5' at batch samples \[0, 1\]: "
                             r"t=[0-9.e-]+; raise max_steps or use a stiff method$") as info:
        pn.solve(SPRING, y0, torch.tensor([0.0, 100.0], dtype=torch.float64), method="dopri5",
                 max_steps=5)
    assert info.value.samples == [0, 1] and 0 < info.value.t < 100
    assert int(info.value.stats["steps"][0] + info.value.stats["rejected"][0]) == 6


def test_blow_up_is_a_step_size_underflow_not_nan():
    def blow_up(t, y):             # y' = y², y(0) = 1 explodes at t = 1
        return y ** 2

    y0 = torch.tensor([[1.0], [0.1]], dtype=torch.float64)
    with pytest.raises(pn.IntegrationError,
                       match=r"^step size underflow with 'dopri5' at batch samples \[0\]: "
                             r"t=(0\.99|1)[0-9]*, step [0-9.e-]+; ") as info:
        pn.solve(blow_up, y0, torch.tensor([0.0, 2.0], dtype=torch.float64), method="dopri5")
    assert info.value.samples == [0]


def test_fixed_step_non_finite_state_names_samples_and_interval():
    y0 = torch.tensor([[0.1], [2.0]], dtype=torch.float64)    # blow-up at t = 50 and 0.125
    with pytest.raises(pn.IntegrationError,
                       match=r"^the state became non-finite at batch samples \[1\] between "
                             r"t=0 and t=3 with 'rk4' \(step 0.5\); try a smaller dt or a "
                             r"stiff method$"):
        pn.solve(lambda t, y: y ** 3, y0, torch.tensor([0.0, 3.0], dtype=torch.float64),
                 method="rk4", dt=0.5)


def test_newton_failure_in_a_fixed_step_method_is_reported():
    def hard(t, y):                # Newton from y cannot follow a field with no real root
        return torch.exp(y)

    with pytest.raises(pn.IntegrationError,
                       match=r"^Newton's method did not converge for 'backward_euler' at batch "
                             r"samples \[0\] near t=0 even after halving the step 8 times"):
        pn.solve(hard, torch.tensor([[5.0]], dtype=torch.float64),
                 torch.tensor([0.0, 1.0], dtype=torch.float64), method="backward_euler")


@pytest.mark.parametrize("offset, gap", [(1.7e9, "0"), (1e5, "0.015625")])
def test_times_that_lose_their_spacing_in_the_states_dtype_are_refused(offset, gap):
    # float64 times cast to float32 states: a clock's seconds keep no sub-second gaps, and at
    # 1e5 s a gap of 0.01 became 0.0156 without a word.
    t = torch.linspace(0, 10, 1000, dtype=torch.float64) + offset
    y0 = torch.tensor([1.0, 0.0])
    with pytest.raises(ValueError, match=rf"`t` loses its spacing in torch.float32 .*becomes "
                                         rf"{gap}; pass times relative to the start"):
        pn.solve(pn.systems.MassSpring(), y0, t, method="rk4", dt=0.01)
    ys = pn.solve(pn.systems.MassSpring(), y0.double(), t, method="rk4", dt=0.01).ys
    moved = pn.solve(pn.systems.MassSpring(), y0, (t - t[0]).float(), method="rk4", dt=0.01).ys
    torch.testing.assert_close(moved.double(), ys, rtol=1e-4, atol=1e-4)
