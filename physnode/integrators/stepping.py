"""The two time-stepping loops: a fixed grid for all samples, and per-sample adaptive steps.

Both return the states at the requested output times. Adaptive steps are shortened so that
each sample lands exactly on every output time (no interpolation error at the outputs).

Either loop can run checkpointed (``solve(..., adjoint=True)``): the steps are cut into
segments of about ``√N`` steps (or attempts); each segment runs without a graph, keeping only
its starting state, and is run again with a graph in the backward pass, one segment at a time
(checkpointing: Griewank & Walther, *Evaluating Derivatives*, 2nd ed., ch. 12). The forward
pass computes what the plain loop computes, so values and statistics are identical; the
gradients are those of backpropagation through the steps, with memory ``O(√N)`` instead of
``O(N)``, for one more evaluation of every step. (Fields that differentiate inside, such as
Hamiltonian networks, work as well: each segment is an ordinary function run twice, not a
region whose saved tensors are dropped.)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields, replace

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
from .dense import DenseOutput, hermite
from .events import EventWatcher


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


class _Segment(torch.autograd.Function):
    """``run(*inputs) -> (outputs, extra)`` computed without a graph; the backward pass runs it
    again with one and backpropagates through it to the inputs and to ``params``. ``extra``
    (anything non-differentiable the caller needs) is appended to ``sink``."""

    @staticmethod
    def forward(ctx, run, sink, n_inputs, *tensors):
        ctx.set_materialize_grads(False)
        ctx.run, ctx.n_inputs = run, n_inputs
        outputs, extra = run(*tensors[:n_inputs])
        sink.append(extra)
        ctx.save_for_backward(*tensors)
        # Fresh tensors: an output that is one of the inputs would be a view of it.
        return tuple(x.clone() if any(x is y for y in tensors) else x for x in outputs)

    @staticmethod
    def backward(ctx, *grads):
        saved, n = ctx.saved_tensors, ctx.n_inputs
        needs = ctx.needs_input_grad[3:]
        inputs = [x.detach().requires_grad_(need) for x, need in zip(saved[:n], needs)]
        with torch.enable_grad():
            outputs, _ = ctx.run(*inputs)
        pairs = [(o, g) for o, g in zip(outputs, grads) if g is not None and o.requires_grad]
        candidates = [*inputs, *saved[n:]]
        wanted = [i for i, need in enumerate(needs) if need]
        result = [None] * len(needs)
        if pairs and wanted:
            got = torch.autograd.grad([o for o, _ in pairs], [candidates[i] for i in wanted],
                                      [g for _, g in pairs], allow_unused=True)
            for i, g in zip(wanted, got):
                result[i] = g
        return (None, None, None, *result)


def _leaves(state: SampleState) -> list:
    """The fields of ``state`` in order, nested states flattened."""
    values = []
    for field in fields(state):
        value = getattr(state, field.name)
        values += _leaves(value) if isinstance(value, SampleState) else [value]
    return values


def _rebuild(state: SampleState, values) -> SampleState:
    """``state`` with its leaves (in :func:`_leaves` order) replaced by ``values``."""
    values = iter(values)

    def build(state):
        changes = {}
        for field in fields(state):
            value = getattr(state, field.name)
            changes[field.name] = build(value) if isinstance(value, SampleState) else next(values)
        return replace(state, **changes)

    return build(state)


def segment_lengths(n: int) -> list[int]:
    """Lengths of the checkpointed segments of ``n`` fixed steps: ``⌈√n⌉`` each (the last
    shorter), so that both the stored boundaries and the longest recomputed segment are
    ``O(√n)``."""
    if n <= 0:
        return []
    length = math.ceil(math.sqrt(n))
    return [min(length, n - start) for start in range(0, n, length)]


def integrate_fixed(method: FixedStepIntegrator, field: Field, y0, t_out, dt,
                    params: tuple[torch.Tensor, ...] | None = None,
                    watcher: EventWatcher | None = None, dense: DenseOutput | None = None):
    """Fixed steps on the grid of :func:`step_schedule`; returns ``(ys, stats)``.

    ``field`` counts the evaluations (``Field(..., count=B)``). With ``params`` (the tensors
    besides ``y0`` to differentiate), the loop runs checkpointed; a method's carry must then
    be a tensor or ``None``. With a ``watcher`` or ``dense`` (not with ``params``), every
    step is observed by :class:`_Observer`.
    """
    schedule = [(k, h, t, i == len(times) - 1)
                for k, h, times in step_schedule(t_out, dt) for i, t in enumerate(times)]
    steps = [(j, *step) for j, step in enumerate(schedule, 1)]   # j: steps taken after it
    taken = [0]

    def stats():
        return {"nfev": field.nfev, "steps": taken[0], "rejected": 0, "njev": field.njev,
                "nlu": field.nlu}

    def run(y, carry, segment, observer=None):
        """The steps of ``segment``; returns the last state, the carry and the states at
        the ends of the output intervals it closes."""
        outputs = []
        for j, k, h, t, closes in segment:
            y_old = y
            y, carry = method.step(field, t, y, h, carry)
            if observer is not None:
                observer.step(t, y_old, h, y, t_out[k + 1] if closes else t + h)
            if closes:
                taken[0] = j
                out = y if observer is None else observer.output(y)
                check_finite_state(out, k, t_out, h, method.name, stats())
                outputs.append(out)
        if segment:
            taken[0] = segment[-1][0]
        return y, carry, outputs

    if params is None:
        observer = None if watcher is None and dense is None else _Observer(
            field, t_out[0], y0, watcher, dense)
        _, _, outputs = run(y0, None, steps, observer)
        return torch.stack([y0, *outputs]), stats()

    outputs, y, carry, start = [], y0, None, 0
    for length in segment_lengths(len(steps)):
        segment = steps[start:start + length]
        has_carry = carry is not None

        def segment_run(y, *carry, segment=segment, has_carry=has_carry):
            y, carry, out = run(y, carry[0] if has_carry else None, segment)
            return (y, *([] if carry is None else [carry]), *out), carry is not None

        sink = []
        result = _Segment.apply(segment_run, sink, 1 + has_carry, y,
                                *([carry] if has_carry else []), *params)
        y, carry = result[0], result[1] if sink[0] else None
        outputs += result[1 + sink[0]:]
        start += length
    return torch.stack([y0, *outputs]), stats()


class _Observer:
    """Events and dense output of a fixed-step run. The interpolant of a step is the cubic
    Hermite polynomial through its ends (order 3), which needs ``f`` at both ends: dense
    output evaluates it once per step (at the step's end; counted in ``nfev``), events alone
    only in the steps where an event function changes sign. A sample that a terminal event
    stops is stepped on with the batch, but its outputs hold its state at the event and its
    events are no longer looked for."""

    def __init__(self, field, t0, y0, watcher, dense):
        self.field, self.watcher, self.dense = field, watcher, dense
        B = y0.shape[0]
        self.ids = torch.arange(B, device=y0.device)
        self.running = torch.ones(B, dtype=torch.bool, device=y0.device)
        self.hold = y0
        self.f = None                   # f at the current step's start, once evaluated

    def step(self, t, y, h, y_new, t_new):
        """Observe the step ``[t, t_new]`` (0-d times, ``h`` a float) from ``y`` to ``y_new``."""
        B = y.shape[0]
        hb = torch.full((B,), h, dtype=t.dtype, device=t.device)
        f_old, slopes = self.f, {}

        @functools.cache
        def interpolant():
            start = f_old if f_old is not None else self.field(t, y)
            slopes["end"] = self.field(t_new, y_new)
            return hermite(y, y_new, start, slopes["end"], hb.unsqueeze(-1).to(y.dtype))

        if self.dense is not None:
            rows = self.running.nonzero().reshape(-1)
            self.dense.add(self.ids[rows], t.expand(B)[rows], hb[rows], y[rows],
                           interpolant()[rows])
        if self.watcher is not None:
            stop = self.watcher.step(self.field, self.ids, t.expand(B), y, hb, t_new.expand(B),
                                     y_new, self.running, interpolant)
            if stop is not None:
                stopped, _, y_stop = stop
                self.hold = torch.where(stopped.unsqueeze(-1), y_stop, self.hold)
                self.running = self.running & ~stopped
        self.f = slopes.get("end")

    def output(self, y):
        """The outputs of the batch: ``y``, or the state at the event of a stopped sample."""
        return torch.where(self.running.unsqueeze(-1), y, self.hold)


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
                       tolerance: Tolerance, max_steps: int,
                       params: tuple[torch.Tensor, ...] | None = None,
                       watcher: EventWatcher | None = None, dense: DenseOutput | None = None,
                       direction: float | None = None):
    """Per-sample adaptive stepping: every sample has its own time, step size, state and
    accept/reject decision. Returns ``(ys, stats)`` with per-sample stats.

    With a ``watcher``, every accepted step is searched for its events, and a sample that a
    terminal event stops leaves the loop there, its remaining outputs holding the state at
    the event; with ``dense``, every accepted step's interpolant is recorded. Neither works
    with ``params``.

    The loop works on a compact set of the samples still running; finished samples leave it
    (one gather per finishing event, not per step), so the cost follows the active batch.
    With ``params`` (the tensors besides ``y0`` to differentiate), it runs checkpointed in
    segments of 1, 2, 3, … attempts: ``N`` attempts make about ``√(2N)`` segments, none
    longer than that. The state fields that carry gradients are those that do initially.
    """
    B, n = y0.shape
    T = t_out.shape[0]
    if direction is None:
        direction = 1.0 if T < 2 or bool(t_out[-1] > t_out[0]) else -1.0
    long = {"dtype": torch.long, "device": y0.device}
    stats = {k: torch.zeros(B, **long) for k in ("nfev", "steps", "rejected", "njev", "nlu")}
    ys = y0.new_zeros((T, B, n))
    ys[0] = y0
    if T == 1:
        return ys, stats
    eps = torch.finfo(y0.dtype).eps
    # Step-size underflow is |h| ≤ 10·eps·max(|t|, 1) (see _check_progress); the times stay
    # within the outputs' span, so no step above twice that bound at its widest underflows:
    # one comparison per attempt, the exact test only below it.
    floor = 20 * eps * max(1.0, float(t_out.abs().max()))

    t = t_out[0].expand(B).clone()
    h = direction * initial_step(field, t, y0, f0, method.order, tolerance.rtol,
                                 tolerance.atol, direction)
    work = {k: torch.zeros(B, **long) for k in stats}
    work["nfev"].fill_(2)
    running = _Running(ids=torch.arange(B, device=y0.device), t=t, y=y0, h=h,
                       next_out=torch.ones(B, **long), work=work,
                       state=method.init(field, t, y0, f0), attempts=0)

    def advance(running, stats, limit):
        """At most ``limit`` attempts (None: until every sample is done); returns the working
        set (None when done), the stats and the outputs ``(index, samples, states)``."""
        outputs = []
        ids, t, y, h, next_out = (running.ids, running.t, running.y, running.h,
                                  running.next_out)
        state, attempts, work = running.state, running.attempts, dict(running.work)
        rows = field.take(ids)                  # the field of the running samples
        stats = dict(stats)
        controller = method.controller
        done = 0

        def settle(work):
            """``work`` with the rejected attempts, counted lazily: the attempts less the
            accepted steps (every running sample has made ``attempts``)."""
            return {**work, "rejected": attempts - work["steps"]}

        target = t_out[next_out]
        while limit is None or done < limit:
            done += 1
            attempts += 1       # every sample still running has made this many attempts
            # direction·(t + h − target) ≥ 0, without the product (the sign is exact)
            t_plus_h = t + h
            lands = t_plus_h >= target if direction > 0 else t_plus_h <= target
            h_try = torch.where(lands, target - t, h)
            result = method.attempt(rows, t, y, h_try.unsqueeze(-1), state, tolerance)
            accepted = result.accepted
            t_new = torch.where(lands, target, t_plus_h)      # t + h_try
            stop = None
            if (watcher is not None or dense is not None) and bool(accepted.any()):
                interpolant = functools.cache(functools.partial(
                    method.interpolant, y, h_try.unsqueeze(-1), result))
                h_new = t_new - t          # exactly the step [t, t_new], not h_try
                if dense is not None:
                    a = accepted.nonzero().reshape(-1)
                    dense.add(ids[a], t[a], h_new[a], y[a], interpolant()[a])
                if watcher is not None:
                    stop = watcher.step(rows, ids, t, y, h_new, t_new, result.y, accepted,
                                        interpolant)
            t = torch.where(accepted, t_new, t)
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
            reached = accepted & lands
            tiny = h.abs() <= floor      # looked for with the outputs in one host sync
            if stop is None and attempts <= max_steps and not bool((reached | tiny).any()):
                continue
            if stop is not None:
                stopped, t_stop, y_stop = stop
                t = torch.where(stopped, t_stop, t)
                y = torch.where(stopped.unsqueeze(-1), y_stop, y)
                reached &= ~stopped
            if stop is not None or bool(reached.any()):
                outputs.append((next_out[reached], ids[reached], y[reached]))
                next_out = next_out + reached.long()
                finished = next_out >= T
                if stop is not None:        # the later outputs hold the state at the event
                    later = torch.arange(T, device=y.device) >= next_out.unsqueeze(-1)
                    row, index = (later & stopped.unsqueeze(-1)).nonzero().unbind(-1)
                    outputs.append((index, ids[row], y[row]))
                    finished |= stopped
                if bool(finished.any()):
                    work = settle(work)
                    if ids.shape[0] == B and bool(finished.all()):
                        # all of the batch at once, in order: the counts are the stats
                        return None, work, outputs
                    for key in stats:
                        stats[key] = stats[key].index_put((ids[finished],),
                                                          work[key][finished])
                    keep = (~finished).nonzero().reshape(-1)
                    if keep.numel() == 0:
                        return None, stats, outputs
                    ids, t, y, h, next_out = ids[keep], t[keep], y[keep], h[keep], next_out[keep]
                    rows = field.take(ids)
                    work = {k: v[keep] for k, v in work.items()}
                    state = state.take(keep)
                    target = t_out[next_out]
                    continue
                target = t_out[next_out]
            _check_progress(t, h, result.error, ids, settle(work), stats, attempts > max_steps,
                            max_steps, eps, method.name)
        return _Running(ids=ids, t=t, y=y, h=h, next_out=next_out, work=settle(work),
                        state=state, attempts=attempts), stats, outputs

    if params is None:
        _, stats, outputs = advance(running, stats, None)
    else:
        graded = [isinstance(x, torch.Tensor) and x.requires_grad
                  for x in _leaves(running.state)]
        outputs, length = [], 0
        while running is not None:
            length += 1
            leaves = _leaves(running.state)
            carried = [x for x, g in zip(leaves, graded) if g]

            def segment_run(y, *carried, running=running, leaves=leaves, length=length,
                            stats=stats):
                given = iter(carried)
                state = _rebuild(running.state, [next(given) if g else x
                                                 for x, g in zip(leaves, graded)])
                # Counts are added in place: a recomputation starts from fresh copies.
                work = {k: v.clone() for k, v in running.work.items()}
                new, new_stats, out = advance(replace(running, y=y, state=state, work=work),
                                              stats, length)
                tensors = [v for _, _, v in out]
                if new is not None:
                    tensors = [new.y, *(x for x, g in zip(_leaves(new.state), graded) if g),
                               *tensors]
                return tensors, (new, new_stats, [(i, s) for i, s, _ in out])

            sink = []
            result = _Segment.apply(segment_run, sink, 1 + len(carried), running.y, *carried,
                                    *params)
            running, stats, index = sink[0]
            if running is not None:      # continue from the outputs, which carry the graph
                k = 1 + sum(graded)
                values = iter(result[1:k])
                running = replace(running, y=result[0], state=_rebuild(
                    running.state, [next(values) if g else x
                                    for x, g in zip(_leaves(running.state), graded)]))
                result = result[k:]
            outputs += [(i, s, v) for (i, s), v in zip(index, result)]
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
