"""Complex states: explicit and implicit methods integrate them (real times, steps and error
norms; complex Newton and LU), checked against the matrix exponential, with gradients (also
checkpointed, adjoint=True); symplectic methods, whose (q, p) structure is real, refuse
them."""

import pytest
import torch

import physnode as pn
from physnode.integrators import METHODS

OMEGA = 1.7
COMPLEX_METHODS = [name for name, cls in METHODS.items() if not cls.symplectic]


def chain_hamiltonian(n=6, hopping=1.0):
    """Tight-binding chain with an on-site potential: a Hermitian ``H``; ``iψ' = Hψ``."""
    H = torch.diag(torch.linspace(-0.5, 0.5, n, dtype=torch.float64)).to(torch.complex128)
    off = torch.full((n - 1,), -hopping, dtype=torch.complex128)
    return H + torch.diag(off, 1) + torch.diag(off, -1)


def tolerance(method):
    if method.adaptive:
        return 1e-7
    return {1: 1e-2, 2: 1e-5}.get(method.order, 1e-7)   # Euler: |y0| ω² h T / 2 ≈ 6e-3


def step(method):
    return 1e-3 if method.order <= 2 else 1e-2


def initial(shape, n, seed=3):
    g = torch.Generator().manual_seed(seed)
    re, im = torch.randn(2, *shape, n, generator=g, dtype=torch.float64)
    return torch.complex(re, im)


@pytest.mark.parametrize("name", COMPLEX_METHODS)
def test_rotation_matches_the_exponential(name):
    method = METHODS[name]()
    y0 = initial((3,), 2)
    t = torch.tensor([0.0, 0.8, 2.0], dtype=torch.float64)
    sol = pn.solve(lambda t, y: 1j * OMEGA * y, y0, t, method=name, dt=step(method),
                   rtol=1e-10, atol=1e-12)
    assert sol.ys.dtype == torch.complex128 and sol.t.dtype == torch.float64
    exact = torch.exp(1j * OMEGA * t.to(torch.complex128))[:, None, None] * y0
    assert (sol.ys - exact).abs().max() < tolerance(method)


@pytest.mark.parametrize("name", COMPLEX_METHODS)
def test_schrodinger_chain_matches_the_matrix_exponential_and_keeps_the_norm(name):
    method = METHODS[name]()
    H = chain_hamiltonian()
    y0 = initial((2,), 6)
    y0 = y0 / torch.linalg.vector_norm(y0, dim=-1, keepdim=True)
    t = torch.tensor([0.0, 1.5], dtype=torch.float64)
    sol = pn.solve(lambda t, psi: -1j * psi @ H.T, y0, t, method=name, dt=step(method),
                   rtol=1e-10, atol=1e-12)
    exact = y0 @ torch.linalg.matrix_exp(-1j * H * 1.5).T
    assert (sol.ys[-1] - exact).abs().max() < tolerance(method)
    norms = torch.linalg.vector_norm(sol.ys[-1], dim=-1)
    assert (norms - 1).abs().max() < 10 * tolerance(method)


@pytest.mark.parametrize("name", ["radau5", "kvaerno5", "dopri5", "rk4"])
def test_complex_batch_equals_real_and_imaginary_parts_as_a_real_state(name):
    """The same ODE written on (Re ψ, Im ψ) with real arithmetic gives the same trajectory."""
    H = chain_hamiltonian(4)
    y0 = initial((3,), 4)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    complex_sol = pn.solve(lambda t, psi: -1j * psi @ H.T, y0, t, method=name, dt=1e-2,
                           rtol=1e-11, atol=1e-13).ys[-1]

    def real_field(t, z):
        psi = torch.complex(z[..., :4], z[..., 4:])
        d = -1j * psi @ H.T
        return torch.cat([d.real, d.imag], -1)

    real_sol = pn.solve(real_field, torch.cat([y0.real, y0.imag], -1), t, method=name,
                        dt=1e-2, rtol=1e-11, atol=1e-13).ys[-1]
    torch.testing.assert_close(torch.complex(real_sol[..., :4], real_sol[..., 4:]),
                               complex_sol, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("name", ["radau5", "rk4"])
def test_gradients_through_a_complex_solve(name):
    """d|ψ(T)|²/dω of ψ' = iωψ − γψ is 0 (a phase) and d/dγ is −2T|ψ(T)|²."""
    omega = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    gamma = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    y0 = torch.tensor([1.0 + 0.5j], dtype=torch.complex128)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    sol = pn.solve(lambda t, y: (1j * omega - gamma) * y, y0, t, method=name, dt=1e-3,
                   rtol=1e-10, atol=1e-12)
    power = sol.ys[-1].abs().pow(2).sum()
    d_omega, d_gamma = torch.autograd.grad(power, (omega, gamma))
    assert abs(float(d_omega)) < 1e-8
    assert abs(float(d_gamma) - (-2 * 2.0 * power.item())) < 1e-6


@pytest.mark.parametrize("name", [name for name, cls in METHODS.items() if cls.symplectic])
def test_symplectic_methods_refuse_complex_states(name):
    with pytest.raises(TypeError, match=rf"^`y0` must be real: the symplectic method '{name}' "
                                        r"works on real \(q, p\); got torch.complex128 "
                                        r"\(integrate the real and imaginary parts as a real "
                                        r"state of twice the width\)$"):
        pn.solve(lambda t, y: 1j * y, torch.ones(2, dtype=torch.complex128), [0.0, 1.0],
                 method=name, dt=0.1)


@pytest.mark.parametrize("name", ["rk4", "radau5"])
def test_adjoint_of_a_complex_solve_equals_backpropagation(name):
    """Checkpointed gradients work on complex states: the same values and gradients."""
    H = chain_hamiltonian(4)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    results = []
    for adjoint in (False, True):
        y0 = initial((2,), 4).requires_grad_()
        ys = pn.solve(lambda t, psi: -1j * psi @ H.T - 0.1 * psi, y0, t, method=name, dt=0.05,
                      rtol=1e-9, atol=1e-11, adjoint=adjoint).ys
        (grad,) = torch.autograd.grad(ys[-1].abs().pow(2).sum(), y0)
        results.append((ys.detach(), grad))
    assert torch.equal(results[0][0], results[1][0])
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-12, atol=1e-14)
