"""What every learned system shares: a configuration that rebuilds it, a default integrator,
and saving/loading of weights plus configuration in one file."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn.functional import softplus

from .._atomic import atomic_path, read_torch
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


# Activation, its slope d(activation)/dz (from z and the activation a) and its curvature
# d²(activation)/dz² (from z, a and the slope), as plain functions for input derivatives
# without module-call overhead.
#: Per activation: the function, its slope ``(z, a)``, its curvature ``(z, a, s)`` (``a`` the
#: value, ``s`` the slope), and whether those two need the value ``a``.
_CLOSED_FORMS = {
    nn.Tanh: (torch.tanh, lambda z, a: 1 - a * a, lambda z, a, s: -2 * a * s, True),
    nn.Softplus: (softplus, lambda z, a: torch.sigmoid(z),
                  lambda z, a, s: s * (1 - s), False),
    nn.SiLU: (nn.functional.silu,
              lambda z, a: torch.sigmoid(z) * (1 + z * (1 - torch.sigmoid(z))),
              lambda z, a, s: (lambda g: g * (1 - g) * (2 + z * (1 - 2 * g)))(torch.sigmoid(z)),
              False),
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
        function, slope, _, _ = _CLOSED_FORMS[type(activation)]
        z = nn.functional.linear(h, linear.weight, linear.bias)
        h = function(z)
        slopes.append(slope(z, h))
    g = linears[-1].weight[0]
    for linear, slope in zip(reversed(linears[:-1]), reversed(slopes)):
        g = (g * slope) @ linear.weight
    return g


def _slope_and_curvature(activation: nn.Module, z: torch.Tensor, value: bool):
    """``(activation(z) or None, slope, curvature)`` at ``z`` for a closed-form activation;
    the value is computed only when asked for (a network's last hidden layer does not need
    it) or when the slope needs it."""
    function, slope, curvature, uses_value = _CLOSED_FORMS[type(activation)]
    a = function(z) if value or uses_value else None
    s = slope(z, a)
    return a, s, curvature(z, a, s)


def mlp_hessian_product(net: nn.Sequential, x: torch.Tensor, v: torch.Tensor):
    """``(∇ₓ net(x), ∇²ₓ net(x) · vₖ)`` of a scalar-output :func:`mlp` for ``k`` directions
    ``v`` of shape ``(k, n_in)`` or ``(*batch, k, n_in)``: the gradient (shape of ``x``) and
    the Hessian's products with the directions (``(*batch, k, n_in)``), by forward-over-reverse
    differentiation written out (a tangent pass of the directions, then the backward pass and
    its tangents; matrix products only). Differentiable with respect to the parameters with
    first-order autograd; without a graph the updates are made in place. Returns None for an
    activation without closed forms."""
    modules = list(net)
    linears, activations = modules[0::2], modules[1::2]
    if any(type(a) not in _CLOSED_FORMS for a in activations) or linears[-1].out_features != 1:
        return None
    in_place = not torch.is_grad_enabled()
    slopes, curvatures, tangents = [], [], []
    h, dh = x, v
    last = len(activations) - 1
    for i, (linear, activation) in enumerate(zip(linears[:-1], activations)):
        z = nn.functional.linear(h, linear.weight, linear.bias)
        dz = dh @ linear.weight.T                          # (*batch, k, width) or (k, width)
        h, s, c = _slope_and_curvature(activation, z, value=i < last)
        slopes.append(s)
        curvatures.append(c)
        tangents.append(dz)
        if i < last:                 # the last hidden layer's tangent is not needed
            dh = s.unsqueeze(-2) * dz
    g, dg = linears[-1].weight[0], None                    # ∂out/∂h and its tangent
    for linear, s, c, dz in zip(reversed(linears[:-1]), reversed(slopes), reversed(curvatures),
                                reversed(tangents)):
        bend = (g * c).unsqueeze(-2) * dz
        if dg is None:
            dg = bend
        elif in_place:
            dg = dg.mul_(s.unsqueeze(-2)).add_(bend)
        else:
            dg = dg * s.unsqueeze(-2) + bend
        g = g * s
        g, dg = g @ linear.weight, dg @ linear.weight
    return g, dg


def mlp_jvp(net: nn.Sequential, x: torch.Tensor, dx: torch.Tensor):
    """``(net(x), d net(x + ε dx)/dε)`` by forward-mode differentiation written out (closed
    forms of the activations; torch.func.jvp for others). Differentiable, like the forward
    pass, with respect to the network's parameters."""
    modules = list(net)
    linears, activations = modules[0::2], modules[1::2]
    if any(type(a) not in _CLOSED_FORMS for a in activations):
        return torch.func.jvp(net, (x,), (dx,))
    h, dh = x, dx
    for linear, activation in zip(linears[:-1], activations):
        function, slope, _, _ = _CLOSED_FORMS[type(activation)]
        z = nn.functional.linear(h, linear.weight, linear.bias)
        h = function(z)
        dh = slope(z, h) * (dh @ linear.weight.T)
    return linears[-1](h), dh @ linears[-1].weight.T


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


def geometric_mean(x: torch.Tensor) -> torch.Tensor:
    return x.log().mean().exp()


class DataScales:
    """Per-coordinate statistics of training data, in the user's units.

    Attributes
    ----------
    loc, scale : torch.Tensor
        Mean and standard deviation of each state coordinate (a coordinate that does not vary
        gets the scale of its magnitude, or 1).
    rate : torch.Tensor
        RMS of each coordinate's time derivative (a coordinate that never changes gets
        ``scale / time``).
    time : torch.Tensor
        The motion's time scale, the geometric mean of ``scale / rate``.
    time_loc, time_scale : torch.Tensor
        Mean and spread of the sample times (for time-dependent models).

    Coordinates listed in ``angles`` (radians, possibly unwrapped over many turns) get
    offset 0 and scale 1.
    """

    def __init__(self, y: torch.Tensor, dy: torch.Tensor, t: torch.Tensor | None = None,
                 angles: tuple = ()):
        y, dy = y.detach().double().cpu(), dy.detach().double().cpu()
        self.loc = y.mean(0)
        std = y.std(0) if len(y) > 1 else torch.zeros_like(self.loc)
        magnitude = self.loc.abs().clamp_min(1.0)
        self.scale = torch.where(std > 1e-12 * magnitude, std, magnitude)
        # An angle's unit is the radian whatever its winding: no offset, unit scale.
        index = list(angles)
        self.loc[index], self.scale[index] = 0.0, 1.0
        rms = dy.pow(2).mean(0).sqrt()
        moving = torch.isfinite(rms) & (rms > 0)
        self.time = (geometric_mean(self.scale[moving] / rms[moving]) if bool(moving.any())
                     else torch.ones((), dtype=torch.float64))
        self.rate = torch.where(moving, rms, self.scale / self.time)
        t = torch.zeros(1, dtype=torch.float64) if t is None else t.detach().double().cpu()
        self.time_loc = t.mean()
        spread = t.std() if len(t) > 1 else torch.zeros(())
        self.time_scale = torch.where(spread > 0, spread, torch.ones(()))


def embed_angles(x: torch.Tensor, y: torch.Tensor, angles: tuple) -> torch.Tensor:
    """Network inputs from normalised states ``x``: the coordinates that are not angles, then
    ``cos`` and ``sin`` of the raw ``angles`` (indices into ``y``), so that the network is
    periodic in them and unwrapped angles of any magnitude work."""
    if not angles:
        return x
    index = list(angles)
    keep = [i for i in range(x.shape[-1]) if i not in angles]
    return torch.cat([x[..., keep], torch.cos(y[..., index]), torch.sin(y[..., index])], -1)


def angle_chain_rule(g: torch.Tensor, y: torch.Tensor, scale: torch.Tensor,
                     angles: tuple) -> torch.Tensor:
    """The gradient with respect to the states ``y`` of a function of
    ``embed_angles((y − loc)/scale, y, angles)``, from its gradient ``g`` with respect to those
    inputs."""
    if not angles:
        return g / scale
    index = list(angles)
    keep = [i for i in range(y.shape[-1]) if i not in angles]
    k, n = len(keep), len(index)
    out = torch.zeros_like(y, dtype=g.dtype)
    out[..., keep] = g[..., :k] / scale[keep]
    ya = y[..., index]
    out[..., index] = -g[..., k:k + n] * torch.sin(ya) + g[..., k + n:] * torch.cos(ya)
    return out


class NormalizedInput(nn.Module):
    """A network of normalised inputs ``(y − loc)/scale`` (per-coordinate buffers) whose
    output is multiplied by ``out``: the identity until :meth:`PhysicsModel.adapt` sets them.
    Coordinates listed in ``angles`` enter as ``(cos y, sin y)`` instead (:func:`embed_angles`).
    """

    def _register_normalization(self, width: int, out_shape=(), angles: tuple = ()) -> None:
        self.register_buffer("loc", torch.zeros(width))
        self.register_buffer("scale", torch.ones(width))
        self.register_buffer("out", torch.ones(out_shape))
        self.angles = tuple(angles)

    def normalize(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.loc) / self.scale

    def features(self, y: torch.Tensor) -> torch.Tensor:
        """The network's inputs: :meth:`normalize`, with the angles as cosines and sines."""
        return embed_angles(self.normalize(y), y, self.angles)

    def feature_tangent(self, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """The change of :meth:`features` along ``w``: ``d features(y + εw)/dε`` at 0."""
        dx = w / self.scale
        if not self.angles:
            return dx
        index = list(self.angles)
        keep = [i for i in range(y.shape[-1]) if i not in self.angles]
        ya, wa = y[..., index], w[..., index]
        return torch.cat([dx[..., keep], -torch.sin(ya) * wa, torch.cos(ya) * wa], -1)

    def set_normalization(self, loc, scale, out) -> None:
        for name, value in (("loc", loc), ("scale", scale), ("out", out)):
            buffer = getattr(self, name)
            buffer.copy_(torch.as_tensor(value, dtype=buffer.dtype).expand_as(buffer))


#: Physical scalars (damping, masses) are ``softplus(GAIN · raw)``: an optimiser step moves
#: them as far as a network weight moves a network's output, not ``GAIN`` times less.
GAIN = 10.0


class ViscousDamping(nn.Module):
    """Learned viscous coefficients ``D = scale · softplus(GAIN · raw) ≥ 0``, one per degree
    of freedom; the generalised force on velocities ``v`` is ``−D v``. ``scale`` (a buffer set
    from the training data) makes ``softplus(GAIN · raw)`` a damping relative to the motion's
    own rates; it starts at ``softplus(−3) ≈ 0.05``, nearly conservative."""

    varies = False

    def __init__(self, dof: int):
        super().__init__()
        self.raw = nn.Parameter(torch.full((dof,), -3.0 / GAIN))
        self.register_buffer("scale", torch.ones(dof))

    @property
    def coefficients(self) -> torch.Tensor:
        return self.scale * softplus(GAIN * self.raw)

    def adapt(self, scale: torch.Tensor, q_loc: torch.Tensor, q_scale: torch.Tensor) -> None:
        """Set the units of ``D`` (per degree of freedom); the positions' statistics are for
        dampings that depend on them."""
        self.scale.copy_(scale)

    def matrix(self, q: torch.Tensor) -> torch.Tensor:
        """``D`` as a ``(*batch, dof, dof)`` matrix."""
        return torch.diag_embed(self.coefficients.to(q).expand(q.shape))

    def forward(self, q: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        """The friction ``D v`` (to subtract), shape of ``velocity``."""
        return self.coefficients.to(velocity) * velocity


class PhysicsModel(nn.Module):
    """Base of the learned systems: ``model(t, y) -> dy/dt`` on ``(*batch, dim)`` states.

    Subclasses store their constructor arguments in ``self.config`` (so :func:`load` can
    rebuild them) and name ``default_integrator``, the method their rollouts use.

    Scale-free by construction: :meth:`adapt` (called by :func:`physnode.fit` before the
    first epoch) sets buffers from the training data's statistics — per-coordinate offsets
    and scales of the states, rates of their derivatives — that the networks' inputs and
    outputs are normalised with, in the user's coordinates and without changing the model's
    structure (an HNN stays ``J∇H``, an LNN Euler–Lagrange, damping dissipative). They are
    saved and loaded with the weights. Until then they are the identity.
    """

    default_integrator: str = "rk4"

    #: How many training states :meth:`record_training_states` keeps with the weights.
    kept_states: int = 1024

    def _register_state_range(self, width: int) -> None:
        # Saved with the weights, so discovery can work where the model was trained.
        self.register_buffer("state_range", torch.full((2, width), float("nan")))
        self.register_buffer("fitted_states", torch.full((self.kept_states, width),
                                                         float("nan")))
        # The data's scales in the user's units (identity until adapted).
        self.register_buffer("y_loc", torch.zeros(width))
        self.register_buffer("y_scale", torch.ones(width))
        self.register_buffer("dy_scale", torch.ones(width))
        self.register_buffer("adapted", torch.zeros((), dtype=torch.bool))

    def adapt(self, scales: DataScales) -> bool:
        """Set the normalisation from training-data statistics, once: a model that was
        already adapted (a second ``fit``, a loaded model) keeps its scales, so its function
        does not change. Returns whether the scales were set now."""
        if bool(self.adapted):
            return False
        width = self.y_loc.shape[0]
        for name, value in (("y_loc", scales.loc), ("y_scale", scales.scale),
                            ("dy_scale", scales.rate)):
            getattr(self, name).copy_(value[:width])
        self._adapt(scales)
        self.adapted.fill_(True)
        return True

    def _adapt(self, scales: DataScales) -> None:
        """Set the model's own normalisation buffers (each model keeps its structure)."""
        raise NotImplementedError

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
        (zeros for a conservative one); see :meth:`damping_matrix` for a damping that depends
        on the configuration."""
        # No class-level default: it would shadow the submodule nn.Module registers.
        friction = getattr(self, "friction", None)
        if friction is None:
            return torch.zeros(getattr(self, "dof", self.dim))
        if friction.varies:
            raise ValueError("this model's damping depends on the configuration; use "
                             "damping_matrix(q)")
        return friction.coefficients

    def damping_matrix(self, q: torch.Tensor) -> torch.Tensor:
        """``D(q)`` of the Rayleigh function ``½ q̇ᵀ D(q) q̇``, shape ``(*batch, dof, dof)``
        (zeros for a conservative model)."""
        friction = getattr(self, "friction", None)
        dof = getattr(self, "dof", self.dim)
        if friction is None:
            return q.new_zeros(*q.shape[:-1], dof, dof)
        return friction.matrix(q)

    def save(self, path) -> Path:
        """Write weights and configuration to ``path`` atomically (temporary file + rename)."""
        return save_model(self, path)


def save_model(model: nn.Module, path) -> Path:
    """Write ``model``'s class name, ``config`` and weights to ``path`` atomically, for
    :func:`load`."""
    payload = {"class": type(model).__name__, "config": dict(model.config),
               "state_dict": model.state_dict()}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load(path) -> PhysicsModel:
    """Rebuild a model saved with ``model.save(path)``, without the script that made it."""
    from . import MODELS

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {str(path)!r}")
    payload = read_torch(path, "physnode model (written by model.save)")
    if not isinstance(payload, dict) or payload.get("class") not in MODELS:
        raise ValueError(f"{path}: not a physnode model file (expected one written by "
                         f"model.save)")
    model = MODELS[payload["class"]](**payload["config"])
    state = payload["state_dict"]
    # Files written before models were normalised lack the scale buffers: identity scales
    # reproduce those models exactly.
    missing = set(model.state_dict()) - set(state)
    state = {**{k: v for k, v in model.state_dict().items() if k in missing
                and _is_scale_buffer(k)}, **state}
    model.load_state_dict(state)
    return model


def _is_scale_buffer(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in ("y_loc", "y_scale", "dy_scale", "adapted", "loc",
                                      "scale", "out", "time_loc", "time_scale", "potential")


