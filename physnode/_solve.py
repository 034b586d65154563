"""``solve``: the one entry point for integrating any system with any method."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field

import torch

from ._validation import (
    check_even_state,
    check_finite,
    check_int,
    check_real,
    check_tensor,
    check_time_precision,
    check_times,
)
from .integrators import METHODS, Integrator
from .integrators.adjoint import adjoint_parameters, solve_reversible_adjoint
from .integrators.base import Field, Tolerance, real_dtype, tree_leaves, tree_map
from .integrators.dense import DenseOutput
from .integrators.events import Crossings, EventWatcher, as_events
from .integrators.linalg import Sparsity
from .integrators.stepping import integrate_adaptive, integrate_fixed


@dataclass(frozen=True)
class Solution:
    """Result of :func:`solve`.

    Attributes
    ----------
    t : torch.Tensor
        The requested times, shape ``(T,)``.
    ys : torch.Tensor
        States at ``t``, shape ``(T, *y0.shape)``.
    stats : dict
        ``nfev``, ``steps``, ``rejected``, ``njev``, ``nlu``: ints for fixed-step methods,
        tensors of shape ``y0.shape[:-1]`` (per sample) for adaptive ones.
    method : Integrator
        The integrator used.
    events : tuple of Crossings
        With ``events``: per event, in order, its crossings ``t (K,)``, ``y (K, n)`` and
        ``sample (K,)`` (indices into the flattened batch), sorted by sample, then time
        (``sol.events[i].of(sample)`` gives one sample's). Empty without ``events``.
    t_end : torch.Tensor or None
        With ``events``: ``(*batch,)`` the time where each sample's integration ended,
        ``t[-1]`` or the time of the terminal event that stopped it. ``ys`` at output times
        beyond it hold the state at the event.
    stop_event : torch.Tensor or None
        With ``events``: ``(*batch,)`` long, the index of the terminal event that stopped each
        sample, ``-1`` for samples that reached ``t[-1]``.
    dense : DenseOutput or None
        With ``dense=True``: the interpolants of every step, per sample, that
        :meth:`interpolate` evaluates.
    """

    t: torch.Tensor
    ys: torch.Tensor
    stats: dict
    method: Integrator
    events: tuple[Crossings, ...] = ()
    t_end: torch.Tensor | None = None
    stop_event: torch.Tensor | None = None
    dense: DenseOutput | None = dataclass_field(default=None, repr=False)

    def interpolate(self, t) -> torch.Tensor:
        """States at any times ``t`` within the solve, from the dense output
        (``solve(..., dense=True)``): the interpolant of the step that contains each time,
        per sample, of order ``method.dense_order`` (``dopri5``: its continuous extension,
        order 4; ``radau5``, ``radau9``: the collocation polynomials, order 3 and 5;
        ``kvaerno5`` and the fixed-step methods: the cubic Hermite polynomial through the
        ends of the step, order 3, or the method's order where lower). Differentiable.

        Parameters
        ----------
        t : torch.Tensor or sequence of float or float
            Times ``(Q,)`` in any order, or one time, within ``[t[0], t[-1]]`` (for a sample
            a terminal event stopped: up to its ``t_end``).

        Returns
        -------
        torch.Tensor
            ``(Q, *batch, n)``, or ``(*batch, n)`` for a single time.
        """
        if self.dense is None:
            raise ValueError("`interpolate` needs the dense output of the solve: call "
                             "solve(..., dense=True) with a method that has one (" +
                             _dense_methods() + ")")
        dense = self.dense
        times = t if isinstance(t, torch.Tensor) else torch.as_tensor(t, dtype=dense.t.dtype)
        if times.is_complex() or not (times.is_floating_point() or times.dtype == torch.long
                                      or times.dtype == torch.int):
            raise TypeError(f"`t` must hold real times; got {times.dtype}")
        if times.ndim > 1:
            raise ValueError(f"`t` must be one time or a 1-D tensor of times; got shape "
                             f"{tuple(times.shape)}")
        flat = times.to(device=dense.t.device, dtype=dense.t.dtype).reshape(-1)
        if not bool(torch.isfinite(flat).all()):
            raise ValueError("`t` must be finite; got " + str(flat.tolist()))
        sign = dense.direction
        t0, t1 = float(self.t[0]), float(self.t[-1])
        outside = (sign * (flat - self.t[0]) < 0) | (sign * (flat - t1) > 0)
        if bool(outside.any()):
            raise ValueError(f"`t` must lie within the solved interval [{min(t0, t1):.6g}, "
                             f"{max(t0, t1):.6g}]; got t={float(flat[outside][0]):.6g}")
        late = sign * (flat.unsqueeze(0) - dense.t_end.unsqueeze(-1)) > 0    # (B, Q)
        if bool(late.any()):
            sample, query = (int(i) for i in late.nonzero()[0])
            raise ValueError(f"`t` must lie before the end of every sample: sample {sample} "
                             f"stopped at t={float(dense.t_end[sample]):.6g} (terminal event "
                             f"{int(self.stop_event.reshape(-1)[sample])}); got "
                             f"t={float(flat[query]):.6g}")
        values = dense(flat).transpose(0, 1)                                 # (Q, B, n)
        values = values.reshape(flat.shape[0], *self.ys.shape[1:])
        return values[0] if times.ndim == 0 else values


def resolve_method(method) -> Integrator:
    """An integrator object from a name or an object (an integrator class is instantiated)."""
    if isinstance(method, Integrator):
        return method
    if isinstance(method, type) and issubclass(method, Integrator):
        return method()
    if isinstance(method, str):
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {', '.join(map(repr, METHODS))}; "
                             f"got {method!r}")
        return METHODS[method]()
    raise TypeError(f"`method` must be a method name or an Integrator; "
                    f"got {type(method).__name__}")


def solve(f, y0: torch.Tensor, t, method="rk4", dt: float | None = None, rtol: float = 1e-6,
          atol: float = 1e-9, max_steps: int = 100_000, jac=None, jac_sparsity=None,
          adjoint: bool = False, args=None, events=None, dense: bool = False) -> Solution:
    """Integrate ``dy/dt = f(t, y)`` from ``y0`` and return the states at the times ``t``.

    Parameters
    ----------
    f : callable
        ``f(t, y) -> dy/dt`` on states ``(*batch, dim)``. **Time convention:** with every
        method, ``t`` is a real tensor of shape ``(*batch, 1)`` holding each sample's own
        time (adaptive methods give every sample its own step, so the times differ), which
        broadcasts against ``y`` row by row: ``-t * y``, ``torch.cos(t) * y`` and
        ``torch.cat([y, t], -1)`` mean the same for every method and batch shape. A field that
        computes per-sample columns of shape ``(*batch,)`` takes ``t[..., 0]``
        (:func:`physnode.systems.sample_times` also accepts a scalar, for direct calls).
        Implicit methods evaluate all their stages at once, with ``y`` of shape
        ``(*batch, stages, dim)`` and ``t`` of shape ``(*batch, stages, 1)``.
    y0 : torch.Tensor
        Initial states ``(*batch, dim)``; the solve runs on its device and dtype. Complex
        states (``complex64``/``complex128``) work with the explicit and implicit methods:
        times, steps and error norms are real (norms of magnitudes), Newton and its LU are
        complex, and the Jacobian is the complex derivative of a holomorphic ``f`` (pass
        ``jac`` otherwise). Symplectic methods take real ``concat(q, p)``.
    t : torch.Tensor or sequence of float
        Output times, strictly monotonic (increasing or decreasing); ``t[0]`` is the time of
        ``y0``. They are taken in ``y0``'s (real) dtype; times whose gaps that cast would
        move by more than 0.1% (float64 clock times, ``1.7e9`` s, with float32 states) are
        refused with a ValueError.
    method : str or Integrator
        A name from ``physnode.integrators.METHODS`` or an integrator object (options such as
        ``RadauIIA5(newton=Newton(max_iter=8))``):

{methods}
    dt : float, optional
        Step size of fixed-step methods: each output interval is split into
        ``ceil(Δt/dt)`` equal steps. Without it, one step per output interval. Adaptive
        methods choose their own steps from ``rtol`` and ``atol`` and do not use it (so one
        call can serve models with either kind of default integrator).
    rtol, atol : float
        Tolerances of adaptive methods (weighted RMS error per sample); fixed-step methods
        do not use them.
    max_steps : int
        Attempted steps per sample before :class:`physnode.IntegrationError`.
    jac : callable, optional
        ``jac(t, y) -> (*batch, dim, dim)`` (``jac(t, y, args)`` with ``args``), the Jacobian
        ``∂f/∂y`` for implicit methods, with ``t`` as for ``f``; by default it comes from
        autograd.
    jac_sparsity : array-like, tensor or scipy sparse matrix ``(dim, dim)``, optional
        Implicit methods: which entries of ``∂f/∂y`` may be nonzero (as scipy's
        ``solve_ivp``). Autograd's Jacobian then takes one reverse pass per colour of rows
        that share no column (3 for a tridiagonal pattern) instead of one per row, and on the
        CPU the Newton matrices are factorised by SuperLU (``scipy.sparse.linalg.splu``)
        instead of densely, per sample: for large systems from discretised PDEs. On other
        devices the LU stays dense. A pattern that misses a nonzero gives a wrong Jacobian:
        Newton then converges slowly and the steps shrink (the error test still holds).
    args : tensor, or tuple, list or dict of tensors, optional
        Per-sample arguments: ``f`` is called as ``f(t, y, args)``. Each tensor's leading
        dimensions are ``y0``'s batch dimensions ``(*batch,)``; ``f`` receives it sliced to
        the rows being evaluated and broadcast like ``t`` (shape ``(*y.shape[:-1], *rest)``),
        so ``mu * y`` for ``mu`` of shape ``(*batch, 1)`` works for every method. Use it, not
        a closure, for a parameter that differs between samples: adaptive methods evaluate
        the rows still running, which a closure's tensor does not follow. Gradients reach
        the tensors of ``args`` (with ``adjoint=True`` too).
    adjoint : bool
        Gradients with memory that does not grow in proportion to the number of steps,
        leaving the forward pass as it is (the same values and ``stats``): methods marked
        reversible (symmetric: ``Φ_{−h} = Φ_h⁻¹``) use an exact reversible adjoint, ``O(1)``
        memory; every other method backpropagates through its own steps with checkpoints,
        ``O(√N)`` memory for ``N`` steps (attempts, when adaptive) at the cost of one more
        evaluation of each step. Gradients reach ``y0`` and the parameters of ``f``, which
        must then be a ``torch.nn.Module`` (tensors a plain function closes over are not
        seen; such a function is refused when its output requires gradients).
    events : callable, Event, or list of them, optional
        Zero crossings of ``fn(t, y)`` to locate, per sample, on the dense output of the
        method (see :meth:`Solution.interpolate`). ``fn`` follows
        ``f``'s time convention: ``t`` of shape ``(*batch, 1)``, ``y`` of shape
        ``(*batch, n)`` (``fn(t, y, args)`` with ``args``), and returns ``(*batch,)`` real
        values. A bare callable records every crossing in both directions;
        :class:`physnode.Event` chooses ``terminal`` (the sample stops at its first crossing,
        the others go on) and ``direction``. Crossings come back in ``Solution.events``,
        where each sample stopped in ``Solution.t_end`` and ``Solution.stop_event``.
    dense : bool
        Keep the interpolant of every accepted step for :meth:`Solution.interpolate`.
        Memory: ``m + 1`` states per step and sample for a polynomial of degree ``m``
        (``dopri5``: 5, ``radau9``: 6, the others 4). Fixed-step methods evaluate ``f`` once
        more per step, at its end, for the Hermite polynomial (with ``events`` too; counted
        in ``nfev``); a sample that a terminal event stopped is stepped on with the batch,
        its outputs holding the state at the event.

    Returns
    -------
    Solution
        ``ys`` of shape ``(len(t), *y0.shape)`` and ``stats``; with ``events``, the crossings
        and where each sample ended; with ``dense``, :meth:`Solution.interpolate`.

    Notes
    -----
    Gradients with respect to ``t`` are those of the exact solution, whatever the method:
    ``∂y(t_i)/∂t_i = f(t_i, y_i)`` and ``∂y(t_i)/∂t_0 = −(∂y_i/∂y_0) f(t_0, y_0)`` (the
    steps themselves run on detached times, so a fixed-step grid does not leak into them).

    Batch samples are independent: each has its own step size, Newton convergence and
    accept/reject decision, so a batch gives the answers of one-at-a-time solves. Gradients
    flow through every method; implicit steps are differentiated by the implicit function
    theorem at the converged stages.

    Events are looked for after every accepted step: where ``fn`` changed sign (a zero at
    the start time does not count) the zero is found on the step's interpolant to round-off,
    so event times are as accurate as the dense output (``dopri5``: order 4). An even number
    of sign changes within one step is not seen. Event times and states are differentiable
    by the implicit function theorem, ``dt*/dθ = −(∂g/∂θ)/(dg/dt)`` for
    ``g(t) = fn(t, y(t))``, and so is :meth:`Solution.interpolate`. ``events`` and ``dense``
    do not work with ``adjoint=True``, nor with gradients with respect to ``t``.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> spring = pn.systems.MassSpring()
    >>> y0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    >>> t = torch.linspace(0, torch.pi, 3, dtype=torch.float64)
    >>> sol = pn.solve(spring, y0, t, method="rk4", dt=0.01)   # half a period
    >>> sol.ys.shape, sol.ys[-1].round(decimals=6).abs()
    (torch.Size([3, 2]), tensor([1., 0.], dtype=torch.float64))
    """
    integrator = resolve_method(method)
    check_tensor("y0", y0)
    check_finite("y0", y0)
    if y0.ndim == 0:
        raise ValueError(f"`y0` must have shape (*batch, dim); got shape {tuple(y0.shape)}")
    if not isinstance(t, torch.Tensor):
        t = torch.as_tensor(t, dtype=torch.float64)
    t = check_times("t", check_time_precision("t", t, real_dtype(y0.dtype)).to(
        device=y0.device, dtype=real_dtype(y0.dtype)))
    if dt is not None:
        dt = check_real("dt", dt, positive=True)
    rtol = check_real("rtol", rtol, positive=True)
    atol = check_real("atol", atol, positive=True)
    max_steps = check_int("max_steps", max_steps, minimum=1)
    if jac is not None and not callable(jac):
        raise TypeError(f"`jac` must be callable; got {type(jac).__name__}")
    sparsity = None
    if jac_sparsity is not None:
        if not integrator.implicit:
            raise ValueError(f"`jac_sparsity` is for implicit methods, which use a Jacobian; "
                             f"{integrator.name!r} does not")
        sparsity = Sparsity(jac_sparsity, y0.shape[-1])
    if y0.is_complex() and integrator.symplectic:
        raise TypeError(f"`y0` must be real: the symplectic method {integrator.name!r} works "
                        f"on real (q, p); got {y0.dtype} (integrate the real and imaginary "
                        f"parts as a real state of twice the width)")
    if integrator.symplectic:
        check_even_state("y0", y0, integrator.name)
    events = as_events(events)
    if not isinstance(dense, bool):
        raise TypeError(f"`dense` must be a bool; got {type(dense).__name__}")
    wanted = "`events`" if events else "`dense=True`" if dense else None
    if wanted and integrator.dense_order is None:
        raise ValueError(f"{wanted} needs a method with dense output ({_dense_methods()}); "
                         f"got {integrator.name!r}")
    if wanted and adjoint:
        raise ValueError(f"{wanted} does not work with adjoint=True; solve with "
                         f"adjoint=False (gradients then flow through the steps)")
    if wanted and isinstance(t, torch.Tensor) and t.requires_grad:
        raise ValueError(f"{wanted} does not take gradients with respect to `t`; pass "
                         f"t.detach()")

    batch_shape = y0.shape[:-1]
    y = y0.reshape(-1, y0.shape[-1])
    args = None if args is None else _per_sample("args", args, batch_shape, y0)
    field = Field(f, jac=jac, args=args, sparsity=sparsity)   # under the time convention
    f0 = field(t[0], y)
    if not isinstance(f0, torch.Tensor) or f0.shape != y.shape:
        got = tuple(f0.shape) if isinstance(f0, torch.Tensor) else type(f0).__name__
        raise ValueError(f"`f` must return dy/dt with the shape of y {tuple(y.shape)}; "
                         f"got {got}")
    # Gradients with respect to the times: the steps run on detached times, and terms that
    # are zero in value give each output its exact derivative, f(t_i, y_i) for t_i and
    # -(dy_i/dy_0) f(t_0, y_0) for t_0 (the latter through a shift of y0).
    shift = t - t.detach() if t.requires_grad and torch.is_grad_enabled() else None
    extras = {}
    if shift is not None:
        t = t.detach()
        y = y - f0 * shift[0]
        f0 = field(t[0], y)                 # the first stage must not see t's graph
    needs_grad = bool(f0.requires_grad)
    # Memory-saving gradients only where there is a graph to save memory on.
    graded = tuple(a for a in ([] if args is None else tree_leaves(args)) if a.requires_grad)
    params = None
    if adjoint and torch.is_grad_enabled() and (needs_grad or y.requires_grad):
        # What f depends on besides y and args, seen with both detached.
        detached = None if args is None else tree_map(torch.Tensor.detach, args)
        rest = Field(f, args=detached)(t[0], y.detach())
        params = adjoint_parameters(f, rest, y0, graded)
    if params is not None and integrator.reversible:
        ys, stats = solve_reversible_adjoint(
            integrator, field.variant(needs_grad=needs_grad), y, t, dt, params)
    else:
        direction = 1.0 if t.shape[0] < 2 or bool(t[-1] > t[0]) else -1.0
        watcher = EventWatcher(events, args, t[0], y, t[-1], direction) if events else None
        record = DenseOutput(y.shape[0], direction) if dense else None
        if integrator.adaptive:
            ys, stats = integrate_adaptive(
                integrator, field.variant(needs_grad=needs_grad), y, t, f0,
                Tolerance(rtol=rtol, atol=atol), max_steps, params=params, watcher=watcher,
                dense=record, direction=direction)
            stats = {k: v.reshape(batch_shape) for k, v in stats.items()}
        else:
            ys, stats = integrate_fixed(
                integrator, field.variant(needs_grad=needs_grad, count=y.shape[0]), y, t, dt,
                params=params, watcher=watcher, dense=record)
        if watcher is not None:
            extras = {"events": watcher.crossings(y.shape[-1], y),
                      "t_end": watcher.t_end.reshape(batch_shape),
                      "stop_event": watcher.stop_event.reshape(batch_shape)}
        if record is not None:
            end = t[-1].expand(y.shape[0]) if watcher is None else watcher.t_end
            extras["dense"] = record.finish(t[0], end, y)
    if shift is not None:
        ys = ys + torch.stack([field(t[i], ys[i]) for i in range(t.shape[0])]) \
            * shift.reshape(-1, *([1] * (ys.ndim - 1)))
        t = t + shift
    return Solution(t=t, ys=ys.reshape((t.shape[0], *y0.shape)), stats=stats,
                    method=integrator, **extras)


def _per_sample(name, args, batch_shape, y0):
    """``args`` with each tensor's batch dimensions flattened like ``y0``'s, checked, and
    floating-point tensors in ``y0``'s precision (real ones stay real for complex states)."""
    def flatten(leaf):                      # tree_map refuses what is not a tensor
        if tuple(leaf.shape[:len(batch_shape)]) != tuple(batch_shape):
            raise ValueError(f"`{name}` tensors must have y0's batch dimensions "
                             f"{tuple(batch_shape)} first (one row per sample); got shape "
                             f"{tuple(leaf.shape)}")
        if leaf.is_complex():
            leaf = leaf.to(y0.dtype if y0.is_complex() else leaf.dtype)
        elif leaf.is_floating_point():
            leaf = leaf.to(real_dtype(y0.dtype))
        return leaf.to(y0.device).reshape(-1, *leaf.shape[len(batch_shape):])
    return tree_map(flatten, args)


def _method_table() -> str:
    """The lines of ``solve``'s docstring that list ``METHODS``: name, class, order and
    capabilities, from the classes' declarations."""
    lines = []
    width = max(len(name) for name in METHODS) + 7
    for name, cls in METHODS.items():
        kind = ("symplectic" if cls.symplectic else "explicit" if not cls.implicit
                else "implicit")
        traits = [kind, *(flag for flag in ("implicit", "adaptive", "reversible")
                          if getattr(cls, flag) and flag != kind)]
        label = f'``"{name}"``'
        lines.append(f"        {label:<{width}}{cls.__name__}: order {cls.order}, "
                     f"{', '.join(traits)}")
    return "\n".join(lines)


def _dense_methods() -> str:
    """The names of the methods with dense output, for messages."""
    return ", ".join(repr(name) for name, cls in METHODS.items() if cls.dense_order)


solve.__doc__ = solve.__doc__.replace("{methods}", _method_table())
