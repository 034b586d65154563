"""Simulated trajectories of a known system, for tests, examples and benchmarks."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from scipy.integrate import solve_ivp

from .._validation import IntegrationError, check_int, check_real
from .trajectories import Trajectories, Trajectory

#: Tolerances of the reference integration (scipy DOP853, or Radau for stiff systems).
REFERENCE_RTOL, REFERENCE_ATOL = 1e-10, 1e-12


def simulate(system, n_trajectories: int = 25, t_span=(0.0, 3.0), n_points: int = 30,
             noise: float = 0.0, irregular: bool = False, seed: int = 0,
             derivatives: bool = False, y0: torch.Tensor | None = None) -> Trajectories:
    """Sample noisy trajectories of ``system``, reproducibly.

    Initial states are drawn uniformly from the system's documented ``initial_box`` (see each
    reference system) unless ``y0`` is given. Each trajectory is integrated with scipy
    (DOP853, or Radau when ``system.stiff``) at rtol 1e-10, atol 1e-12, which is far below any
    noise level used here.

    Parameters
    ----------
    system : ReferenceSystem
        The system to simulate (``physnode.systems``).
    n_trajectories : int
        Number of trajectories (ignored when ``y0`` is given).
    t_span : (float, float)
        Start and end time, ``t0 < t1``.
    n_points : int
        Samples per trajectory, at least 3.
    noise : float
        Gaussian noise, relative: state ``i`` gets standard deviation
        ``noise * std_i`` where ``std_i`` is the spread of clean state ``i`` over all samples.
    irregular : bool
        If true, the first sample is at ``t0`` and the others at sorted uniform random times in
        ``(t0, t1]``; otherwise a uniform grid including both ends.
    seed : int
        Seed of the initial states, times and noise.
    derivatives : bool
        If true, attach ``dy``: exact derivatives ``f(t, y)`` at the clean states.
    y0 : torch.Tensor, optional
        Initial states ``(n_trajectories, dim)`` to use instead of sampling.

    Returns
    -------
    Trajectories
        States in float64.

    Examples
    --------
    >>> import physnode as pn
    >>> data = pn.data.simulate(pn.systems.MassSpring(), n_trajectories=2, n_points=10, seed=1)
    >>> len(data), tuple(data[0].y.shape)
    (2, (10, 2))
    """
    n_points = check_int("n_points", n_points, minimum=3)
    noise = check_real("noise", noise, nonnegative=True)
    seed = check_int("seed", seed)
    t0, t1 = _check_span(t_span)
    generator = torch.Generator().manual_seed(seed)
    if y0 is None:
        n_trajectories = check_int("n_trajectories", n_trajectories, minimum=1)
        y0 = system.sample_initial_states(n_trajectories, generator)
    else:
        y0 = system._check_state(torch.as_tensor(y0, dtype=torch.float64)).reshape(-1,
                                                                                  system.dim)
    rng = np.random.default_rng(seed)

    clean, times = [], []
    for i, start in enumerate(y0):
        if irregular:
            t = np.concatenate([[t0], np.sort(rng.uniform(t0, t1, n_points - 1))])
        else:
            t = np.linspace(t0, t1, n_points)
        times.append(t)
        clean.append(reference_solution(system, start.cpu().numpy(), t, i))

    spread = np.concatenate(clean).std(axis=0)
    trajectories = []
    for t, y in zip(times, clean):
        noisy = y + noise * spread * rng.standard_normal(y.shape)
        t_, y_ = torch.from_numpy(t), torch.from_numpy(y)
        dy = system(t_, y_) if derivatives else None   # rhs ignores t or broadcasts it
        trajectories.append(Trajectory(t_, torch.from_numpy(noisy),
                                       None if dy is None else dy.detach()))
    return Trajectories(trajectories, system.state_names,
                        angles=getattr(system, "angles", None))


def _check_span(t_span):
    try:
        t0, t1 = (float(v) for v in t_span)
    except (TypeError, ValueError):
        raise ValueError(f"`t_span` must be a pair (t0, t1) of numbers; got {t_span!r}") from None
    if not (np.isfinite(t0) and np.isfinite(t1) and t1 > t0):
        raise ValueError(f"`t_span` must be finite with t0 < t1; got {t_span!r}")
    return t0, t1


def reference_solution(system, y0: np.ndarray, t: np.ndarray, index: int = 0) -> np.ndarray:
    """The solution of ``system`` from ``y0`` (``(dim,)``, or ``(batch, dim)`` solved as one
    stacked system) at times ``t``: ``(n, *y0.shape)``, by scipy DOP853 (Radau for stiff
    systems) at the reference tolerances; ``index`` names the trajectory in errors."""
    shape = y0.shape
    # scipy works on the CPU, whatever torch's default device is (a device context costs
    # every call, so it is entered only when needed)
    on_cpu = (contextlib.nullcontext() if torch.get_default_device().type == "cpu"
              else torch.device("cpu"))

    def rhs(time, y):
        with torch.no_grad(), on_cpu:
            return system(torch.tensor(time, dtype=torch.float64),
                          torch.from_numpy(y).reshape(shape)).numpy().reshape(-1)

    method = "Radau" if getattr(system, "stiff", False) else "DOP853"
    sol = solve_ivp(rhs, (t[0], t[-1]), y0.reshape(-1), method=method, t_eval=t,
                    rtol=REFERENCE_RTOL, atol=REFERENCE_ATOL)
    if not sol.success:
        raise IntegrationError(f"reference integration of trajectory {index} failed at "
                               f"t={sol.t[-1] if sol.t.size else t[0]}: {sol.message}",
                               samples=[index])
    return sol.y.T.reshape(len(t), *shape).copy()
