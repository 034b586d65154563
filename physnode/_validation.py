"""Input checks for the public boundary and the wording of every error physnode raises.

Every user-facing check lives here so that messages read the same everywhere: they name the
argument, what was expected and what was received (DESIGN convention 4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


class IntegrationError(RuntimeError):
    """A numerical failure during integration: Newton divergence, step-size underflow,
    ``max_steps`` reached or a non-finite state.

    Attributes
    ----------
    stats : dict
        The solver statistics up to the failure (``nfev``, ``steps``, ...).
    samples : list of int
        Flat indices of the batch samples that failed.
    t : float or None
        The time reached by the first failing sample.
    """

    def __init__(self, message: str, stats: dict | None = None,
                 samples: Sequence[int] = (), t: float | None = None):
        super().__init__(message)
        self.stats = stats or {}
        self.samples = list(samples)
        self.t = t








class TrainingError(RuntimeError):
    """A fit that cannot go on (a non-finite loss). The model keeps its last good weights;
    ``history`` holds the epochs completed."""

    def __init__(self, message: str, history: list | None = None):
        super().__init__(message)
        self.history = history or []


def check_real(name: str, value, *, positive=False, nonnegative=False) -> float:
    """A finite real number, optionally > 0 or >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        else:
            raise TypeError(f"`{name}` must be a real number; got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value}")
    if positive and value <= 0:
        raise ValueError(f"`{name}` must be positive; got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"`{name}` must be non-negative; got {value}")
    return value


def check_int(name: str, value, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an integer; got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}; got {value}")
    return value




def check_interval(name: str, value, low: float, high: float, *,
                   closed_high: bool = False) -> float:
    """A real number in the open interval ``(low, high)`` (``(low, high]`` with
    ``closed_high``)."""
    value = check_real(name, value)
    if not (low < value and (value <= high if closed_high else value < high)):
        raise ValueError(f"`{name}` must be in ({low:g}, {high:g}{']' if closed_high else ')'}; "
                         f"got {value}")
    return value


def check_instance(name: str, value, cls: type):
    """An instance of ``cls`` (an option object of an integrator, say)."""
    if not isinstance(value, cls):
        raise TypeError(f"`{name}` must be a {cls.__name__}; got {type(value).__name__}")
    return value


def check_tensor(name: str, value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor; got {type(value).__name__}")
    if not (value.is_floating_point() or value.is_complex()):
        raise TypeError(f"`{name}` must have a floating-point dtype; got {value.dtype}")
    return value


def check_finite(name: str, value: torch.Tensor) -> torch.Tensor:
    if not bool(torch.isfinite(value).all()):
        bad = (~torch.isfinite(value)).nonzero()[0].tolist()
        raise ValueError(f"`{name}` must be finite; got a non-finite value at index {tuple(bad)}")
    return value


def check_state(name: str, y: torch.Tensor, dim: int, owner: str, names: Sequence[str]):
    """Check that ``y`` is a batch of states of width ``dim`` for ``owner``."""
    check_tensor(name, y)
    if y.ndim == 0 or y.shape[-1] != dim:
        raise ValueError(f"`{name}` must have last dimension {dim} for {owner} "
                         f"({', '.join(names)}); got shape {tuple(y.shape)}")
    return y


def check_even_state(name: str, y: torch.Tensor, method: str):
    if y.shape[-1] % 2:
        raise ValueError(f"`{name}` must have an even last dimension, concat(q, p), for the "
                         f"symplectic method {method!r}; got shape {tuple(y.shape)}")


def check_times(name: str, t: torch.Tensor, *, minimum: int = 1) -> torch.Tensor:
    """A 1-D, finite, strictly monotonic tensor of at least ``minimum`` times."""
    check_tensor(name, t)
    if t.ndim != 1 or t.numel() < minimum:
        raise ValueError(f"`{name}` must be a 1-D tensor of at least {minimum} times; "
                         f"got shape {tuple(t.shape)}")
    check_finite(name, t)
    if t.numel() > 1:
        d = t[1:] - t[:-1]
        if not (bool((d > 0).all()) or bool((d < 0).all())):
            i = int(((d <= 0) if bool(d[0] > 0) else (d >= 0)).nonzero()[0])
            raise ValueError(f"`{name}` must be strictly monotonic; got t[{i}]={t[i].item()} "
                             f"followed by t[{i + 1}]={t[i + 1].item()}")
    return t


def check_time_precision(name: str, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t`` unchanged, or a ValueError when casting it to ``dtype`` moves a gap between
    consecutive times by more than 0.1%: times of a clock (1.7e9 s) keep no sub-second
    gaps in float32, and the solve would silently run on other times."""
    if (t.numel() < 2 or not t.is_floating_point()
            or torch.finfo(t.dtype).bits <= torch.finfo(dtype).bits):
        return t
    exact = t.double().diff()
    cast = t.to(dtype).double().diff()
    moved = ((cast - exact).abs() / exact.abs().clamp_min(torch.finfo(torch.float64).tiny))
    if bool((moved > 1e-3).any()):
        i = int(moved.argmax())
        raise ValueError(f"`{name}` loses its spacing in {dtype} (the states' precision): the "
                         f"gap t[{i + 1}] − t[{i}] = {exact[i].item():.6g} becomes "
                         f"{cast[i].item():.6g}; pass times relative to the start "
                         f"(t − t[0]) for a field that does not depend on the time, or "
                         f"states in {t.dtype}")
    return t


def check_names(name: str, value, count: int | None = None) -> tuple[str, ...]:
    """Distinct state names: a sequence of strings (not one string), ``count`` of them if given."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"`{name}` must be a sequence of strings, one per state; "
                        f"got {type(value).__name__}")
    names = tuple(value)
    for i, item in enumerate(names):
        if not isinstance(item, str):
            raise TypeError(f"`{name}[{i}]` must be a string; got {type(item).__name__}")
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"`{name}` must be distinct; got {twice!r} twice in {names}")
    if count is not None and len(names) != count:
        raise ValueError(f"`{name}` must have {count} names, one per state; "
                         f"got {len(names)}: {names}")
    return names


def check_real_array(name: str, value):
    """Real numbers as a float64 numpy array: a numpy array, a torch tensor (any device) or a
    nested list. Tensors are detached and copied to the CPU."""
    import numpy as np

    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"`{name}` must hold real numbers; got a tensor of dtype {value.dtype}")
        return value.detach().to("cpu", torch.float64).numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged nested lists
        array = None
    if array is None or array.dtype.kind not in "iuf":
        got = type(value).__name__
        if isinstance(value, np.ndarray):
            got += f" of dtype {value.dtype}"
        raise TypeError(f"`{name}` must be an array of real numbers (numpy array, torch tensor "
                        f"or list); got {got}")
    return array.astype(np.float64)


def derivative_of(name: str) -> str | None:
    """The state whose derivative column ``name`` is (``'dx/dt'`` -> ``'x'``), else None."""
    import re

    match = re.fullmatch(r"d(.+)/dt", name)
    return match.group(1) if match else None


def check_columns(columns):
    """A ``columns=`` mapping ``{name: column}`` of :func:`physnode.data.load`.

    A column is a 0-based index (int) or a header label (str). ``'t'`` is required,
    ``'trajectory'`` optional, ``'d<state>/dt'`` the derivative of a named state (all states or
    none), every other name a state, in mapping order.

    Returns ``(t, trajectory, states, derivatives)``: the columns of time and trajectory ids
    (None when absent), ``{state: column}`` and ``{state: column}`` of derivatives or None.
    """
    import numbers
    from collections.abc import Mapping

    if not isinstance(columns, Mapping):
        raise TypeError(f"`columns` must be a mapping {{name: column}}, e.g. "
                        f"{{'t': 0, 'x': 1}}; got {type(columns).__name__}")
    for key, column in columns.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"`columns` keys must be non-empty names (str); got {key!r}")
        if isinstance(column, bool) or not isinstance(column, (numbers.Integral, str)):
            raise TypeError(f"`columns[{key!r}]` must be a 0-based column index (int) or a "
                            f"header label (str); got {column!r} ({type(column).__name__})")
        if isinstance(column, numbers.Integral) and column < 0:
            raise ValueError(f"`columns[{key!r}]` must be a 0-based column index, at least 0; "
                             f"got {column}")
    columns = {k: (int(c) if isinstance(c, numbers.Integral) else c) for k, c in columns.items()}
    if "t" not in columns:
        raise ValueError(f"`columns` must name the time column 't'; got {columns}")
    derivatives = {derivative_of(k): c for k, c in columns.items() if derivative_of(k)}
    states = {k: c for k, c in columns.items()
              if k not in ("t", "trajectory") and not derivative_of(k)}
    if not states:
        raise ValueError(f"`columns` must name at least one state besides 't', 'trajectory' and "
                         f"derivatives 'd<state>/dt'; got {columns}")
    for state in derivatives:
        if state not in states:
            raise ValueError(f"`columns` names 'd{state}/dt' but no state {state!r}; "
                             f"derivatives need their state, got {columns}")
    missing = [f"d{s}/dt" for s in states if s not in derivatives]
    if derivatives and missing:
        raise ValueError(f"`columns` must give a derivative column for every state or for none; "
                         f"missing {missing[0]!r}")
    return columns["t"], columns.get("trajectory"), states, (derivatives or None)


# --- physnode.odeint: torchdiffeq's interface -------------------------------------------------

def check_state_parts(name: str, value) -> tuple[torch.Tensor, ...]:
    """torchdiffeq's state: a tensor of any shape, or a non-empty tuple of tensors of one dtype
    and device. Returns the parts (one for a tensor), each checked to be finite."""
    if isinstance(value, torch.Tensor):
        parts, names = (value,), (name,)
    elif isinstance(value, tuple):
        if not value:
            raise ValueError(f"`{name}` must be a torch.Tensor or a non-empty tuple of tensors; "
                             f"got ()")
        parts, names = value, tuple(f"{name}[{i}]" for i in range(len(value)))
    else:
        raise TypeError(f"`{name}` must be a torch.Tensor or a tuple of tensors; "
                        f"got {type(value).__name__}")
    for part, part_name in zip(parts, names):
        check_tensor(part_name, part)
        check_finite(part_name, part)
    for i, part in enumerate(parts[1:], 1):
        if (part.dtype, part.device) != (parts[0].dtype, parts[0].device):
            raise TypeError(f"`{name}` must hold tensors of one dtype and device; got "
                            f"{parts[0].dtype} on {parts[0].device} for `{name}[0]` and "
                            f"{part.dtype} on {part.device} for `{name}[{i}]`")
    return parts


def check_derivative_parts(name: str, value, shapes, tupled: bool) -> tuple[torch.Tensor, ...]:
    """What ``func`` returned: a tensor of the state's shape, or for a tuple state a tuple (or
    list) of tensors with the parts' shapes."""
    def shape_of(x):
        return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__

    want = tuple(tuple(s) for s in shapes)
    if not tupled:
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != want[0]:
            raise ValueError(f"`{name}` must return dy/dt with the shape of y {want[0]}; "
                             f"got {shape_of(value)}")
        return (value,)
    parts = tuple(value) if isinstance(value, (tuple, list)) else None
    if parts is None or tuple(shape_of(p) for p in parts) != want:
        got = shape_of(value) if parts is None else tuple(shape_of(p) for p in parts)
        raise ValueError(f"`{name}` must return a tuple of dy/dt with the shapes of y's parts "
                         f"{want}; got {got}")
    return parts


#: torchdiffeq's solvers with no physnode counterpart
TORCHDIFFEQ_ONLY = ("dopri8", "bosh3", "fehlberg2", "adaptive_heun", "heun2", "heun3",
                    "explicit_adams", "implicit_adams", "fixed_adams", "scipy_solver")


def check_odeint_method(method, names) -> None:
    """A method name of :func:`physnode.odeint` (objects are checked by ``resolve_method``)."""
    if not isinstance(method, str) or method in names:
        return
    listed = ", ".join(map(repr, names))
    if method in TORCHDIFFEQ_ONLY:
        raise ValueError(f"`method` must be one of {listed}: torchdiffeq's {method!r} has no "
                         f"physnode equivalent; got {method!r}")
    raise ValueError(f"`method` must be one of {listed}; got {method!r}")


#: torchdiffeq options physnode.odeint refuses, and why
UNSUPPORTED_OPTIONS = {
    "first_step": "physnode chooses every sample's first step itself (Hairer & Wanner's rule)",
    "step_t": "integrate up to the time and call odeint again from there",
    "jump_t": "integrate up to the discontinuity and call odeint again from there",
    "min_step": "steps are limited only by round-off (an IntegrationError reports underflow)",
    "max_step": "the step size follows the error estimate alone",
    "norm": "the error norm is the RMS over the whole state",
    "dtype": "times follow y0's dtype",
    "grid_constructor": "fixed-step grids split every output interval into equal steps "
                        "(set step_size)",
    "perturb": "f is evaluated at the step's own times",
    "interp": "outputs are reached by steps, never interpolated",
}
ODEINT_OPTIONS = "'step_size' (fixed-step methods), 'max_num_steps', 'safety', 'ifactor' and " \
                 "'dfactor' (adaptive methods)"


def check_odeint_options(options, method_name: str, adaptive: bool) -> dict:
    """torchdiffeq's ``options`` checked against the method; returns the given options (a
    value of None counts as not given)."""
    from collections.abc import Mapping

    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"`options` must be a dict of torchdiffeq options; "
                        f"got {type(options).__name__}")
    options = {k: v for k, v in options.items() if v is not None}
    for key, value in options.items():
        if key in UNSUPPORTED_OPTIONS:
            raise ValueError(f"`options[{key!r}]` is not supported: "
                             f"{UNSUPPORTED_OPTIONS[key]}; physnode.odeint takes "
                             f"{ODEINT_OPTIONS}; got {key!r}")
        if key not in ("step_size", "max_num_steps", "safety", "ifactor", "dfactor"):
            raise ValueError(f"`options` may hold {ODEINT_OPTIONS}; got {key!r}")
        if (key == "step_size") == adaptive:
            kind = "fixed-step" if key == "step_size" else "adaptive"
            what = ("adaptive (its steps follow rtol and atol)" if adaptive
                    else "a fixed-step method")
            raise ValueError(f"`options[{key!r}]` applies to {kind} methods; {method_name!r} "
                             f"is {what}; got {key}={value!r}")
    if "step_size" in options:
        check_real("options['step_size']", options["step_size"], positive=True)
    if "max_num_steps" in options:
        check_int("options['max_num_steps']", options["max_num_steps"], minimum=1)
    if "safety" in options:
        safety = check_real("options['safety']", options["safety"], positive=True)
        if safety > 1:
            raise ValueError(f"`options['safety']` must be at most 1 (the step-size "
                             f"controller's safety is in (0, 1]); got {safety}")
    if "dfactor" in options:
        dfactor = check_real("options['dfactor']", options["dfactor"], positive=True)
        if dfactor >= 1:
            raise ValueError(f"`options['dfactor']` must be in (0, 1); got {dfactor}")
    if "ifactor" in options:
        ifactor = check_real("options['ifactor']", options["ifactor"])
        if ifactor <= 1:
            raise ValueError(f"`options['ifactor']` must be greater than 1; got {ifactor}")
    return options


def check_angles(name: str, value, limit: int, what: str = "states",
                 names: Sequence[str] | None = None) -> tuple[int, ...]:
    """Distinct indices in ``range(limit)`` of the coordinates that are angles, sorted; with
    ``names``, entries may also be those names."""
    if names is None:
        kind, allowed = f"indices of {what}", f"indices of {what}, 0..{limit - 1}"
    else:
        kind, allowed = "state indices or names", f"state names {names} or indices 0..{limit - 1}"
    if isinstance(value, (str, int)) or not isinstance(value, Sequence):
        raise TypeError(f"`{name}` must be a sequence of {kind}; got {value!r}")
    out = []
    for a in value:
        if names is not None and isinstance(a, str) and a in names:
            out.append(list(names).index(a))
        elif isinstance(a, int) and not isinstance(a, bool) and 0 <= a < limit:
            out.append(a)
        else:
            raise ValueError(f"`{name}` entries must be {allowed}; got {a!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"`{name}` must not repeat an index; got {tuple(value)!r}")
    return tuple(sorted(out))
