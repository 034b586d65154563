"""``odeint``: torchdiffeq's interface on physnode's integrators."""

from __future__ import annotations

import dataclasses
import math

import torch

from ._solve import resolve_method, solve
from ._validation import (
    check_derivative_parts,
    check_odeint_method,
    check_odeint_options,
    check_state_parts,
    check_times,
)
from .integrators import METHODS
from .integrators.base import real_dtype


class FlatField:
    """torchdiffeq's ``func(t, y)`` seen as a physnode field on flat states.

    The whole torchdiffeq state (a tensor, or a tuple of tensors concatenated) is one row of
    length ``N``; ``func`` receives a 0-d time and the state in its own shape(s). Called by
    physnode with ``t (*lead, 1)`` and ``y (*lead, N)`` (``lead`` is ``(1,)``, or ``(1, s)`` for
    the stages of implicit methods), it evaluates ``func`` once per row.
    """

    def __init__(self, func, shapes, tupled: bool):
        self.func, self.shapes, self.tupled = func, shapes, tupled
        self.sizes = [math.prod(shape) for shape in shapes]

    def state(self, y: torch.Tensor):
        """A flat ``(N,)`` state (or ``(..., N)`` of them) in the user's shape(s)."""
        lead = y.shape[:-1]
        parts = [part.reshape((*lead, *shape))
                 for part, shape in zip(y.split(self.sizes, dim=-1), self.shapes)]
        return tuple(parts) if self.tupled else parts[0]

    def one(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``dy/dt`` flat ``(N,)`` at a 0-d time ``t`` and a flat state ``y (N,)``."""
        dy = check_derivative_parts("func", self.func(t, self.state(y)), self.shapes,
                                    self.tupled)
        return dy[0].reshape(-1) if len(dy) == 1 else torch.cat([d.reshape(-1) for d in dy])

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        times, rows = t.reshape(-1), y.reshape(-1, y.shape[-1])
        return torch.stack([self.one(times[i], rows[i])
                            for i in range(rows.shape[0])]).reshape(y.shape)


def odeint(func, y0, t, *, rtol: float = 1e-7, atol: float = 1e-9, method=None,
           options: dict | None = None, event_fn=None):
    """Integrate ``dy/dt = func(t, y)`` with torchdiffeq's interface on physnode's integrators.

    A drop-in for ``torchdiffeq.odeint``: ``from physnode import odeint`` instead of
    ``from torchdiffeq import odeint``. The whole state, of any shape (or a tuple of tensors),
    is one sample with one step size and one error norm (the RMS over all its elements), as in
    torchdiffeq; it is flattened into a single physnode sample ``(1, N)`` and integrated by
    :func:`physnode.solve`. Gradients flow by backpropagation through the steps.

    Parameters
    ----------
    func : callable
        ``func(t, y) -> dy/dt`` with torchdiffeq's convention: ``t`` is a **0-d** real tensor
        (the dtype of ``y0``, or its real counterpart for complex states) and ``y`` has the
        shape of ``y0`` (a tuple with the shapes of its parts for a tuple state). It must
        return a tensor of exactly that shape (a tuple of them for a tuple state).
    y0 : torch.Tensor or tuple of torch.Tensor
        Initial state of any shape, real or complex; the parts of a tuple share one dtype and
        device. The solve runs on its device and dtype.
    t : torch.Tensor or sequence of float
        Output times, 1-D and strictly monotonic, increasing or decreasing; ``t[0]`` is the
        time of ``y0``.
    rtol, atol : float
        Tolerances of adaptive methods (scalars), torchdiffeq's defaults.
    method : str or Integrator, optional
        ``None`` means ``"dopri5"``. torchdiffeq's ``"dopri5"``, ``"rk4"``, ``"euler"`` and
        ``"midpoint"``, or any name of ``physnode.integrators.METHODS`` (``"radau5"``,
        ``"leapfrog"``, ...), or an integrator object.
    options : dict, optional
        torchdiffeq's options that have a physnode meaning: ``step_size`` (fixed-step methods;
        physnode's ``dt``), ``max_num_steps`` (``max_steps``), ``safety``, ``ifactor`` and
        ``dfactor`` (the step-size controller's ``safety``, in (0, 1], ``max_factor`` and
        ``min_factor``).
        Any other option is refused by name; a value of ``None`` counts as not given.
    event_fn : None
        Not supported (torchdiffeq's event handling); anything but ``None`` is refused.

    Returns
    -------
    torch.Tensor or tuple of torch.Tensor
        The states at ``t``: ``(len(t), *y0.shape)``, or a tuple with ``(len(t), *y0[i].shape)``
        per part.

    Notes
    -----
    Methods and options, torchdiffeq → physnode:

    =====================================  ==============================================
    torchdiffeq                            physnode.odeint
    =====================================  ==============================================
    ``"dopri5"`` (default)                 :class:`~physnode.integrators.Dopri5`, the same
                                           Dormand–Prince 5(4) pair
    ``"rk4"``                              :class:`~physnode.integrators.RK4`, the
                                           *classical* tableau (torchdiffeq's ``"rk4"`` is
                                           Kutta's 3/8 rule, also of order 4)
    ``"euler"``, ``"midpoint"``            the same methods
    ``"dopri8"``, ``"bosh3"``,             ``ValueError``: no physnode equivalent
    ``"fehlberg2"``, ``"adaptive_heun"``,
    ``"heun2"``, ``"heun3"``, the Adams
    methods, ``"scipy_solver"``
    —                                      every physnode method: ``"radau5"``, ``"radau9"``,
                                           ``"kvaerno5"`` (stiff), ``"leapfrog"``, ...
    ``options["step_size"]``               ``dt``
    ``options["max_num_steps"]``           ``max_steps``
    ``safety``, ``ifactor``, ``dfactor``   the controller's ``safety``, ``max_factor``,
                                           ``min_factor``
    ``first_step``, ``step_t``, ``jump_t``,
    ``min_step``, ``max_step``, ``norm``,  ``ValueError`` naming the option
    ``dtype``, ``grid_constructor``,
    ``perturb``, ``interp``
    =====================================  ==============================================

    Differences from torchdiffeq, on purpose:

    - **Outputs are reached, not interpolated.** Adaptive steps are shortened to land on every
      output time (torchdiffeq steps past it and evaluates its 4th-order interpolant), so the
      values at ``t`` differ from torchdiffeq's within the tolerance, and many closely spaced
      outputs cost more steps.
    - **Fixed steps restart at every output.** With ``step_size``, each output interval is
      split into ``ceil(Δt / step_size)`` equal steps (no longer than ``step_size``);
      torchdiffeq lays one grid ``t[0] + k·step_size`` and interpolates *linearly* to outputs
      between its nodes, an O(h²) error on top of the method's.
    - **rk4 is the classical tableau**, not the 3/8 rule: same order, different error constant.
    - **Step-size control**: the same safety 0.9 and factor bounds [0.2, 10] with the exponent
      1/5, but the step may shrink after an accepted step (torchdiffeq never shrinks it
      then), a step shortened to hit an output does not shorten the next one, and Hairer &
      Wanner's starting-step rule takes the exponent 1/6 (torchdiffeq 1/5).
    - **Times follow y0's dtype**: a float32 state is stepped in float32 time (torchdiffeq's
      adaptive solvers keep times in float64).
    - **Tuple states share one RMS norm** over all their elements; torchdiffeq takes the largest
      of the parts' RMS norms, which is stricter for a small part beside a large one.
    - **max_num_steps** counts every attempted step of the solve (torchdiffeq: per output
      interval), the default is 100 000 (torchdiffeq: 2³¹ − 1), and reaching it, a step-size
      underflow or a non-finite state raise :class:`physnode.IntegrationError`.
    - **Gradients with respect to t** are the exact ones of the ODE's solution,
      ``∂y(t_i)/∂t_i = f(t_i, y_i)`` and ``∂y(t_i)/∂t_0 = −(∂y_i/∂y_0) f(t_0, y_0)``,
      evaluated on the computed states (torchdiffeq's ``odeint`` differentiates its own
      steps and interpolant); they cost ``len(t) + 1`` evaluations of ``func`` when ``t`` requires a
      gradient. Gradients with respect to ``y0`` and ``func``'s parameters backpropagate
      through the steps.
    - **Decreasing t** integrates backwards from ``t[0]`` as in torchdiffeq; ``func`` receives
      the true (decreasing) times, with nothing negated.
    - ``func`` must return exactly ``y``'s shape (torchdiffeq lets some broadcasts through);
      ``rtol`` and ``atol`` are scalars (no per-element tensors).

    Examples
    --------
    Exponential decay, and a tuple state (position and velocity of an oscillator):

    >>> import torch
    >>> from physnode import odeint
    >>> t = torch.linspace(0.0, 1.0, 3, dtype=torch.float64)
    >>> ys = odeint(lambda t, y: -y, torch.ones(2, 2, dtype=torch.float64), t)
    >>> ys.shape, bool(torch.allclose(ys[-1], torch.exp(-t[-1]).expand(2, 2)))
    (torch.Size([3, 2, 2]), True)
    >>> q, v = odeint(lambda t, y: (y[1], -y[0]), (torch.tensor(1.0), torch.tensor(0.0)),
    ...               torch.tensor([0.0, torch.pi / 2]), method="rk4",
    ...               options={"step_size": 0.01})
    >>> q.shape, round(q[-1].item(), 4), round(v[-1].item(), 4)     # float32
    (torch.Size([2]), 0.0, -1.0)

    ``func`` receives a 0-d time:

    >>> def f(t, y):
    ...     assert t.shape == ()
    ...     return torch.cos(t) * torch.ones_like(y)
    >>> odeint(f, torch.zeros(3), torch.tensor([0.0, 1.0]))[-1]   # sin(1)
    tensor([0.8415, 0.8415, 0.8415])
    """
    if event_fn is not None:
        raise ValueError(f"`event_fn` must be None: physnode.odeint does not handle events; "
                         f"got {type(event_fn).__name__}")
    parts = check_state_parts("y0", y0)
    check_odeint_method(method, tuple(METHODS))
    integrator = resolve_method("dopri5" if method is None else method)
    options = check_odeint_options(options, integrator.name, integrator.adaptive)
    integrator = _with_controller_options(integrator, options)

    dtype, device = parts[0].dtype, parts[0].device
    shapes = [part.shape for part in parts]
    field = FlatField(func, shapes, tupled=isinstance(y0, tuple))
    y = (parts[0].reshape(1, -1) if len(parts) == 1
         else torch.cat([part.reshape(-1) for part in parts]).reshape(1, -1))
    if not isinstance(t, torch.Tensor):
        t = torch.as_tensor(t, dtype=real_dtype(dtype))
    t = check_times("t", t.to(device=device, dtype=real_dtype(dtype)))

    kwargs = {"dt": options.get("step_size"), "max_steps": options.get("max_num_steps",
                                                                        100_000)}
    # exact gradients with respect to t come from solve
    ys = solve(field, y, t, method=integrator, rtol=rtol, atol=atol, **kwargs).ys[:, 0]
    return field.state(ys)


def _with_controller_options(integrator, options: dict):
    """The integrator with torchdiffeq's ``safety``, ``ifactor`` and ``dfactor`` set on its
    step-size controller (``dfactor`` is the smallest factor, ``ifactor`` the largest); every
    adaptive method has one ``controller``, whose other constants are kept."""
    names = {"safety": "safety", "ifactor": "max_factor", "dfactor": "min_factor"}
    changes = {names[key]: float(options[key]) for key in names if key in options}
    if not changes:
        return integrator
    controller = dataclasses.replace(integrator.controller, **changes)
    return dataclasses.replace(integrator, controller=controller)
