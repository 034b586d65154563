"""What every integrator declares: its order and capabilities (DESIGN convention 1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

_REAL = {torch.complex32: torch.float16, torch.complex64: torch.float32,
         torch.complex128: torch.float64}


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real dtype of times, step sizes, error norms and method coefficients for states of
    ``dtype`` (``float64`` for ``complex128``; a real dtype is its own)."""
    return _REAL.get(dtype, dtype)


@dataclass(frozen=True)
class Integrator:
    """Base of all integrators: frozen dataclasses with keyword-only options.

    Class attributes declare the capabilities that ``solve``, tests and docs rely on:
    ``name`` (the string accepted by :func:`physnode.solve`), ``adaptive``, ``implicit`` and
    ``symplectic``. ``order`` is the classical order of the method.
    """

    name: ClassVar[str] = ""
    adaptive: ClassVar[bool] = False
    implicit: ClassVar[bool] = False
    symplectic: ClassVar[bool] = False

    @property
    def order(self) -> int:  # pragma: no cover - every family defines it
        raise NotImplementedError
