"""Reading and writing trajectories, validated on the way in.

physnode's own files, CSV and NPZ, hold one long table, one row per sample:
``trajectory, t, <state names>`` and, when derivatives are known, ``d<name>/dt`` for each
state. CSV values are written with 17 significant digits so a round trip is exact. Writes are
atomic (temporary file + rename).

:func:`load` also reads recordings kept as plain text tables (``.txt``, ``.dat``, ``.tsv``, and
``.csv`` files not in physnode's layout), where ``columns=`` says which column is what;
:func:`from_arrays` and :func:`from_dataframe` take the same long table from memory. All of
them end in one routine, ``_from_long_table``, that checks the values and splits the rows
into trajectories.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from .._atomic import atomic_path
from .._validation import check_columns, check_names, check_real_array
from .trajectories import Trajectories, Trajectory

MIN_SAMPLES = 3
#: Suffixes read as plain text tables (``.csv`` too, when it is not in physnode's layout).
TEXT_SUFFIXES = (".txt", ".dat", ".tsv")
#: A line whose first non-blank character is one of these is a comment.
COMMENT_CHARS = "%#"


def _derivative_name(name: str) -> str:
    return f"d{name}/dt"


def save(data: Trajectories, path) -> Path:
    """Save trajectories to ``path``; the format follows the suffix, ``.csv`` or ``.npz``.

    Returns the path written.
    """
    if not isinstance(data, Trajectories):
        raise TypeError(f"`data` must be physnode.data.Trajectories; got {type(data).__name__}")
    path = Path(path)
    fmt = _format(path)
    ids, t, y, dy = _long_table(data)
    with atomic_path(path) as tmp:
        if fmt == "csv":
            names = ["trajectory", "t", *data.state_names]
            if dy is not None:
                names += [_derivative_name(n) for n in data.state_names]
            rows = np.column_stack([ids, t, y] + ([dy] if dy is not None else []))
            with open(tmp, "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(names)
                for i, row in zip(ids, rows):
                    writer.writerow([str(int(i))] + [repr(float(v)) for v in row[1:]])
        else:
            arrays = {"trajectory": ids, "t": t, "y": y,
                      "state_names": np.array(data.state_names)}
            if dy is not None:
                arrays["dy"] = dy
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
    return path


def load(path, columns=None, *, angles=None) -> Trajectories:
    r"""Read trajectories from a file: physnode's own CSV or NPZ, or a plain text table.

    physnode's files (written by :func:`save`, or by hand in the same layout) read as they
    are. A plain text table (``.txt``, ``.dat``, ``.tsv``, or a ``.csv`` whose first line is
    not physnode's header row) holds numbers separated by whitespace or commas, one sample per
    line; lines starting with ``%`` or ``#`` are comments, blank lines are skipped, CRLF and LF
    line endings both work. Values are taken as they are: nothing assumes SI units and nothing
    is rescaled. Missing frames simply leave irregular times.

    Column names come from a header: a first line of labels, or else the last comment line
    before the data, whose labels name every column or, when fewer, the trailing ones (the
    Schmidt & Lipson recordings label only the columns after ``trial, t``: ``% x v``). A header
    that names every column and includes ``trajectory`` and ``t`` is physnode's layout and
    needs no ``columns=``; any other table does.

    Parameters
    ----------
    path : str or os.PathLike
        ``.csv``, ``.npz``, ``.txt``, ``.dat`` or ``.tsv``.
    columns : mapping of str to int or str, optional
        For text tables: ``{name: column}``, where a column is a 0-based index or a header
        label. ``"t"`` (time) is required; ``"trajectory"`` is optional and splits the rows
        into trajectories, one per contiguous run of equal values (without it the table is one
        trajectory); ``"d<state>/dt"`` is the derivative column of state ``<state>`` (give one
        for every state or for none); every other name is a state, in mapping order. A column
        may serve two names (a velocity is a state and the derivative of a position).
    angles : sequence of str or int, optional
        The states that are angles in radians (names or indices): see
        :class:`~physnode.data.Trajectories`. Default: not known.

    Returns
    -------
    Trajectories
        float64 tensors on the CPU; the states named as in ``columns`` or the header.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    TypeError
        When ``columns`` is not a mapping of names to indices or labels.
    ValueError
        For a text table without ``columns=`` or physnode header (the message lists the
        columns and shows a ``columns=`` to pass), an index or label that is not in the file,
        and, naming the file, row and column: missing columns, non-numeric, NaN or infinite
        values, rows of the wrong length, times that do not strictly increase within a
        trajectory, or a trajectory with fewer than 3 samples. Rows count data rows from 1
        (header, comment and blank lines are not rows). A row whose states are all NaN (a
        frame the tracker lost) is not an error: it is dropped, leaving a gap in the times.

    Examples
    --------
    A recording in the Schmidt & Lipson layout (``trial, t``, then the labelled states):

    >>> import tempfile
    >>> from pathlib import Path
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = Path(tmp.name) / "cart.txt"
    >>> _ = path.write_bytes(b"% x v\r\n"
    ...                      b"0  3.3e-002  -1.02e+002   3.7e+001\r\n"
    ...                      b"0  6.7e-002  -1.01e+002   5.7e+001\r\n"
    ...                      b"0  1.33e-001 -9.80e+001   7.9e+001\r\n")
    >>> data = load(path, columns={"trajectory": 0, "t": 1, "x": "x", "v": "v"})
    >>> data
    Trajectories(1 trajectories, 3 samples, states ('x', 'v'))
    >>> data[0].t
    tensor([0.0330, 0.0670, 0.1330], dtype=torch.float64)

    The velocity is also the derivative of the position:

    >>> load(path, columns={"t": 1, "x": 2, "dx/dt": 3})[0].dy.squeeze(-1)
    tensor([37., 57., 79.], dtype=torch.float64)
    >>> tmp.cleanup()
    """
    path = Path(path)
    fmt = _format(path, reading=True)
    if not path.is_file():
        raise FileNotFoundError(f"no trajectory file at {str(path)!r}")
    if fmt == "npz":
        if columns is not None:
            raise ValueError(f"{path}: `columns` names the columns of a text table; an .npz file "
                             f"holds the named arrays 'trajectory', 't', 'y', 'state_names' and "
                             f"reads without it; got columns={columns!r}")
        return _declare(_from_long_table(path, *_read_npz(path)), angles)
    if fmt == "csv" and columns is None and _starts_with_header_row(path):
        return _declare(_from_long_table(path, *_read_csv(path)), angles)
    return _declare(_read_text(path, columns), angles)


def _declare(data: Trajectories, angles) -> Trajectories:
    """``data`` with its angle coordinates declared (``None``: left unknown)."""
    return data if angles is None else Trajectories(data, data.state_names, angles=angles)


def from_arrays(t, y, names=None, trajectory=None, dy=None, *, angles=None) -> Trajectories:
    """Trajectories from arrays of a long table, one row per sample.

    Parameters
    ----------
    t : array_like or torch.Tensor, shape (n,)
        Sample times, strictly increasing within each trajectory; irregular spacing allowed.
    y : array_like or torch.Tensor, shape (n, dim) or (n,)
        States; a 1-D array is one state.
    names : sequence of str, optional
        One name per state; default ``("x0", "x1", ...)``.
    trajectory : array_like or torch.Tensor, shape (n,), optional
        Trajectory ids (numbers or strings): each contiguous run of equal ids is one
        trajectory, and an id may not come back after another. Default: one trajectory.
    dy : array_like or torch.Tensor, shape of ``y``, optional
        Known time derivatives of the states.
    angles : sequence of str or int, optional
        The states that are angles in radians (names or indices): see
        :class:`~physnode.data.Trajectories`. Default: not known.

    Returns
    -------
    Trajectories
        float64 tensors on the CPU (tensors given on another device are copied).

    Raises
    ------
    TypeError
        For inputs that are not arrays of real numbers.
    ValueError
        For inconsistent shapes, and, naming the index (0-based) and column: non-finite values,
        times that do not strictly increase within a trajectory, a trajectory id that comes
        back, or a trajectory with fewer than 3 samples. A row whose states are all NaN (a
        lost frame) is dropped instead, leaving a gap in the times.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([0.0, 0.1, 0.2, 0.0, 0.5, 1.5])
    >>> y = np.array([[1.0, 0.0], [0.9, -1.0], [0.7, -2.0], [0.5, 0.0], [0.4, -0.3], [0.0, -0.9]])
    >>> data = from_arrays(t, y, names=("x", "v"), trajectory=[0, 0, 0, 1, 1, 1])
    >>> data
    Trajectories(2 trajectories, 6 samples, states ('x', 'v'))
    >>> data[1].t
    tensor([0.0000, 0.5000, 1.5000], dtype=torch.float64)
    >>> from_arrays(t[:3], y[:3, 0]).state_names
    ('x0',)
    """
    t = check_real_array("t", t)
    if t.ndim != 1:
        raise ValueError(f"`t` must be 1-D, shape (n,); got shape {t.shape}")
    n = len(t)
    y = check_real_array("y", y)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or len(y) != n or y.shape[1] == 0:
        raise ValueError(f"`y` must have shape (n, dim) or (n,) with n = len(t) = {n} and "
                         f"dim >= 1; got shape {y.shape}")
    if dy is not None:
        dy = check_real_array("dy", dy)
        if dy.ndim == 1:
            dy = dy[:, None]
        if dy.shape != y.shape:
            raise ValueError(f"`dy` must have the shape of `y`, {y.shape}; got {dy.shape}")
    names = None if names is None else check_names("names", names, y.shape[1])
    ids = None
    if trajectory is not None:
        ids = np.asarray(trajectory.detach().cpu() if isinstance(trajectory, torch.Tensor)
                         else trajectory)
        if ids.shape != (n,):
            raise ValueError(f"`trajectory` must have shape (n,) with n = len(t) = {n}; "
                             f"got shape {ids.shape}")
    return _declare(_from_long_table("from_arrays", ids, t, y, dy, names, row=_index_row),
                    angles)


def from_dataframe(df, t="t", state=None, trajectory=None, derivatives=None, *,
                   angles=None) -> Trajectories:
    """Trajectories from a pandas DataFrame in long form, one row per sample.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per sample.
    t : column label, default ``"t"``
        The time column.
    state : list of column labels, optional
        The state columns, in order; they name the states. Default: every numeric column
        except ``t``, ``trajectory`` and derivative columns ``d<label>/dt`` of another column.
    trajectory : column label, optional
        Trajectory ids: each contiguous run of equal values is one trajectory. Default: the
        whole frame is one trajectory.
    derivatives : mapping of state to column label, or list parallel to ``state``, optional
        Columns holding the time derivative of each state. Default: the columns named
        ``d<state>/dt`` (physnode's CSV layout) when there are any; then every state needs one.
    angles : sequence of str or int, optional
        The states that are angles in radians (names or indices): see
        :class:`~physnode.data.Trajectories`. Default: not known.

    Returns
    -------
    Trajectories
        float64 tensors on the CPU.

    Raises
    ------
    ImportError
        When pandas is not installed.
    TypeError
        When ``df`` is not a DataFrame or a chosen column does not hold numbers.
    ValueError
        For labels that are not columns of ``df``, derivatives that do not match the states,
        and, naming the index label and column: non-finite values, times that do not strictly
        increase within a trajectory, or a trajectory with fewer than 3 samples. A row whose
        states are all NaN (a lost frame) is dropped instead, leaving a gap in the times.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"run": ["a", "a", "a", "b", "b", "b"],
    ...                    "time": [0.0, 0.1, 0.2, 0.0, 0.1, 0.3],
    ...                    "x": [1.0, 0.9, 0.7, 0.5, 0.4, 0.1]})
    >>> data = from_dataframe(df, t="time", trajectory="run")
    >>> data
    Trajectories(2 trajectories, 6 samples, states ('x',))
    >>> data[1].y.squeeze(-1)
    tensor([0.5000, 0.4000, 0.1000], dtype=torch.float64)
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("physnode.data.from_dataframe needs pandas; install it with "
                          "`pip install pandas`") from None
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"`df` must be a pandas.DataFrame; got {type(df).__name__}")
    labels = list(df.columns)

    def column(argument, label):
        if label not in labels:
            raise ValueError(f"`{argument}` must name a column of `df`; got {label!r}, "
                             f"columns are {labels}")
        return label

    t = column("t", t)
    if trajectory is not None:
        trajectory = column("trajectory", trajectory)
    if state is None:
        derivative_labels = {_derivative_name(str(c)) for c in labels}
        state = [c for c in labels if c not in (t, trajectory) and str(c) not in derivative_labels
                 and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
        if not state:
            raise ValueError(f"`df` has no numeric state column besides `t` and `trajectory`; "
                             f"columns are {labels}")
    else:
        state = [state] if isinstance(state, str) else list(state)
        state = [column(f"state[{i}]", c) for i, c in enumerate(state)]
    names = check_names("state", [str(c) for c in state])
    if derivatives is None:
        found = [_derivative_name(n) in labels for n in names]
        if any(found) and not all(found):
            raise ValueError(f"`df` has derivative columns for some states but not "
                             f"{_derivative_name(names[found.index(False)])!r}; expected one "
                             f"for every state or none (choose with `state=` and "
                             f"`derivatives=`)")
        derivatives = [_derivative_name(n) for n in names] if any(found) else None
    elif isinstance(derivatives, Mapping):
        if set(derivatives) != set(state):
            raise ValueError(f"`derivatives` must map every state {state} to a column; "
                             f"got keys {list(derivatives)}")
        derivatives = [derivatives[c] for c in state]
    else:
        derivatives = [derivatives] if isinstance(derivatives, str) else list(derivatives)
        if len(derivatives) != len(state):
            raise ValueError(f"`derivatives` must give one column per state {state}; "
                             f"got {derivatives}")
    if derivatives is not None:
        derivatives = [column(f"derivatives[{i}]", c) for i, c in enumerate(derivatives)]

    def values(labels):
        for label in labels:
            if not (pd.api.types.is_numeric_dtype(df[label])
                    and not pd.api.types.is_bool_dtype(df[label])):
                raise TypeError(f"`df[{label!r}]` must hold numbers; got dtype {df[label].dtype}")
        return df[labels].to_numpy(dtype=np.float64, na_value=np.nan)

    ids = None if trajectory is None else df[trajectory].to_numpy()
    index = df.index

    def row(i):
        label = index[i]
        return f"index {label.item() if isinstance(label, np.generic) else label!r}"

    return _declare(_from_long_table(
        "from_dataframe", ids, values([t])[:, 0], values(state),
        None if derivatives is None else values(derivatives), names,
        labels=[str(trajectory), str(t), *names, *map(str, derivatives or [])], row=row),
        angles)


def _format(path: Path, reading: bool = False) -> str:
    suffix = path.suffix.lower()
    if reading and suffix in TEXT_SUFFIXES:
        return "text"
    if suffix not in (".csv", ".npz"):
        known = ".csv, .npz, .txt, .dat or .tsv" if reading else ".csv or .npz"
        raise ValueError(f"`path` must end in {known}; got {str(path)!r}")
    return suffix[1:]


def _long_table(data: Trajectories):
    ids = np.concatenate([np.full(len(tr), i) for i, tr in enumerate(data)])
    t = np.concatenate([tr.t.detach().cpu().double().numpy() for tr in data])
    y = np.concatenate([tr.y.detach().cpu().double().numpy() for tr in data])
    dy = (np.concatenate([tr.dy.detach().cpu().double().numpy() for tr in data])
          if data.has_derivatives else None)
    return ids, t, y, dy


def _read_csv(path: Path):
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise ValueError(f"{path}: the file is empty; expected a header row "
                             f"'trajectory,t,<state names>'")
        header = [h.strip() for h in header]
        for required in ("trajectory", "t"):
            if required not in header:
                raise ValueError(f"{path}: missing column {required!r}; expected columns "
                                 f"'trajectory,t,<state names>', got {','.join(header)}")
        deriv = [h for h in header if h.startswith("d") and h.endswith("/dt")]
        names = [h for h in header if h not in ("trajectory", "t") and h not in deriv]
        if not names:
            raise ValueError(f"{path}: missing state columns; expected columns "
                             f"'trajectory,t,<state names>', got {','.join(header)}")
        missing = [_derivative_name(n) for n in names if _derivative_name(n) not in header]
        if deriv and missing:
            raise ValueError(f"{path}: missing column {missing[0]!r}: derivative columns must "
                             f"cover every state")
        table = []
        for row_number, row in enumerate(reader, start=1):
            if len(row) != len(header):
                raise ValueError(f"{path}: row {row_number} has {len(row)} values; "
                                 f"expected {len(header)} ({','.join(header)})")
            values = []
            for column, cell in zip(header, row):
                try:
                    values.append(float(cell))
                except ValueError:
                    raise ValueError(f"{path}: row {row_number}, column {column!r}: "
                                     f"expected a number, got {cell!r}") from None
            table.append(values)
    table = np.array(table, dtype=np.float64).reshape(-1, len(header))
    col = {h: i for i, h in enumerate(header)}
    y = table[:, [col[n] for n in names]]
    dy = table[:, [col[_derivative_name(n)] for n in names]] if deriv else None
    return table[:, col["trajectory"]], table[:, col["t"]], y, dy, names


def _read_npz(path: Path):
    with np.load(path, allow_pickle=False) as npz:
        for required in ("trajectory", "t", "y", "state_names"):
            if required not in npz.files:
                raise ValueError(f"{path}: missing array {required!r}; expected arrays "
                                 f"'trajectory', 't', 'y', 'state_names' and optionally 'dy'")
        ids, t, y = (np.asarray(npz[k], dtype=np.float64) for k in ("trajectory", "t", "y"))
        names = [str(n) for n in npz["state_names"]]
        dy = np.asarray(npz["dy"], dtype=np.float64) if "dy" in npz.files else None
    if y.ndim != 2 or y.shape[1] != len(names) or len(ids) != len(t) or len(t) != len(y):
        raise ValueError(f"{path}: inconsistent arrays: 'trajectory' {ids.shape}, 't' {t.shape}, "
                         f"'y' {y.shape} for {len(names)} state names")
    return ids, t, y, dy, names


def _starts_with_header_row(path: Path) -> bool:
    """Whether a CSV file is in physnode's layout: its first line is a row of labels (or the
    file is empty), not a comment or numbers."""
    with open(path, newline="") as fh:
        first = fh.readline().strip()
    if not first:
        return True
    return first[0] not in COMMENT_CHARS and not any(_is_number(x) for x in _split(first))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _split(line: str) -> list[str]:
    """A line's values: comma-separated when it holds a comma, else whitespace-separated."""
    if "," in line:
        return [x.strip().strip('"') for x in line.split(",")]
    return line.split()


def _read_text(path: Path, columns) -> Trajectories:
    if columns is not None:
        roles = check_columns(columns)
    labels, rows = _scan_text(path)
    width = len(labels)
    if columns is None:
        if None in labels or not {"trajectory", "t"} <= set(labels):
            raise ValueError(f"{path}: which column is time? The file has {width} columns: "
                             f"{_describe(labels)}. Pass `columns=` to name them, e.g. "
                             f"columns={_example_columns(labels)}")
        roles = check_columns({label: label for label in labels})  # physnode's header
    t_col, id_col, states, derivatives = roles

    def index(name, column):
        if isinstance(column, int):
            if column >= width:
                raise ValueError(f"{path}: `columns[{name!r}]` is {column}, but the file has "
                                 f"{width} columns: expected an index from 0 to {width - 1}")
            return column
        found = [i for i, label in enumerate(labels) if label == column]
        if len(found) != 1:
            why = ("names columns " + " and ".join(map(str, found)) + "; use an index"
                   if found else "is not a header label")
            known = (f"the labels are {[x for x in labels if x is not None]}"
                     if any(x is not None for x in labels) else "the file has no header labels")
            raise ValueError(f"{path}: `columns[{name!r}]` is {column!r}, which {why}; "
                             f"{known}, and columns are numbered 0 to {width - 1}")
        return found[0]

    # Every name with its column, in the long table's order: trajectory, t, states, derivatives.
    chosen = ([("trajectory", id_col)] if id_col is not None else []) + [("t", t_col)]
    chosen += list(states.items())
    if derivatives is not None:
        chosen += [(f"d{s}/dt", derivatives[s]) for s in states]
    chosen = [(name, index(name, column)) for name, column in chosen]
    table = np.full((len(rows), len(chosen)), np.nan)
    for k, tokens in enumerate(rows):
        if len(tokens) != width:
            raise ValueError(f"{path}: row {k + 1} has {len(tokens)} values; expected {width} "
                             f"({_describe(labels)})")
        for j, (name, i) in enumerate(chosen):
            try:
                table[k, j] = float(tokens[i])
            except ValueError:
                raise ValueError(f"{path}: row {k + 1}, column {name!r}: expected a number, "
                                 f"got {tokens[i]!r}") from None
    first = 1 if id_col is not None else 0
    n = len(states)
    return _from_long_table(
        path, table[:, 0] if id_col is not None else None, table[:, first],
        table[:, first + 1:first + 1 + n],
        table[:, first + 1 + n:] if derivatives is not None else None, list(states),
        labels=([] if id_col is not None else ["trajectory"]) + [name for name, _ in chosen])


def _scan_text(path: Path):
    """The header labels (one per column, None where unlabelled) and the data rows' values."""
    with open(path, encoding="utf-8", errors="replace", newline=None) as fh:
        lines = fh.read().splitlines()
    comments, header, rows = [], None, []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line[0] in COMMENT_CHARS:
            if not rows and header is None:
                comments.append(line.lstrip(COMMENT_CHARS).strip())
            continue
        values = _split(line)
        if not rows and header is None and not any(_is_number(x) for x in values):
            header = values
            continue
        rows.append(values)
    if not rows:
        raise ValueError(f"{path}: no data rows; expected lines of numbers separated by "
                         f"whitespace or commas, after any comment lines starting with % or #")
    width = len(rows[0])
    if header is not None:
        if len(header) != width:
            raise ValueError(f"{path}: the header row has {len(header)} labels "
                             f"({', '.join(header)}) but row 1 has {width} values; expected "
                             f"one label per column")
        return header, rows
    labels = _split(comments[-1]) if comments else []
    if not labels or len(labels) > width or any(_is_number(x) or not x or len(x.split()) != 1
                                                for x in labels):
        labels = []  # the last comment is prose, not a header: labels are single words
    return [None] * (width - len(labels)) + labels, rows


def _describe(labels) -> str:
    return ", ".join(str(i) if label is None else f"{i} {label!r}"
                     for i, label in enumerate(labels))


def _example_columns(labels) -> dict:
    """A plausible ``columns=`` for a table: time first, after a trajectory column when two
    leading columns are unlabelled (the Schmidt & Lipson layout), the rest states."""
    unlabelled = next((i for i, x in enumerate(labels) if x is not None), len(labels))
    lead = ["trajectory", "t"] if unlabelled == 2 and len(labels) > 2 else ["t"]
    example = {}
    for i, label in enumerate(labels):
        name = lead[i] if i < len(lead) else label if label is not None else f"x{i - len(lead)}"
        example[name] = i if label is None else label
    return example


def _index_row(i: int) -> str:
    return f"index {i}"


def _file_row(i: int) -> str:
    return f"row {i + 1}"


def _check_finite(source, table, columns, row=_file_row):
    bad = ~np.isfinite(table)
    if bad.any():
        i, column = np.argwhere(bad)[0]
        raise ValueError(f"{source}: {row(i)}, column {columns[column]!r}: value is "
                         f"{table[i, column]}; expected a finite number")


def _from_long_table(source, ids, t, y, dy, names, *, labels=None,
                     row=_file_row) -> Trajectories:
    """The one routine that turns a long table into :class:`Trajectories`.

    ``source`` starts every error message (a file path, or the function's name); ``ids`` are
    trajectory ids, shape (n,), numbers or strings, or None for a single trajectory; ``t`` is
    (n,), ``y`` and ``dy`` (n, dim) float64 arrays (``dy`` may be None); ``names`` the state
    names or None for the defaults. ``labels`` name the columns in messages, in the order
    trajectory, t, states, derivatives (default: physnode's CSV header) and ``row(i)`` words
    the place of 0-based row ``i``. Rows whose states are all NaN (lost frames) are dropped,
    leaving gaps in the times. Checks that every other value is finite, that each trajectory's
    rows are contiguous, number at least ``MIN_SAMPLES`` and have strictly increasing times.
    """
    if names is None:
        names = Trajectories.default_names(y.shape[1])
    if labels is None:
        labels = ["trajectory", "t", *names] + ([_derivative_name(n) for n in names]
                                                if dy is not None else [])
    # A row whose states are all NaN is a frame the tracker lost: dropped, it leaves a gap
    # in the times (messages still name the rows as given).
    lost = np.isnan(y).all(1) if y.shape[1] else np.zeros(len(y), bool)
    if lost.any():
        kept = np.flatnonzero(~lost)
        ids, t, y = (None if ids is None else ids[kept]), t[kept], y[kept]
        dy = None if dy is None else dy[kept]
        given = row

        def row(i):
            return given(int(kept[i]))
    numeric_ids = ids is not None and ids.dtype.kind in "iuf"
    parts = ([ids] if numeric_ids else []) + [t, y] + ([dy] if dy is not None else [])
    _check_finite(source, np.column_stack(parts).astype(np.float64),
                  labels if numeric_ids else labels[1:], row)
    if len(t) == 0:
        raise ValueError(f"{source}: no samples; expected at least one trajectory with "
                         f"{MIN_SAMPLES} or more samples")
    id_label, t_label = labels[0], labels[1]
    if ids is None:
        starts, ends = np.array([0]), np.array([len(t)])
    else:
        # Rows of one trajectory are contiguous; a trajectory id may not reappear later.
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        ends = np.r_[starts[1:], len(ids)]
    trajectories = []
    seen = set()
    for start, end in zip(starts, ends):
        tid = 0 if ids is None else ids[start]
        if tid in seen:
            raise ValueError(f"{source}: {row(start)}, column {id_label!r}: trajectory "
                             f"{_fmt_id(tid)} appears again after other trajectories; "
                             f"expected its rows to be contiguous")
        seen.add(tid)
        if end - start < MIN_SAMPLES:
            where = (f"{row(start)}, column {id_label!r}: trajectory {_fmt_id(tid)} has"
                     if ids is not None else "the table has")
            raise ValueError(f"{source}: {where} {end - start} samples; expected at least "
                             f"{MIN_SAMPLES}")
        steps = np.diff(t[start:end])
        if (steps <= 0).any():
            k = start + int(np.flatnonzero(steps <= 0)[0]) + 1
            if ids is None:
                raise ValueError(f"{source}: {row(k)}, column {t_label!r}: time {float(t[k])!r} "
                                 f"does not increase after {float(t[k - 1])!r}; expected "
                                 f"strictly increasing times, or a trajectory column that "
                                 f"splits the rows into runs")
            raise ValueError(f"{source}: {row(k)}, column {t_label!r}: time {float(t[k])!r} "
                             f"does not increase after {float(t[k - 1])!r} in trajectory "
                             f"{_fmt_id(tid)}; expected strictly increasing times")
        trajectories.append(Trajectory(
            torch.from_numpy(t[start:end].copy()), torch.from_numpy(y[start:end].copy()),
            None if dy is None else torch.from_numpy(dy[start:end].copy())))
    return Trajectories(trajectories, names)


def _fmt_id(tid) -> str:
    if isinstance(tid, str):
        return repr(str(tid))
    if isinstance(tid, (int, float, np.integer, np.floating)):
        tid = float(tid)
        return str(int(tid)) if math.isfinite(tid) and tid.is_integer() else repr(tid)
    return repr(tid)
