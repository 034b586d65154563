"""Run directories: what ``physnode fit`` writes and ``discover``/``compare`` read.

A run holds ``model.pt`` (weights + configuration), ``data.npz`` (the training data, exact),
``fit.json`` (settings and per-epoch history) and ``checkpoint.pt`` (to resume). Every file is
written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from ._atomic import write_text_atomic
from .data import Trajectories, load
from .models import load as load_model

MODEL, DATA, LOG, CHECKPOINT = "model.pt", "data.npz", "fit.json", "checkpoint.pt"


def save_run(directory, model, data: Trajectories, history: list, settings: dict) -> Path:
    """Write a run; returns its directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / MODEL)
    data.save(directory / DATA)
    write_text_atomic(directory / LOG,
                      json.dumps({"settings": settings, "history": history}, indent=1))
    return directory


def load_run(directory):
    """``(model, data, log)`` of a run directory written by :func:`save_run`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no run directory at {str(directory)!r} (make one with "
                                f"`physnode fit DATA --out RUN`)")
    missing = [name for name in (MODEL, DATA, LOG) if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} is not a complete run: missing "
                                f"{', '.join(missing)}")
    log = json.loads((directory / LOG).read_text())
    return load_model(directory / MODEL), load(directory / DATA), log
