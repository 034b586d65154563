"""How systems are integrated: explicit, symplectic and implicit (stiff) methods.

Every method is a frozen dataclass implementing the contract of :mod:`.base` — a
:class:`FixedStepIntegrator` (``step``) or an :class:`AdaptiveIntegrator` (``init`` and
``attempt``, with a :class:`StepSizeController`) — and declaring ``name``, ``order``,
``adaptive``, ``implicit``, ``symplectic`` and ``reversible`` at class level. :data:`METHODS`
maps the names accepted by :func:`physnode.solve` to them: a new method is one class and one
entry in the tuple below.
"""

from .base import (
    AdaptiveIntegrator,
    Attempt,
    Field,
    FixedStepIntegrator,
    Integrator,
    SampleState,
    Tolerance,
)
from .controllers import PredictiveController, StepSizeController
from .explicit import RK4, Dopri5, Euler, ExplicitRungeKutta, Midpoint
from .implicit import (
    AdaptiveImplicit,
    BackwardEuler,
    ImplicitRungeKutta,
    Kvaerno5,
    RadauIIA5,
    RadauIIA9,
)
from .newton import Newton
from .symplectic import (
    GaussLegendre4,
    GaussLegendre6,
    ImplicitMidpoint,
    Splitting,
    StormerVerlet,
    SymplecticEuler,
    Yoshida4,
    Yoshida6,
)
from .tableau import ButcherTableau

METHODS: dict[str, type[Integrator]] = {cls.name: cls for cls in (
    Euler, Midpoint, RK4, Dopri5,
    SymplecticEuler, StormerVerlet, Yoshida4, Yoshida6, ImplicitMidpoint, GaussLegendre4,
    GaussLegendre6,
    BackwardEuler, RadauIIA5, RadauIIA9, Kvaerno5,
)}
"""Every integrator class by its string name (``"rk4"``, ``"radau5"``, ...): what
``method="..."`` in :func:`physnode.solve` resolves to."""

__all__ = ["Integrator", "FixedStepIntegrator", "AdaptiveIntegrator", "Attempt",
           "SampleState", "Field", "Tolerance", "ButcherTableau", "StepSizeController",
           "PredictiveController", "Newton", "METHODS", "ExplicitRungeKutta",
           "ImplicitRungeKutta", "AdaptiveImplicit", "Splitting", *(
               cls.__name__ for cls in METHODS.values())]
