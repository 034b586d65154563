"""Memory-saving gradients (``solve(..., adjoint=True)``) that leave the forward pass as it is.

* Reversible methods (``reversible = True``: leapfrog, Yoshida, implicit midpoint and
  Gauss–Legendre, all symmetric, ``Φ_{−h} = Φ_h⁻¹``): the forward pass is the plain fixed-step
  loop without a graph; the backward pass reconstructs every state by stepping backwards and
  backpropagates through one step at a time. The exact discrete gradient (up to round-off in
  the reconstruction) in ``O(1)`` memory in the number of steps.
* Every other method: checkpointed backpropagation through physnode's own stepper
  (:mod:`.stepping`): ``O(√N)`` memory, one extra evaluation of each step.

Either way the values, and the statistics, are those of the solve without ``adjoint``: each
sample keeps its own steps, which a continuous adjoint on a shared step size (torchdiffeq's
``odeint_adjoint``) would not.
"""

from __future__ import annotations

import torch

from .base import Field, FixedStepIntegrator
from .stepping import integrate_fixed, step_schedule


def adjoint_parameters(f, f0: torch.Tensor, y0: torch.Tensor,
                       args: tuple = ()) -> tuple[torch.Tensor, ...]:
    """The tensors the adjoint differentiates: the parameters of an ``nn.Module`` ``f`` and
    the tensors of ``solve``'s ``args`` that require gradients (``f0``: ``f`` at the start
    with ``y0`` and those ``args`` detached).

    A plain callable whose output depends on tensors requiring gradients would lose those
    gradients silently, so it is refused.
    """
    if isinstance(f, torch.nn.Module):
        return tuple(p for p in f.parameters() if p.requires_grad) + tuple(args)
    if f0.requires_grad:
        raise ValueError("`adjoint=True` needs `f` to be a torch.nn.Module so that the "
                         "tensors it depends on are known; got a plain callable whose output "
                         "requires gradients")
    return tuple(args)


class _ReversibleSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, method, field, t_out, dt, sink, y0, *params):
        ctx.method, ctx.field, ctx.t_out, ctx.dt = method, field, t_out, dt
        counting = field.variant(needs_grad=field.needs_grad, count=y0.shape[0])
        ys, stats = integrate_fixed(method, counting, y0, t_out, dt)
        sink.update(stats)
        ctx.save_for_backward(ys[-1], *params)
        return ys

    @staticmethod
    def backward(ctx, grad_ys):
        method = ctx.method
        y, *params = ctx.saved_tensors
        schedule = list(step_schedule(ctx.t_out, ctx.dt))
        # Implicit steps are differentiated by the implicit function theorem.
        plain = ctx.field.variant(needs_grad=False)
        differentiable = ctx.field.variant(needs_grad=True)
        adjoint = grad_ys[-1]
        param_grads = [torch.zeros_like(p) for p in params]
        for k, h, times in reversed(schedule):
            for time in reversed(times):
                with torch.no_grad():      # reconstruct the start of the step
                    y_prev, _ = method.step(plain, time + h, y, -h)
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
        return (None, None, None, None, None, adjoint, *param_grads)


def solve_reversible_adjoint(method: FixedStepIntegrator, field: Field, y0, t_out, dt,
                             params) -> tuple[torch.Tensor, dict]:
    """States at ``t_out`` (``(T, B, n)``) with gradients by the reversible adjoint, and the
    statistics of the forward pass."""
    stats = {}
    ys = _ReversibleSolve.apply(method, field, t_out, dt, stats, y0, *params)
    return ys, stats
