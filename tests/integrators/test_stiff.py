"""Stiff test-set problems against published reference values, within scipy Radau's cost."""

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import physnode as pn
from physnode.integrators.newton import jacobian
from tests._devices import as_numpy, on_cpu, scipy_field

PROBLEMS = {
    "HIRES": (pn.systems.HIRES, {}, 1e-10),
    "ROBER": (pn.systems.Robertson, {}, 1e-14),
    "VDPOL_mu": (pn.systems.VanDerPol, {"mu": 1000.0}, 1e-10),
    "VDPOL_eps": (pn.systems.VanDerPol, {"eps": 1e-6}, 1e-10),
    "OREGO": (pn.systems.Oregonator, {}, 1e-10),
}
RTOL = 1e-8


#: kvaerno5 on OREGO and on the ε-form Van der Pol take 20-30 s each: run with ``-m slow``.
SLOW = {("OREGO", "kvaerno5"), ("VDPOL_eps", "kvaerno5")}


@pytest.mark.parametrize("name,method", [
    pytest.param(name, method, id=f"{name}-{method}",
                 marks=[pytest.mark.slow] if (name, method) in SLOW else [])
    for name in PROBLEMS for method in ("radau5", "radau9", "kvaerno5")])
def test_matches_reference_to_6_digits_within_scipy_cost(stiff_reference, name, method):
    cls, kwargs, atol = PROBLEMS[name]
    system = cls(**kwargs)
    ref = stiff_reference[name]
    y0 = torch.tensor(ref["y0"], dtype=torch.float64)
    t = torch.tensor(ref["t_span"], dtype=torch.float64)
    sol = pn.solve(system, y0, t, method=method, rtol=RTOL, atol=atol)
    y_end, y_ref = as_numpy(sol.ys[-1]), np.array(ref["y_end"])
    digits = -np.log10(np.abs(y_end - y_ref) / np.abs(y_ref))
    assert digits.min() >= 6, digits

    def jac(_, y):
        with on_cpu():
            return jacobian(system, torch.tensor(0.0), torch.from_numpy(y)).numpy()

    scipy = solve_ivp(scipy_field(system), ref["t_span"], ref["y0"], method="Radau", rtol=RTOL,
                      atol=atol, jac=jac)
    stats = {k: int(v) for k, v in sol.stats.items()}
    # The budget: scipy's Radau with an exact Jacobian at the same tolerances. Measured
    # (benchmarks/RESULTS.md): radau5 within +2% of its f-evaluations, +9% of its Jacobians
    # (ROBER), about half its LU factorisations, fewer steps; radau9 at most 60% of its
    # f-evaluations, 75% of its Jacobians, half its LU factorisations, a quarter of its steps.
    #
    # kvaerno5 solves its 7 stages one after another with an n × n LU: more evaluations and
    # Jacobians than scipy's Radau (measured 0.9–1.6× the f-evaluations, 2× the Jacobians),
    # far cheaper linear algebra on large systems. Its budget is that measurement.
    nfev, njev = (1.7, 2.5) if method == "kvaerno5" else (1.05, 1.10)
    assert stats["nfev"] <= nfev * scipy.nfev, (stats, scipy.nfev)
    assert stats["njev"] <= njev * scipy.njev, (stats, scipy.njev)
    assert stats["nlu"] <= scipy.nlu, (stats, scipy.nlu)
    assert stats["steps"] <= 1.05 * (len(scipy.t) - 1), (stats, len(scipy.t) - 1)


def test_robertson_conserves_mass_and_stays_nonnegative():
    rober = pn.systems.Robertson()
    t = torch.logspace(-6, 11, 18, dtype=torch.float64)
    t = torch.cat([t.new_zeros(1), t])
    sol = pn.solve(rober, torch.tensor(rober.reference_y0, dtype=torch.float64), t,
                   method="radau5", rtol=1e-8, atol=1e-14)
    mass = rober.invariants(sol.ys)["mass"]
    torch.testing.assert_close(mass, torch.ones_like(mass), atol=1e-12, rtol=0)
    assert (sol.ys > -1e-14).all()


def test_backward_euler_is_stable_where_explicit_euler_explodes():
    vdp = pn.systems.VanDerPol(mu=1000.0)
    y0 = torch.tensor([2.0, 0.0], dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    implicit = pn.solve(vdp, y0, t, method="backward_euler", dt=0.01).ys[-1]
    reference = pn.solve(vdp, y0, t, method="radau5", rtol=1e-10, atol=1e-12).ys[-1]
    assert abs(implicit[0] - reference[0]) < 1e-3
    with pytest.raises(pn.IntegrationError, match="non-finite"):
        pn.solve(vdp, y0, t, method="euler", dt=0.01)
