"""Per-sample arguments of ``solve`` (``args=``): they follow the rows an integrator evaluates
(the running samples of an adaptive solve, the stages of an implicit one, the rows whose
Jacobian is refreshed), gradients reach them, and a closure that does not follow the rows is
told what to do instead."""

import collections

import pytest
import torch

import physnode as pn

ADAPTIVE = ["dopri5", "radau5", "radau9", "kvaerno5"]


def van_der_pol(t, y, args):
    x, v = y[..., :1], y[..., 1:]
    return torch.cat([v, args["mu"] * (1 - x ** 2) * v - args["k"] * x], -1)


def problem():
    # Stiffness from 1 to 300: the samples finish at different attempts and the running set
    # shrinks, so every method evaluates compacted rows.
    mu = torch.tensor([[1.0], [30.0], [3.0], [300.0]], dtype=torch.float64)
    k = torch.tensor([[1.0], [2.0], [0.5], [1.0]], dtype=torch.float64)
    y0 = torch.tensor([[2.0, 0.0], [1.0, 0.5], [-1.5, 0.0], [2.0, -0.1]], dtype=torch.float64)
    return y0, {"mu": mu, "k": k}


@pytest.mark.parametrize("method", ADAPTIVE)
def test_a_batch_with_per_sample_args_equals_one_solve_per_sample(method):
    y0, args = problem()
    t = torch.linspace(0, 3, 4, dtype=torch.float64)
    options = {"method": method, "rtol": 1e-7, "atol": 1e-9}
    if method == "dopri5":                            # not stiff enough to take all night
        args = {**args, "mu": args["mu"].clamp(max=3.0)}
    batch = pn.solve(van_der_pol, y0, t, args=args, **options)
    for i in range(len(y0)):
        one = pn.solve(van_der_pol, y0[i:i + 1], t,
                       args={k: v[i:i + 1] for k, v in args.items()}, **options)
        torch.testing.assert_close(batch.ys[:, i], one.ys[:, 0], rtol=1e-12, atol=1e-12)
        assert int(batch.stats["steps"][i]) == int(one.stats["steps"][0])
    assert len(set(batch.stats["steps"].tolist())) > 1        # the running set did shrink


def test_args_keep_the_batch_dimensions_of_y0_and_take_any_pytree():
    y0, args = problem()
    t = torch.tensor([0.0, 0.5], dtype=torch.float64)
    flat = pn.solve(van_der_pol, y0, t, method="radau5", args=args).ys
    grid = pn.solve(lambda t, y, a: van_der_pol(t, y, {"mu": a[0], "k": a[1]}),
                    y0.reshape(2, 2, 2), t, method="radau5",
                    args=(args["mu"].reshape(2, 2, 1), args["k"].reshape(2, 2, 1))).ys
    torch.testing.assert_close(grid.reshape(2, 4, 2), flat, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"`args` tensors must have y0's batch dimensions "
                                         r"\(4,\) first \(one row per sample\); got shape "
                                         r"\(3, 1\)"):
        pn.solve(van_der_pol, y0, t, args={"mu": args["mu"][:3], "k": args["k"]})
    with pytest.raises(TypeError, match="`args` must be a tensor or a tuple, list or dict"):
        pn.solve(van_der_pol, y0, t, args={"mu": 1.0, "k": args["k"]})


@pytest.mark.parametrize("method", ["radau5", "dopri5"])
def test_a_closure_over_per_sample_tensors_is_told_to_use_args(method):
    y0, args = problem()
    args["mu"] = args["mu"].clamp(max=3.0)
    t = torch.linspace(0, 3, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"A per-sample parameter that `f` closes over does "
                                         r"not follow the rows: pass it as `args=`"):
        pn.solve(lambda t, y: van_der_pol(t, y, args), y0, t, method=method)


@pytest.mark.parametrize("method,adjoint", [("radau5", False), ("kvaerno5", False),
                                            ("dopri5", False), ("dopri5", True),
                                            ("rk4", True)])
def test_gradients_reach_args_as_finite_differences_say(method, adjoint):
    y0, args = problem()
    y0, args = y0[:2], {k: v[:2] for k, v in args.items()}
    args["mu"] = args["mu"].clamp(max=3.0).requires_grad_(True)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    options = {"method": method, "rtol": 1e-10, "atol": 1e-12, "dt": 1e-3,
               "adjoint": adjoint}

    def loss(mu):
        return pn.solve(van_der_pol, y0, t, args={"mu": mu, "k": args["k"]},
                        **options).ys[-1].pow(2).sum()

    (grad,) = torch.autograd.grad(loss(args["mu"]), args["mu"])
    eps = 1e-6
    with torch.no_grad():
        numeric = torch.stack([(loss(args["mu"] + eps * e) - loss(args["mu"] - eps * e))
                               / (2 * eps) for e in torch.eye(2, dtype=torch.float64)[:, :, None]])
    torch.testing.assert_close(grad[:, 0], numeric, rtol=1e-5, atol=1e-7)


def test_args_may_be_a_namedtuple_of_any_dtype_and_take_y0s_precision():
    Params = collections.namedtuple("Params", "mu k index")
    y0, args = problem()
    y0 = y0.float()
    t = torch.tensor([0.0, 0.5])
    params = Params(args["mu"].clamp(max=3.0), args["k"], torch.arange(4))      # float64

    def f(t, y, p):
        assert p.mu.dtype == torch.float32 and p.index.dtype == torch.int64
        return van_der_pol(t, y, {"mu": p.mu, "k": p.k})

    for method in ("rk4", "dopri5", "radau5"):
        ys = pn.solve(f, y0, t, method=method, args=params, dt=0.01).ys
        assert ys.dtype == torch.float32


def test_adjoint_refuses_a_closure_over_other_tensors_that_need_gradients():
    y0, args = problem()
    k = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.5], dtype=torch.float64)
    with pytest.raises(ValueError, match="`adjoint=True` needs `f` to be a torch.nn.Module"):
        pn.solve(lambda t, y, a: -k * a["mu"] * y, y0, t, method="rk4", dt=0.1,
                 args=args, adjoint=True)


def test_an_error_that_is_not_about_rows_passes_through_unchanged():
    y0, args = problem()

    def f(t, y, a):
        raise torch.OutOfMemoryError("out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        pn.solve(f, y0, torch.tensor([0.0, 1.0], dtype=torch.float64), method="dopri5",
                 args=args)
