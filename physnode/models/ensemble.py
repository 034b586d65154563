"""``Ensemble``: several models of one kind, for the uncertainty that one fit hides.

Each member is built by the same factory from its own seed and, with ``bootstrap=True``, trained
on its own resample of the trajectories. :func:`physnode.fit` trains every member as
``fit(member, data, seed=seed + i)`` would (the same weights, to the bit), one after the
other; :func:`physnode.discover` discovers on every member and reports how often each term was
selected and how much its coefficient varies; :func:`physnode.compare_energy` reports the
members' band.

The members train one after the other, not in one batched ``torch.func.vmap`` computation:
on 2 CPU cores a vmapped ensemble of 8 pendulum HNNs measured 0.89–1.34× the time of 8
sequential fits (``benchmarks/RESULTS.md``), since each fit already keeps the cores busy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .._validation import check_int


class Ensemble(nn.Module):
    """``n`` models from ``factory()``, member ``i`` initialised under the seed ``seed + i``.

    Called as a vector field, the ensemble is the members' mean; ``members`` holds them.

    Parameters
    ----------
    factory : callable
        ``factory() -> model`` (a physnode model or any ``nn.Module`` vector field), called
        once per member under ``torch.manual_seed(seed + i)`` (the global generator's state is
        restored afterwards).
    n : int
        Members (at least 2).
    seed : int
        Member ``i``'s initialisation seed is ``seed + i``; :func:`physnode.fit` adds ``i`` to
        its own ``seed`` as well.
    bootstrap : bool
        Train member ``i`` on trajectories drawn with replacement from the data (seeded by
        ``seed + i``) instead of on all of them: the spread then includes the data's
        sampling uncertainty, not only the optimisation's.

    Examples
    --------
    >>> import physnode as pn
    >>> models = pn.models.Ensemble(lambda: pn.models.HNN(dof=1), n=3)
    >>> len(models.members), models.default_integrator
    (3, 'gauss_legendre4')
    """

    def __init__(self, factory, n: int, *, seed: int = 0, bootstrap: bool = False):
        super().__init__()
        if not callable(factory):
            raise TypeError(f"`factory` must be callable (factory() -> model); got "
                            f"{type(factory).__name__}")
        n = check_int("n", n, minimum=2)
        self.seed = check_int("seed", seed)
        if not isinstance(bootstrap, bool):
            raise TypeError(f"`bootstrap` must be True or False; got {bootstrap!r}")
        self.bootstrap = bootstrap
        members = []
        for i in range(n):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + i)
                member = factory()
            if not isinstance(member, nn.Module):
                raise TypeError(f"`factory()` must return a model (an nn.Module); got "
                                f"{type(member).__name__}")
            if members and type(member) is not type(members[0]):
                raise TypeError(f"`factory()` must return models of one kind; got "
                                f"{type(members[0]).__name__} and {type(member).__name__}")
            members.append(member)
        self.members = nn.ModuleList(members)

    def __len__(self) -> int:
        return len(self.members)

    @property
    def default_integrator(self):
        return getattr(self.members[0], "default_integrator", "rk4")

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        """The members' mean vector field."""
        return torch.stack([member(t, y) for member in self.members]).mean(0)

    def training_data(self, data, i: int):
        """Member ``i``'s data: ``data`` itself, or with ``bootstrap`` a resample with
        replacement (seeded by ``seed + i``) of its trajectories, or of its rows for samples
        of a density ``(N, dim)``."""
        if not self.bootstrap:
            return data
        generator = torch.Generator().manual_seed(self.seed + i)
        picks = torch.randint(len(data), (len(data),), generator=generator)
        if isinstance(data, torch.Tensor):
            return data[picks.to(data.device)]
        return data.with_trajectories([data[j] for j in picks.tolist()])

    def fit(self, data, fit, *, seed: int = 0, checkpoint=None, **options) -> EnsembleFit:
        """Train every member with ``fit`` (:func:`physnode.fit`) as ``fit(member,
        self.training_data(data, i), seed=seed + i, **options)``; a ``checkpoint`` path
        ``run.pt`` becomes ``run.member<i>.pt`` per member."""
        results, checkpoint = [], None if checkpoint is None else Path(checkpoint)
        for i, member in enumerate(self.members):
            path = None if checkpoint is None else checkpoint.with_name(
                f"{checkpoint.stem}.member{i}{checkpoint.suffix}")
            results.append(fit(member, self.training_data(data, i), seed=seed + i,
                               checkpoint=path, **options))
        return EnsembleFit(model=self, members=results)


@dataclass
class EnsembleFit:
    """What :func:`physnode.fit` returns for an :class:`Ensemble`: the trained ensemble and
    each member's :class:`~physnode.training.FitResult`."""

    model: Ensemble
    members: list = field(default_factory=list)

    @property
    def history(self) -> list:
        """Every member's epochs, each record with its ``member`` index."""
        return [{"member": i, **record} for i, result in enumerate(self.members)
                for record in result.history]
