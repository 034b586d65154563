"""Trajectory containers: each trajectory has its own (possibly irregular) time array."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from .._validation import check_angles, check_names, check_tensor


@dataclass(frozen=True)
class Trajectory:
    """One sampled trajectory.

    Attributes
    ----------
    t : torch.Tensor
        Sample times, shape ``(n,)``, strictly increasing (irregular spacing allowed).
    y : torch.Tensor
        States, shape ``(n, dim)``.
    dy : torch.Tensor or None
        Time derivatives ``dy/dt`` at the samples, shape ``(n, dim)``, when known.
    """

    t: torch.Tensor
    y: torch.Tensor
    dy: torch.Tensor | None = None

    def __post_init__(self):
        check_tensor("t", self.t)
        check_tensor("y", self.y)
        if self.t.ndim != 1 or self.y.ndim != 2 or self.y.shape[0] != self.t.shape[0]:
            raise ValueError(f"a Trajectory needs `t` of shape (n,) and `y` of shape (n, dim); "
                             f"got t {tuple(self.t.shape)} and y {tuple(self.y.shape)}")
        if self.dy is not None and self.dy.shape != self.y.shape:
            raise ValueError(f"`dy` must have the shape of `y` {tuple(self.y.shape)}; "
                             f"got {tuple(self.dy.shape)}")

    def __len__(self) -> int:
        return self.t.shape[0]


class Trajectories(Sequence):
    """A sequence of :class:`Trajectory` sharing state names.

    Parameters
    ----------
    trajectories : sequence of Trajectory
        Each with its own time array; all of the same state width.
    state_names : sequence of str, optional
        One distinct name per state coordinate. Default: ``("x0", "x1", ...)``, as many as the
        trajectories have states (none when there are no trajectories).
    angles : sequence of int or str, optional
        The distinct coordinates that are angles in radians (indices or names). ``None`` (default)
        means not known; ``()`` means none is. Discovery offers trigonometric terms of the
        angles only, or of every coordinate when this is not known.

    Examples
    --------
    >>> import torch
    >>> from physnode.data import Trajectory, Trajectories
    >>> tr = Trajectory(torch.linspace(0, 1, 5), torch.zeros(5, 2))
    >>> data = Trajectories([tr, tr], state_names=("q", "p"))
    >>> len(data), data.dim, data[1].y.shape
    (2, 2, torch.Size([5, 2]))
    >>> Trajectories([tr]).state_names
    ('x0', 'x1')
    """

    def __init__(self, trajectories: Sequence[Trajectory],
                 state_names: Sequence[str] | None = None, *,
                 angles: Sequence[int | str] | None = None):
        self._items = list(trajectories)
        for i, tr in enumerate(self._items):
            if not isinstance(tr, Trajectory):
                raise TypeError(f"`trajectories[{i}]` must be a Trajectory; "
                                f"got {type(tr).__name__}")
        if state_names is None:
            width = self._items[0].y.shape[1] if self._items else 0
            for i, tr in enumerate(self._items):
                if tr.y.shape[1] != width:
                    raise ValueError(f"`trajectories[{i}]` has {tr.y.shape[1]} states but "
                                     f"`trajectories[0]` has {width}; expected one state width")
            state_names = self.default_names(width)
        self.state_names = check_names("state_names", state_names)
        for i, tr in enumerate(self._items):
            if tr.y.shape[1] != len(self.state_names):
                raise ValueError(f"`trajectories[{i}]` has {tr.y.shape[1]} states but "
                                 f"`state_names` has {len(self.state_names)}: {self.state_names}")
        self.angles = (None if angles is None
                       else check_angles("angles", angles, self.dim, names=self.state_names))

    def with_trajectories(self, trajectories: Sequence[Trajectory]) -> Trajectories:
        """Other trajectories with these state names and angles."""
        return Trajectories(trajectories, self.state_names, angles=self.angles)

    @staticmethod
    def default_names(dim: int) -> tuple[str, ...]:
        """The state names used when none are given: ``("x0", ..., "x{dim-1}")``."""
        return tuple(f"x{i}" for i in range(dim))

    @property
    def dim(self) -> int:
        return len(self.state_names)

    @property
    def has_derivatives(self) -> bool:
        return bool(self._items) and all(tr.dy is not None for tr in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.with_trajectories(self._items[index])
        return self._items[index]

    def __iter__(self) -> Iterator[Trajectory]:
        return iter(self._items)

    def __repr__(self) -> str:
        n = sum(len(tr) for tr in self._items)
        return (f"Trajectories({len(self)} trajectories, {n} samples, "
                f"states {self.state_names})")

    def padded(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The trajectories as one batch for models of whole series (a
        :class:`~physnode.models.LatentODE`): ``(t, y, mask)`` of shapes ``(B, K)``,
        ``(B, K, dim)`` and ``(B, K, dim)`` with ``K`` the longest length. NaN in ``y`` means
        a missing value: ``mask`` is 1 where ``y`` is observed and 0 where it is missing or
        padding, and ``y`` is 0 there. A shorter trajectory is padded at its end with its
        last time repeated (zero-length intervals, nothing observed). The times keep their
        own precision when it is higher than the states' (float64 clock times with float32
        states)."""
        if not self._items:
            raise ValueError("`data` is empty; expected at least one trajectory")
        length = max(len(tr) for tr in self._items)
        dtype = torch.promote_types(self._items[0].y.dtype, torch.float32)
        time_dtype = torch.promote_types(self._items[0].t.dtype, dtype)
        ts, ys, masks = [], [], []
        for tr in self._items:
            pad = length - len(tr)
            t = tr.t.to(time_dtype)
            ts.append(torch.cat([t, t[-1:].expand(pad)]))
            y = torch.cat([tr.y.to(dtype), tr.y.new_full((pad, self.dim), float("nan"),
                                                         dtype=dtype)])
            observed = torch.isfinite(y)
            ys.append(torch.where(observed, y, torch.zeros_like(y)))
            masks.append(observed.to(dtype))
        return torch.stack(ts), torch.stack(ys), torch.stack(masks)

    def save(self, path):
        """Write to ``.csv`` or ``.npz`` (see :func:`physnode.data.save`); returns the path."""
        from .io import save
        return save(self, path)
