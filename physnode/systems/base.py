"""The System protocol: what physnode integrates.

A system is a callable ``f(t, y) -> dy/dt`` on states shaped ``(*batch, dim)``. Reference
problems additionally know their energy (where one exists), invariants and ground-truth
equations as SymPy expressions.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import sympy
import torch

from .._validation import check_real, check_state


def _uniform(n, dim, generator, dtype):
    """U(0, 1) draws of shape ``(n, dim)`` on the generator's device (the CPU by default,
    so that a seed gives the same states on every device), moved to the default device."""
    device = generator.device if generator is not None else "cpu"
    u = torch.rand(n, dim, generator=generator, dtype=dtype, device=device)
    return u.to(torch.get_default_device())


def sample_times(t, y: torch.Tensor) -> torch.Tensor:
    """The time of every sample of ``y`` as a tensor of shape ``(*batch, 1)``.

    ``t`` is a number, a 0-d tensor (one time for every sample) or a tensor of shape
    ``(*batch, 1)`` (the convention of :func:`physnode.solve`: it broadcasts against
    ``y (*batch, dim)`` row by row). A vector field that computes per-sample columns of shape
    ``(*batch,)`` takes ``sample_times(t, y)[..., 0]``. Any other shape is refused: a time of
    shape ``(batch,)`` would broadcast along the state axis.

    Examples
    --------
    >>> import torch
    >>> sample_times(0.5, torch.zeros(3, 2)).shape
    torch.Size([3, 1])
    """
    real = y.real.dtype if y.is_complex() else y.dtype
    t = torch.as_tensor(t, dtype=real, device=y.device)
    if t.ndim and (t.shape[-1] != 1 or t.ndim > y.ndim):
        raise ValueError(f"`t` must be a scalar or have shape (*batch, 1) for states of shape "
                         f"{tuple(y.shape)}; got shape {tuple(t.shape)}")
    try:
        return t.expand(*y.shape[:-1], 1)
    except RuntimeError:
        raise ValueError(f"`t` must be a scalar or have shape (*batch, 1) for states of shape "
                         f"{tuple(y.shape)}; got shape {tuple(t.shape)}") from None


@runtime_checkable
class System(Protocol):
    """Anything that can be integrated by :func:`physnode.solve`.

    ``__call__(t, y)`` maps a time and states ``(*batch, dim)`` to derivatives of the same
    shape. Inside :func:`physnode.solve` the time has the shape ``(*batch, 1)`` — every
    sample's own time, broadcasting against ``y`` row by row — whatever the method; called
    directly, a scalar is accepted too (see :func:`sample_times`). ``dim`` is the state width
    and ``state_names`` names each state coordinate. ``energy(y) -> (*batch,)`` is optional.
    """

    dim: int
    state_names: tuple[str, ...]

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...


class ReferenceSystem:
    """Shared machinery of the built-in problems: parameters, input checks, SymPy symbols and
    sampling of initial states from a documented box.

    Subclasses set ``state_names``, ``initial_box`` (``{name: (low, high)}``), implement
    ``rhs(t, y)`` on a ``(*batch, dim)`` tensor and ``_sympy_rhs(t, *symbols)`` returning one
    expression per state.
    """

    state_names: tuple[str, ...] = ()
    stiff: bool = False
    #: Hamiltonian systems have state concat(q, p); used to pick symplectic methods.
    hamiltonian: bool = False
    #: Indices of the coordinates that are angles (periodic, in radians).
    angles: tuple[int, ...] = ()

    @property
    def dissipative(self) -> bool:
        """Whether the system loses energy through a viscous ``damping`` above 0."""
        return getattr(self, "damping", 0) > 0

    @property
    def conservative(self) -> bool:
        """A Hamiltonian system with neither dissipation nor forcing: its energy is
        constant."""
        return self.hamiltonian and not self.dissipative and not getattr(self, "forced", False)

    @property
    def dim(self) -> int:
        return len(self.state_names)

    @property
    def name(self) -> str:
        return type(self).__name__

    def __call__(self, t, y: torch.Tensor) -> torch.Tensor:
        check_state("y", y, self.dim, self.name, self.state_names)
        return self.rhs(t, y)

    def rhs(self, t, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def symbols(self) -> tuple[sympy.Symbol, ...]:
        """SymPy symbols of the state, in state order."""
        return tuple(sympy.Symbol(n, real=True) for n in self.state_names)

    def equations(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Ground truth ``{state symbol: d(state)/dt}`` in state order, parameters substituted."""
        syms = self.symbols()
        exprs = self._sympy_rhs(sympy.Symbol("t", real=True), *syms)
        return dict(zip(syms, exprs))

    def _sympy_rhs(self, t, *s):  # pragma: no cover - abstract
        raise NotImplementedError

    def sample_initial_states(self, n: int, generator: torch.Generator | None = None,
                              dtype=torch.float64) -> torch.Tensor:
        """Draw ``n`` initial states uniformly from :attr:`initial_box`; shape ``(n, dim)``."""
        low = torch.tensor([self.initial_box[k][0] for k in self.state_names], dtype=dtype)
        high = torch.tensor([self.initial_box[k][1] for k in self.state_names], dtype=dtype)
        u = _uniform(n, self.dim, generator, dtype)
        return low + (high - low) * u

    def _check_state(self, y):
        return check_state("y", y, self.dim, self.name, self.state_names)

    @staticmethod
    def _positive(name, value):
        return check_real(name, value, positive=True)

    @staticmethod
    def _nonnegative(name, value):
        return check_real(name, value, nonnegative=True)

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{self.name}({params})"
