"""solve(..., adjoint=True): the forward pass of the plain solve (the same values and stats),
the gradients of backpropagation, with memory O(1) (reversible methods) or O(√N)
(checkpointed, every other method) in the number of steps N."""

import math

import pytest
import torch

import physnode as pn
from physnode.integrators import METHODS
from physnode.integrators.stepping import segment_lengths

REVERSIBLE = [name for name, cls in METHODS.items() if cls.reversible]
CHECKPOINTED = [name for name, cls in METHODS.items() if not cls.reversible]


class PendulumField(torch.nn.Module):
    """Pendulum with a learnable g, as a separable Hamiltonian field; light damping for the
    methods that do not need a separable field."""

    def __init__(self, damping=0.0):
        super().__init__()
        self.g = torch.nn.Parameter(torch.tensor(2.5, dtype=torch.float64))
        self.damping = damping

    def forward(self, t, y):
        return torch.stack([y[..., 1], -self.g * torch.sin(y[..., 0])
                            - self.damping * y[..., 1]], -1)


def _solve(method, adjoint, steps=40):
    field = PendulumField(damping=0.0 if METHODS[method].symplectic else 0.1)
    y0 = torch.tensor([[1.0, 0.2], [0.3, -0.5]], dtype=torch.float64, requires_grad=True)
    t = torch.linspace(0, 2.0, 5, dtype=torch.float64)
    sol = pn.solve(field, y0, t, method=method, dt=2.0 / steps, rtol=1e-8, atol=1e-10,
                   adjoint=adjoint)
    loss = (sol.ys ** 2).sum() + sol.ys[2, 0, 1]
    return torch.autograd.grad(loss, (y0, field.g)), sol


def _same_stats(a, b):
    return a.keys() == b.keys() and all(torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k]))
                                        for k in a)


@pytest.mark.parametrize("method", list(METHODS))
def test_adjoint_keeps_the_forward_pass_and_gives_the_backpropagation_gradient(method):
    (gy_adj, gg_adj), adj = _solve(method, adjoint=True)
    (gy, gg), plain = _solve(method, adjoint=False)
    assert torch.equal(adj.ys, plain.ys)              # bit for bit: the same steps
    assert _same_stats(adj.stats, plain.stats), (adj.stats, plain.stats)
    # Checkpoints recompute the same operations (round-off from the order of the sums);
    # the reversible adjoint reconstructs the states by stepping backwards.
    tol = 1e-8 if METHODS[method].reversible else 1e-12
    torch.testing.assert_close(gy_adj, gy, rtol=tol, atol=tol)
    torch.testing.assert_close(gg_adj, gg, rtol=tol, atol=tol)


def test_adjoint_of_an_adaptive_solve_keeps_per_sample_steps():
    """The checkpointed adaptive loop keeps every sample's own steps (a continuous adjoint on a
    shared step, as torchdiffeq's, would not): batch answers equal one-at-a-time answers."""
    field = PendulumField(damping=0.3)
    y0 = torch.tensor([[1.0, 0.2], [2.9, -0.5], [0.01, 0.0]], dtype=torch.float64)
    t = torch.tensor([0.0, 3.0], dtype=torch.float64)
    batch = pn.solve(field, y0.requires_grad_(), t, method="dopri5", rtol=1e-7, adjoint=True)
    assert len(set(batch.stats["steps"].tolist())) > 1
    for i in range(3):
        one = pn.solve(field, y0[i:i + 1].detach().requires_grad_(), t, method="dopri5",
                       rtol=1e-7, adjoint=True)
        torch.testing.assert_close(batch.ys[:, i], one.ys[:, 0], rtol=1e-12, atol=1e-12)
        assert batch.stats["steps"][i] == one.stats["steps"][0]


def test_gradients_through_a_hamiltonian_network_with_checkpoints():
    """A field that differentiates inside (an HNN) is recomputed, not replayed from saved
    tensors: the gradients equal backpropagation's."""
    torch.manual_seed(0)
    hnn = pn.models.HNN(dof=1, hidden=16).double()
    y0 = torch.tensor([[0.5, 0.1], [-0.2, 0.4]], dtype=torch.float64)
    t = torch.linspace(0, 1, 3, dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        ys = pn.solve(hnn, y0, t, method="rk4", dt=0.05, adjoint=adjoint).ys
        # (The output bias of H does not enter the field.)
        grads.append(torch.autograd.grad(ys.pow(2).sum(), list(hnn.parameters()),
                                         allow_unused=True, materialize_grads=True))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert any(g.abs().max() > 0 for g in grads[1])


def test_segments_are_square_root_long():
    for n in (1, 2, 10, 1000, 1001):
        lengths = segment_lengths(n)
        assert sum(lengths) == n and max(lengths) == math.ceil(math.sqrt(n))
        assert len(lengths) <= math.ceil(math.sqrt(n))


def _peak_saved_tensors(solve):
    """The most tensors autograd holds at once for ``solve()`` and its backward pass (each
    saved tensor counted while it is alive; detached, so that holding it makes no cycle).
    Returns the peak and the solution."""
    live, peak = [0], [0]

    class Held:
        def __init__(self, x):
            self.x = x.detach()
            live[0] += 1
            peak[0] = max(peak[0], live[0])

        def __del__(self):
            live[0] -= 1

    with torch.autograd.graph.saved_tensors_hooks(Held, lambda held: held.x):
        sol = solve()
        sol.ys.sum().backward()
    return peak[0], sol


def _fixed_peak(method, steps, adjoint):
    field = PendulumField(damping=0.0 if METHODS[method].symplectic else 0.1)
    y0 = torch.tensor([[1.0, 0.2]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    return _peak_saved_tensors(lambda: pn.solve(field, y0, t, method=method, dt=1.0 / steps,
                                                adjoint=adjoint))[0]


@pytest.mark.parametrize("method", ["leapfrog", "gauss_legendre4"])
def test_reversible_adjoint_memory_does_not_grow_with_steps(method):
    assert _fixed_peak(method, 16, True) == _fixed_peak(method, 1024, True)
    assert _fixed_peak(method, 1024, False) > 50 * _fixed_peak(method, 16, True)


@pytest.mark.parametrize("method", ["rk4", "symplectic_euler", "backward_euler"])
def test_checkpointed_memory_grows_as_the_square_root_of_the_steps(method):
    small, large = (_fixed_peak(method, n, True) for n in (64, 1024))
    plain = _fixed_peak(method, 1024, False)
    assert large < 6 * small, (small, large)         # √16 = 4; linear growth would be 16
    assert large < plain / 8, (large, plain)


def test_checkpointed_adaptive_memory_grows_as_the_square_root_of_the_attempts():
    """dopri5 at two tolerances (about 70 and 1050 attempts), in segments of 1, 2, 3, ..."""
    def peak(rtol, adjoint):
        field = PendulumField(damping=0.1)
        y0 = torch.tensor([[1.0, 0.2]], dtype=torch.float64, requires_grad=True)
        top, sol = _peak_saved_tensors(lambda: pn.solve(
            field, y0, torch.tensor([0.0, 20.0], dtype=torch.float64), method="dopri5",
            rtol=rtol, atol=rtol, adjoint=adjoint))
        return top, int(sol.stats["steps"][0] + sol.stats["rejected"][0])

    (small, n_small), (large, n_large) = peak(1e-5, True), peak(1e-11, True)
    plain, _ = peak(1e-11, False)
    ratio = n_large / n_small
    assert ratio > 10, (n_small, n_large)
    assert large < 1.5 * math.sqrt(ratio) * small, (small, large, n_small, n_large)
    assert large < plain / 10, (large, plain)


def test_adjoint_refuses_closures_hiding_parameters():
    g = torch.tensor(1.0, requires_grad=True)
    for method in ("leapfrog", "rk4"):
        with pytest.raises(ValueError, match=r"^`adjoint=True` needs `f` to be a "
                                             r"torch.nn.Module so that the tensors it depends "
                                             r"on are known; got a plain callable whose output "
                                             r"requires gradients$"):
            pn.solve(lambda t, y: -g * y, torch.ones(1, 2), torch.tensor([0.0, 1.0]),
                     method=method, dt=0.1, adjoint=True)


def test_adjoint_without_gradients_is_the_plain_solve():
    y0 = torch.tensor([[1.0, 0.2]], dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    with torch.no_grad():
        a = pn.solve(PendulumField(), y0, t, method="rk4", dt=0.1, adjoint=True)
    b = pn.solve(PendulumField(), y0, t, method="rk4", dt=0.1)
    assert torch.equal(a.ys, b.ys) and not a.ys.requires_grad
