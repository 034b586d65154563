"""``Equations``: discovered dynamics with SymPy as the canonical form, and their exports
(LaTeX, exact JSON, a differentiable torch system) and comparison with a known truth."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import sympy
import torch
from torch import nn

from .._validation import check_state
from ..systems.base import sample_times
from .quality import FitQuality

FORMAT = "physnode.equations/1"

# The JSON form is a small expression tree, so reading it back never evaluates code and floats
# round-trip bit for bit (they are stored as Python float reprs).
_FUNCTIONS = {f.__name__: f for f in (sympy.sin, sympy.cos, sympy.tan, sympy.exp, sympy.log,
                                      sympy.sqrt, sympy.Abs, sympy.tanh, sympy.sinh,
                                      sympy.cosh, sympy.atan)}
_TORCH = {"sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "exp": torch.exp,
          "log": torch.log, "sqrt": torch.sqrt, "Abs": torch.abs, "tanh": torch.tanh,
          "sinh": torch.sinh, "cosh": torch.cosh, "atan": torch.atan}


def expression_to_tree(expr: sympy.Expr):
    """A JSON-ready tree of ``expr``: ``["Add", ...]``, ``["Symbol", name]``, numbers."""
    if expr.is_Symbol:
        return ["Symbol", expr.name]
    if expr.is_Integer:
        return ["Integer", int(expr)]
    if expr.is_Rational:
        return ["Rational", int(expr.p), int(expr.q)]
    if expr.is_Float:
        return ["Float", float(expr)]
    if expr in (sympy.pi, sympy.E):
        return ["Constant", str(expr)]
    name = type(expr).__name__
    if name not in ("Add", "Mul", "Pow") and name not in _FUNCTIONS:
        raise ValueError(f"cannot serialise {name} in {expr}: supported are numbers, symbols, "
                         f"+, *, ** and {', '.join(_FUNCTIONS)}")
    return [name] + [expression_to_tree(a) for a in expr.args]


def read_payload(text: str, what: str, fmt: str) -> dict:
    """The dict of a physnode JSON file of ``format`` ``fmt`` (``what``: how to name it in
    errors), or a ``ValueError`` saying why not."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} JSON is not valid JSON: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise ValueError(f"not a physnode {what} file (expected format {fmt!r})")
    return payload


def tree_to_expression(tree, symbols: dict):
    """Inverse of :func:`expression_to_tree`; ``symbols`` maps names to SymPy symbols."""
    head, *args = tree
    if head == "Symbol":
        return symbols.setdefault(args[0], sympy.Symbol(args[0], real=True))
    if head == "Integer":
        return sympy.Integer(args[0])
    if head == "Rational":
        return sympy.Rational(*args)
    if head == "Float":
        return sympy.Float(args[0])
    if head == "Constant":
        return {"pi": sympy.pi, "E": sympy.E}[args[0]]
    children = [tree_to_expression(a, symbols) for a in args]
    if head in ("Add", "Mul", "Pow"):
        return getattr(sympy, head)(*children, evaluate=False)
    if head in _FUNCTIONS:
        return _FUNCTIONS[head](*children, evaluate=False)
    raise ValueError(f"unknown expression node {head!r} in equations JSON")


@dataclass
class Equations:
    """Discovered ``d(state)/dt = f(state)``, one SymPy expression per state, in state order.

    Attributes
    ----------
    equations : dict of sympy.Symbol to sympy.Expr
        The right-hand sides.
    second_order : bool
        The state is ``concat(q, q̇)`` and only the accelerations were discovered: the first
        half of ``equations`` is the kinematics ``dq/dt = q̇``.
    method : str
        ``"sindy"``, ``"sr"`` or ``"given"``.
    inclusion : dict
        With ensembling (bagged SINDy, or an :class:`~physnode.models.Ensemble` of models):
        ``{symbol: {term: fraction of models selecting it}}``.
    spread : dict
        From an ensemble of models: ``{symbol: {term: (mean, standard deviation)}}`` of the
        term's coefficient over the members that selected it.
    members : tuple
        From an ensemble of models: each member's own :class:`Equations`.
    pareto : dict
        With symbolic regression: ``{symbol: [(size, error, expression), ...]}``.
    scores : dict
        ``{symbol: held-out relative RMS error of the chosen right-hand side}``.
    fit_quality : FitQuality or None
        How well the model the equations came from reproduces the observations (see
        :func:`physnode.discover`); None for raw data or without observations.

    Examples
    --------
    >>> import physnode as pn
    >>> eqs = Equations(pn.systems.Pendulum().equations())
    >>> eqs.to_latex()
    '\\\\dot{q} &= p \\\\\\\\\\n\\\\dot{p} &= - 9.81 \\\\sin{\\\\left(q \\\\right)}'
    >>> Equations.from_json(eqs.to_json()).equations == eqs.equations
    True
    """

    equations: dict
    second_order: bool = False
    method: str = "given"
    inclusion: dict = field(default_factory=dict)
    pareto: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    fit_quality: FitQuality | None = None
    spread: dict = field(default_factory=dict)
    members: tuple = ()

    @classmethod
    def consensus(cls, members) -> Equations:
        """The equations of an ensemble's members combined: each right-hand side keeps the
        terms that at least half of the members selected, with the median of their
        coefficients; ``inclusion`` and ``spread`` say how often each term was selected and
        how much its coefficient varies; ``scores`` are the members' medians.

        Examples
        --------
        >>> import sympy
        >>> x = sympy.Symbol("x", real=True)
        >>> found = [Equations({x: -1.0 * x}), Equations({x: -1.2 * x + 0.1}),
        ...          Equations({x: -1.1 * x})]
        >>> both = Equations.consensus(found)
        >>> both.equations[x], round(both.inclusion[x][sympy.Integer(1)], 3)
        (-1.1*x, 0.333)
        """
        members = tuple(members)
        if not members or not all(isinstance(m, Equations) for m in members):
            raise TypeError("`members` must be a non-empty sequence of Equations")
        first = members[0]
        if any(m.symbols != first.symbols for m in members):
            raise ValueError("`members` must be equations of the same states")
        equations, inclusion, spread = {}, {}, {}
        for s in first.symbols:
            coefficients = [m.coefficients[s] for m in members]
            terms = list(dict.fromkeys(t for c in coefficients for t in c))
            values = {t: np.array([c[t] for c in coefficients if t in c]) for t in terms}
            inclusion[s] = {t: len(v) / len(members) for t, v in values.items()}
            spread[s] = {t: (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0)
                         for t, v in values.items()}
            equations[s] = sympy.Add(*(sympy.Float(float(np.median(values[t]))) * t
                                       for t in terms if 2 * len(values[t]) >= len(members)))
        scores = {s: float(np.median([m.scores[s] for m in members]))
                  for s in first.scores if all(s in m.scores for m in members)}
        return cls(equations, first.second_order, first.method, inclusion=inclusion,
                   scores=scores, spread=spread, members=members)

    @property
    def symbols(self) -> tuple:
        return tuple(self.equations)

    @property
    def coefficients(self) -> dict:
        """``{symbol: {term: coefficient}}`` of each expanded right-hand side."""
        return {s: _terms(e) for s, e in self.equations.items()}

    def __str__(self) -> str:
        """One line per state, coefficients to 4 significant digits."""
        return "\n".join(f"d{s}/dt = {round_floats(e, 4)}" for s, e in self.equations.items())

    def to_latex(self, digits: int | None = None) -> str:
        """Aligned LaTeX lines ``\\dot{s} &= ...`` (``\\ddot{q}`` for second-order models),
        floats rounded to ``digits`` significant digits when given."""
        dof = len(self.symbols) // 2
        lines = []
        for i, (s, e) in enumerate(self.equations.items()):
            if self.second_order and i < dof:
                continue
            lhs = (rf"\ddot{{{sympy.latex(self.symbols[i - dof])}}}" if self.second_order
                   else rf"\dot{{{sympy.latex(s)}}}")
            e = round_floats(e, digits) if digits is not None else e
            lines.append(f"{lhs} &= {sympy.latex(e)}")
        return " \\\\\n".join(lines)

    def to_html(self, path, data=None, energies: dict | None = None,
                title: str = "Discovered equations", settings: dict | None = None):
        """Write a self-contained HTML report (:func:`physnode.analysis.write_html`): the
        observations (``data``, when given), the fit quality, the equations as mathematics,
        learned ``energies`` (``{name: LaTeX}``), the settings and versions. Returns the path
        written, as ``physnode discover`` does beside its JSON."""
        from ..analysis import html

        sections = ([html.data_section(data)] if data is not None else []) + [
            html.quality_section(self.fit_quality), html.equations_section(self, energies),
            html.settings_section(settings or {})]
        return html.write_html(path, title, sections)

    def to_json(self) -> str:
        """Exact, code-free JSON (see :meth:`from_json`)."""
        payload = {"format": FORMAT, "method": self.method, "second_order": self.second_order,
                   "state": [s.name for s in self.symbols],
                   "equations": [expression_to_tree(e) for e in self.equations.values()],
                   "scores": {s.name: v for s, v in self.scores.items()}}
        if self.fit_quality is not None:
            payload["fit_quality"] = self.fit_quality.as_dict()
        return json.dumps(payload, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Equations:
        """Rebuild equations written by :meth:`to_json`."""
        payload = read_payload(text, "equations", FORMAT)
        names = {n: sympy.Symbol(n, real=True) for n in payload["state"]}
        symbols = [names[n] for n in payload["state"]]
        exprs = [tree_to_expression(t, names) for t in payload["equations"]]
        quality = payload.get("fit_quality")
        return cls(dict(zip(symbols, exprs)), second_order=payload["second_order"],
                   method=payload["method"],
                   scores={names[k]: v for k, v in payload.get("scores", {}).items()},
                   fit_quality=None if quality is None else FitQuality(**quality))

    def to_system(self) -> EquationSystem:
        """A batched, differentiable torch vector field for :func:`physnode.solve`."""
        return EquationSystem(self)

    def compare(self, truth) -> dict:
        """Compare with known equations (``{symbol: expr}`` or a reference system).

        Symbols are matched by name. Returns ``{"exact_support": bool,
        "max_relative_coefficient_error": float, "equations": {name: {"missing": [...],
        "spurious": [...], "relative_errors": {term: err}}}}``; the error of a term is
        ``|found − true| / |true|``.
        """
        truth = truth.equations() if hasattr(truth, "equations") else truth
        truth = {getattr(s, "name", str(s)): e for s, e in truth.items()}
        per_state, exact, worst = {}, True, 0.0
        for s, expr in self.equations.items():
            if s.name not in truth:
                raise ValueError(f"`truth` has no equation for state {s.name!r}; it has "
                                 f"{sorted(truth)}")
            found = {str(k): v for k, v in _terms(expr).items()}
            true = {str(k): v for k, v in _terms(truth[s.name]).items()}
            errors = {k: abs(found[k] - v) / abs(v) for k, v in true.items() if k in found}
            missing = sorted(set(true) - set(found))
            spurious = sorted(set(found) - set(true))
            exact &= not missing and not spurious
            worst = max([worst, *errors.values()])
            per_state[s.name] = {"missing": missing, "spurious": spurious,
                                 "relative_errors": errors}
        return {"exact_support": exact, "max_relative_coefficient_error": worst,
                "equations": per_state}


def round_floats(expr: sympy.Expr, digits: int) -> sympy.Expr:
    """``expr`` with every float rounded to ``digits`` significant digits (for display)."""
    return expr.xreplace({f: sympy.Float(float(f"{float(f):.{digits}g}"))
                          for f in expr.atoms(sympy.Float)})


def _terms(expr) -> dict:
    """``{term: float coefficient}`` of the expanded expression (numbers under key ``1``)."""
    out = {}
    for term, coefficient in sympy.expand(expr).as_coefficients_dict().items():
        out[term] = out.get(term, 0.0) + float(coefficient)
    return {k: v for k, v in out.items() if v != 0.0}


class EquationSystem(nn.Module):
    """Torch vector field of :class:`Equations`: ``f(t, y)`` on ``(*batch, dim)`` states,
    differentiable, on the device and dtype of ``y``."""

    def __init__(self, equations: Equations):
        super().__init__()
        self.source = equations
        self.state_names = tuple(s.name for s in equations.symbols)
        self.dim = len(self.state_names)
        t = sympy.Symbol("t", real=True)
        self._functions = [sympy.lambdify((t, *equations.symbols), e, modules=[_TORCH, "math"])
                           for e in equations.equations.values()]

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        check_state("y", y, self.dim, "these equations", self.state_names)
        columns = y.unbind(-1)
        t = sample_times(t, y)[..., 0]
        out = [torch.as_tensor(f(t, *columns), dtype=y.dtype, device=y.device)
               .expand(y.shape[:-1]) for f in self._functions]
        return torch.stack(out, dim=-1)
