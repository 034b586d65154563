"""The integrator contract (DESIGN convention 1): what every method declares and implements.

An integrator is a frozen dataclass whose class declares its ``name``, classical ``order``
and capabilities (``adaptive``, ``implicit``, ``symplectic``, ``reversible``), and which
implements one of two abstract interfaces, each driven by one loop of :mod:`.stepping`:

* :class:`FixedStepIntegrator` — ``step(field, t, y, h, carry) -> (y_new, carry)``: one step of
  the same size for every sample; ``carry`` is whatever the method hands from one step to the
  next (a first-same-as-last force, or ``None``).
* :class:`AdaptiveIntegrator` — ``init(field, t, y, f0) -> SampleState`` and
  ``attempt(field, t, y, h, state, tolerance) -> Attempt``: one step attempt per sample with
  its own size, error estimate and accept/reject decision. The per-sample state is a typed
  :class:`SampleState` the loop narrows to the samples still running with ``take(rows)``.

The split follows scipy's ``OdeSolver`` (one abstract step) and torchode's step methods
(``init``/``step`` returning a typed result and state); step-size control is one object for
every adaptive method, :class:`~physnode.integrators.controllers.StepSizeController`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch

from .newton import jacobian

_REAL = {torch.complex32: torch.float16, torch.complex64: torch.float32,
         torch.complex128: torch.float64}


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real dtype of times, step sizes, error norms and method coefficients for states of
    ``dtype`` (``float64`` for ``complex128``; a real dtype is its own)."""
    return _REAL.get(dtype, dtype)


def rms(x: torch.Tensor) -> torch.Tensor:
    """Root mean square of the magnitudes over the last dimension (the error norm of Hairer,
    Nørsett & Wanner I, §II.4); real for complex ``x``."""
    return torch.linalg.vector_norm(x, dim=-1) * x.shape[-1] ** -0.5


class RowTime:
    """``f`` under :func:`physnode.solve`'s time convention, as a plain callable (what
    :class:`Field` applies to ``f`` and ``jac``): ``f`` receives the time of every sample as a
    tensor of shape ``(*y.shape[:-1], 1)``, and with ``args`` (a pytree of per-sample tensors
    whose first axis is the batch) ``f(t, y, args)`` receives them broadcast the same way,
    each leaf of shape ``(*y.shape[:-1], *leaf.shape[1:])``."""

    def __init__(self, f, args=None):
        self.f, self.args = f, args

    def __call__(self, t, y):
        if 0 < t.ndim < y.ndim:             # (B,) or (B, s): one time per row
            t = t.unsqueeze(-1)
        shape = (*y.shape[:-1], 1)
        if t.shape != shape:
            t = t.expand(shape)
        if self.args is None:
            return self.f(t, y)
        return self.f(t, y, tree_map(lambda a: _rows_like(a, y), self.args))

    def take(self, rows: torch.Tensor) -> RowTime:
        """The same function with the ``args`` of the batch rows ``rows``."""
        return self if self.args is None else RowTime(self.f, tree_map(lambda a: a[rows],
                                                                       self.args))


def _rows_like(leaf: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A per-sample leaf ``(B, *rest)`` broadcast to the batch of ``y`` ``(B, *extra, n)``."""
    extra = y.ndim - 2
    return leaf.reshape(leaf.shape[:1] + (1,) * extra + leaf.shape[1:]).expand(
        *y.shape[:-1], *leaf.shape[1:])


def tree_map(function, tree):
    """``function`` applied to every tensor of a pytree of tensors, tuples, lists and dicts."""
    if isinstance(tree, torch.Tensor):
        return function(tree)
    if isinstance(tree, dict):
        return {k: tree_map(function, v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        mapped = [tree_map(function, v) for v in tree]
        return type(tree)(*mapped) if hasattr(tree, "_fields") else type(tree)(mapped)
    raise TypeError(f"`args` must be a tensor or a tuple, list or dict of them; got "
                    f"{type(tree).__name__}")


def tree_leaves(tree) -> list:
    """The tensors of a pytree, in order (see :func:`tree_map`)."""
    leaves = []
    tree_map(leaves.append, tree)
    return leaves


class Field:
    """The vector field as an integrator sees it, under :func:`physnode.solve`'s time
    convention: ``field(t, y)`` hands ``f`` the time of every sample as a tensor of shape
    ``(*y.shape[:-1], 1)``, which broadcasts against ``y`` row by row. Integrators call it
    with a 0-d time (every sample at the same time), per-sample times ``(B,)`` (or already
    ``(B, 1)``) for states ``(B, n)``, or per-stage times ``(B, s)`` for stage states
    ``(B, s, n)``. An integrator
    that evaluates some of its rows calls ``field.take(rows)(t[rows], y[rows])``: the
    per-sample ``args`` follow the rows, and a field that does not follow them (a closure
    over per-sample tensors) gets a ``ValueError`` that says so.

    Parameters
    ----------
    f : callable
        The user's ``f(t, y) -> dy/dt``, or ``f(t, y, args)`` with ``args``.
    jac : callable, optional
        The user's ``jac(t, y) -> (..., n, n)`` (``jac(t, y, args)``), the Jacobian ``∂f/∂y``
        (same convention); by default it comes from autograd.
    args : pytree of tensors, optional
        Per-sample arguments, each leaf with the batch as its first axis (see
        :class:`RowTime`).
    sparsity : Sparsity, optional
        The Jacobian's sparsity pattern (:class:`~physnode.integrators.linalg.Sparsity`):
        autograd's Jacobian by colours of rows, and sparse LU factors on the CPU.
    needs_grad : bool
        Whether the steps must be differentiable. Implicit methods solve their stages without
        a graph and then, when this is set, apply the implicit-function-theorem correction.
    count : int, optional
        Batch size of a whole-batch (fixed-step) loop: when given, the field counts the work
        done through it in ``nfev``, ``njev`` and ``nlu``, an evaluation of ``B`` rows
        counting once (``B·s`` rows: ``s`` times). Adaptive methods report per-sample counts
        in their :class:`Attempt` instead.
    """

    __slots__ = ("f", "jac", "sparsity", "needs_grad", "counting", "_counts", "_rows",
                 "_user", "_subset")

    def __init__(self, f, *, jac=None, args=None, sparsity=None, needs_grad: bool = False,
                 count: int | None = None):
        self.f = RowTime(f, args)
        self.sparsity = sparsity
        self.needs_grad, self._user = needs_grad, (f, jac, args)
        #: ``jac`` under the time convention (None: autograd)
        self.jac = None if jac is None else RowTime(jac, args)
        self.counting, self._rows = count is not None, max(1, count or 1)
        self._counts = {"nfev": 0, "njev": 0, "nlu": 0}
        self._subset = False

    def variant(self, *, needs_grad: bool, count: int | None = None) -> Field:
        """The same ``f``, ``jac``, ``args`` and sparsity with other options and fresh counts."""
        f, jac, args = self._user
        return Field(f, jac=jac, args=args, sparsity=self.sparsity, needs_grad=needs_grad,
                     count=count)

    def take(self, rows: torch.Tensor) -> Field:
        """The field of the batch rows ``rows`` (a 1-D index tensor): their ``args``; the
        counts stay shared with this field."""
        new = object.__new__(Field)
        new.needs_grad, new.counting, new._rows = self.needs_grad, self.counting, self._rows
        new._counts, new._user, new.sparsity = self._counts, self._user, self.sparsity
        new.f = self.f.take(rows)
        new.jac = None if self.jac is None else self.jac.take(rows)
        new._subset = True
        return new

    nfev = property(lambda self: self._counts["nfev"],
                    lambda self, v: self._counts.__setitem__("nfev", v))
    njev = property(lambda self: self._counts["njev"],
                    lambda self, v: self._counts.__setitem__("njev", v))
    nlu = property(lambda self: self._counts["nlu"],
                   lambda self, v: self._counts.__setitem__("nlu", v))

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.counting:
            self.nfev += y.numel() // max(1, y.shape[-1] * self._rows)
        try:
            out = self.f(t, y)
        except RuntimeError as err:
            # Broadcasting errors only (not, e.g., running out of memory).
            if type(err) is not RuntimeError or "size" not in str(err):
                raise
            raise ValueError(self._row_message(y, str(err))) from err
        if self._subset and (not isinstance(out, torch.Tensor) or out.shape != y.shape):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(self._row_message(y, f"it returned shape {got}"))
        return out

    def _row_message(self, y, what) -> str:
        return (f"`f` failed on states of shape {tuple(y.shape)} ({what}): integrators "
                f"evaluate f on the rows still running, and implicit methods on all stages at "
                f"once (*rows, stages, dim), so f(t, y) must compute each row of y from that "
                f"row alone, broadcasting like t. A per-sample parameter that `f` closes over "
                f"does not follow the rows: pass it as `args=` (f(t, y, args) then gets it "
                f"sliced and broadcast to the rows)")

    def jacobian(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``∂f/∂y`` at ``(t, y)``: ``(*y.shape, n)``, detached (see
        :func:`~physnode.integrators.newton.jacobian`); counted in ``njev``."""
        self.njev += self.counting
        return jacobian(self, t, y, self.jac, self.sparsity)

    def counts(self) -> dict:
        """The whole-batch counts ``{"nfev", "njev", "nlu"}`` (zeros when not counting)."""
        return dict(self._counts)


@dataclass(frozen=True, kw_only=True)
class Tolerance:
    """The error weights of adaptive methods: a step is accepted when the RMS norm of
    ``error / (atol + rtol·max(|y|, |y_new|))`` is at most 1 (Hairer, Nørsett & Wanner I,
    §II.4)."""

    rtol: float
    atol: float

    def scale(self, y_old: torch.Tensor, y_new: torch.Tensor) -> torch.Tensor:
        """Per-component weights ``atol + rtol·max(|y_old|, |y_new|)``, real, shape of ``y``."""
        return torch.maximum(y_old.abs(), y_new.abs()).mul_(self.rtol).add_(self.atol)


@dataclass(frozen=True, kw_only=True)
class SampleState:
    """Per-sample state an adaptive method carries from one attempt to the next.

    Every field is a tensor whose first axis is the batch (or ``None``, or a nested
    ``SampleState``), so the state of a subset of the samples is :meth:`take`.
    """

    def take(self, rows: torch.Tensor) -> SampleState:
        """The state of the samples ``rows`` (a 1-D index tensor), in that order."""
        values = {}
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                value = value[rows]
            elif isinstance(value, SampleState):
                value = value.take(rows)
            values[name] = value
        return self.replace(**values)

    def replace(self, **changes) -> SampleState:
        """A copy with some fields changed (as :func:`dataclasses.replace`, without its
        per-call introspection: states are rebuilt on every attempt)."""
        new = object.__new__(type(self))
        new.__dict__.update(vars(self), **changes)
        return new


class Attempt(NamedTuple):
    """The outcome of one step attempt of every running sample (``B`` of them): an immutable
    named tuple, like torchode's ``StepResult`` (built once per attempt, so cheaply).

    Attributes
    ----------
    y : torch.Tensor
        Candidate states ``(B, n)``; the loop keeps them where ``accepted``.
    error : torch.Tensor
        Weighted RMS error norm ``(B,)``, real; ``inf`` where the attempt failed (Newton did
        not converge, or the estimate is not finite).
    accepted : torch.Tensor
        ``(B,)`` bool, the accept decision (``error <= 1``).
    factor : torch.Tensor
        ``(B,)`` step-size factor for the next attempt, from the method's controller.
    state : SampleState
        The state for the next attempt (advanced where accepted).
    nfev, njev, nlu : torch.Tensor or None
        ``(B,)`` integer counts of this attempt's evaluations of ``f``, Jacobians and LU
        factorisations; ``None`` for work the method never does.
    dense : object
        What the method's :meth:`AdaptiveIntegrator.interpolant` needs of this attempt (its
        stages), or ``None`` for a method without dense output.
    """

    y: torch.Tensor
    error: torch.Tensor
    accepted: torch.Tensor
    factor: torch.Tensor
    state: SampleState
    nfev: torch.Tensor
    njev: torch.Tensor | None = None
    nlu: torch.Tensor | None = None
    dense: Any = None


@dataclass(frozen=True, kw_only=True)
class Integrator(ABC):
    """Base of all integrators: frozen dataclasses whose fields are the method's options,
    keyword-only (a typo is a ``TypeError``).

    A concrete method declares at class level what ``solve``, tests and docs rely on:

    ``name`` : str
        The string accepted by :func:`physnode.solve` (its key in ``METHODS``).
    ``order`` : int
        Classical order; for a Runge–Kutta method the order of its ``tableau``, taken from
        it when the class sets ``tableau``.
    ``adaptive``, ``implicit``, ``symplectic`` : bool
        Per-sample step-size control; stages solved by Newton; a symplectic one-step map.
    ``reversible`` : bool
        The step with ``−h`` inverts the step with ``h`` (symmetric methods): the reversible
        adjoint of ``solve(..., adjoint=True)`` applies.
    ``dense_order`` : int or None
        Order of the method's dense output (an adaptive method's
        :meth:`AdaptiveIntegrator.interpolant`; for fixed-step methods the cubic Hermite
        polynomial through the ends of each step, order ``min(3, order)``), whose local error is
        ``O(h^(q+1))``; ``None`` for a method without one, which then takes no ``events`` and
        no ``dense=True``.

    Its coefficients (tableau, splitting coefficients) are class constants too: a method is
    its class, options only tune how it is solved.
    """

    name: ClassVar[str]
    order: ClassVar[int]
    adaptive: ClassVar[bool]
    implicit: ClassVar[bool] = False
    symplectic: ClassVar[bool] = False
    reversible: ClassVar[bool] = False
    dense_order: ClassVar[int | None] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        tableau = cls.__dict__.get("tableau")
        if tableau is not None and "order" not in cls.__dict__:
            cls.order = tableau.order


@dataclass(frozen=True, kw_only=True)
class FixedStepIntegrator(Integrator):
    """A method stepping every sample with the same step ``h`` (the loop's grid)."""

    adaptive: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # The cubic Hermite polynomial through the ends of each step: order 3, or the
        # method's own order when that is lower.
        if "dense_order" not in cls.__dict__ and hasattr(cls, "order"):
            cls.dense_order = min(3, cls.order)

    @abstractmethod
    def step(self, field: Field, t: torch.Tensor, y: torch.Tensor, h: float,
             carry: Any = None) -> tuple[torch.Tensor, Any]:
        """One step of size ``h`` (negative backwards in time) from ``(t, y)``.

        Parameters
        ----------
        field : Field
            The vector field (with ``jac``, ``needs_grad`` and the whole-batch counts).
        t : torch.Tensor
            0-d real time of every sample.
        y : torch.Tensor
            States ``(B, n)``.
        h : float
            Step size.
        carry : object
            What the previous step returned as its carry; ``None`` at the first step (and
            whenever a step is taken on its own, as the reversible adjoint does).

        Returns
        -------
        tuple
            ``(y_new, carry)``: the states ``(B, n)`` after the step and the carry for the
            next one.
        """


@dataclass(frozen=True, kw_only=True)
class AdaptiveIntegrator(Integrator):
    """A method giving every sample its own step size, error estimate and accept/reject
    decision; its ``controller`` turns error norms into step-size factors.

    Class constant ``error_order``: the estimate of the local error is ``O(h^(q+1))`` for
    ``q = error_order``; the controller's exponent is :attr:`error_exponent` ``= 1/(q+1)``.
    """

    adaptive: ClassVar[bool] = True
    error_order: ClassVar[int]

    @property
    def error_exponent(self) -> float:
        return 1 / (self.error_order + 1)

    def interpolant(self, y: torch.Tensor, h: torch.Tensor, attempt: Attempt) -> torch.Tensor:
        """Dense output over an attempted step from ``y (B, n)`` with ``h (B, 1)``: the
        coefficients ``C (B, m, n)`` of ``y(t + θh) = y + Σ_{k=1}^{m} θᵏ C_k``, ``θ ∈ [0, 1]``
        (see :mod:`.dense`), from ``attempt.dense``. Meaningful where the attempt is accepted;
        differentiable when the step is."""
        raise NotImplementedError(f"{type(self).__name__} has no dense output")

    @abstractmethod
    def init(self, field: Field, t: torch.Tensor, y: torch.Tensor,
             f0: torch.Tensor) -> SampleState:
        """The per-sample state before the first attempt, from ``t (B,)``, ``y (B, n)`` and
        ``f0 = f(t, y)``."""

    @abstractmethod
    def attempt(self, field: Field, t: torch.Tensor, y: torch.Tensor, h: torch.Tensor,
                state: SampleState, tolerance: Tolerance) -> Attempt:
        """Try one step per sample from ``t (B,)``, ``y (B, n)`` with ``h (B, 1)``.

        The error norm is weighted by ``tolerance``; the controller gives the factor of the
        next step, and the returned state is the one to continue from (advanced where the
        attempt is accepted, unchanged where it is rejected, up to what the method learned,
        such as a refreshed Jacobian).
        """
