"""The two time-stepping loops: a fixed grid for all samples, and per-sample adaptive steps.

Both return the states at the requested output times. Adaptive steps are shortened so that
each sample lands exactly on every output time (no interpolation error at the outputs).
"""

from __future__ import annotations

import math

import torch

from .._validation import IntegrationError
from .controllers import initial_step


class RowTime:
    """``f`` under :func:`physnode.solve`'s time convention: whatever the method, ``f``
    receives the time of every sample as a tensor of shape ``(*y.shape[:-1], 1)``, which
    broadcasts against ``y`` row by row (never along the state axis).

    Integrators call it with a 0-d time (every sample at the same time), a per-sample time
    ``(B,)`` for states ``(B, n)``, or per-stage times ``(B, s)`` for stage states
    ``(B, s, n)``.
    """

    def __init__(self, f):
        self.f = f

    def __call__(self, t, y):
        if t.ndim:
            t = t.unsqueeze(-1)
        return self.f(t.expand(*y.shape[:-1], 1), y)


class CountingField:
    """Wraps ``f`` and counts evaluations per batch sample (stage batches count once each)."""

    def __init__(self, f, batch_size: int):
        self.f, self.batch_size, self.count = f, batch_size, 0

    def __call__(self, t, y):
        self.count += y.numel() // max(1, y.shape[-1] * self.batch_size)
        return self.f(t, y)


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


def integrate_fixed(method, f, y0, t_out, dt, step_kwargs):
    """Fixed steps on the grid of :func:`step_schedule`; returns ``(ys, stats)``."""
    field = CountingField(f, y0.shape[0])
    stats = {"nfev": 0, "steps": 0, "rejected": 0, "njev": 0, "nlu": 0}
    if method.implicit:
        step_kwargs = {**step_kwargs, "stats": stats}
    ys, y, cache = [y0], y0, None
    for k, h, times in step_schedule(t_out, dt):
        for t in times:
            y, cache = method.step(field, t, y, h, cache, **step_kwargs)
        stats["steps"] += len(times)
        stats["nfev"] = field.count
        check_finite_state(y, k, t_out, h, method.name, stats)
        ys.append(y)
    return torch.stack(ys), stats


def integrate_adaptive(method, f, y0, t_out, f0, rtol, atol, max_steps, step_kwargs):
    """Per-sample adaptive stepping: every sample has its own time, step size, cache and
    accept/reject decision.

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

    def scale_fn(y_old, y_new):
        return atol + rtol * torch.maximum(y_old.abs(), y_new.abs())

    # The working set: state of the samples still running, and their original indices.
    ids = torch.arange(B, device=y0.device)
    t = t_out[0].expand(B).clone()
    y = y0
    h = direction * initial_step(f, t, y0, f0, method.order, rtol, atol, direction)
    next_out = torch.ones(B, **long)
    cache = method.init_cache(f, t, y, f0)
    work = {k: torch.zeros(B, **long) for k in stats}
    work["nfev"] += 2
    attempts = 0      # every sample still running has made exactly this many attempts
    while True:
        attempts += 1
        target = t_out[next_out]
        lands = direction * (t + h - target) >= 0
        h_try = torch.where(lands, target - t, h)
        y_new, norm, cache, factor, info = method.attempt(
            f, t, y, h_try.unsqueeze(-1), cache, scale_fn, rtol=rtol, **step_kwargs)
        accepted = norm <= 1
        t = torch.where(accepted, torch.where(lands, target, t + h_try), t)
        y = torch.where(accepted.unsqueeze(-1), y_new, y)
        h_prop = h_try * factor
        # A step shortened to hit an output says nothing against the longer step.
        h = torch.where(accepted & lands & (h_prop.abs() < h.abs()) & (norm < 0.5), h, h_prop)
        for key, value in info.items():
            work[key] += value
        work["steps"] += accepted
        work["rejected"] += ~accepted
        reached = accepted & lands
        if bool(reached.any()):
            ys.index_put_((next_out[reached], ids[reached]), y[reached])
            next_out = next_out + reached.long()
            finished = next_out >= T
            if bool(finished.any()):
                for key in stats:
                    stats[key] = stats[key].index_put((ids[finished],), work[key][finished])
                keep = (~finished).nonzero().reshape(-1)
                if keep.numel() == 0:
                    break
                ids, t, y, h, next_out = ids[keep], t[keep], y[keep], h[keep], next_out[keep]
                work = {k: v[keep] for k, v in work.items()}
                cache = {k: v[keep] for k, v in cache.items()}
                continue
        _check_progress(t, h, norm, ids, work, stats, attempts > max_steps, max_steps, eps,
                        method.name)
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
