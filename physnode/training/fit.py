"""``fit``: train a model on trajectories (or a density model on samples) — the recipe by
default (normalisation from the data, derivative matching then multiple-shooting rollouts, a
learning rate that halves on plateaus, stopping on convergence), with validation by
trajectory, progress, atomic checkpoints and exact resume."""

from __future__ import annotations

import copy
import inspect
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .._atomic import atomic_path, read_torch
from .._validation import TrainingError, check_int, check_real
from ..data import Trajectories, Trajectory
from ..models.base import DataScales, parameter_placement
from ..models.ensemble import Ensemble
from ..parallel.distributed import DataParallel, rank_device
from .derivatives import estimate_derivatives
from .losses import (
    LOSSES,
    DensityLoss,
    DerivativeLoss,
    ELBOLoss,
    RolloutLoss,
    observed_width,
    positions_only,
)

#: Halvings of the learning rate after which a stage has converged.
HALVINGS = 5
#: Relative improvement of the monitored loss that counts as progress.
THRESHOLD = 1e-3


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    model : torch.nn.Module
        The trained model (the same object that was passed in), with the best validation
        weights of the last stage when there is a validation set.
    history : list of dict
        Per epoch: ``epoch`` (counted over all stages), ``stage`` (``"derivative"`` or
        ``"rollout"``), ``train_loss``, ``val_loss`` (None without validation), ``lr``.
    best_epoch : int
        Epoch of the weights kept.
    stopped_early : bool
        Whether early stopping (``patience``) ended the fit.
    converged : dict
        Per stage name, whether it stopped on convergence (True) or at its epoch cap (False).
    """

    model: torch.nn.Module
    history: list = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    converged: dict = field(default_factory=dict)

    @property
    def stages(self) -> list[str]:
        """The stages that ran, in order."""
        return list(dict.fromkeys(h["stage"] for h in self.history))


def fit(model, data: Trajectories | torch.Tensor, *, loss="auto", epochs: int | None = None,
        lr: float | None = None, optimizer=None, scheduler=None,
        batch_size: int | None = None, device=None, dtype: torch.dtype | None = None,
        val_fraction: float = 0.2, seed: int = 0, progress: bool = True,
        checkpoint=None, checkpoint_every: int = 100, resume: bool = False,
        patience: int | None = None, weight_decay: float = 0.0, schedule: str | None = None,
        window: int | None = None, rollout_method=None, substeps: int | None = None,
        adjoint: bool | None = None, distributed: bool | None = None) -> FitResult:
    """Fit ``model`` to trajectories. With no options this is the recipe: it normalises the
    model from the data (:meth:`physnode.models.PhysicsModel.adapt`), matches derivatives,
    then refines on the observed states by multiple shooting, each stage with Adam and a
    learning rate halved whenever the loss stops improving, until it has converged.

    Inside an initialised ``torch.distributed`` process group (``torchrun``) it trains
    data-parallel and returns the single-process result on every rank (see
    :mod:`physnode.parallel.distributed`); ``distributed=False`` trains each rank alone.

    Parameters
    ----------
    model : physnode.models.NeuralODE, HNN or LNN (any ``nn.Module`` vector field)
        Trained in place. A :class:`physnode.models.Ensemble` trains each member ``i`` as
        ``fit(member, data, seed=seed + i, ...)`` and returns an
        :class:`~physnode.models.EnsembleFit`.
    data : Trajectories or torch.Tensor
        Observed states in the model's coordinates: ``(q, p)`` for HNN, ``(q, q̇)`` for LNN,
        SecondOrderNeuralODE and an HNN in velocity coordinates, or positions ``q`` only for
        those. For a density model (:class:`physnode.models.CNF`): samples of shape
        ``(N, dim)``, of which ``val_fraction`` are held out at random.
    loss : ``"auto"``, a loss object or a sequence of them
        (:class:`DerivativeLoss`, :class:`RolloutLoss`, :class:`DensityLoss`).
        The stages to run in order. ``"auto"`` (default) is ``(DerivativeLoss(),
        RolloutLoss())`` on trajectories and ``DensityLoss()`` (maximum likelihood) on
        samples; ``"derivative"`` and ``"rollout"`` name one stage. Losses are in the
        data's units of each coordinate, so they read the same in any units.
    epochs : int, optional
        A cap on each stage's epochs (default: the stage's ``max_epochs``); stages normally
        stop earlier, on convergence (``FitResult.converged``).
    lr : float, optional
        Adam's learning rate for every stage (default: each stage's ``lr``).
    optimizer : callable or torch.optim.Optimizer, optional
        A factory ``optimizer(params) -> Optimizer`` (an optimizer class is called as
        ``cls(params, lr=...)``), or an optimizer over the model's parameters used as is.
        Default: Adam with ``weight_decay``.
    scheduler : callable, optional
        A factory ``scheduler(optimizer) -> LRScheduler``, stepped once per epoch (with the
        monitored loss if it is a ``ReduceLROnPlateau``); the stage then runs to its cap.
        Default: halve the learning rate after ``patience`` epochs without a relative
        improvement of 1e-3 and stop after 5 halvings. ``schedule="cosine"`` is the older
        spelling of cosine annealing over the cap.
    batch_size : int, optional
        Samples (derivative, density) or windows (rollout) per step; by default all at once
        (the density stage: its ``batch_size``).
    device, dtype : where and in what precision to train; by default where and in the
        precision the model's parameters already are.
    val_fraction : float
        Held out for validation (0.2 by default; 0 for none): whole trajectories when there
        are at least 10, else short blocks (a rollout window long) spread over every
        trajectory, that fraction of its samples (a held-out run among few is often outside
        the others' range; see :func:`split`). Stages converge on the validation loss and
        end on their best validation weights; a stage after the first counts the weights it
        started from among them, so it never ends worse than it began.
    seed : int
        Seeds the split and the minibatches.
    progress : bool
        Show a progress bar (only when standard error is a terminal).
    checkpoint : path, optional
        Written atomically every ``checkpoint_every`` epochs and at the end of each stage;
        with ``resume=True`` the fit continues from it exactly.
    patience : int, optional
        Stop a stage after this many epochs without a better validation loss.
    window, rollout_method, substeps, adjoint : older spellings of ``RolloutLoss(window=,
        method=, substeps=, adjoint=)`` for ``loss="rollout"`` or ``"auto"``.
    distributed : bool, optional
        Data-parallel over the ranks of the initialised ``torch.distributed`` process group:
        None (default) when there is one with more than one rank, False never, True
        required (a ``ValueError`` without one). Every rank must then call ``fit`` with the
        same data and settings (checked before training).

    Raises
    ------
    ValueError
        For bad arguments, empty data, non-finite data or a state width the model cannot take,
        before any training.
    physnode.TrainingError
        When the loss becomes non-finite; the model keeps the last good weights.

    Examples
    --------
    >>> import physnode as pn
    >>> data = pn.data.simulate(pn.systems.MassSpring(), n_trajectories=4, n_points=20)
    >>> result = pn.fit(pn.models.HNN(dof=1, hidden=16), data, epochs=3, progress=False)
    >>> result.stages, len(result.history)
    (['derivative', 'rollout'], 6)
    """
    if isinstance(model, Ensemble):
        options = {k: v for k, v in locals().items() if k not in ("model", "data")}
        return model.fit(data, fit, **options)
    stages = _stages(loss, window, rollout_method, substeps, adjoint, data, model)
    width = _check_inputs(model, data, stages, epochs, lr, batch_size, val_fraction,
                          checkpoint_every, resume, checkpoint, patience, schedule,
                          weight_decay)
    train_data, val_data = split(data, val_fraction, seed,
                                 max(getattr(s, "window", 3) for s in stages),
                                 whole=any(getattr(s, "whole_series", False) for s in stages))
    group = _data_parallel(distributed)
    place = parameter_placement(model)
    device = device if device is not None else rank_device(group)
    place = {"device": device if device is not None else place["device"],
             "dtype": dtype if dtype is not None else place["dtype"]}
    model_width = observed_width(model, width)
    if hasattr(model, "adapt_data"):      # a model of whole series normalises itself
        model.adapt_data(train_data)
    else:
        states, scales = _statistics(model, train_data, model_width)
        if hasattr(model, "record_training_states"):
            model.record_training_states(states.to(model.state_range))
        if hasattr(model, "adapt"):
            model.adapt(scales)
    model.to(**place)
    if group is not None:                  # every rank starts from rank 0's weights
        group.check_same("their data or settings", _fingerprint(train_data, val_data, stages,
                                                                 seed, epochs, batch_size))
        group.broadcast(model)

    shuffle = torch.Generator().manual_seed(seed)
    state = {"epoch": 0, "stage": 0, "stage_epoch": 0, "history": [], "best": None,
             "best_val": math.inf, "best_epoch": 0, "plateau": None, "converged": {}}
    payload = None
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        payload = _load_checkpoint(checkpoint, model, shuffle)
        state = payload["state"]
    stopped_early = False
    for k, stage in enumerate(stages):
        if k < state["stage"]:
            continue
        cap = epochs if epochs is not None else stage.max_epochs
        train = _to(stage.batches(train_data, model_width), place)
        val = _to(stage.batches(val_data, model_width, validation=True), place)
        stage_lr = lr if lr is not None else stage.lr
        opt = _optimizer(optimizer, model, stage_lr, weight_decay)
        sched = _scheduler(scheduler, schedule, opt, cap)
        if payload is not None:          # resuming inside this stage (else it starts afresh)
            if payload["optimizer"] is not None:
                opt.load_state_dict(payload["optimizer"])
            if sched is not None and payload["scheduler"] is not None:
                sched.load_state_dict(payload["scheduler"])
            payload = None
        plateau = state["plateau"] or {"best": math.inf, "bad": 0, "halvings": 0}
        stopped_early |= _run_stage(model, stage, train, val, opt, sched, plateau, cap,
                                    batch_size, shuffle, state, patience, progress,
                                    checkpoint, checkpoint_every, group, default_schedule=(
                                        scheduler is None and schedule is None))
        if state["best"] is not None:       # each stage ends on its best validation weights
            model.load_state_dict(state["best"])
        state.update(stage=k + 1, stage_epoch=0, plateau=None, best=None, best_val=math.inf)
        if checkpoint is not None:     # the next stage starts with a fresh optimizer
            _save_checkpoint(checkpoint, model, None, None, shuffle, state, group)
        if stopped_early:
            break
    return FitResult(model, state["history"], state["best_epoch"], stopped_early,
                     state["converged"])


def _statistics(model, data, model_width: int):
    """The training states ``(n, width)`` and their :class:`DataScales` (samples of a
    density have no rates: their scale stands in)."""
    if isinstance(data, torch.Tensor):
        states = data.detach().double()
        return states, DataScales(states, torch.zeros_like(states))
    states, rates = DerivativeLoss().targets(data, model_width)
    return torch.cat(states), DataScales(torch.cat(states), torch.cat(rates),
                                         torch.cat([tr.t for tr in data]),
                                         angles=getattr(model, "angles", ()))


def _run_stage(model, stage, train, val, opt, sched, plateau, cap, batch_size, shuffle, state,
               patience, progress, checkpoint, checkpoint_every, group, default_schedule):
    """Train one stage from ``state["stage_epoch"]`` to convergence or ``cap``, watching the
    validation loss when there is one (else the training loss); returns whether early
    stopping ended it. Under a data-parallel ``group`` each rank computes its rows of every
    minibatch and the gradients and losses are summed over the ranks (see
    :mod:`physnode.parallel.distributed`)."""
    n_train = train[0].shape[0]
    per_epoch = max(1, math.ceil(stage.epoch_fraction * n_train))
    size = batch_size or getattr(stage, "batch_size", None) or per_epoch
    # Fixed sub-steps for the whole stage (computed once, from the training windows).
    options = ({"substeps": stage.steps(model, train[0])} if isinstance(stage, RolloutLoss)
               else {})
    bar = tqdm(range(state["stage_epoch"], cap), initial=state["stage_epoch"], total=cap,
               disable=not (progress and sys.stderr.isatty() and (group is None or group.main)),
               desc=f"fit [{stage.name}]",
               unit="epoch")
    last_good = copy.deepcopy(model.state_dict())
    started = state["epoch"] - state["stage_epoch"]         # epochs before this stage
    if val is not None and state["stage_epoch"] == 0 and state["epoch"] > 0:
        # The weights an earlier stage left are this stage's first candidate: a stage whose
        # first steps go wrong (a fresh optimizer's full-size steps can throw a converged
        # model into a region where its rollouts blow up) ends no worse than it began.
        incoming = _validation_loss(stage, model, val, options, group)
        if math.isfinite(incoming):
            # best_epoch still names the epoch whose weights the earlier stage ended on.
            state.update(best_val=incoming, best=last_good)
    stopped_early = converged = False
    for stage_epoch in bar:
        model.train()
        order = torch.randperm(n_train, generator=shuffle, device="cpu")[:per_epoch]
        total = 0.0
        scheduled = getattr(stage, "epoch_options", None)     # e.g. an annealed KL weight
        train_options = {**options, **scheduled(stage_epoch)} if scheduled else options
        for start in range(0, per_epoch, size):
            idx = order[start:start + size].to(train[0].device)
            opt.zero_grad()
            if group is None:
                value = _loss(stage, model, train, idx, train_options, group)
                reported = value.detach()
            else:
                value, reported = group.sum_or_raise(
                    lambda idx=idx, o=train_options: _loss(stage, model, train, idx, o, group))
            if not torch.isfinite(reported):
                model.load_state_dict(last_good)
                raise TrainingError(
                    f"the training loss became {reported.item()} at epoch {state['epoch'] + 1}; "
                    f"stopped and kept the weights of epoch {state['epoch']} (try a smaller "
                    f"lr, or float64)", history=state["history"])
            if value.requires_grad:
                value.backward()
            if group is not None:
                group.sum_gradients(model.parameters())
            opt.step()
            total += reported.item() * len(idx)
        train_loss = total / per_epoch
        last_good = copy.deepcopy(model.state_dict())
        record = {"epoch": state["epoch"] + 1, "stage": stage.name, "train_loss": train_loss,
                  "val_loss": None, "lr": opt.param_groups[0]["lr"]}
        if val is not None:
            record["val_loss"] = _validation_loss(stage, model, val, options, group)
            if record["val_loss"] < state["best_val"]:
                state.update(best_val=record["val_loss"], best_epoch=record["epoch"],
                             best=copy.deepcopy(model.state_dict()))
        else:
            state["best_epoch"] = record["epoch"]
        state["history"].append(record)
        state["epoch"] += 1
        state["stage_epoch"] = stage_epoch + 1
        monitored = train_loss if val is None else record["val_loss"]
        if default_schedule:
            converged = _plateau_step(plateau, monitored, opt, stage.patience)
        elif sched is not None:
            is_plateau = isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
            sched.step(monitored) if is_plateau else sched.step()
        state["plateau"] = plateau
        bar.set_postfix(loss=f"{train_loss:.3g}",
                        val=f"{record['val_loss']:.3g}" if val is not None else "-")
        done = converged or stage_epoch + 1 == cap
        # Patience counts from this stage's start when its best is still the weights it
        # started from (their epoch belongs to the earlier stage).
        if patience is not None and val is not None and \
                record["epoch"] - max(state["best_epoch"], started) >= patience:
            stopped_early = done = True
        if checkpoint is not None and (state["epoch"] % checkpoint_every == 0 or done):
            _save_checkpoint(checkpoint, model, opt, sched, shuffle, state, group)
        if done:
            break
    bar.close()
    state["converged"][stage.name] = converged
    return stopped_early


def _data_parallel(distributed) -> DataParallel | None:
    if distributed not in (None, True, False):
        raise TypeError(f"`distributed` must be None, True or False; got {distributed!r}")
    group = DataParallel.current() if distributed is not False else None
    if distributed is True and group is None:
        raise ValueError("`distributed=True` needs an initialised torch.distributed process "
                         "group with more than one rank (launch with torchrun); got none")
    return group


def _fingerprint(train, val, stages, seed, epochs, batch_size) -> torch.Tensor:
    """Numbers that differ when two ranks were given different data or settings."""
    def checksum(data):
        if isinstance(data, torch.Tensor):
            return [len(data), data.numel(), float(data.double().sum())]
        return [len(data), sum(len(tr) for tr in data),
                sum(float(tr.y.double().sum()) + float(tr.t.double().sum()) for tr in data)]
    return torch.tensor([*checksum(train), *checksum(val), len(stages), seed,
                         -1 if epochs is None else epochs, -1 if batch_size is None else
                         batch_size], dtype=torch.float64)


def _validation_loss(stage, model, val, options, group) -> float:
    """The stage's loss on all of ``val``, in evaluation mode and without a graph."""
    model.eval()
    with torch.no_grad():
        if group is None:
            return _loss(stage, model, val, None, options, None).item()
        return group.sum_or_raise(lambda: _loss(stage, model, val, None, options, group))[1].item()


def _loss(stage, model, batch, idx, options, group) -> torch.Tensor:
    """The stage's loss on rows ``idx`` of ``batch`` (None: all of them); under a
    data-parallel ``group``, this rank's rows' loss weighted by their share of ``idx`` (zero
    when it has none), so that the sum over the ranks is the loss of all the rows."""
    if group is None:
        return stage(model, batch if idx is None else tuple(x[idx] for x in batch), **options)
    if idx is None:
        idx = torch.arange(batch[0].shape[0], device=batch[0].device)
    mine = group.rows(idx)
    if len(mine) == 0:
        return batch[0].new_zeros(())
    return stage(model, tuple(x[mine] for x in batch), **options) * (len(mine) / len(idx))


def _plateau_step(plateau: dict, loss: float, opt, patience: int) -> bool:
    """Halve the learning rate after ``patience`` epochs without a relative improvement of
    ``THRESHOLD``; converged after ``HALVINGS`` halvings."""
    if loss < plateau["best"] * (1 - THRESHOLD):
        plateau.update(best=loss, bad=0)
        return False
    plateau["bad"] += 1
    if plateau["bad"] < patience:
        return False
    if plateau["halvings"] >= HALVINGS:
        return True
    plateau.update(bad=0, halvings=plateau["halvings"] + 1)
    for group in opt.param_groups:
        group["lr"] *= 0.5
    return False


def _stages(loss, window, rollout_method, substeps, adjoint, data, model=None) -> list:
    """The stage objects for ``loss`` (old rollout keywords folded into a RolloutLoss; a named
    rollout stage's window no longer than the shortest trajectory; ``"auto"`` is the model's
    ``default_stages()`` when it has them)."""
    legacy = {k: v for k, v in (("window", window), ("method", rollout_method),
                                ("substeps", substeps), ("adjoint", adjoint)) if v is not None}
    own = getattr(model, "default_stages", None)
    if isinstance(loss, str) and (loss in ("elbo", "density") or loss == "auto" and (
            own is not None or isinstance(data, torch.Tensor))):
        if legacy:
            raise ValueError(f"{', '.join(sorted(legacy))}: rollout options, which "
                             f"{type(model).__name__} does not take")
        if loss != "auto":
            return [LOSSES[loss]()]
        # Samples for a model without stages of its own: DensityLoss.check says what is wrong.
        return own() if own is not None else [DensityLoss()]
    if isinstance(loss, str):
        if loss not in ("auto", *LOSSES):
            raise ValueError(f"`loss` must be 'auto', {', '.join(map(repr, LOSSES))}, "
                             f"{_LOSS_TYPES}, or a sequence of them; got {loss!r}")
        if "window" not in legacy and isinstance(data, Trajectories) and len(data):
            shortest = min(len(tr) for tr in data)
            default = (RolloutLoss.positions_only_window
                       if positions_only(model, data, observed_width(model, data.dim))
                       else RolloutLoss.window)
            legacy["window"] = max(2, min(default, shortest))
        rollout = RolloutLoss(**legacy)
        return {"auto": [DerivativeLoss(), rollout], "derivative": [DerivativeLoss()],
                "rollout": [rollout]}[loss]
    if legacy:
        raise ValueError(f"pass {', '.join(sorted(legacy))} to RolloutLoss(...) when `loss` is "
                         f"an object; got both")
    stages = list(loss) if isinstance(loss, Sequence) else [loss]
    for i, stage in enumerate(stages):
        if not isinstance(stage, tuple(LOSSES.values())):
            raise TypeError(f"`loss` must be 'auto', {', '.join(map(repr, LOSSES))}, "
                            f"{_LOSS_TYPES}, or a sequence of them; got "
                            f"{type(stage).__name__}" + (f" at position {i}"
                                                         if len(stages) > 1 else ""))
        # A model with stages of its own takes only those; ELBOLoss needs such a model (the
        # other mismatches of data and loss are named by the checks of the data).
        if own is not None:
            expected = tuple(type(s) for s in own())
        elif isinstance(stage, ELBOLoss):
            expected = ((DensityLoss,) if isinstance(data, torch.Tensor)
                        else (DerivativeLoss, RolloutLoss))
        else:
            continue
        if not isinstance(stage, expected):
            raise ValueError(f"{type(model).__name__} cannot be trained with "
                             f"{type(stage).__name__}; expected "
                             f"{' or '.join(t.__name__ for t in expected)}")
    if not stages:
        raise ValueError("`loss` is an empty sequence; expected at least one stage")
    return stages


#: The loss objects, for messages.
_LOSS_TYPES = "a DerivativeLoss, RolloutLoss, ELBOLoss or DensityLoss"


def _optimizer(optimizer, model, lr, weight_decay):
    if optimizer is None:
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if inspect.isclass(optimizer) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer(model.parameters(), lr=lr)
    made = optimizer(model.parameters())
    if not isinstance(made, torch.optim.Optimizer):
        raise TypeError(f"`optimizer` must return a torch.optim.Optimizer; got "
                        f"{type(made).__name__}")
    return made


def _scheduler(scheduler, schedule, opt, cap):
    if scheduler is not None:
        made = scheduler(opt)
        if not hasattr(made, "step"):
            raise TypeError(f"`scheduler` must return a learning-rate scheduler; got "
                            f"{type(made).__name__}")
        return made
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, cap)
    return None


def _to(batch, place):
    return None if batch is None else tuple(x.to(**place) for x in batch)


def _check_inputs(model, data, stages, epochs, lr, batch_size, val_fraction,
                  checkpoint_every, resume, checkpoint, patience, schedule, weight_decay) -> int:
    """Validate everything before training; returns the state width the data must have."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module vector field; "
                        f"got {type(model).__name__}")
    if not isinstance(data, (Trajectories, torch.Tensor)):
        raise TypeError(f"`data` must be physnode.data.Trajectories (or, for a density model, "
                        f"a tensor of samples (N, dim)); got {type(data).__name__}")
    if epochs is not None:
        check_int("epochs", epochs, minimum=1)
    if lr is not None:
        check_real("lr", lr, positive=True)
    check_real("weight_decay", weight_decay, nonnegative=True)
    check_int("checkpoint_every", checkpoint_every, minimum=1)
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
    density = [isinstance(stage, DensityLoss) for stage in stages]
    if isinstance(data, torch.Tensor):
        return _check_samples(model, data, stages, density, val_fraction)
    if any(density):
        raise TypeError("DensityLoss trains on samples, a tensor (N, dim); got "
                        "physnode.data.Trajectories")
    if len(data) == 0:
        raise ValueError("`data` is empty; expected at least one trajectory")
    expected = observed_width(model, data.dim)
    if data.dim != expected and not positions_only(model, data, expected):
        names = getattr(model, "state_names", ())[:expected]
        positions = (f" (or {expected // 2} positions)"
                     if getattr(model, "dof", None) == expected // 2 else "")
        raise ValueError(f"`data` has {data.dim} states ({', '.join(data.state_names)}) but "
                         f"{type(model).__name__} expects {expected} ({', '.join(names)})"
                         f"{positions}")
    missing = getattr(model, "accepts_missing", False)
    for i, tr in enumerate(data):
        if missing and (bool(torch.isinf(tr.y).any()) or not bool(torch.isfinite(tr.y).any())):
            raise ValueError(f"`data[{i}].y` must hold finite numbers, NaN for a missing value, "
                             f"and at least one observed value; got " + (
                                 "infinities" if bool(torch.isinf(tr.y).any()) else
                                 "nothing observed"))
        for name, x in (("t", tr.t), ("y", tr.y), ("dy", tr.dy)):
            if name == "y" and missing:
                continue
            if x is not None and not bool(torch.isfinite(x).all()):
                raise ValueError(f"`data[{i}].{name}` has non-finite values; expected finite "
                                 f"numbers")
        if len(tr) < 3:
            raise ValueError(f"`data[{i}]` has {len(tr)} samples; expected at least 3")
    for stage in stages:
        stage.check(model, data, data.dim)
    return data.dim


def _check_samples(model, data: torch.Tensor, stages, density, val_fraction) -> int:
    if not all(density):
        raise TypeError("`data` is a tensor of samples, which only DensityLoss trains on; got "
                        "a " + next(type(s).__name__ for s, d in zip(stages, density) if not d))
    if not data.is_floating_point():
        raise TypeError(f"`data` must have a floating-point dtype; got {data.dtype}")
    dim = getattr(model, "dim", None)
    if data.ndim != 2 or (dim is not None and data.shape[1] != dim):
        raise ValueError(f"`data` must be samples of shape (N, {dim}) for "
                         f"{type(model).__name__}; got shape {tuple(data.shape)}")
    minimum = 2 if val_fraction > 0 else 1
    if len(data) < minimum:
        raise ValueError(f"`data` has {len(data)} samples; expected at least {minimum}")
    if not bool(torch.isfinite(data).all()):
        raise ValueError("`data` has non-finite values; expected finite numbers")
    for stage in stages:
        stage.check(model, data, data.shape[1])
    return data.shape[1]


#: With at least this many trajectories, whole trajectories are held out for validation.
BY_TRAJECTORY = 10


def split(data: Trajectories, val_fraction: float, seed: int, shortest: int = 3,
          whole: bool = False):
    """``(train, validation)`` trajectories (for a tensor of samples: ``val_fraction`` of
    the rows, chosen at random).

    With at least ``BY_TRAJECTORY`` trajectories, ``val_fraction`` of them are held out
    whole. With fewer, a held-out run would often lie outside the others' range, and so
    would one long held-out stretch of each (the model never trains there, and the
    validation loss then keeps an early, under-trained model). Each trajectory instead
    gives up short blocks of ``shortest`` samples (the longest rollout window), one at a
    seeded place in each of ``round(val_fraction · n / shortest)`` equal segments: the same
    regions of state space as the training samples, independent noise, holes no longer than
    a window. Pieces keep derivative estimates made on the whole trajectory, so no edge
    effect enters; training pieces shorter than 3 samples are dropped. ``whole=True`` (models
    of whole series) always holds out whole trajectories.
    """
    n = len(data)
    generator = torch.Generator().manual_seed(seed)
    if isinstance(data, torch.Tensor):          # samples of a density: rows at random
        order = torch.randperm(n, generator=generator, device="cpu").to(data.device)
        n_val = min(n - 1, round(val_fraction * n))
        return data[order[n_val:]], data[order[:n_val]]
    if val_fraction == 0 or n == 0:
        return data, data.with_trajectories([])
    if n >= BY_TRAJECTORY or whole:
        order = torch.randperm(n, generator=generator, device="cpu").tolist()
        n_val = min(n - 1, round(val_fraction * n))
        return (data.with_trajectories([data[i] for i in sorted(order[n_val:])]),
                data.with_trajectories([data[i] for i in sorted(order[:n_val])]))
    full = data if data.has_derivatives else with_derivatives(data)
    train, val = [], []
    for tr in full:
        length = len(tr)
        blocks = min(round(val_fraction * length / shortest), length // (shortest + 1))
        edges = [round(i * length / blocks) for i in range(blocks + 1)] if blocks else []
        kept = 0
        for a, b in zip(edges, edges[1:]):
            start = a + int(torch.randint(b - a - shortest + 1, (1,), generator=generator))
            val.append(_piece(tr, start, start + shortest))
            if start - kept >= 3:
                train.append(_piece(tr, kept, start))
            kept = start + shortest
        if length - kept >= 3:
            train.append(_piece(tr, kept, length))
    return data.with_trajectories(train), data.with_trajectories(val)


def _piece(tr: Trajectory, a: int, b: int) -> Trajectory:
    return Trajectory(tr.t[a:b], tr.y[a:b], None if tr.dy is None else tr.dy[a:b])


def with_derivatives(data: Trajectories) -> Trajectories:
    """The trajectories with ``dy`` estimated from their samples (see
    :func:`physnode.training.estimate_derivatives`)."""
    return data.with_trajectories([Trajectory(tr.t, tr.y, dy.to(tr.y))
                                   for tr, dy in zip(data, estimate_derivatives(data))])


def _save_checkpoint(path, model, optimizer, scheduler, shuffle, state, group=None):
    """Write the checkpoint atomically (rank 0 only under a data-parallel ``group``, the
    others waiting until it is written, and raising too if it could not be)."""
    error = None
    if group is None or group.main:
        payload = {"model": model.state_dict(),
                   "optimizer": optimizer.state_dict() if optimizer is not None else None,
                   "scheduler": scheduler.state_dict() if scheduler is not None else None,
                   "shuffle": shuffle.get_state(), "state": state,
                   # the global generator too: a loss that samples (ELBOLoss) resumes exactly
                   "rng": torch.get_rng_state()}
        try:
            with atomic_path(path) as tmp:
                torch.save(payload, tmp)
        except Exception as caught:         # announced to the other ranks, then raised
            if group is None:
                raise
            error = caught
    if group is not None:
        group.agree(error is None, "writing the checkpoint")
        if error is not None:
            raise error


def _load_checkpoint(path, model, shuffle):
    payload = read_torch(path, "physnode checkpoint")
    model.load_state_dict(payload["model"])
    shuffle.set_state(payload["shuffle"])
    if payload.get("rng") is not None:
        torch.set_rng_state(payload["rng"])
    return payload
