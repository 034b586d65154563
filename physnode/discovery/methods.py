"""Discovery methods: objects with one interface, so a new method is one class.

A method turns samples of the state ``y`` and of one time derivative into a SymPy
right-hand side: :class:`Sindy` (sparse regression on a library of candidate terms, pysindy's
STLSQ with the threshold chosen on held-out samples) and :class:`SymbolicRegression`
(pyoperon's genetic programming).
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import sympy

from .._validation import check_int, check_real
from .library import Library
from .sindy import sparse_regression

#: The least parsimony floor of :class:`Sindy` (a fraction of the derivative's RMS).
FLOOR = 0.01


@dataclass(frozen=True)
class Found:
    """One discovered right-hand side: the expression, its held-out relative RMS error, and
    what the method reports beside it (``inclusion`` frequencies, a Pareto ``front``)."""

    expression: sympy.Expr
    score: float
    inclusion: dict | None = None
    front: list | None = None


class DiscoveryMethod(ABC):
    """The interface of a discovery method: :meth:`regress` finds every requested right-hand
    side from the same samples."""

    name: ClassVar[str] = ""

    @abstractmethod
    def regress(self, y: np.ndarray, dy: np.ndarray, symbols: tuple, targets,
                held_out: np.ndarray, seed: int, *, angles: tuple | None = None,
                noise: float | None = None) -> dict:
        """``{index: Found}`` for every state index in ``targets``: ``dy[:, index]`` as a
        function of the states ``y`` (``(n, dim)``), scored on the ``held_out`` samples.
        ``angles``: indices of the states known to be angles (``None``: not known).
        ``noise``: the observations' noise relative to their spread, when known."""


@dataclass(frozen=True, kw_only=True)
class Sindy(DiscoveryMethod):
    """Sparse identification of nonlinear dynamics (Brunton, Proctor & Kutz 2016) with
    pysindy's STLSQ, the threshold chosen without tuning (see
    :mod:`physnode.discovery.sindy`).

    Parameters
    ----------
    library : str or Library
        ``"poly"``, ``"trig"``, ``"poly+trig"`` (union) or ``"poly*trig"`` (with products),
        with ``degree`` and ``harmonics``; or a :class:`Library` in the state symbols.
    degree, harmonics : int
        Polynomial degree and trigonometric harmonics of a named library.
    tolerance, floor : float
        Parsimony: the sparsest support whose held-out relative error is at most
        ``tolerance * best + floor`` is chosen. ``floor=None`` (default) is
        ``max(0.01, noise / 2)``, ``noise`` the observations' estimated noise relative to
        their spread (:func:`physnode.discovery.quality.relative_noise`; 0.01 without
        observations): a model fitted to noisier data has larger systematic errors, which
        spurious small terms would otherwise absorb. Terms contributing less than the floor
        to the derivative's RMS are not found.
    ensemble : int
        Bagged models for term inclusion frequencies (``Equations.inclusion``); 0 for none.
    """

    name: ClassVar[str] = "sindy"
    library: str | Library = "poly+trig"
    degree: int = 3
    harmonics: int = 1
    tolerance: float = 1.5
    floor: float | None = None
    ensemble: int = 0

    def __post_init__(self):
        check_int("degree", self.degree, minimum=0)
        check_int("harmonics", self.harmonics, minimum=1)
        check_real("tolerance", self.tolerance, positive=True)
        if self.floor is not None:
            check_real("floor", self.floor, nonnegative=True)
        check_int("ensemble", self.ensemble, minimum=0)
        if not isinstance(self.library, (str, Library)):
            raise TypeError(f"`library` must be a string like 'poly+trig' or a Library; "
                            f"got {type(self.library).__name__}")

    def terms(self, symbols, angles: tuple | None = None) -> Library:
        """The candidate library in ``symbols``; a named library's trigonometric terms are
        of the ``angles`` (indices) only, when they are known."""
        if isinstance(self.library, Library):
            unknown = set().union(*(t.free_symbols for t in self.library.terms)) - set(symbols)
            if unknown:
                raise ValueError(f"`library` uses symbols {sorted(map(str, unknown))} that are "
                                 f"not states {[s.name for s in symbols]}")
            return Library(tuple(symbols), self.library.terms)
        periodic = None if angles is None else [symbols[i] for i in angles]
        return Library.from_spec(self.library, symbols, self.degree, self.harmonics,
                                 periodic=periodic)

    def regress(self, y, dy, symbols, targets, held_out, seed, *, angles=None, noise=None):
        lib = self.terms(symbols, angles)
        floor = self.floor
        if floor is None:
            known = noise is not None and math.isfinite(noise)
            floor = max(FLOOR, noise / 2) if known else FLOOR
        if len(y) < 2 * len(lib):
            raise ValueError(f"the data is too short: {len(y)} samples for a library of "
                             f"{len(lib)} terms; need at least {2 * len(lib)}")
        theta = lib.matrix(y)
        complexity = lib.complexity(None if angles is None else [symbols[i] for i in angles])
        found = {}
        for i in targets:
            result = sparse_regression(theta, dy[:, i], held_out, self.tolerance, floor,
                                       self.ensemble, seed, complexity)
            inclusion = (None if result.inclusion is None
                         else dict(zip(lib.terms, result.inclusion.tolist())))
            found[i] = Found(assemble(lib.terms, result.coefficients), result.score, inclusion)
        _warn_if_unexplained(found, symbols, floor, self.library)
        return found


#: An equation of at least this many terms whose held-out error is still above twice the
#: parsimony floor is reported as unexplained by the library.
DENSE_TERMS = 5


def _warn_if_unexplained(found: dict, symbols, floor: float, library) -> None:
    """Warn about the equations that are dense *and* still miss their derivatives: the
    sparse regression then spreads a term the library lacks over many it has (Kepler's
    ``−x/r³`` as ten cubic terms, 3.9% off on held-out states, from a model that reproduces
    its data to the noise). A sparse equation that misses is left alone: its error is the
    noise of estimated derivatives, or the model's."""
    poor = []
    for i, f in found.items():
        terms = len(sympy.Add.make_args(f.expression)) if f.expression != 0 else 0
        if terms >= DENSE_TERMS and f.score > 2 * floor:
            poor.append(f"d{symbols[i]}/dt ({terms} terms, {100 * f.score:.2g}% off)")
    if poor:
        kind = f"{library!r} library" if isinstance(library, str) else "library given"
        warnings.warn(f"{', '.join(poor)}: dense equations that still miss the derivatives on "
                      f"held-out states (the floor is {100 * floor:.2g}%) — the {kind} "
                      f"probably lacks this system's terms (a ratio such as x/r³, a "
                      f"function of several states); try a Library with the terms you "
                      f"expect, SymbolicRegression, or for a mechanical system "
                      f"pn.discovery.hamiltonian or lagrangian", UserWarning, stacklevel=4)


@dataclass(frozen=True, kw_only=True)
class SymbolicRegression(DiscoveryMethod):
    """Symbolic regression with pyoperon (``pip install "physnode[sr]"``): one regression per
    equation, the expression chosen by pyoperon's minimum-description-length criterion, the
    Pareto front of size against held-out error reported beside it.

    Parameters
    ----------
    options : dict
        pyoperon ``SymbolicRegressor`` settings overriding
        :data:`physnode.discovery.symbolic.DEFAULTS`.
    """

    name: ClassVar[str] = "sr"
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.options, dict):
            raise TypeError(f"`options` must be a dict of pyoperon settings; "
                            f"got {type(self.options).__name__}")

    def regress(self, y, dy, symbols, targets, held_out, seed, *, angles=None, noise=None):
        from .symbolic import symbolic_regression
        found = {}
        for i in targets:
            expr, front, score = symbolic_regression(y, dy[:, i], symbols, held_out, seed,
                                                     self.options)
            found[i] = Found(expr, score, front=front)
        return found


METHODS = {cls.name: cls for cls in (Sindy, SymbolicRegression)}


def assemble(terms, coefficients) -> sympy.Expr:
    """``Σ c_k θ_k`` over the nonzero coefficients, as SymPy."""
    return sympy.Add(*[sympy.Float(float(c)) * term for term, c in zip(terms, coefficients)
                       if c != 0])
