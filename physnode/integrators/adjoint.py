"""Gradients in O(1) memory in the number of steps (``solve(..., adjoint=True)``).

Explicit Runge–Kutta methods use torchdiffeq's continuous adjoint (``odeint_adjoint``):
the adjoint ODE is integrated backwards with the same method. Reversible methods
(``reversible = True``: leapfrog, Yoshida, Gauss–Legendre; symmetric, ``Φ_{−h} = Φ_h⁻¹``)
get an exact reversible adjoint: the backward pass reconstructs every state by stepping
backwards and backpropagates through one step at a time, the exact discrete gradient (up to
round-off in the reconstruction) without storing the trajectory.
"""

from __future__ import annotations

import torch

from .base import Field
from .stepping import check_finite_state, step_schedule


def torchdiffeq_handles(method) -> bool:
    """Whether torchdiffeq's adjoint runs ``method``: the explicit Runge–Kutta methods, whose
    names are torchdiffeq's."""
    return not (method.implicit or method.symplectic)


def adjoint_parameters(f, f0: torch.Tensor, y0: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The tensors the adjoint differentiates: the parameters of an ``nn.Module`` ``f``.

    A plain callable whose output depends on tensors requiring gradients would lose those
    gradients silently, so it is refused.
    """
    if isinstance(f, torch.nn.Module):
        return tuple(p for p in f.parameters() if p.requires_grad)
    if f0.requires_grad and not y0.requires_grad:
        raise ValueError("`adjoint=True` needs `f` to be a torch.nn.Module so that the "
                         "tensors it depends on are known; got a plain callable whose output "
                         "requires gradients")
    return ()


def solve_torchdiffeq_adjoint(method, field: Field, y0, t, dt, rtol, atol, params):
    import torchdiffeq

    options = {"step_size": dt} if dt is not None and not method.adaptive else None

    class Module(torch.nn.Module):   # odeint_adjoint wants a module; params passed explicitly
        def forward(self, time, y):
            return field(time, y)

    return torchdiffeq.odeint_adjoint(Module(), y0, t, method=method.name, rtol=rtol,
                                      atol=atol, options=options, adjoint_params=params)


class _ReversibleSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, method, field, t_out, dt, y0, *params):
        ctx.method, ctx.field, ctx.t_out, ctx.dt = method, field, t_out, dt
        ys, y = [y0], y0
        with torch.no_grad():
            for k, h, times in step_schedule(t_out, dt):
                for time in times:
                    y, _ = method.step(field, time, y, h)
                check_finite_state(y, k, t_out, h, method.name, {})
                ys.append(y)
        ctx.save_for_backward(y, *params)
        return torch.stack(ys)

    @staticmethod
    def backward(ctx, grad_ys):
        method = ctx.method
        y, *params = ctx.saved_tensors
        schedule = list(step_schedule(ctx.t_out, ctx.dt))
        # Implicit steps are differentiated by the implicit function theorem.
        differentiable = ctx.field.variant(needs_grad=True)
        adjoint = grad_ys[-1]
        param_grads = [torch.zeros_like(p) for p in params]
        for k, h, times in reversed(schedule):
            for time in reversed(times):
                with torch.no_grad():      # reconstruct the start of the step
                    y_prev, _ = method.step(ctx.field, time + h, y, -h)
                with torch.enable_grad():
                    y_in = y_prev.detach().requires_grad_(True)
                    y_out, _ = method.step(differentiable, time, y_in, h)
                    grads = torch.autograd.grad(y_out, (y_in, *params), adjoint,
                                                allow_unused=True)
                adjoint = grads[0]
                for i, g in enumerate(grads[1:]):
                    if g is not None:
                        param_grads[i] += g
                y = y_prev
            adjoint = adjoint + grad_ys[k]
        return (None, None, None, None, adjoint, *param_grads)


def solve_reversible_adjoint(method, field: Field, y0, t_out, dt, params):
    """States at ``t_out`` with gradients by the reversible adjoint; ``(T, B, n)``."""
    return _ReversibleSolve.apply(method, field, t_out, dt, y0, *params)
