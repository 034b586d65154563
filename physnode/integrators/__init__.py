"""How systems are integrated: explicit, symplectic and implicit (stiff) methods.

Every method is a frozen dataclass declaring ``name``, ``order``, ``adaptive``, ``implicit``
and ``symplectic``; :data:`METHODS` maps the names accepted by :func:`physnode.solve` to them.
"""

from .base import Integrator
from .controllers import StepSizeController
from .explicit import RK4, Dopri5, Euler, ExplicitRungeKutta, Midpoint
from .implicit import BackwardEuler, ImplicitRungeKutta, Kvaerno5, RadauIIA5, RadauIIA9
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

__all__ = ["Integrator", "ButcherTableau", "StepSizeController", "Newton", "METHODS",
           "ExplicitRungeKutta", "ImplicitRungeKutta", "Splitting", *(
               cls.__name__ for cls in METHODS.values())]
