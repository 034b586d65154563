"""``fit``: train a model on trajectories, with validation by trajectory, early stopping,
progress, atomic checkpoints and exact resume."""

from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .._atomic import atomic_path
from .._validation import TrainingError, check_int, check_real
from ..data import Trajectories
from ..integrators import METHODS
from ..models.base import parameter_placement
from .derivatives import estimate_derivatives, local_polynomial_derivative
from .losses import derivative_loss, rollout_loss

LOSSES = ("derivative", "rollout")


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    model : torch.nn.Module
        The trained model (the same object that was passed in), with the best validation
        weights when there is a validation set.
    history : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_loss`` (None without validation), ``lr``.
    best_epoch : int
        Epoch of the weights kept.
    stopped_early : bool
        Whether early stopping ended the fit.
    """

    model: torch.nn.Module
    history: list = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False


def fit(model, data: Trajectories, epochs: int = 2000, lr: float = 1e-3,
        loss: str = "derivative", batch_size: int | None = None, device=None,
        dtype: torch.dtype = torch.float32, val_fraction: float = 0.2, seed: int = 0,
        progress: bool = True, checkpoint=None, checkpoint_every: int = 100,
        resume: bool = False, patience: int | None = None, weight_decay: float = 0.0,
        schedule: str | None = None, window: int = 5, rollout_method: str | None = None,
        substeps: int = 2, adjoint: bool = False) -> FitResult:
    """Fit ``model`` to trajectories with Adam.

    Parameters
    ----------
    model : physnode.models.NeuralODE, HNN or LNN (any ``nn.Module`` vector field)
        Trained in place.
    data : Trajectories
        Observed states in the model's coordinates: ``(q, p)`` for HNN, ``(q, q̇)`` for LNN.
    epochs, lr, weight_decay : training length and Adam settings.
    loss : ``"derivative"`` or ``"rollout"``
        ``"derivative"`` matches ``dy/dt`` — the data's ``dy`` when present, otherwise
        estimated by local quadratic fits on the actual sample times (see
        :func:`estimate_derivatives`). ``"rollout"`` (multiple shooting) integrates from every
        observed state through the next ``window − 1`` observed times and matches the states.
    batch_size : int, optional
        Samples (derivative) or windows (rollout) per step; all at once by default.
    device, dtype : where and in what precision to train; by default where the model's
        parameters already are (``model.to("cuda")`` then ``fit`` trains on the GPU).
    val_fraction : float
        Fraction of trajectories (not samples) held out for validation.
    seed : int
        Seeds the split, the initial weights' shuffling and the minibatches.
    progress : bool
        Show a progress bar (only when standard error is a terminal).
    checkpoint : path, optional
        Written atomically every ``checkpoint_every`` epochs and at the end; with
        ``resume=True`` the fit continues from it exactly.
    patience : int, optional
        Stop after this many epochs without a better validation loss.
    schedule : ``None`` or ``"cosine"``
        Learning-rate schedule over ``epochs``.
    window, rollout_method, substeps, adjoint : rollout settings. The method defaults to the
        model's ``default_integrator`` (a NeuralODE's dopri5 is adaptive, at rtol 1e-6); each
        interval between samples takes ``substeps`` steps of a fixed-step method.
        ``adjoint=True`` backpropagates in O(1) memory (torchdiffeq's ``odeint_adjoint`` for
        explicit methods, the exact reversible adjoint for symmetric symplectic ones).

    Raises
    ------
    ValueError
        For bad arguments, empty data, non-finite data or a state width the model cannot take,
        before any training.
    physnode.TrainingError
        When the loss becomes non-finite; the model keeps the last good weights.
    """
    expected = _check_inputs(model, data, epochs, lr, loss, batch_size, val_fraction,
                             checkpoint_every, resume, checkpoint, patience, schedule, window,
                             substeps)
    method = _rollout_method(model, rollout_method) if loss == "rollout" else None
    train_idx, val_idx = _split(len(data), val_fraction, seed)
    if hasattr(model, "record_training_states"):
        model.record_training_states(torch.cat([tr.y for tr in data]).to(model.state_range))
    device = device if device is not None else parameter_placement(model)["device"]
    model.to(device=device, dtype=dtype)
    make = _derivative_batches if loss == "derivative" else _window_batches
    model_width = getattr(model, "observed_dim", getattr(model, "dim", expected))
    train = make(data, train_idx, window, device, dtype, expected, model_width)
    val = (make(data, val_idx, window, device, dtype, expected, model_width)
           if len(val_idx) else None)

    def objective(batch):
        if loss == "derivative":
            return derivative_loss(model, *batch)
        t, y, start = batch
        augment = getattr(model, "augment_state", None)
        start = augment(start) if augment is not None else start
        return rollout_loss(model, t, y, method=method, substeps=substeps, start=start,
                            adjoint=adjoint)

    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
                 if schedule == "cosine" else None)
    shuffle = torch.Generator().manual_seed(seed)
    state = {"epoch": 0, "history": [], "best": None, "best_val": math.inf, "best_epoch": 0}
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        state = _load_checkpoint(checkpoint, model, optimizer, scheduler, shuffle)

    n_train = train[0].shape[0]
    size = batch_size or n_train
    bar = tqdm(range(state["epoch"], epochs), initial=state["epoch"], total=epochs,
               disable=not (progress and sys.stderr.isatty()), desc="fit", unit="epoch")
    last_good = copy.deepcopy(model.state_dict())
    stopped_early = False
    for epoch in bar:
        model.train()
        order = torch.randperm(n_train, generator=shuffle, device="cpu")
        total = 0.0
        for start in range(0, n_train, size):
            idx = order[start:start + size].to(train[0].device)
            optimizer.zero_grad()
            value = objective(tuple(x[idx] for x in train))
            if not torch.isfinite(value):
                model.load_state_dict(last_good)
                raise TrainingError(
                    f"the training loss became {value.item()} at epoch {epoch + 1}; stopped "
                    f"and kept the weights of epoch {epoch} (try a smaller lr, or "
                    f"float64)", history=state["history"])
            value.backward()
            optimizer.step()
            total += value.item() * len(idx)
        if scheduler is not None:
            scheduler.step()
        last_good = copy.deepcopy(model.state_dict())
        record = {"epoch": epoch + 1, "train_loss": total / n_train, "val_loss": None,
                  "lr": optimizer.param_groups[0]["lr"]}
        if val is not None:
            model.eval()
            record["val_loss"] = objective(val).item()
            if record["val_loss"] < state["best_val"]:
                state.update(best_val=record["val_loss"], best_epoch=epoch + 1,
                             best=copy.deepcopy(model.state_dict()))
        state["history"].append(record)
        state["epoch"] = epoch + 1
        bar.set_postfix(loss=f"{record['train_loss']:.3g}",
                        val=f"{record['val_loss']:.3g}" if val is not None else "-")
        if checkpoint is not None and ((epoch + 1) % checkpoint_every == 0 or
                                       epoch + 1 == epochs):
            _save_checkpoint(checkpoint, model, optimizer, scheduler, shuffle, state)
        if patience is not None and val is not None and epoch + 1 - state["best_epoch"] >= \
                patience:
            stopped_early = True
            break
    bar.close()
    if state["best"] is not None:
        model.load_state_dict(state["best"])
    best_epoch = state["best_epoch"] if state["best"] is not None else state["epoch"]
    return FitResult(model, state["history"], best_epoch, stopped_early)


def _check_inputs(model, data, epochs, lr, loss, batch_size, val_fraction, checkpoint_every,
                  resume, checkpoint, patience, schedule, window, substeps) -> int:
    """Validate everything before training; returns the state width the data must have."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module vector field; "
                        f"got {type(model).__name__}")
    if not isinstance(data, Trajectories):
        raise TypeError(f"`data` must be physnode.data.Trajectories; got {type(data).__name__}")
    if loss not in LOSSES:
        raise ValueError(f"`loss` must be one of {', '.join(map(repr, LOSSES))}; got {loss!r}")
    check_int("epochs", epochs, minimum=1)
    check_real("lr", lr, positive=True)
    check_int("checkpoint_every", checkpoint_every, minimum=1)
    check_int("window", window, minimum=2)
    check_int("substeps", substeps, minimum=1)
    if batch_size is not None:
        check_int("batch_size", batch_size, minimum=1)
    if patience is not None:
        check_int("patience", patience, minimum=1)
    if not 0 <= check_real("val_fraction", val_fraction) < 1:
        raise ValueError(f"`val_fraction` must be in [0, 1); got {val_fraction}")
    if schedule not in (None, "cosine"):
        raise ValueError(f"`schedule` must be None or 'cosine'; got {schedule!r}")
    if resume and checkpoint is None:
        raise ValueError("`resume=True` needs a `checkpoint` path to resume from")
    if len(data) == 0:
        raise ValueError("`data` is empty; expected at least one trajectory")
    expected = getattr(model, "observed_dim", getattr(model, "dim", data.dim))
    positions_only = loss == "rollout" and 2 * data.dim == expected
    if data.dim != expected and not positions_only:
        names = getattr(model, "state_names", ())[:expected]
        hint = (f"; positions-only data ({expected // 2} columns) need loss='rollout'"
                if 2 * data.dim == expected else "")
        raise ValueError(f"`data` has {data.dim} states ({', '.join(data.state_names)}) but "
                         f"{type(model).__name__} expects {expected} ({', '.join(names)})"
                         f"{hint}")
    if loss == "derivative" and getattr(model, "dim", expected) != expected:
        raise ValueError("loss='derivative' cannot train the augmented dimensions of a "
                         "NeuralODE (they are never observed); use loss='rollout'")
    for i, tr in enumerate(data):
        for name, x in (("t", tr.t), ("y", tr.y), ("dy", tr.dy)):
            if x is not None and not bool(torch.isfinite(x).all()):
                raise ValueError(f"`data[{i}].{name}` has non-finite values; expected finite "
                                 f"numbers")
        if loss == "rollout" and len(tr) < window:
            raise ValueError(f"`data[{i}]` has {len(tr)} samples, fewer than the rollout "
                             f"`window` of {window}")
    return data.dim


def _rollout_method(model, name):
    name = name or getattr(model, "default_integrator", "rk4")
    if name not in METHODS:
        raise ValueError(f"`rollout_method` must be one of {', '.join(map(repr, METHODS))}; "
                         f"got {name!r}")
    return name


def _split(n, val_fraction, seed):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed), device="cpu")
    n_val = min(n - 1, round(val_fraction * n)) if n > 1 else 0
    return order[n_val:].tolist(), order[:n_val].tolist()


def _derivative_batches(data, indices, window, device, dtype, width, model_width):
    if not indices:
        return None
    chosen = Trajectories([data[i] for i in indices], data.state_names)
    targets = ([tr.dy for tr in chosen] if chosen.has_derivatives
               else estimate_derivatives(chosen))
    y = torch.cat([tr.y for tr in chosen])
    dy = torch.cat(targets)
    return y.to(device=device, dtype=dtype), dy.to(device=device, dtype=dtype)


def _window_batches(data, indices, window, device, dtype, width, model_width):
    """All windows of ``window`` consecutive samples, with their own times, and the state each
    window starts from: the first observed state, or for positions-only data the first
    positions with velocities estimated from the samples (``dq/dt``, local polynomial)."""
    if not indices:
        return None
    ts, ys, starts_ = [], [], []
    for i in indices:
        tr = data[i]
        starts = range(len(tr) - window + 1)
        ts.append(torch.stack([tr.t[s:s + window] for s in starts]))
        ys.append(torch.stack([tr.y[s:s + window] for s in starts]))
        first = tr.y[:len(starts)]
        if model_width == 2 * width:
            velocity = local_polynomial_derivative(tr.t.double(), tr.y.double())
            first = torch.cat([first, velocity[:len(starts)].to(first)], -1)
        starts_.append(first)
    return tuple(torch.cat(x).to(device=device, dtype=dtype) for x in (ts, ys, starts_))


def _save_checkpoint(path, model, optimizer, scheduler, shuffle, state):
    payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
               "scheduler": scheduler.state_dict() if scheduler is not None else None,
               "shuffle": shuffle.get_state(), "state": state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load_checkpoint(path, model, optimizer, scheduler, shuffle):
    payload = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None and payload["scheduler"] is not None:
        scheduler.load_state_dict(payload["scheduler"])
    shuffle.set_state(payload["shuffle"])
    return payload["state"]
