"""Learned energies as SymPy expressions: ``hamiltonian(hnn)`` and ``lagrangian(lnn)``."""

from __future__ import annotations

import numpy as np
import sympy
import torch

from ..data import Trajectories
from ..models.base import parameter_placement
from .library import declared_angles
from .methods import Sindy, assemble
from .regenerate import sample_states
from .sindy import sparse_regression


def hamiltonian(model, library="poly+trig", *, data: Trajectories | None = None,
                box: dict | None = None, degree: int = 4, harmonics: int = 1,
                n_samples: int = 4000, tolerance: float = 1.5, seed: int = 0) -> sympy.Expr:
    """The learned Hamiltonian of an HNN as a sparse SymPy expression in ``(q, p)``.

    The scalar is regressed on ``library`` (plus a constant, dropped afterwards: an energy is
    defined up to an additive constant), with the same automatic sparsity as
    :func:`physnode.discover`, at the states of ``data`` (where the model was trained), or
    else at ``n_samples`` states drawn from ``box``, or else at the training states that
    :func:`physnode.fit` kept with the model.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> class PendulumEnergy(torch.nn.Module):
    ...     def forward(self, y):
    ...         return y[..., 1] ** 2 / 2 - 9.81 * torch.cos(y[..., 0])
    >>> hnn = pn.models.HNN(dof=1, hidden=8).double()
    >>> hnn.hamiltonian = PendulumEnergy()
    >>> H = pn.discovery.hamiltonian(hnn, box={"q": (-1, 1), "p": (-2, 2)})
    >>> print(pn.discovery.round_floats(H, 6))
    0.5*p**2 - 9.81*cos(q)
    """
    return _scalar_expression(model, "hamiltonian", library, data, box, degree, harmonics,
                              n_samples, tolerance, seed)


def lagrangian(model, library="poly+trig", *, data: Trajectories | None = None,
               box: dict | None = None, degree: int = 4, harmonics: int = 1,
               n_samples: int = 4000, tolerance: float = 1.5, seed: int = 0) -> sympy.Expr:
    """The learned Lagrangian of an LNN as a sparse SymPy expression in ``(q, q̇)``.

    As :func:`hamiltonian`. Note the gauge freedom: ``L`` and ``a L + b`` (and ``L`` plus a
    total time derivative) give the same motion, so only ratios of coefficients are
    physical; physnode's LNN fixes the scale by its ``½|q̇|²`` kinetic prior.
    """
    return _scalar_expression(model, "lagrangian", library, data, box, degree, harmonics,
                              n_samples, tolerance, seed)


def _scalar_expression(model, attribute, library, data, box, degree, harmonics, n_samples,
                       tolerance, seed):
    scalar = getattr(model, attribute, None)
    if not callable(scalar):
        raise TypeError(f"`model` has no learned {attribute} (expected "
                        f"{'an HNN' if attribute == 'hamiltonian' else 'an LNN'}); "
                        f"got {type(model).__name__}")
    names = tuple(model.state_names)
    symbols = tuple(sympy.Symbol(n, real=True) for n in names)
    place = parameter_placement(model)
    # Where the model was trained: its extrapolation to the corners of a box is poor.
    y = (torch.cat([tr.y for tr in data]) if data is not None and box is None
         else sample_states(model, names, box, n_samples, seed, place["dtype"])).to(**place)
    with torch.no_grad():
        values = scalar(y).detach().cpu().double().numpy()
    lib = Sindy(library=library, degree=degree, harmonics=harmonics).terms(
        symbols, declared_angles(data, model))
    lib = type(lib)(symbols, (sympy.Integer(1),) + lib.terms)
    held_out = np.random.default_rng(seed).random(len(values)) < 0.25
    states = y.detach().cpu().double().numpy()
    fit = sparse_regression(lib.matrix(states), values, held_out, tolerance)
    expression = assemble(lib.terms, fit.coefficients)
    return expression - expression.as_coeff_Add()[0]
