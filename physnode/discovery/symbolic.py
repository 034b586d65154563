"""Symbolic regression with pyoperon (optional extra ``sr``): one regression per equation,
the Pareto front of accuracy against size, the chosen expression as SymPy."""

from __future__ import annotations

import numpy as np
import sympy

DEFAULTS = {"allowed_symbols": "add,sub,mul,div,constant,variable,sin,cos",
            "objectives": ["r2", "length"], "generations": 200, "population_size": 500,
            "max_length": 25, "max_evaluations": 200_000, "n_threads": 1}


def symbolic_regression(y: np.ndarray, target: np.ndarray, symbols, held_out: np.ndarray,
                        seed: int, options: dict):
    """Fit ``target ≈ f(y)`` on the samples not ``held_out``.

    ``options`` override pyoperon ``SymbolicRegressor`` settings (``DEFAULTS``). Returns the
    expression chosen by pyoperon's model-selection criterion (minimum description length),
    the Pareto front as ``[(complexity, held-out relative RMS error, expression), ...]`` and
    the chosen expression's held-out relative RMS error.
    """
    try:
        from pyoperon.sklearn import SymbolicRegressor
    except ImportError:
        raise ImportError("symbolic regression needs pyoperon: pip install 'physnode[sr]'") \
            from None
    unknown = set(options) - set(SymbolicRegressor().get_params())
    if unknown:
        raise ValueError(f"`sr_options` has unknown pyoperon settings {sorted(unknown)}")
    regressor = SymbolicRegressor(**{**DEFAULTS, "random_state": seed, **options})
    train = ~held_out
    regressor.fit(y[train], target[train])
    names = [s.name for s in symbols]
    local = {s.name: s for s in symbols}
    scale = max(float(np.std(target[held_out])), np.finfo(float).tiny)

    def to_sympy(tree):
        text = regressor.get_model_string(tree, 15, names)
        return sympy.parse_expr(text, local_dict=local)

    def score(tree):
        prediction = regressor.evaluate_model(tree, y[held_out])
        return float(np.sqrt(np.mean((prediction - target[held_out]) ** 2)) / scale)

    front = sorted((int(m["complexity"]), score(m["tree"]), to_sympy(m["tree"]))
                   for m in regressor.pareto_front_)
    return to_sympy(regressor.model_), front, score(regressor.model_)
