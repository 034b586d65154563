"""Atomic file writes: every file physnode writes (data, models, checkpoints) goes through
here, so an interrupted write never leaves a truncated file behind (DESIGN convention 5)."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (with the usual
    permissions), on failure it is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        yield tmp
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` through :func:`atomic_path`; returns the path."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def read_torch(path, what: str):
    """``torch.load(path, weights_only=True)`` onto the CPU, with a truncated, corrupted or
    foreign file reported as ``ValueError`` naming ``path`` and ``what`` it should be (torch's
    own messages, such as ``[Errno 22] Invalid argument``, name neither)."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise
    except Exception as error:       # truncated or foreign file: say which, keep the cause
        raise ValueError(f"{path}: not a complete {what} (it may be truncated or written by "
                         f"something else; {type(error).__name__}: {error})") from error
