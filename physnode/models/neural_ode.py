"""The baseline: a Neural ODE ``dy/dt = f_θ(t, y)`` with no physical structure (Chen et al.
2018), optionally augmented with extra zero-initialised dimensions (Dupont et al. 2019), and
its second-order form ``q̈ = f_θ(q, q̇)`` (Norcliffe et al. 2020)."""

from __future__ import annotations

import torch

from .._validation import check_angles, check_int, check_state
from ..systems.base import sample_times
from ..systems.lagrangian import velocity_names
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


def input_normalization(scales: DataScales, time_dependent: bool, extra: int = 0):
    """``(loc, scale)`` of a :class:`VectorField`'s inputs: the states' statistics, ``extra``
    augmented coordinates at offset 0 and scale 1, then the time (by the spread of the sample
    times) when the field depends on it."""
    ones = torch.ones(extra, dtype=torch.float64)
    time = [(scales.time_loc.reshape(1), scales.time_scale.reshape(1))] if time_dependent else []
    loc = torch.cat([scales.loc, 0 * ones] + [t[0] for t in time])
    scale = torch.cat([scales.scale, ones] + [t[1] for t in time])
    return loc, scale


def with_time(t, y: torch.Tensor, time_dependent: bool) -> torch.Tensor:
    """``y``, with one time per sample appended when the field depends on it."""
    return torch.cat([y, sample_times(t, y)], -1) if time_dependent else y


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
        loc, scale = input_normalization(scales, self.time_dependent, extra)
        rate = torch.ones(extra, dtype=torch.float64) / scales.time
        self.field.set_normalization(loc, scale, torch.cat([scales.rate, rate]))

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        check_state("y", y, self.dim, "NeuralODE", self.state_names)
        return self.field(with_time(t, y, self.time_dependent))

    def augment_state(self, y: torch.Tensor) -> torch.Tensor:
        """Pad observed states ``(*batch, dim)`` with ``augment`` zeros."""
        pad = y.new_zeros((*y.shape[:-1], self.dim - self.observed_dim))
        return torch.cat([y, pad], -1)


class SecondOrderNeuralODE(PhysicsModel):
    """A second-order Neural ODE (SONODE, Norcliffe et al. 2020): a network learns the
    accelerations ``q̈ = f_θ(q, q̇)`` and the model integrates the first-order system
    ``d/dt concat(q, q̇) = concat(q̇, f_θ(q, q̇))``.

    The kinematics ``dq/dt = q̇`` are exact for any weights, so only ``dof`` of the ``2 dof``
    rates are learned: the inductive bias of a mechanical system without assuming an energy
    (friction, driving and other non-conservative forces are as easy to learn as
    conservative ones). An augmented Neural ODE with ``dof`` extra dimensions can represent
    the same motions, but its extra coordinates need not be the velocity (Norcliffe et al.
    2020), which is why :func:`physnode.discover` reads this model's equations as
    second order by default and an augmented one's only as first order.

    Numerics: rolled out by default with ``dopri5`` (explicit, adaptive, order 5; not
    symplectic — nothing here is conserved to preserve). The network works on inputs
    normalised by the training data's statistics and its output is in units of the data's
    accelerations (:meth:`~PhysicsModel.adapt`); the kinematic half is untouched by the
    normalisation.

    Parameters
    ----------
    dof : int
        Degrees of freedom; states ``concat(q, q̇)`` have width ``2*dof``.
    hidden, layers : int
        Width and number of hidden layers of the acceleration network.
    time_dependent : bool
        Feed ``t`` to the network as an extra input (a driven system): a scalar, or one time
        per sample of shape ``(*batch, 1)`` as :func:`physnode.solve` passes it.
    activation : str
        ``"tanh"`` (default), ``"softplus"``, ``"silu"`` or ``"gelu"``.
    angles : sequence of int
        Positions ``q_i`` that are angles in radians: they enter the network as
        ``(cos q_i, sin q_i)``.

    References
    ----------
    A. Norcliffe, C. Bodnar, B. Day, N. Simidjievski, P. Liò, "On Second Order Behaviour in
    Augmented Neural ODEs", NeurIPS 2020.

    Examples
    --------
    >>> import torch, physnode as pn
    >>> sonode = pn.models.SecondOrderNeuralODE(dof=1, hidden=16)
    >>> y = torch.tensor([[0.5, -2.0]])
    >>> sonode(0.0, y)[..., 0].detach()        # dq/dt is the state's qdot, exactly
    tensor([-2.])
    """

    default_integrator = "dopri5"
    #: dq/dt is the state's q̇ by construction (the rollout loss skips its kinematic term,
    #: discover finds only the accelerations).
    exact_kinematics = True

    def __init__(self, dof: int, hidden: int = 200, layers: int = 2,
                 time_dependent: bool = False, activation: str = "tanh", angles: tuple = ()):
        super().__init__()
        check_int("dof", dof, minimum=1)
        check_architecture(hidden, layers)
        self.angles = check_angles("angles", angles, dof, "positions q")
        self.config = {"dof": dof, "hidden": hidden, "layers": layers,
                       "time_dependent": bool(time_dependent), "activation": activation,
                       "angles": list(self.angles)}
        self.dof, self.dim = dof, 2 * dof
        self.state_names = velocity_names(dof)
        self.time_dependent = bool(time_dependent)
        self._register_state_range(self.dim)
        self.field = VectorField(self.dim + self.time_dependent, dof, hidden, layers,
                                 activation, self.angles)

    def _adapt(self, scales: DataScales) -> None:
        """Inputs normalised per coordinate (time by the spread of the sample times); the
        accelerations in units of the RMS rate of ``q̇``."""
        loc, scale = input_normalization(scales, self.time_dependent)
        self.field.set_normalization(loc, scale, scales.rate[self.dof:])

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        check_state("y", y, self.dim, "SecondOrderNeuralODE", self.state_names)
        return torch.cat([y[..., self.dof:], self.acceleration(t, y)], -1)

    def acceleration(self, t, y: torch.Tensor) -> torch.Tensor:
        """The learned ``q̈ = f_θ(q, q̇)`` at states ``(*batch, 2*dof)``, shape
        ``(*batch, dof)``."""
        return self.field(with_time(t, y, self.time_dependent))
