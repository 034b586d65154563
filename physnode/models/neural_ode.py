"""The baseline: a Neural ODE ``dy/dt = f_θ(t, y)`` with no physical structure (Chen et al.
2018), optionally augmented with extra zero-initialised dimensions (Dupont et al. 2019)."""

from __future__ import annotations

import torch

from .._validation import check_angles, check_int, check_state
from ..systems.base import sample_times
from .base import DataScales, NormalizedInput, PhysicsModel, check_architecture, mlp


class VectorField(NormalizedInput):
    """``out ⊙ N((x − loc)/scale)``: an MLP on normalised inputs, outputs in the data's
    rates."""

    def __init__(self, n_in, n_out, hidden, layers, activation, angles=()):
        super().__init__()
        self.net = mlp(n_in + len(angles), n_out, hidden, layers, activation)
        self._register_normalization(n_in, (n_out,), angles)

    def forward(self, x):
        return self.out * self.net(self.features(x))


class NeuralODE(PhysicsModel):
    """An MLP vector field.

    Parameters
    ----------
    dim : int
        Width of the observed state.
    hidden, layers : int
        Width and number of hidden layers.
    time_dependent : bool
        Feed ``t`` to the network as an extra input: a scalar, or one time per sample of
        shape ``(*batch, 1)`` as :func:`physnode.solve` passes it.
    augment : int
        Extra state dimensions (augmented Neural ODE): the model integrates states of width
        ``dim + augment``; :meth:`augment_state` pads observed states with zeros.
    activation : str
        ``"tanh"`` (default), ``"softplus"``, ``"silu"`` or ``"gelu"``.
    angles : sequence of int
        Observed coordinates that are angles in radians: they enter the network as
        ``(cos, sin)`` (the field is periodic in them; unwrapped angles of any size work).

    Notes
    -----
    Rolled out by default with ``dopri5``; nothing constrains its energy, which is why it is
    the baseline the structure-preserving models are compared against.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> node = pn.models.NeuralODE(dim=2, hidden=16)
    >>> node(torch.tensor(0.0), torch.zeros(5, 2)).shape
    torch.Size([5, 2])
    """

    default_integrator = "dopri5"

    def __init__(self, dim: int, hidden: int = 200, layers: int = 2,
                 time_dependent: bool = False, augment: int = 0, activation: str = "tanh",
                 angles: tuple = ()):
        super().__init__()
        check_int("dim", dim, minimum=1)
        check_architecture(hidden, layers)
        check_int("augment", augment, minimum=0)
        self.angles = check_angles("angles", angles, dim, "observed states")
        self.config = {"dim": dim, "hidden": hidden, "layers": layers,
                       "time_dependent": bool(time_dependent), "augment": augment,
                       "activation": activation, "angles": list(self.angles)}
        self.observed_dim = dim
        self.dim = dim + augment
        self.state_names = tuple(f"y{i + 1}" for i in range(dim)) + tuple(
            f"a{i + 1}" for i in range(augment))
        self.time_dependent = bool(time_dependent)
        self._register_state_range(dim)
        self.field = VectorField(self.dim + self.time_dependent, self.dim, hidden, layers,
                                 activation, self.angles)

    def _adapt(self, scales: DataScales) -> None:
        """Inputs normalised per coordinate (time by the spread of the sample times); outputs
        in units of each coordinate's rate. Augmented coordinates: offset 0, scale 1, rate
        ``1/time``."""
        extra = self.dim - self.observed_dim
        ones = torch.ones(extra, dtype=torch.float64)
        loc = torch.cat([scales.loc, 0 * ones] + ([scales.time_loc.reshape(1)]
                                                   if self.time_dependent else []))
        scale = torch.cat([scales.scale, ones] + ([scales.time_scale.reshape(1)]
                                                  if self.time_dependent else []))
        self.field.set_normalization(loc, scale, torch.cat([scales.rate, ones / scales.time]))

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        check_state("y", y, self.dim, "NeuralODE", self.state_names)
        if self.time_dependent:
            y = torch.cat([y, sample_times(t, y)], -1)
        return self.field(y)

    def augment_state(self, y: torch.Tensor) -> torch.Tensor:
        """Pad observed states ``(*batch, dim)`` with ``augment`` zeros."""
        pad = y.new_zeros((*y.shape[:-1], self.dim - self.observed_dim))
        return torch.cat([y, pad], -1)
