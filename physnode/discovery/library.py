"""Candidate-term libraries for sparse regression, built from SymPy expressions.

A :class:`Library` is a tuple of SymPy terms in the state symbols. The terms *are* the
columns of the regression matrix, so a discovered equation is assembled from the terms and
their coefficients — no strings from a back-end are parsed.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from .._validation import check_int

LIBRARY_PARTS = ("poly", "trig")
#: The factors a function of the states counts for in :meth:`Library.complexity` when which
#: coordinates are angles is not known: more than a cubic.
GUESSED_FUNCTION = 4


@dataclass(frozen=True)
class Library:
    """An ordered set of candidate terms ``θ_k(y)``.

    Compose with ``+`` (union, first occurrence kept) and ``*`` (all pairwise products, plus
    both factors' terms), e.g. ``Library.polynomial(s, 2) * Library.trig(s[:1])``.

    Attributes
    ----------
    symbols : tuple of sympy.Symbol
        The state symbols, in state order.
    terms : tuple of sympy.Expr
        The candidate terms; the constant term is ``sympy.Integer(1)``.

    Examples
    --------
    >>> import sympy
    >>> q, p = sympy.symbols("q p", real=True)
    >>> lib = Library.polynomial((q, p), degree=2) + Library.trig((q,))
    >>> lib.terms
    (1, q, p, q**2, p*q, p**2, sin(q), cos(q))
    """

    symbols: tuple
    terms: tuple

    def __post_init__(self):
        unique = tuple(dict.fromkeys(self.terms))
        object.__setattr__(self, "terms", unique)
        if not unique:
            raise ValueError("the library is empty: it needs at least one term")

    @classmethod
    def polynomial(cls, symbols: Sequence[sympy.Symbol], degree: int = 3,
                   constant: bool = True) -> Library:
        """All monomials of total degree ``1..degree`` (and ``1`` when ``constant``)."""
        check_int("degree", degree, minimum=0)
        terms = [sympy.Integer(1)] if constant else []
        for d in range(1, degree + 1):
            for combo in itertools.combinations_with_replacement(symbols, d):
                terms.append(sympy.Mul(*combo))
        return cls(tuple(symbols), tuple(terms))

    @classmethod
    def trig(cls, symbols: Sequence[sympy.Symbol], harmonics: int = 1) -> Library:
        """``sin(k s)`` and ``cos(k s)`` for each symbol ``s`` and ``k = 1..harmonics``."""
        check_int("harmonics", harmonics, minimum=1)
        terms = [f(k * s) for s in symbols for k in range(1, harmonics + 1)
                 for f in (sympy.sin, sympy.cos)]
        return cls(tuple(symbols), tuple(terms))

    @classmethod
    def angles(cls, symbols: Sequence[sympy.Symbol], harmonics: int = 1) -> Library:
        """:meth:`trig` of each angle and of each difference of two, ``sin(k (a − b))`` and
        ``cos(k (a − b))`` (the coupling of jointed pendula)."""
        check_int("harmonics", harmonics, minimum=1)
        pairs = [a - b for a, b in itertools.combinations(symbols, 2)]
        terms = [f(k * s) for s in [*symbols, *pairs] for k in range(1, harmonics + 1)
                 for f in (sympy.sin, sympy.cos)]
        return cls(tuple(symbols), tuple(terms))

    @classmethod
    def mechanical(cls, positions: Sequence[sympy.Symbol], velocities: Sequence[sympy.Symbol],
                   degree: int = 4, harmonics: int = 1,
                   periodic: Sequence[sympy.Symbol] | None = None) -> Library:
        """The Lagrangian (or velocity-coordinate energy) of a mechanical system,
        ``½ q̇ᵀ M(q) q̇ + A(q)·q̇ − V(q)``: monomials of the velocities of degree at most 2,
        times functions of the configuration — polynomials of the positions up to ``degree``
        and :meth:`angles` of the ``periodic`` positions (only trigonometric terms for those;
        every position gets both when ``periodic`` is ``None``, not known), and each other
        position times those angle terms. It holds, e.g., ``q̇₁ q̇₂ cos(q₁ − q₂)`` of a double
        pendulum, ``q̇² x²`` of a bead on a wire and ``r cos θ`` of an elastic pendulum.

        Examples
        --------
        >>> import sympy
        >>> q, v = sympy.symbols("q v", real=True)
        >>> Library.mechanical((q,), (v,), periodic=(q,)).terms
        (1, v, v**2, sin(q), cos(q), v*sin(q), v*cos(q), v**2*sin(q), v**2*cos(q))
        """
        check_int("degree", degree, minimum=0)
        known = () if periodic is None else tuple(periodic)
        algebraic = [s for s in positions if s not in known]
        configuration = cls.polynomial(algebraic or positions, degree if algebraic else 0)
        trig = (cls.trig(positions, harmonics) if periodic is None
                else cls.angles(known, harmonics) if known else None)
        if trig is not None:
            configuration = configuration + trig
            if algebraic and known:
                # A length times a sine or cosine of an angle: the height of a point at
                # polar coordinates (r cos θ, an elastic pendulum's gravity).
                configuration = configuration + cls.polynomial(algebraic, 1, constant=False) * trig
        return cls.polynomial(velocities, 2) * configuration

    @classmethod
    def from_spec(cls, spec: str, symbols: Sequence[sympy.Symbol], degree: int = 3,
                  harmonics: int = 1, periodic: Sequence[sympy.Symbol] | None = None
                  ) -> Library:
        """Build from a string: parts ``poly`` and ``trig`` joined by ``+`` (union) or ``*``
        (union plus products), e.g. ``"poly+trig"`` or ``"poly*trig"``. ``trig`` is
        :meth:`angles` of the ``periodic`` symbols (the angles and their differences) when
        they are given, else :meth:`trig` of every symbol."""
        if not isinstance(spec, str):
            raise TypeError(f"`library` must be a string like 'poly+trig' or a Library; "
                            f"got {type(spec).__name__}")
        if periodic is None:                    # not known which: every coordinate
            def trig():
                return cls.trig(symbols, harmonics)
        else:                                   # no angles: no part, not an empty library
            def trig():
                return cls.angles(periodic, harmonics) if periodic else None
        parts = {"poly": lambda: cls.polynomial(symbols, degree), "trig": trig}
        result = None
        for factor_spec in spec.replace(" ", "").split("+"):
            names = factor_spec.split("*")
            unknown = [n for n in names if n not in parts]
            if unknown or not factor_spec:
                raise ValueError(f"`library` parts must be {' or '.join(LIBRARY_PARTS)} joined "
                                 f"by '+' or '*'; got {spec!r}")
            factors = [f for f in (parts[n]() for n in names) if f is not None]
            if factors:
                factor = functools.reduce(operator.mul, factors)
                result = factor if result is None else result + factor
        if result is None:
            raise ValueError(f"`library` {spec!r} has no terms: none of the states "
                             f"{[s.name for s in symbols]} is an angle")
        return result

    def __add__(self, other: Library) -> Library:
        return Library(_merge_symbols(self.symbols, other.symbols), self.terms + other.terms)

    def __mul__(self, other: Library) -> Library:
        products = tuple(a * b for a in self.terms for b in other.terms)
        return Library(_merge_symbols(self.symbols, other.symbols),
                       self.terms + other.terms + products)

    def __len__(self) -> int:
        return len(self.terms)

    def complexity(self, periodic: Sequence[sympy.Symbol] | None = ()) -> np.ndarray:
        """Each term's degree, counting a function of the states (``sin q``) as one factor:
        ``1`` → 0, ``q`` → 1, ``q² p`` → 3, ``p sin q`` → 2. With ``periodic=None`` (which
        coordinates are angles is not known, so every coordinate has trigonometric terms) a
        function of the states counts as :data:`GUESSED_FUNCTION` factors instead: among
        supports of equal size a polynomial up to cubic is preferred to a sine of a
        coordinate that may not be an angle (a double-well oscillator's positions gave
        ``−4.94 x + 5.93 sin x``, its cubic Taylor polynomial ``0.99 x − 0.99 x³``, for the
        true ``x − x³``)."""
        weight = GUESSED_FUNCTION if periodic is None else 1
        return np.array([_degree(term, weight) for term in self.terms], dtype=float)

    def matrix(self, y: np.ndarray) -> np.ndarray:
        """Evaluate every term on states ``y`` of shape ``(n, dim)``; returns ``(n, len)``."""
        y = np.asarray(y, dtype=float)
        columns = [np.broadcast_to(np.asarray(f(*y.T), dtype=float), y.shape[:1])
                   for f in self._functions()]
        return np.stack(columns, axis=1)

    def _functions(self):
        return [sympy.lambdify(self.symbols, term, modules="numpy") for term in self.terms]


def _merge_symbols(a, b):
    return tuple(dict.fromkeys(tuple(a) + tuple(b)))


def _degree(term: sympy.Expr, function: int = 1) -> int:
    """The degree of a product of powers, a function of the states (a factor that is not a
    power of a symbol) counting ``function``."""
    degree = 0
    for factor in sympy.Mul.make_args(term):
        if factor.is_Number:
            continue
        base, exponent = factor.as_base_exp()
        power = int(exponent) if exponent.is_Integer and exponent > 0 else 1
        degree += power * (1 if base.is_Symbol else function)
    return degree


def declared_angles(data=None, model=None) -> tuple[int, ...] | None:
    """The angle coordinates ``data`` declares (``Trajectories.angles``), else those ``model``
    was built with (a model without angles declares nothing); ``None`` when neither says."""
    for angles in (getattr(data, "angles", None), getattr(model, "angles", None) or None):
        if angles is not None:
            return angles
    return None
