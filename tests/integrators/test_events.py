"""Events: zero crossings located per sample on the dense output, terminal ones stopping only
their own sample, with implicit-function-theorem gradients of the event times."""

import math

import pytest
import torch

import physnode as pn
from physnode.integrators import METHODS

DENSE = [name for name, cls in METHODS.items() if cls.adaptive]
F64 = torch.float64
G = 9.81


def ball(t, y):
    """Free fall, y = (height, velocity)."""
    return torch.cat([y[..., 1:], torch.full_like(y[..., :1], -G)], -1)


def height(t, y):
    return y[..., 0]


GROUND = pn.Event(fn=height, terminal=True, direction=-1)


def drop(heights):
    return torch.stack([heights, torch.zeros_like(heights)], -1)


def oscillator(phases):
    """States of x = cos(t + φ), v = −sin(t + φ) at t = 0."""
    return torch.stack([torch.cos(phases), -torch.sin(phases)], -1)


def test_terminal_event_stops_each_sample_at_its_own_time_and_the_others_go_on():
    heights = torch.tensor([1.0, 2.0, 4.0], dtype=F64)
    t = torch.linspace(0, 1, 5, dtype=F64)
    sol = pn.solve(ball, drop(heights), t, method="dopri5", rtol=1e-10, atol=1e-12,
                   events=GROUND)
    hit = torch.sqrt(2 * heights / G)                       # 0.45, 0.64, 0.90
    assert float((sol.t_end - hit).abs().max()) < 1e-8
    assert sol.stop_event.tolist() == [0, 0, 0]
    crossings = sol.events[0]
    assert crossings.sample.tolist() == [0, 1, 2]
    assert float((crossings.t - hit).abs().max()) < 1e-8
    assert float(crossings.y[:, 0].abs().max()) < 1e-8
    assert float((crossings.y[:, 1] + G * hit).abs().max()) < 1e-7
    # Outputs after a sample's event hold its state there; before it, the free fall.
    for i in range(3):
        for k in range(5):
            expected = crossings.y[i] if t[k] > hit[i] else torch.stack(
                [heights[i] - G * t[k] ** 2 / 2, -G * t[k]])
            assert torch.allclose(sol.ys[k, i], expected, atol=1e-8), (i, k)
    # The last sample still falls at t = 0.75, after the first two stopped.
    assert float(sol.ys[3, 2, 0]) == pytest.approx(4 - G * 0.75 ** 2 / 2, abs=1e-9)


@pytest.mark.parametrize("name", DENSE)
def test_recording_event_finds_every_crossing_in_a_batch_of_phases(name):
    # x = cos(t + φ) crosses zero at t = π/2 + kπ − φ.
    phases = torch.tensor([0.0, 0.3, 1.0, 2.0], dtype=F64)
    with torch.no_grad():
        sol = pn.solve(pn.systems.MassSpring(), oscillator(phases), [0.0, 10.0], method=name,
                       rtol=1e-8, atol=1e-10, events=lambda t, y: y[..., 0])
    crossings = sol.events[0]
    for i, phase in enumerate(phases.tolist()):
        expected = [math.pi / 2 + k * math.pi - phase for k in range(5)]
        expected = torch.tensor([x for x in expected if 0 < x < 10], dtype=F64)
        t_i, y_i = crossings.of(i)
        assert t_i.shape == expected.shape, (i, t_i, expected)
        assert float((t_i - expected).abs().max()) < 1e-7       # measured ≤ 2.2e-9
        assert float(y_i[:, 0].abs().max()) < 1e-7
    assert sol.t_end.tolist() == [10.0] * 4 and sol.stop_event.tolist() == [-1] * 4


@pytest.mark.parametrize("direction,first", [(1, 3 * math.pi / 2), (-1, math.pi / 2)])
def test_direction_keeps_only_rising_or_falling_crossings(direction, first):
    phases = torch.tensor([0.0, 0.7], dtype=F64)
    sol = pn.solve(pn.systems.MassSpring(), oscillator(phases), [0.0, 12.0], method="dopri5",
                   rtol=1e-10, atol=1e-12,
                   events=pn.Event(fn=lambda t, y: y[..., 0], direction=direction))
    crossings = sol.events[0]
    for i, phase in enumerate(phases.tolist()):
        expected = [first + 2 * k * math.pi - phase for k in range(3)]
        expected = torch.tensor([x for x in expected if 0 < x < 12], dtype=F64)
        t_i, y_i = crossings.of(i)
        assert t_i.shape == expected.shape
        assert float((t_i - expected).abs().max()) < 1e-8
        # rising x: positive velocity; falling: negative
        assert bool((direction * y_i[:, 1] > 0).all())


def on_section(n, energy):
    """``n`` Hénon–Heiles states on x = 0 with py = 0, px > 0 and the given energy."""
    y = torch.linspace(-0.2, 0.3, n, dtype=F64)
    px = torch.sqrt(2 * (energy - (y ** 2 / 2 - y ** 3 / 3)))
    return torch.stack([torch.zeros_like(y), y, px, torch.zeros_like(y)], -1)


def test_henon_heiles_poincare_section_lies_on_the_energy_surface():
    # Section x = 0 with px > 0 (x rising) at energy 1/8: every point has x = 0 and H = 1/8.
    hh, energy = pn.systems.HenonHeiles(), 0.125
    y0 = on_section(6, energy)
    with torch.no_grad():
        sol = pn.solve(hh, y0, [0.0, 60.0], method="dopri5", rtol=1e-9, atol=1e-12,
                       events=pn.Event(fn=lambda t, s: s[..., 0], direction=1))
    points = sol.events[0]
    assert bool((torch.bincount(points.sample, minlength=6) >= 5).all())
    assert float(points.y[:, 0].abs().max()) < 1e-10
    assert bool((points.y[:, 2] > 0).all())
    assert float((hh.energy(points.y) - energy).abs().max()) < 1e-7
    assert bool((points.t[1:] > points.t[:-1])[points.sample[1:] == points.sample[:-1]].all())


def test_a_batch_gives_the_events_of_one_at_a_time_solves():
    phases = torch.tensor([0.0, 0.4, 1.1, 2.9], dtype=F64)
    events = [lambda t, y: y[..., 0],                                      # recording
              pn.Event(fn=lambda t, y: y[..., 1] - 0.9, terminal=True, direction=1)]
    t = torch.linspace(0, 9, 4, dtype=F64)
    spring = pn.systems.MassSpring()
    batch = pn.solve(spring, oscillator(phases), t, method="dopri5", rtol=1e-9, atol=1e-12,
                     events=events)
    assert batch.stop_event.tolist() == [1, 1, 1, 1]
    for i in range(4):
        alone = pn.solve(spring, oscillator(phases[i:i + 1]), t, method="dopri5", rtol=1e-9,
                         atol=1e-12, events=events)
        assert torch.allclose(batch.ys[:, i], alone.ys[:, 0], rtol=0, atol=1e-13)
        assert float(batch.t_end[i]) == pytest.approx(float(alone.t_end[0]), abs=1e-13)
        for mine, its in zip(batch.events, alone.events):
            t_i, y_i = mine.of(i)
            assert torch.allclose(t_i, its.t, rtol=0, atol=1e-13)
            assert torch.allclose(y_i, its.y, rtol=0, atol=1e-13)
    # The terminal event (v rising through 0.9 at t + φ = π + asin 0.9, mod 2π) ended each.
    expected = torch.remainder(math.pi + math.asin(0.9) - phases, 2 * math.pi)
    assert float((batch.t_end - expected).abs().max()) < 1e-8


def test_event_functions_get_the_per_sample_args_and_time():
    # Per-sample levels as args: the ball from 4 m reaches level L at sqrt(2 (4 − L)/g).
    levels = torch.tensor([[1.0], [2.0], [3.0]], dtype=F64)
    sol = pn.solve(lambda t, y, args: ball(t, y), drop(torch.full((3,), 4.0, dtype=F64)),
                   [0.0, 2.0], method="dopri5", rtol=1e-10, atol=1e-12, args=levels,
                   events=pn.Event(fn=lambda t, y, level: y[..., 0] - level[..., 0],
                                   terminal=True))
    assert torch.allclose(sol.t_end, torch.sqrt(2 * (4 - levels[:, 0]) / G), atol=1e-9)
    # An event in time itself: t has shape (*batch, 1), as for f.
    sol = pn.solve(ball, drop(torch.tensor([[5.0, 6.0]], dtype=F64)), [0.0, 1.0],
                   method="dopri5", events=lambda t, y: t[..., 0] - 0.25 - 0 * y[..., 0])
    assert sol.events[0].t.tolist() == pytest.approx([0.25, 0.25], abs=1e-12)


def test_a_zero_at_the_start_is_not_an_event_and_backward_solves_find_the_same_crossings():
    # Thrown up from the ground at 4 m/s: lands at 8/g, not at 0.
    sol = pn.solve(ball, torch.tensor([0.0, 4.0], dtype=F64), [0.0, 2.0], method="dopri5",
                   rtol=1e-10, atol=1e-12, events=GROUND)
    assert sol.events[0].t.tolist() == pytest.approx([8 / G], abs=1e-9)
    assert float(sol.t_end) == pytest.approx(8 / G, abs=1e-9)
    phases = torch.tensor([0.2, 1.3], dtype=F64)
    y10 = oscillator(phases + 10.0)                       # the states at t = 10
    back = pn.solve(pn.systems.MassSpring(), y10, [10.0, 0.0], method="dopri5", rtol=1e-10,
                    atol=1e-12, events=lambda t, y: y[..., 0])
    for i, phase in enumerate(phases.tolist()):
        expected = [math.pi / 2 + k * math.pi - phase for k in range(5)]
        expected = torch.tensor([x for x in reversed(expected) if 0 < x < 10], dtype=F64)
        assert torch.allclose(back.events[0].of(i)[0], expected, atol=1e-8)


@pytest.mark.parametrize("name", DENSE)
def test_event_time_gradients_are_those_of_the_implicit_function_theorem(name):
    # Dropped from h0: t* = sqrt(2 h0/g), dt*/dh0 = 1/(g t*), v* = −g t*, dv*/dh0 = −1/t*;
    # hitting a level L instead of the ground: dt*/dL = −1/(g t*). (Every interpolant is
    # exact on the parabola.)
    heights = torch.tensor([1.0, 2.0, 4.0], dtype=F64, requires_grad=True)
    level = torch.tensor(0.0, dtype=F64, requires_grad=True)
    sol = pn.solve(ball, drop(heights), [0.0, 2.0], method=name, rtol=1e-10, atol=1e-12,
                   events=pn.Event(fn=lambda t, y: y[..., 0] - level, terminal=True))
    hit = torch.sqrt(2 * heights.detach() / G)
    crossings = sol.events[0]
    dt_dh, dt_dlevel = torch.autograd.grad(crossings.t.sum(), (heights, level),
                                           retain_graph=True)
    assert torch.allclose(dt_dh, 1 / (G * hit), atol=1e-8)
    assert float(dt_dlevel) == pytest.approx(float(-(1 / (G * hit)).sum()), abs=1e-8)
    (dv_dh,) = torch.autograd.grad(crossings.y[:, 1].sum(), heights, retain_graph=True)
    assert torch.allclose(dv_dh, -1 / hit, atol=1e-7)
    # The held outputs after the event carry the same gradient.
    (dy_dh,) = torch.autograd.grad(sol.ys[-1, :, 1].sum(), heights)
    assert torch.allclose(dy_dh, -1 / hit, atol=1e-7)


@pytest.mark.parametrize("name", DENSE)
def test_event_time_gradients_agree_with_finite_differences(name):
    # A damped oscillator with per-sample damping c (args): its first zero of x.
    def damped(t, y, c):
        return torch.cat([y[..., 1:], -y[..., :1] - c * y[..., 1:]], -1)

    y0 = torch.tensor([[1.0, 0.0], [1.0, 0.2]], dtype=F64)

    def first_zero(c):
        sol = pn.solve(damped, y0, [0.0, 5.0], method=name, rtol=1e-11, atol=1e-13,
                       args=c, events=pn.Event(fn=lambda t, y, c: y[..., 0], terminal=True))
        return sol.events[0].t, sol.events[0].y[:, 1]

    c = torch.tensor([[0.1], [0.3]], dtype=F64, requires_grad=True)
    t_star, v_star = first_zero(c)
    (dt,) = torch.autograd.grad(t_star.sum(), c, retain_graph=True)
    (dv,) = torch.autograd.grad(v_star.sum(), c)
    step = 1e-5
    with torch.no_grad():
        (t_plus, v_plus), (t_minus, v_minus) = first_zero(c + step), first_zero(c - step)
    assert torch.allclose(dt[:, 0], (t_plus - t_minus) / (2 * step), atol=1e-6)
    assert torch.allclose(dv[:, 0], (v_plus - v_minus) / (2 * step), atol=1e-6)


def test_an_event_time_without_a_derivative_raises():
    # g = s·sign(x − 1) with a parameter s changes sign where x = 1, but dg/dt = 0 there:
    # the event time has no derivative in s, which a solve with gradients reports.
    s = torch.tensor(2.0, dtype=F64, requires_grad=True)
    y0 = torch.tensor([[0.0, 1.0]], dtype=F64)                     # x = t, moving right

    def line(t, y):
        return torch.cat([y[..., 1:], torch.zeros_like(y[..., 1:])], -1)

    event = pn.Event(fn=lambda t, y: s * torch.sign(y[..., 0] - 1))
    with pytest.raises(pn.IntegrationError, match=r"^`events\[0\]` has a zero with dg/dt = 0 "
                                                  r"at batch samples \[0\] \(t=1\), where its "
                                                  r"event time has no derivative; "):
        pn.solve(line, y0, [0.0, 2.0], method="dopri5", events=event)
    with torch.no_grad():
        sol = pn.solve(line, y0, [0.0, 2.0], method="dopri5", events=event)
    assert sol.events[0].t.tolist() == pytest.approx([1.0], abs=1e-12)


class NoDense(pn.integrators.RK4):
    """A method that declares no dense output."""

    name = "no_dense"
    dense_order = None


Y0 = drop(torch.tensor([1.0, 2.0, 4.0], dtype=F64))
T = torch.tensor([0.0, 1.0], dtype=F64)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"events": 3}, TypeError, r"^`events` must be a callable, an Event or a list of them; "
                               r"got int$"),
    ({"events": [height, "x"]}, TypeError, r"^`events\[1\]` must be a callable or an Event; "
                                           r"got str$"),
    ({"events": [height, lambda t, y: y[..., :1]]}, ValueError,
     r"^`events\[1\]` must return one real value per sample, a floating-point tensor of shape "
     r"y.shape\[:-1\] = \(3,\) for y of shape \(3, 2\); got shape \(3, 1\), torch.float64$"),
    ({"events": lambda t, y: 1.0}, ValueError,
     r"^`events\[0\]` must return one real value per sample, .* got float$"),
    ({"events": height, "method": NoDense()}, ValueError,
     r"^`events` needs a method with dense output \('euler', .*'kvaerno5'\); got 'no_dense'$"),
    ({"dense": True, "method": NoDense()}, ValueError,
     r"^`dense=True` needs a method with dense output \('euler', .*\); got 'no_dense'$"),
    ({"dense": "yes"}, TypeError, r"^`dense` must be a bool; got str$"),
    ({"events": height, "adjoint": True}, ValueError,
     r"^`events` does not work with adjoint=True; solve with adjoint=False \(gradients then "
     r"flow through the steps\)$"),
    ({"events": height, "t": T.clone().requires_grad_()}, ValueError,
     r"^`events` does not take gradients with respect to `t`; pass t.detach\(\)$"),
])
def test_bad_events_and_dense_arguments_are_refused(kwargs, error, message):
    args = {"y0": Y0, "t": T, "method": "dopri5", **kwargs}
    with pytest.raises(error, match=message):
        pn.solve(ball, args.pop("y0"), args.pop("t"), **args)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"fn": 3}, TypeError, r"^`fn` must be callable; got int$"),
    ({"fn": height, "direction": 2}, ValueError, r"^`direction` must be -1, 0 or 1; got 2$"),
    ({"fn": height, "terminal": 1}, TypeError, r"^`terminal` must be a bool; got int$"),
])
def test_bad_event_options_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        pn.Event(**kwargs)


@pytest.mark.parametrize("name", ["rk4", "leapfrog", "gauss_legendre4"])
def test_fixed_step_methods_stop_samples_at_terminal_events(name):
    # The parabola is exact for these methods and for the cubic Hermite interpolant, so the
    # impacts are exact; the stopped samples' outputs hold their state at the event.
    heights = torch.tensor([1.0, 2.0, 4.0], dtype=F64, requires_grad=True)
    t = torch.linspace(0, 1, 5, dtype=F64)
    sol = pn.solve(ball, drop(heights), t, method=name, dt=0.01, events=GROUND)
    hit = torch.sqrt(2 * heights.detach() / G)
    assert torch.allclose(sol.t_end, hit, atol=1e-12)
    assert sol.stop_event.tolist() == [0, 0, 0]
    for i in range(3):
        later = t > hit[i]
        assert torch.equal(sol.ys[later, i], sol.events[0].y[i].expand(int(later.sum()), 2))
    assert float(sol.ys[3, 2, 0].detach()) == pytest.approx(4 - G * 0.75 ** 2 / 2, abs=1e-12)
    (dt_dh,) = torch.autograd.grad(sol.events[0].t.sum(), heights)
    assert torch.allclose(dt_dh, 1 / (G * hit), atol=1e-10)


def test_symplectic_poincare_section_and_batch_equals_one_at_a_time():
    hh, energy = pn.systems.HenonHeiles(), 0.125
    y0 = on_section(4, energy)
    section = pn.Event(fn=lambda t, s: s[..., 0], direction=1)
    with torch.no_grad():
        sol = pn.solve(hh, y0, [0.0, 40.0], method="yoshida4", dt=0.02, events=section)
        points = sol.events[0]
        assert bool((torch.bincount(points.sample, minlength=4) >= 3).all())
        assert float(points.y[:, 0].abs().max()) < 1e-12
        assert float((hh.energy(points.y) - energy).abs().max()) < 1e-8   # measured 1.5e-9
        alone = pn.solve(hh, y0[2:3], [0.0, 40.0], method="yoshida4", dt=0.02, events=section)
    t_2, y_2 = points.of(2)
    assert torch.allclose(t_2, alone.events[0].t, rtol=0, atol=1e-12)
    assert torch.allclose(y_2, alone.events[0].y, rtol=0, atol=1e-12)


def test_interpolate_refuses_what_it_cannot_answer():
    plain = pn.solve(ball, Y0, T, method="dopri5")
    with pytest.raises(ValueError, match=r"^`interpolate` needs the dense output of the solve: "
                                         r"call solve\(..., dense=True\) with a method that has "
                                         r"one \('euler', 'midpoint', 'rk4', 'dopri5', .*\)$"):
        plain.interpolate(0.5)
    sol = pn.solve(ball, Y0, T, method="dopri5", rtol=1e-10, atol=1e-12, events=GROUND,
                   dense=True)
    with pytest.raises(ValueError, match=r"^`t` must lie within the solved interval \[0, 1\]; "
                                         r"got t=1.5$"):
        sol.interpolate([0.5, 1.5])
    with pytest.raises(ValueError, match=r"^`t` must lie before the end of every sample: "
                                         r"sample 0 stopped at t=0.451524 \(terminal event 0\); "
                                         r"got t=0.5$"):
        sol.interpolate(0.5)
    with pytest.raises(ValueError, match=r"^`t` must be one time or a 1-D tensor of times; got "
                                         r"shape \(2, 2\)$"):
        sol.interpolate(torch.zeros(2, 2, dtype=F64))
    # Up to a sample's stop, interpolate is the free fall.
    assert float(sol.interpolate(0.45)[0, 0]) == pytest.approx(1 - G * 0.45 ** 2 / 2, abs=1e-9)


def test_fixed_step_events_evaluate_the_field_only_in_steps_with_a_crossing():
    def f(t, y):
        return torch.cat([y[..., 1:], -y[..., :1]], -1)

    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    t = torch.linspace(0, 10, 11, dtype=torch.float64)
    plain = pn.solve(f, y0, t, method="rk4", dt=0.01).stats["nfev"]
    sol = pn.solve(f, y0, t, method="rk4", dt=0.01, events=[pn.Event(fn=lambda t, y: y[..., 0])])
    crossings = sol.events[0]
    torch.testing.assert_close(crossings.t, torch.tensor([0.5, 1.5, 2.5], dtype=torch.float64)
                               * math.pi, rtol=0, atol=1e-8)
    assert sol.stats["nfev"] == plain + 2 * len(crossings.t)      # both ends of 3 steps
    dense = pn.solve(f, y0, t, method="rk4", dt=0.01, dense=True)
    assert dense.stats["nfev"] == plain + 1000 + 1                 # every step's end, and t0
