"""Sparse Jacobians (``solve(..., jac_sparsity=...)``): the coloured Jacobian is the Jacobian,
SuperLU's Newton steps are the dense ones, and solves with a pattern give the same steps,
states and gradients as without."""

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import physnode as pn
from physnode.integrators.linalg import DenseLU, SparseLU, Sparsity, shifted_lu
from physnode.integrators.newton import jacobian


def brusselator(N):
    """The 1-D Brusselator on N points (2N states), its pattern and the reference start."""
    bruss = pn.systems.Brusselator(points=N)
    return bruss, bruss.jac_sparsity(), torch.tensor(bruss.reference_y0, dtype=torch.float64)


def random_pattern(n, density, seed):
    rng = np.random.default_rng(seed)
    return rng.random((n, n)) < density


def test_rows_of_one_colour_share_no_column():
    """The colouring is valid (a colour's rows can be read from one product) and small: a
    tridiagonal pattern takes 3 colours, the Brusselator's (two coupled tridiagonal blocks, four
    nonzeros per row and column) 6 passes instead of 40."""
    for pattern in (random_pattern(40, 0.1, 0), random_pattern(25, 0.3, 1)):
        sparsity = Sparsity(pattern, pattern.shape[0])
        for colour in range(sparsity.k):
            rows = pattern[sparsity.colours == colour]
            assert (rows.sum(0) <= 1).all()
    tridiagonal = np.abs(np.subtract.outer(np.arange(30), np.arange(30))) <= 1
    assert Sparsity(tridiagonal, 30).k == 3
    assert Sparsity(brusselator(20)[1], 40).k <= 6


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_coloured_jacobian_equals_the_dense_one(dtype):
    """A field whose Jacobian has a random pattern, with batch dimensions (and stage points):
    the entries read from the colours' products equal autograd's row by row."""
    n = 30
    pattern = random_pattern(n, 0.12, 2) | np.eye(n, dtype=bool)
    generator = torch.Generator().manual_seed(0)
    W = torch.randn(n, n, dtype=dtype, generator=generator) * torch.as_tensor(pattern)

    def f(t, y):
        return torch.tanh(y @ W.T) * (1 + t) + y ** 2 @ W.T

    y = torch.randn(4, 3, n, dtype=dtype, generator=generator)
    t = torch.rand(4, 3, 1, dtype=torch.float64, generator=generator)
    found = jacobian(f, t, y, sparsity=Sparsity(pattern, n))
    expected = jacobian(f, t, y)
    torch.testing.assert_close(found, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_sparse_lu_solves_like_the_dense_one(dtype):
    """``shift·I − scale·J`` factorised by SuperLU from the pattern's entries solves as
    torch's dense LU does, with batch dimensions and per-matrix shifts; take and put follow
    the rows."""
    n, pattern = 12, random_pattern(12, 0.25, 3)
    generator = torch.Generator().manual_seed(1)
    J = torch.randn(3, 2, n, n, dtype=dtype, generator=generator) * torch.as_tensor(pattern)
    shift = torch.rand(3, 2, 1, 1, dtype=torch.float64, generator=generator) + 2
    b = torch.randn(3, 2, n, dtype=dtype, generator=generator)
    sparse = shifted_lu(shift, J, Sparsity(pattern, n), scale=0.5)
    dense = shifted_lu(shift, J, None, scale=0.5)
    assert isinstance(sparse, SparseLU) and isinstance(dense, DenseLU)
    assert sparse.shape == dense.shape == (3, 2)
    expected = torch.linalg.solve(shift * torch.eye(n, dtype=dtype) - 0.5 * J, b)
    torch.testing.assert_close(sparse.solve(b), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dense.solve(b), expected, rtol=1e-12, atol=1e-12)
    rows = torch.tensor([2, 0])
    torch.testing.assert_close(sparse.take(rows).solve(b[rows]), expected[rows])
    swapped = sparse.put(torch.tensor([0]), sparse.take(torch.tensor([2])))
    torch.testing.assert_close(swapped.solve(b[[2, 1, 2]]), expected[[2, 1, 2]])


@pytest.mark.parametrize("shift, scale", [
    (2.0, 1.0), (torch.tensor(3.0, dtype=torch.float64), 0.5),
    (torch.tensor([[[[2.0]]], [[[4.0]]], [[[5.0]]]], dtype=torch.float64),
     torch.tensor([[[[0.5]]], [[[1.0]]], [[[2.0]]]], dtype=torch.float64)),
    (torch.tensor([[[[2.0 + 1.0j]], [[3.0 - 2.0j]]]], dtype=torch.complex128), 1.0),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dense_shifted_lu_factors_exactly_shift_times_identity_minus_scale_times_j(
        shift, scale, dtype):
    """The dense Newton matrix ``shift·I − scale·J`` (built without an identity matrix) has
    the dtype and broadcast shape of that expression and the same factors to the bit."""
    J = torch.randn(3, 2, 6, 6, generator=torch.Generator().manual_seed(0)).to(dtype)
    M = shift * torch.eye(6, dtype=dtype) - scale * J
    lu = shifted_lu(shift, J, None, scale=scale)
    assert lu.LU.dtype == M.dtype and lu.LU.shape == M.shape
    LU, pivots = torch.linalg.lu_factor(M)
    assert torch.equal(lu.LU, LU) and torch.equal(lu.pivots, pivots)


@pytest.mark.parametrize("method", ["radau5", "radau9", "kvaerno5", "backward_euler"])
def test_a_pattern_changes_the_linear_algebra_not_the_steps(method):
    """The Brusselator on 20 points, a batch of 3 initial states: the same per-sample step
    counts as dense Jacobians and LU, states equal to round-off, and scipy Radau (given the
    same pattern) agrees to the tolerance."""
    field, pattern, y0 = brusselator(20)
    y0 = torch.stack([y0, y0 * 1.1, y0 * 0.9])
    t = torch.linspace(0, 2, 5, dtype=torch.float64)
    options = {"rtol": 1e-7, "atol": 1e-9} if method != "backward_euler" else {"dt": 0.01}
    dense = pn.solve(field, y0, t, method=method, **options)
    sparse = pn.solve(field, y0, t, method=method, jac_sparsity=pattern, **options)
    assert {k: np.asarray(v).tolist() for k, v in sparse.stats.items()} == \
        {k: np.asarray(v).tolist() for k, v in dense.stats.items()}
    torch.testing.assert_close(sparse.ys, dense.ys, rtol=1e-9, atol=1e-10)
    if method != "backward_euler":
        ref = solve_ivp(lambda _, y: field(None, torch.from_numpy(y)).numpy(), (0, 2),
                        y0[1].numpy(), method="Radau", rtol=1e-11, atol=1e-13,
                        jac_sparsity=pattern, t_eval=t.numpy()).y.T
        assert np.abs(sparse.ys[:, 1].numpy() - ref).max() < 1e-5


def test_gradients_through_a_sparse_solve_equal_the_dense_ones():
    """The implicit-function-theorem gradients do not depend on how Newton solved."""
    field, pattern, y0 = brusselator(8)
    t = torch.tensor([0.0, 0.5], dtype=torch.float64)
    grads = []
    for sparsity in (None, pattern):
        y = y0.clone().requires_grad_(True)
        sol = pn.solve(field, y, t, method="radau5", rtol=1e-8, atol=1e-10,
                       jac_sparsity=sparsity)
        (grad,) = torch.autograd.grad(sol.ys[-1].square().sum(), y)
        grads.append(grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-9, atol=1e-10)


def test_complex_states_with_a_pattern():
    """A tridiagonal Schrödinger chain ``y' = −i H y``: with a pattern, radau5 matches the
    matrix exponential as it does without."""
    n = 16
    H = torch.diag(torch.full((n - 1,), -1.0, dtype=torch.float64), 1)
    H = (H + H.T + torch.diag(torch.linspace(0, 1, n, dtype=torch.float64))).to(torch.complex128)
    y0 = torch.zeros(n, dtype=torch.complex128)
    y0[n // 2] = 1
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    sol = pn.solve(lambda t, y: -1j * y @ H.T, y0, t, method="radau5", rtol=1e-9, atol=1e-12,
                   jac_sparsity=H.abs() > 0)
    exact = torch.linalg.matrix_exp(-1j * H) @ y0
    assert (sol.ys[-1] - exact).abs().max() < 1e-7


def test_bad_patterns_are_refused():
    field, pattern, y0 = brusselator(5)
    t = [0.0, 1.0]
    with pytest.raises(ValueError, match=r"`jac_sparsity` must have shape \(n, n\) = \(10, 10\)"
                       r" for states of 10 components; got shape \(9, 9\)"):
        pn.solve(field, y0, t, method="radau5", jac_sparsity=np.ones((9, 9)))
    with pytest.raises(ValueError, match="`jac_sparsity` is for implicit methods, which use a "
                                         "Jacobian; 'dopri5' does not"):
        pn.solve(field, y0, t, method="dopri5", jac_sparsity=pattern)
    with pytest.raises(TypeError, match="`jac_sparsity` must hold numbers or booleans; got "
                                        "dtype <U1"):
        pn.solve(field, y0, t, method="radau5", jac_sparsity=np.full((10, 10), "x"))
