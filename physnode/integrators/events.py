"""Events: zeros of ``g(t) = fn(t, y(t))`` located per sample on the dense output.

After every accepted step the loop (adaptive or fixed-step) evaluates each event function at the
new point of the samples that took it. Where the sign changed (in the event's ``direction``),
the zero is found on the step's interpolant (:mod:`.dense`) by the Illinois variant of regula
falsi, with a bisection every fourth iteration, to a few units of round-off in ``t``; the
accuracy of the event time is then that of the interpolant (``dopri5``: order 4). A terminal
event ends its sample's integration there; the other samples go on.

An odd number of sign changes inside one step counts as one crossing and an even number as
none, as in scipy's ``solve_ivp``: events closer together than a step can be missed.

The event time is differentiable by the implicit function theorem: with ``g(t*) = 0``,
``dt*/dθ = −(∂g/∂θ)/(dg/dt)``, ``dg/dt = ∂fn/∂t + ∂fn/∂y · f(t*, y*)``, and the event state
gets ``dy*/dθ = ∂y/∂θ|_{t*} + f(t*, y*) dt*/dθ``. A zero with ``dg/dt = 0`` (touching, not
crossing) has no such derivative and raises :class:`physnode.IntegrationError` when gradients
are wanted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .._validation import IntegrationError, check_instance
from .base import RowTime
from .dense import evaluate, sample_order


@dataclass(frozen=True, kw_only=True)
class Event:
    """A zero crossing of ``fn(t, y)`` to find during :func:`physnode.solve`.

    Parameters
    ----------
    fn : callable
        ``fn(t, y) -> (*batch,)`` real, under ``solve``'s time convention: ``t`` of shape
        ``(*batch, 1)`` (each sample's own time), ``y`` of shape ``(*batch, n)``;
        ``fn(t, y, args)`` when ``solve`` has ``args``. Each sample's value must come from
        its own row.
    terminal : bool
        Whether the sample's integration ends at its first crossing (the other samples go
        on). A recording event (``False``) keeps every crossing.
    direction : int
        ``+1``: only crossings where ``fn`` rises through 0; ``−1``: only falling ones;
        ``0``: both.

    Examples
    --------
    >>> import physnode as pn
    >>> ground = pn.Event(fn=lambda t, y: y[..., 0], terminal=True, direction=-1)
    >>> ground.terminal, ground.direction
    (True, -1)
    """

    fn: Callable
    terminal: bool = False
    direction: int = 0

    def __post_init__(self):
        if not callable(self.fn):
            raise TypeError(f"`fn` must be callable; got {type(self.fn).__name__}")
        check_instance("terminal", self.terminal, bool)
        if isinstance(self.direction, bool) or self.direction not in (-1, 0, 1):
            raise ValueError(f"`direction` must be -1, 0 or 1; got {self.direction!r}")


@dataclass(frozen=True)
class Crossings:
    """The crossings of one event in a solve, sorted by sample, then by time.

    Attributes
    ----------
    t : torch.Tensor
        ``(K,)`` times of the crossings.
    y : torch.Tensor
        ``(K, n)`` states there.
    sample : torch.Tensor
        ``(K,)`` long: the sample of each crossing, an index into the flattened batch
        (``y0.reshape(-1, n)[sample]``).
    """

    t: torch.Tensor
    y: torch.Tensor
    sample: torch.Tensor

    def of(self, sample: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(t, y)`` of the crossings of one sample (flattened batch index)."""
        rows = self.sample == sample
        return self.t[rows], self.y[rows]


def as_events(events) -> tuple[Event, ...]:
    """``solve``'s ``events`` argument as a tuple of :class:`Event` (a bare callable is a
    recording event in both directions)."""
    if events is None:
        return ()
    items = list(events) if isinstance(events, (list, tuple)) else [events]
    if not isinstance(events, (list, tuple)) and not (isinstance(events, Event)
                                                      or callable(events)):
        raise TypeError(f"`events` must be a callable, an Event or a list of them; got "
                        f"{type(events).__name__}")
    result = []
    for i, item in enumerate(items):
        if isinstance(item, Event):
            result.append(item)
        elif callable(item):
            result.append(Event(fn=item))
        else:
            raise TypeError(f"`events[{i}]` must be a callable or an Event; got "
                            f"{type(item).__name__}")
    return tuple(result)


def _along(fn, t, h, y, coefficients, theta):
    """``fn`` on the interpolant of steps ``[t, t + h]`` at ``θ``."""
    return fn(t + theta * h, evaluate(y, coefficients, theta))


def locate(g, g_lo: torch.Tensor, g_hi: torch.Tensor, xtol: torch.Tensor,
           max_iter: int = 400) -> torch.Tensor:
    """Zeros of ``g`` in ``(0, 1]``, row by row: the Illinois variant of regula falsi with a
    bisection every fourth iteration (so the bracket halves at least every four evaluations).

    ``g(θ (R,)) -> (R,)``; ``g_lo = g(0) ≠ 0`` and ``g_hi = g(1)`` of the other sign or 0.
    Returns the end of the final bracket on ``g_hi``'s side (where the sign has changed), no
    further than ``xtol (R,)`` from a zero.
    """
    lo, hi = torch.zeros_like(g_lo), torch.ones_like(g_hi)
    sign = torch.sign(g_lo)
    side = torch.zeros_like(g_lo)                  # which end moved last: +1 hi, −1 lo
    for iteration in range(max_iter):
        done = (hi - lo <= xtol) | (g_hi == 0)
        if bool(done.all()):
            break
        middle = (lo + hi) / 2
        if iteration % 4 == 3:
            x = middle
        else:
            x = hi - g_hi * (hi - lo) / (g_hi - g_lo)
            x = torch.where(torch.isfinite(x) & (x > lo) & (x < hi), x, middle)
        gx = g(x)
        after = (gx * sign <= 0) & ~done
        before = ~after & ~done
        # Illinois: an end kept twice in a row has its value halved.
        g_lo = torch.where(after & (side > 0), g_lo / 2, g_lo)
        g_hi = torch.where(before & (side < 0), g_hi / 2, g_hi)
        hi, g_hi = torch.where(after, x, hi), torch.where(after, gx, g_hi)
        lo, g_lo = torch.where(before, x, lo), torch.where(before, gx, g_lo)
        side = torch.where(after, 1.0, torch.where(before, -1.0, side))
    return hi


class EventWatcher:
    """The events of one solve: the last value of every event function per sample,
    the crossings found, and where each sample stopped.

    Parameters
    ----------
    events : tuple of Event
    args : pytree of tensors or None
        ``solve``'s per-sample ``args`` (flattened batch first).
    t0 : torch.Tensor
        0-d start time.
    y0 : torch.Tensor
        ``(B, n)`` initial states; every function is evaluated there once, and its output
        checked.
    t_final : torch.Tensor
        0-d last output time, the end of samples that no terminal event stops.
    direction : float
        ``+1`` forward in time, ``−1`` backward.
    """

    def __init__(self, events, args, t0, y0, t_final, direction: float):
        self.events, self.direction = events, direction
        self.fns = [RowTime(event.fn, args) for event in events]
        self._ids = self._fns = None            # the rows last taken, and their functions
        B = y0.shape[0]
        with torch.no_grad():
            self.g = torch.stack([self._value(i, self.fns[i], t0.expand(B), y0)
                                  for i in range(len(events))])           # (E, B)
        self.found = [[] for _ in events]
        self.wanted = torch.tensor([e.direction for e in events],
                                   device=y0.device).unsqueeze(-1)        # (E, 1)
        self.t_end = t_final.expand(B).clone()
        self.stop_event = torch.full((B,), -1, dtype=torch.long, device=y0.device)

    def _value(self, i, fn, t, y):
        g = fn(t, y)
        if (not isinstance(g, torch.Tensor) or g.shape != y.shape[:-1] or g.is_complex()
                or not g.is_floating_point()):
            got = (f"shape {tuple(g.shape)}, {g.dtype}" if isinstance(g, torch.Tensor)
                   else type(g).__name__)
            raise ValueError(f"`events[{i}]` must return one real value per sample, a "
                             f"floating-point tensor of shape y.shape[:-1] = "
                             f"{tuple(y.shape[:-1])} for y of shape {tuple(y.shape)}; got {got}")
        return g

    def step(self, field, ids, t, y, h, t_new, y_new, accepted, interpolant):
        """Look for crossings in the accepted steps ``[t, t_new]`` (``h = t_new − t``) of the
        running samples ``ids``; ``field`` is theirs, ``interpolant()`` the steps'
        coefficients. Records them and returns ``None`` or, for the samples a terminal event
        stops, ``(stopped (R,), t_stop (R,), y_stop (R, n))``."""
        if ids is not self._ids:       # the running set changed: the functions of its rows
            self._ids, self._fns = ids, [fn.take(ids) for fn in self.fns]
        fns = self._fns
        g_old = self.g[:, ids]
        with torch.no_grad():           # rejected rows are evaluated too, and then ignored
            g_new = torch.stack([self._value(i, fn, t_new, y_new.detach())
                                 for i, fn in enumerate(fns)])
        g_new = torch.where(accepted, g_new, g_old)
        self.g[:, ids] = g_new
        sign = torch.sign(g_old)
        crossed = accepted & (sign != 0) & (g_new * sign <= 0) & (
            (self.wanted == 0) | (self.wanted == -sign))
        if not bool(crossed.any()):
            return None
        coefficients = interpolant()
        eps = torch.finfo(t.dtype).eps
        found = []                                  # (event, rows, t*, y*)
        for i, fn in enumerate(fns):
            rows = crossed[i].nonzero().reshape(-1)
            if rows.numel() == 0:
                continue
            fn_r, y_r, t_r, h_r, C_r = fn.take(rows), y[rows], t[rows], h[rows], \
                coefficients[rows]
            with torch.no_grad():
                along = functools.partial(_along, fn_r, t_r, h_r, y_r.detach(), C_r.detach())
                theta = locate(along, g_old[i, rows], g_new[i, rows],
                               4 * eps * (1 + torch.maximum(t_r.abs(), (t_r + h_r).abs())
                                          / h_r.abs()))
            t_star = t_r + theta * h_r
            y_star = evaluate(y_r, C_r, theta)
            t_star, y_star = self._differentiable(i, fn_r, field.take(rows), t_star, y_star,
                                                  ids[rows])
            found.append((i, rows, t_star, y_star))
        # The earliest terminal crossing of each sample ends it; later crossings are dropped.
        stop_key = torch.full_like(t, torch.inf)
        stop_by = torch.full_like(ids, -1)
        for i, rows, t_star, _ in reversed(found):   # ties go to the first event
            if self.events[i].terminal:
                key = self.direction * t_star.detach()
                earlier = key <= stop_key[rows]
                stop_key[rows] = torch.where(earlier, key, stop_key[rows])
                stop_by[rows] = torch.where(earlier, i, stop_by[rows])
        stopped = stop_by >= 0
        t_stop, y_stop = t, y
        for i, rows, t_star, y_star in found:
            keep = self.direction * t_star.detach() <= stop_key[rows]
            if self.events[i].terminal:
                keep &= stop_by[rows] == i
                ends = rows[keep]
                t_stop = t_stop.index_put((ends,), t_star[keep].detach())
                y_stop = y_stop.index_put((ends,), y_star[keep])
            self.found[i].append((ids[rows[keep]], t_star[keep], y_star[keep]))
        if not bool(stopped.any()):
            return None
        self.t_end[ids[stopped]] = t_stop[stopped]
        self.stop_event[ids[stopped]] = stop_by[stopped]
        return stopped, t_stop, y_stop

    @staticmethod
    def _differentiable(i, fn, field, t_star, y_star, samples):
        """``t*`` and ``y*`` with the implicit-function-theorem derivative (unchanged values),
        when ``fn(t*, y*)`` carries a graph (through ``y*`` or ``fn``'s parameters). A zero
        where ``dg/dt = 0`` has no such derivative: :class:`IntegrationError`."""
        if not torch.is_grad_enabled():
            return t_star, y_star
        g = fn(t_star, y_star)
        if not g.requires_grad:
            return t_star, y_star
        with torch.enable_grad():
            tt = t_star.detach().requires_grad_()
            yy = y_star.detach().requires_grad_()
            gt, gy = torch.autograd.grad(fn(tt, yy).sum(), (tt, yy), allow_unused=True)
        with torch.no_grad():
            velocity = field(t_star.detach(), y_star.detach())
            slope = torch.zeros_like(tt) if gt is None else gt
            if gy is not None:          # dg = Re(conj(∂g) · dy) for complex states
                slope = slope + (gy.conj() * velocity).real.sum(-1)
        flat = slope == 0
        if bool(flat.any()):
            bad = samples[flat].tolist()
            first = float(t_star[flat][0])
            raise IntegrationError(
                f"`events[{i}]` has a zero with dg/dt = 0 at batch samples {bad[:10]} "
                f"(t={first:.6g}), where its event time has no derivative; solve under "
                f"torch.no_grad() or use an event function that crosses zero transversally",
                samples=bad, t=first)
        delta = -(g - g.detach()) / slope
        return t_star + delta, y_star + velocity * delta.unsqueeze(-1).to(velocity.dtype)

    def crossings(self, n: int, like: torch.Tensor) -> tuple[Crossings, ...]:
        """The crossings of every event, sorted by sample, then time."""
        result = []
        for parts in self.found:
            if not parts:
                result.append(Crossings(t=like.new_zeros(0, dtype=self.t_end.dtype),
                                        y=like.new_zeros(0, n),
                                        sample=torch.zeros(0, dtype=torch.long,
                                                           device=like.device)))
                continue
            sample, t, y = (torch.cat(x) for x in zip(*parts))
            order = sample_order(sample, t, self.direction)
            result.append(Crossings(t=t[order], y=y[order], sample=sample[order]))
        return tuple(result)
