"""What every learned system shares: a configuration that rebuilds it, a default integrator,
and saving/loading of weights plus configuration in one file."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn.functional import softplus

from .._atomic import atomic_path
from .._validation import check_int

ACTIVATIONS = {"tanh": nn.Tanh, "softplus": nn.Softplus, "silu": nn.SiLU, "gelu": nn.GELU}


def mlp(n_in: int, n_out: int, hidden: int, layers: int, activation: str) -> nn.Sequential:
    """``layers`` hidden layers of width ``hidden`` with ``activation`` between them."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {', '.join(map(repr, ACTIVATIONS))}; "
                         f"got {activation!r}")
    sizes = [n_in] + [hidden] * layers
    modules = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        modules += [nn.Linear(a, b), ACTIVATIONS[activation]()]
    modules.append(nn.Linear(sizes[-1], n_out))
    return nn.Sequential(*modules)


# Activation and its slope d(activation)/dz (from z and the activation a), as plain functions
# for input gradients without module-call overhead.
_CLOSED_FORMS = {
    nn.Tanh: (torch.tanh, lambda z, a: 1 - a * a),
    nn.Softplus: (softplus, lambda z, a: torch.sigmoid(z)),
    nn.SiLU: (nn.functional.silu,
              lambda z, a: torch.sigmoid(z) * (1 + z * (1 - torch.sigmoid(z)))),
}


def mlp_input_gradient(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor | None:
    """``∇ₓ net(x)`` of a scalar-output :func:`mlp`, shape of ``x``, by the chain rule written
    out (one forward, one backward of matrix products). It is itself differentiable, so
    training through it needs only first-order autograd, and it avoids the autograd engine
    in rollouts. Returns None for an activation without a closed form (then use autograd);
    softplus is taken with its default ``beta=1``."""
    modules = list(net)
    linears, activations = modules[0::2], modules[1::2]
    if any(type(a) not in _CLOSED_FORMS for a in activations) or linears[-1].out_features != 1:
        return None
    slopes, h = [], x
    for linear, activation in zip(linears[:-1], activations):
        function, slope = _CLOSED_FORMS[type(activation)]
        z = nn.functional.linear(h, linear.weight, linear.bias)
        h = function(z)
        slopes.append(slope(z, h))
    g = linears[-1].weight[0]
    for linear, slope in zip(reversed(linears[:-1]), reversed(slopes)):
        g = (g * slope) @ linear.weight
    return g


def parameter_placement(model, dtype: torch.dtype = torch.float64) -> dict:
    """``{"device": ..., "dtype": ...}`` of a model's parameters, for ``tensor.to(**...)``;
    the CPU and ``dtype`` for a parameter-free system."""
    parameter = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    if parameter is None:
        return {"device": torch.device("cpu"), "dtype": dtype}
    return {"device": parameter.device, "dtype": parameter.dtype}


def check_architecture(hidden, layers):
    check_int("hidden", hidden, minimum=1)
    check_int("layers", layers, minimum=1)


class ViscousDamping(nn.Module):
    """Learned viscous coefficients ``D = softplus(raw) ≥ 0``, one per degree of freedom; the
    generalised force on velocities ``v`` is ``−D v``. Starts at ``softplus(−3) ≈ 0.05``,
    nearly conservative."""

    def __init__(self, dof: int):
        super().__init__()
        self.raw = nn.Parameter(torch.full((dof,), -3.0))

    @property
    def coefficients(self) -> torch.Tensor:
        return softplus(self.raw)

    def forward(self, velocity: torch.Tensor) -> torch.Tensor:
        """The friction ``D v`` (to subtract), shape of ``velocity``."""
        return self.coefficients.to(velocity) * velocity


class PhysicsModel(nn.Module):
    """Base of the learned systems: ``model(t, y) -> dy/dt`` on ``(*batch, dim)`` states.

    Subclasses store their constructor arguments in ``self.config`` (so :func:`load` can
    rebuild them) and name ``default_integrator``, the method their rollouts use.
    """

    default_integrator: str = "rk4"

    #: How many training states :meth:`record_training_states` keeps with the weights.
    kept_states: int = 1024

    def _register_state_range(self, width: int) -> None:
        # Saved with the weights, so discovery can work where the model was trained.
        self.register_buffer("state_range", torch.full((2, width), float("nan")))
        self.register_buffer("fitted_states", torch.full((self.kept_states, width),
                                                         float("nan")))

    def record_training_states(self, states: torch.Tensor) -> None:
        """Remember the box ``[min, max]`` per coordinate of the training states
        (``(n, width)``) and a fixed random subsample of them (``fitted_states``), which
        :func:`physnode.discovery.regenerate` and the energy regressions use by default."""
        self.state_range.copy_(torch.stack([states.amin(0), states.amax(0)]))
        pick = torch.randint(len(states), (self.kept_states,),
                             generator=torch.Generator().manual_seed(0), device="cpu")
        self.fitted_states.copy_(states[pick])

    def training_states(self) -> torch.Tensor | None:
        """The kept subsample of training states, or None before :func:`physnode.fit`."""
        return None if torch.isnan(self.fitted_states).any() else self.fitted_states.clone()

    @property
    def fitted_box(self) -> dict | None:
        """``{state name: (low, high)}`` of the data the model was fitted on, or None."""
        if torch.isnan(self.state_range).any():
            return None
        low, high = self.state_range.tolist()
        return {n: (a, b) for n, a, b in zip(self.state_names, low, high)}

    @property
    def damping(self) -> torch.Tensor:
        """The learned viscous coefficients ``D ≥ 0`` of a dissipative model's ``friction``
        (zeros for a conservative one)."""
        # No class-level default: it would shadow the submodule nn.Module registers.
        friction = getattr(self, "friction", None)
        if friction is None:
            return torch.zeros(getattr(self, "dof", self.dim))
        return friction.coefficients

    def save(self, path) -> Path:
        """Write weights and configuration to ``path`` atomically (temporary file + rename)."""
        payload = {"class": type(self).__name__, "config": dict(self.config),
                   "state_dict": self.state_dict()}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return Path(path)


def load(path) -> PhysicsModel:
    """Rebuild a model saved with ``model.save(path)``, without the script that made it."""
    from . import MODELS

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {str(path)!r}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("class") not in MODELS:
        raise ValueError(f"{path}: not a physnode model file (expected one written by "
                         f"model.save)")
    model = MODELS[payload["class"]](**payload["config"])
    model.load_state_dict(payload["state_dict"])
    return model


