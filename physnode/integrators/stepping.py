"""The two time-stepping loops: a fixed grid for all samples, and per-sample adaptive steps.

Both return the states at the requested output times. Adaptive steps are shortened so that
each sample lands exactly on every output time (no interpolation error at the outputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._validation import IntegrationError
from .base import (  # noqa: F401 - RowTime is re-exported
    AdaptiveIntegrator,
    Field,
    FixedStepIntegrator,
    RowTime,
    SampleState,
    Tolerance,
)
from .controllers import initial_step


def _failure(message, stats, samples, t):
    return IntegrationError(message, stats=stats, samples=samples, t=t)


def step_schedule(t_out: torch.Tensor, dt: float | None):
    """Per output interval ``k``: the step size and the start times of its steps. Each
    interval is split into ``ceil(Δt/dt)`` equal steps, or one step when ``dt`` is None.

    A grid whose spacing is ``dt`` up to the rounding of its own dtype (``arange(0, T, dt)``
    in float32) gets one step per interval, not a second sliver step."""
    bounds = t_out.tolist()
    eps = torch.finfo(t_out.dtype).eps
    for k in range(len(bounds) - 1):
        span = bounds[k + 1] - bounds[k]
        if dt is None:
            n_steps = 1
        else:
            slack = 1e-9 + 4 * eps * max(abs(bounds[k]), abs(bounds[k + 1]), dt) / dt
            n_steps = max(1, math.ceil(abs(span) / dt - slack))
        h = span / n_steps
        yield k, h, (t_out[k] + h * torch.arange(n_steps, dtype=t_out.dtype,
                                                 device=t_out.device)).unbind()


def check_finite_state(y, k, t_out, h, name, stats):
    if not bool(torch.isfinite(y).all()):
        bad = (~torch.isfinite(y)).any(-1).nonzero().reshape(-1).tolist()
        a, b = float(t_out[k]), float(t_out[k + 1])
        raise _failure(f"the state became non-finite at batch samples {bad[:10]} between "
                       f"t={a:.6g} and t={b:.6g} with {name!r} (step {abs(h):.3g}); try a "
                       f"smaller dt or a stiff method", stats, bad, a)


def integrate_fixed(method: FixedStepIntegrator, field: Field, y0, t_out, dt):
    """Fixed steps on the grid of :func:`step_schedule`; returns ``(ys, stats)``.

    ``field`` counts the evaluations (``Field(..., count=B)``).
    """
    schedule = [(k, h, t, i == len(times) - 1)
                for k, h, times in step_schedule(t_out, dt) for i, t in enumerate(times)]
    steps = [(j, *step) for j, step in enumerate(schedule, 1)]   # j: steps taken after it
    taken = [0]

    def stats():
        return {"nfev": field.nfev, "steps": taken[0], "rejected": 0, "njev": field.njev,
                "nlu": field.nlu}

    def run(y, carry, segment):
        """The steps of ``segment``; returns the last state, the carry and the states at
        the ends of the output intervals it closes."""
        outputs = []
        for j, k, h, t, closes in segment:
            y, carry = method.step(field, t, y, h, carry)
            if closes:
                taken[0] = j
                check_finite_state(y, k, t_out, h, method.name, stats())
                outputs.append(y)
        if segment:
            taken[0] = segment[-1][0]
        return y, carry, outputs

    _, _, outputs = run(y0, None, steps)
    return torch.stack([y0, *outputs]), stats()


@dataclass(kw_only=True)
class _Running:
    """The working set of the adaptive loop: the samples still running (``ids`` into the
    batch), their times, states, next step sizes, next output indices, counts and method
    state, and the attempts made so far (the same for all of them)."""

    ids: torch.Tensor
    t: torch.Tensor
    y: torch.Tensor
    h: torch.Tensor
    next_out: torch.Tensor
    work: dict
    state: SampleState
    attempts: int


def integrate_adaptive(method: AdaptiveIntegrator, field: Field, y0, t_out, f0,
                       tolerance: Tolerance, max_steps: int):
    """Per-sample adaptive stepping: every sample has its own time, step size, state and
    accept/reject decision. Returns ``(ys, stats)`` with per-sample stats.

    The loop works on a compact set of the samples still running; finished samples leave it
    (one gather per finishing event, not per step), so the cost follows the active batch.
    """
    B, n = y0.shape
    T = t_out.shape[0]
    direction = 1.0 if T < 2 or bool(t_out[-1] > t_out[0]) else -1.0
    long = {"dtype": torch.long, "device": y0.device}
    stats = {k: torch.zeros(B, **long) for k in ("nfev", "steps", "rejected", "njev", "nlu")}
    ys = y0.new_zeros((T, B, n))
    ys[0] = y0
    if T == 1:
        return ys, stats
    eps = torch.finfo(y0.dtype).eps

    t = t_out[0].expand(B).clone()
    h = direction * initial_step(field, t, y0, f0, method.order, tolerance.rtol,
                                 tolerance.atol, direction)
    work = {k: torch.zeros(B, **long) for k in stats}
    work["nfev"] += 2
    running = _Running(ids=torch.arange(B, device=y0.device), t=t, y=y0, h=h,
                       next_out=torch.ones(B, **long), work=work,
                       state=method.init(field, t, y0, f0), attempts=0)

    def advance(running, stats, limit):
        """At most ``limit`` attempts (None: until every sample is done); returns the working
        set (None when done), the stats and the outputs ``(index, samples, states)``."""
        outputs = []
        ids, t, y, h, next_out = (running.ids, running.t, running.y, running.h,
                                  running.next_out)
        state, attempts = running.state, running.attempts
        work = {k: v.clone() for k, v in running.work.items()}
        stats = dict(stats)
        controller = method.controller
        done = 0
        while limit is None or done < limit:
            done += 1
            attempts += 1       # every sample still running has made this many attempts
            target = t_out[next_out]
            lands = direction * (t + h - target) >= 0
            h_try = torch.where(lands, target - t, h)
            result = method.attempt(field, t, y, h_try.unsqueeze(-1), state, tolerance)
            accepted = result.accepted
            t = torch.where(accepted, torch.where(lands, target, t + h_try), t)
            y = torch.where(accepted.unsqueeze(-1), result.y, y)
            h = controller.next_step(h, h_try, result.factor, accepted=accepted, lands=lands,
                                     error=result.error)
            state = result.state
            work["nfev"] += result.nfev
            if result.njev is not None:
                work["njev"] += result.njev
            if result.nlu is not None:
                work["nlu"] += result.nlu
            work["steps"] += accepted
            work["rejected"] += ~accepted
            reached = accepted & lands
            if bool(reached.any()):
                outputs.append((next_out[reached], ids[reached], y[reached]))
                next_out = next_out + reached.long()
                finished = next_out >= T
                if bool(finished.any()):
                    for key in stats:
                        stats[key] = stats[key].index_put((ids[finished],),
                                                          work[key][finished])
                    keep = (~finished).nonzero().reshape(-1)
                    if keep.numel() == 0:
                        return None, stats, outputs
                    ids, t, y, h, next_out = ids[keep], t[keep], y[keep], h[keep], next_out[keep]
                    work = {k: v[keep] for k, v in work.items()}
                    state = state.take(keep)
                    continue
            _check_progress(t, h, result.error, ids, work, stats, attempts > max_steps,
                            max_steps, eps, method.name)
        return _Running(ids=ids, t=t, y=y, h=h, next_out=next_out, work=work, state=state,
                        attempts=attempts), stats, outputs

    _, stats, outputs = advance(running, stats, None)
    for index, samples, values in outputs:
        ys.index_put_((index, samples), values)
    return ys, stats


def _check_progress(t, h, norm, ids, work, stats, over_max_steps, max_steps, eps, name):
    """Raise for step-size underflow, a state that cannot be made finite, or max_steps (which
    the running samples reach together: each attempt of the loop is one of each of them)."""
    tiny = h.abs() <= 10 * eps * t.abs().clamp_min(1.0)
    if not (over_max_steps or bool(tiny.any())):
        return
    stats = {k: v.index_put((ids,), work[k]) for k, v in stats.items()}
    if bool(tiny.any()):
        bad = ids[tiny].tolist()
        first = float(t[tiny][0])
        cause = ("the state is not finite there" if not math.isfinite(float(norm[tiny][0]))
                 else "the error cannot be controlled")
        raise _failure(f"step size underflow with {name!r} at batch samples {bad[:10]}: "
                       f"t={first:.6g}, step {float(h[tiny][0].abs()):.3g}; {cause}",
                       stats, bad, first)
    if over_max_steps:
        bad = ids.tolist()
        first = float(t[0])
        raise _failure(f"max_steps={max_steps} reached with {name!r} at batch samples "
                       f"{bad[:10]}: t={first:.6g}; raise max_steps or use a stiff method",
                       stats, bad, first)
