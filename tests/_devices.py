"""Bridges to scipy and numpy that work whatever device the suite runs on (``--device``)."""

import contextlib

import torch


def as_numpy(x):
    return x.detach().cpu().numpy()


def scipy_field(system):
    """``f(t, y)`` on numpy arrays for scipy's solvers, evaluated on the CPU."""
    def f(_, y):
        with torch.no_grad(), on_cpu():
            return system(0.0, torch.from_numpy(y)).numpy()
    return f


def on_cpu():
    """The CPU as default device, entered only when the suite runs elsewhere (a device
    context slows every torch call)."""
    return (contextlib.nullcontext() if torch.get_default_device().type == "cpu"
            else torch.device("cpu"))


def seeded(seed):
    """A seeded generator on the device the suite runs on."""
    return torch.Generator(torch.get_default_device()).manual_seed(seed)
