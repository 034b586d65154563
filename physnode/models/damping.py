"""Dissipation of the mechanical models: a Rayleigh function ``R = ½ q̇ᵀ D(q) q̇`` with ``D``
symmetric positive semi-definite for every configuration, so the generalised friction force
``−D(q) q̇`` never adds energy (``dE/dt = −q̇ᵀ D q̇ ≤ 0``).

What a damping is, is an object (:class:`ConstantDamping`, :class:`ConfigurationDamping`) that
builds the module the model holds as ``friction``; its ``config()`` is what a saved model
records. Both modules measure ``D`` in the units :meth:`adapt` gives them (the force that
produces the data's rates), and start nearly conservative.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn.functional import softplus

from .base import GAIN, ViscousDamping, check_architecture
from .mass import _LearnedFactor, _matvec

#: ``softplus(GAIN · START) ≈ 0.05``: a learned damping starts nearly conservative.
START = -3.0 / GAIN


class _ConfigurationFriction(nn.Module):
    """``D(q) = g · S L(q) L(q)ᵀ S``: ``L`` the lower-triangular factor of a network of the
    normalised positions (angles as cosines and sines) that starts as the identity,
    ``g = softplus(GAIN · raw)`` a gain that starts at 0.05, ``S = diag(√scale)`` the units."""

    varies = True

    def __init__(self, dof, hidden, layers, activation, angles=()):
        super().__init__()
        self.dof = dof
        self.factor = _LearnedFactor(dof, hidden, layers, activation, angles)
        self.raw = nn.Parameter(torch.tensor(START))
        self.register_buffer("scale", torch.ones(dof))

    def adapt(self, scale: torch.Tensor, q_loc: torch.Tensor, q_scale: torch.Tensor) -> None:
        self.scale.copy_(scale)
        self.factor.set_normalization(q_loc, q_scale, 1.0)

    def _parts(self, q: torch.Tensor):
        """``(L(q), √scale, g)`` with ``D = g · diag(√scale) L Lᵀ diag(√scale)``."""
        return (self.factor.factor(q), self.scale.to(q).sqrt(),
                softplus(GAIN * self.raw.to(q)))

    def matrix(self, q: torch.Tensor) -> torch.Tensor:
        """``D(q)``, shape ``(*batch, dof, dof)``."""
        L, s, gain = self._parts(q)
        return gain * s[:, None] * (L @ L.transpose(-1, -2)) * s

    def forward(self, q: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        """The friction ``D(q) v`` (to subtract), shape of ``velocity``."""
        L, s, gain = self._parts(q)
        return gain * s * _matvec(L, _matvec(L.transpose(-1, -2), s * velocity))


@dataclass(frozen=True)
class ConstantDamping:
    """Viscous friction ``−cᵢ q̇ᵢ`` in each degree of freedom, ``cᵢ ≥ 0`` learned (what
    ``dissipative=True`` means): ``R = ½ Σ cᵢ q̇ᵢ²``."""

    kind: ClassVar[str] = "constant"

    def build(self, dof: int, angles: tuple = ()) -> nn.Module:
        return ViscousDamping(dof)

    def config(self) -> dict:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class ConfigurationDamping(ConstantDamping):
    """Friction that depends on the configuration, ``−D(q) q̇`` with ``D(q)`` symmetric
    positive semi-definite for every ``q`` and coupling the degrees of freedom (a Cholesky
    factor from a network of the positions; angles enter as cosines and sines): a joint whose
    friction changes with its angle, a cart on a track whose drag varies along it."""

    kind: ClassVar[str] = "configuration"
    hidden: int = 32
    layers: int = 2
    activation: str = "tanh"

    def __post_init__(self):
        check_architecture(self.hidden, self.layers)

    def build(self, dof, angles=()):
        return _ConfigurationFriction(dof, self.hidden, self.layers, self.activation, angles)


DAMPINGS = {cls.kind: cls for cls in (ConstantDamping, ConfigurationDamping)}


def damping_spec(value) -> ConstantDamping | None:
    """The damping object for a model's ``dissipative`` argument: ``False`` (none), ``True``
    (:class:`ConstantDamping`), an object, or a saved ``config()`` dict."""
    if value is None:
        return None
    if isinstance(value, (bool, int, np.bool_)) and value in (0, 1):
        return ConstantDamping() if value else None
    if isinstance(value, ConstantDamping):
        return value
    if isinstance(value, dict) and value.get("kind") in DAMPINGS:
        return DAMPINGS[value["kind"]](**{k: v for k, v in value.items() if k != "kind"})
    raise TypeError(f"`dissipative` must be True, False, ConstantDamping() or "
                    f"ConfigurationDamping(...); got {type(value).__name__}")


def saved(spec: ConstantDamping | None):
    """What a model's config records: a bool for none or constant damping (as before), the
    spec's dict otherwise."""
    if spec is None or type(spec) is ConstantDamping:
        return spec is not None
    return spec.config()
