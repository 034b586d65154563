"""The baseline a user would otherwise run: pysindy on the raw observations, with its own
defaults, as SymPy :class:`Equations` so it compares like physnode's routes."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pysindy as ps
import sympy

from ..data import Trajectories
from .equations import Equations


def pysindy_raw(data: Trajectories, smoothed: bool = False, degree: int = 3) -> Equations:
    """``pysindy.SINDy`` on the raw samples and their actual times: a polynomial library of
    ``degree`` plus the first Fourier harmonics (the same candidate terms as physnode's
    default ``"poly+trig"``), pysindy's default STLSQ (threshold 0.1) and its
    ``FiniteDifference`` (or, with ``smoothed``, ``SmoothedFiniteDifference``) at their
    defaults.

    Examples
    --------
    >>> import physnode as pn
    >>> data = pn.data.simulate(pn.systems.MassSpring(), n_trajectories=4, n_points=200)
    >>> print(pysindy_raw(data))
    dq/dt = 1.0*p
    dp/dt = -1.0*q
    """
    names = list(data.state_names)
    differentiation = ps.SmoothedFiniteDifference() if smoothed else ps.FiniteDifference()
    model = ps.SINDy(feature_library=ps.PolynomialLibrary(degree=degree) + ps.FourierLibrary(),
                     differentiation_method=differentiation)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit([tr.y.detach().cpu().double().numpy() for tr in data],
                  t=[tr.t.detach().cpu().double().numpy() for tr in data],
                  feature_names=names)
    symbols = {n: sympy.Symbol(n, real=True) for n in names}
    terms = [_feature(name, symbols) for name in model.get_feature_names()]
    coefficients = np.asarray(model.coefficients())
    equations = {symbols[n]: sympy.Add(*[sympy.Float(float(c)) * term
                                         for term, c in zip(terms, row) if c != 0])
                 for n, row in zip(names, coefficients)}
    return Equations(equations, method="pysindy")


def _feature(name: str, symbols: dict) -> sympy.Expr:
    """A pysindy feature name (``"1"``, ``"q p^2"``, ``"sin(1 q)"``) as SymPy."""
    text = re.sub(r"(\w|\))\s+(?=[\w(])", r"\1*", name.strip()).replace("^", "**")
    return sympy.sympify(text, locals=symbols)
