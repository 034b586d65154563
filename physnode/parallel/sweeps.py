"""Sweeps: the same pipeline (simulate or load → fit → discover → score) over a grid of
systems, parameters, seeds and options, each case a task on ``dask.distributed``.

A case is a :class:`Case`; :func:`cases` expands a configuration (a base case and a grid of
values, the product of the grid) into cases; :func:`sweep` runs them and streams one row per
case into a table. Every case runs on one torch thread, whichever way it runs, so a parallel
sweep gives the same numbers as a serial one. A case that raises is recorded with its error
and does not stop the others; a task whose worker dies is retried; a rerun with the same
table skips the cases that finished (the key is the case's settings), so an interrupted
sweep resumes and the table never holds a case twice.

The scheduler is dask's: a ``LocalCluster`` of one-thread worker processes by default, or
any scheduler's address (a Slurm allocation through dask-jobqueue, Kubernetes), or an
existing ``Client``; ``client="serial"`` runs the cases one after another in this process.
``pip install "physnode[distributed]"`` installs dask.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import itertools
import json
import math
import os
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .._atomic import write_text_atomic
from .._validation import check_int, check_real

#: The table's columns, in order.
COLUMNS = ("key", "system", "parameters", "data", "noise", "seed", "model", "status",
           "seconds", "exact_support", "max_coefficient_error", "fit_quality", "equations",
           "error")


@dataclass(frozen=True, kw_only=True)
class Case:
    """One run of the pipeline.

    Parameters
    ----------
    system : str or None
        A reference system by name (``physnode.systems.REFERENCE_SYSTEMS``): its data are
        simulated, and the equations found are scored against its own.
    parameters : dict
        Keywords of the system's constructor (``{"length": 0.5}``).
    data : str or None
        A data file (:func:`physnode.data.load`) to fit instead of simulating; with
        ``system`` as well, the result is scored against that system's equations.
    noise, seed, n_trajectories, n_points, t_span, irregular :
        :func:`physnode.data.simulate`'s arguments; ``seed`` also seeds the model's weights,
        ``fit`` and ``discover``.
    model : str
        ``"auto"`` (an HNN for a Hamiltonian system, dissipative when the system is; a
        NeuralODE otherwise; for a file, an HNN when its states are ``q, p`` pairs), or
        ``"hnn"``, ``"lnn"``, ``"node"``, ``"sonode"`` (a second-order NeuralODE).
    model_options, fit_options : dict
        Keywords of the model's constructor and of :func:`physnode.fit` (hyper-parameters
        to sweep); empty for the defaults.
    options : dict
        Settings that a pipeline of your own (``sweep(..., run=...)``) reads; part of the
        case's key. The default pipeline refuses them.
    """

    system: str | None = None
    parameters: dict = field(default_factory=dict)
    data: str | None = None
    noise: float = 0.01
    seed: int = 0
    n_trajectories: int = 8
    n_points: int = 200
    t_span: tuple = (0.0, 10.0)
    irregular: bool = True
    model: str = "auto"
    model_options: dict = field(default_factory=dict)
    fit_options: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        from ..systems import REFERENCE_SYSTEMS
        if self.system is None and self.data is None:
            raise ValueError("a case needs a `system` to simulate or a `data` file; got "
                             "neither")
        for name in ("system", "data"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise TypeError(f"`{name}` must be a string; got "
                                f"{type(getattr(self, name)).__name__}")
        if self.system is not None and self.system.lower() not in REFERENCE_SYSTEMS:
            raise ValueError(f"`system` must be one of {', '.join(sorted(REFERENCE_SYSTEMS))}; "
                             f"got {self.system!r}")
        if self.model not in MODELS:
            raise ValueError(f"`model` must be one of {', '.join(map(repr, MODELS))}; got "
                             f"{self.model!r}")
        for name in ("parameters", "model_options", "fit_options", "options"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"`{name}` must be a dict of keywords; got "
                                f"{type(getattr(self, name)).__name__}")
        # Canonical numbers, so that noise = 0 and noise = 0.0 are one case.
        object.__setattr__(self, "t_span", tuple(float(x) for x in self.t_span))
        object.__setattr__(self, "noise", float(check_real("noise", self.noise, nonnegative=True)))
        for name in ("seed", "n_trajectories", "n_points"):
            object.__setattr__(self, name, check_int(name, getattr(self, name)))

    @property
    def key(self) -> str:
        """The case's settings as canonical JSON: equal settings, equal key."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=list)


MODELS = ("auto", "hnn", "lnn", "node", "sonode")


def cases(config: dict) -> list[Case]:
    """The cases of a configuration: ``{"case": {...}, "grid": {name: [values]}}``, every
    combination of the grid's values on top of the base ``case`` (both optional; a grid
    value that is a list is one value of a list field, such as ``t_span``, when given as a
    list of lists). ``{"cases": [{...}, ...]}`` lists cases explicitly instead.

    Examples
    --------
    >>> [c.system for c in cases({"grid": {"system": ["pendulum", "massspring"], "seed": [0, 1]}})]
    ['pendulum', 'pendulum', 'massspring', 'massspring']
    """
    if not isinstance(config, dict):
        raise TypeError(f"`config` must be a dict; got {type(config).__name__}")
    unknown = set(config) - {"case", "grid", "cases", "out"}
    if unknown:
        raise ValueError(f"unknown configuration sections {sorted(unknown)}; expected 'case', "
                         f"'grid', 'cases' or 'out'")
    fields = {f.name for f in dataclasses.fields(Case)}
    base, grid = dict(config.get("case", {})), dict(config.get("grid", {}))
    for where, names in (("case", base), ("grid", grid)):
        wrong = set(names) - fields
        if wrong:
            raise ValueError(f"unknown case fields {sorted(wrong)} in [{where}]; expected "
                             f"some of {sorted(fields)}")
    if "cases" in config:
        if grid:
            raise ValueError("give either a [grid] or a list of [[cases]], not both")
        listed = config["cases"]
        for i, entry in enumerate(listed):
            wrong = set(entry) - fields
            if wrong:
                raise ValueError(f"unknown case fields {sorted(wrong)} in cases[{i}]; "
                                 f"expected some of {sorted(fields)}")
        return [Case(**{**base, **entry}) for entry in listed]
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid[{name!r}] must be a non-empty list of values; got "
                             f"{values!r}")
    names = list(grid)
    return [Case(**{**base, **dict(zip(names, combination))})
            for combination in itertools.product(*(grid[n] for n in names))]


def load_config(path) -> dict:
    """A sweep configuration from a TOML (``.toml``) or JSON (``.json``) file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no sweep configuration at {path}")
    if path.suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:          # Python 3.10
            import tomli as tomllib
        with path.open("rb") as f:
            return tomllib.load(f)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    raise ValueError(f"a sweep configuration is a .toml or .json file; got {path.name}")


def run_case(case: Case) -> dict:
    """One case on one thread (torch's and the BLAS numpy uses, as in a dask worker, so a
    case gives the same numbers wherever it runs): its table row (``status`` ``"ok"`` or
    ``"failed"`` with the error; never raises for a failing case)."""
    row = {}
    start = time.perf_counter()
    try:
        with one_thread():
            row.update(_pipeline(case), status="ok", error="")
    except Exception as error:                       # recorded, not fatal
        row.update(status="failed", error=f"{type(error).__name__}: {error}",
                   traceback=traceback.format_exc(limit=4))
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


@contextlib.contextmanager
def one_thread():
    """Torch and the BLAS libraries on one thread inside, restored afterwards: what every
    case of a sweep runs under, whatever its pipeline."""
    import torch
    from threadpoolctl import threadpool_limits
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


def _pipeline(case: Case) -> dict:
    import torch

    import physnode as pn
    if case.options:
        raise ValueError(f"the default pipeline takes no `options`; got "
                         f"{sorted(case.options)} (they are for a `run=` of your own)")
    system = (pn.systems.REFERENCE_SYSTEMS[case.system.lower()](**case.parameters)
              if case.system is not None else None)
    if case.data is not None:
        data = pn.data.load(case.data)
    else:
        data = pn.data.simulate(system, n_trajectories=case.n_trajectories,
                                t_span=case.t_span, n_points=case.n_points, noise=case.noise,
                                irregular=case.irregular, seed=case.seed)
    torch.manual_seed(case.seed)
    model = _model(case, system, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pn.fit(model, data, progress=False, **{"seed": case.seed, **case.fit_options})
        found = pn.discover(model, data=data, seed=case.seed)
    row = {"model": type(model).__name__, "equations": found.to_json(),
           "fit_quality": (None if found.fit_quality is None
                           else found.fit_quality.as_dict().get("ratio"))}
    if system is not None:
        report = found.compare(system.equations())
        row.update(exact_support=report["exact_support"],
                   max_coefficient_error=report["max_relative_coefficient_error"])
    return row


def _model(case, system, data):
    import physnode as pn
    kind = case.model
    if kind == "auto":
        if system is not None:
            kind = "hnn" if system.hamiltonian else "node"
        else:
            kind = "hnn" if data.dim % 2 == 0 and data.state_names[data.dim // 2:] == tuple(
                "p" + n[1:] for n in data.state_names[:data.dim // 2]) else "node"
    options = dict(case.model_options)
    if kind == "node":
        return pn.models.NeuralODE(dim=data.dim, **options)
    if kind == "sonode":
        return pn.models.SecondOrderNeuralODE(dof=data.dim // 2, **options)
    if kind == "hnn" and system is not None and case.model == "auto":
        options.setdefault("dissipative", system.dissipative)
    build = pn.models.HNN if kind == "hnn" else pn.models.LNN
    return build(dof=data.dim // 2, **options)


def sweep(cases_or_config, out=None, *, client=None, workers: int | None = None,
          run=None) -> list[dict]:
    """Run every case; one row per case, in the order of the cases.

    Parameters
    ----------
    cases_or_config : list of Case, or a configuration dict (see :func:`cases`)
    out : path, optional
        The table, rewritten atomically as each case finishes: CSV with the columns of
        :data:`COLUMNS`, or, for a ``.jsonl`` path, one JSON object per line holding every
        field of the rows as the run returned them (nested values included: for a ``run`` of
        your own). Cases whose key is already there with status ``ok`` are not run again;
        failed ones are.
    client : None, ``"serial"``, a scheduler address or a ``dask.distributed.Client``
        None starts a ``LocalCluster`` of ``workers`` one-thread processes (default: the
        CPU count) for this sweep. A scheduler of your own should run one-thread workers
        too: a case holds its process's torch and BLAS thread counts at one while it runs,
        so two cases at once in one process would share them. A case whose worker dies is
        rerun on another worker by the scheduler (dask's
        ``distributed.scheduler.allowed-failures``, 3 by default), then recorded as failed;
        a case that raises is recorded at once.
    run : callable, optional
        What each case goes through: :func:`run_case` by default, or any importable
        function of a :class:`Case` returning its row as a dict (a pipeline of your own,
        run on one thread like the default one: :func:`one_thread`); an exception it raises
        is recorded as the case's error.
    """
    if workers is not None:
        check_int("workers", workers, minimum=1)
    todo = cases(cases_or_config) if isinstance(cases_or_config, dict) else list(
        cases_or_config)
    for i, case in enumerate(todo):
        if not isinstance(case, Case):
            raise TypeError(f"cases[{i}] must be a physnode.parallel.Case; got "
                            f"{type(case).__name__}")
    if out is None and isinstance(cases_or_config, dict) and "out" in cases_or_config:
        out = cases_or_config["out"]
    rows = {row["key"]: row for row in (read_table(out) if out is not None else [])}
    keys = list(dict.fromkeys(case.key for case in todo))         # no case twice
    pending = [case for case in {c.key: c for c in todo}.values()
               if rows.get(case.key, {}).get("status") != "ok"]

    def record(row):
        rows[row["key"]] = row
        if out is not None:
            write_table(out, [rows[k] for k in keys if k in rows] +
                        [r for k, r in rows.items() if k not in keys])

    run = run_case if run is None else run
    if client == "serial":
        for case in pending:
            record(_row(case, _attempt(run, case)))
    elif pending:
        _run_on_dask(pending, record, client, workers, run)
    return [rows[k] for k in keys]


def _attempt(run, case):
    """``run(case)`` on one thread, or the error it raised."""
    try:
        with one_thread():
            return run(case)
    except Exception as error:
        return error


def _row(case: Case, result) -> dict:
    """The table row of a case from what its run returned (a row, or an error)."""
    base = {"key": case.key, "system": case.system, "parameters": json.dumps(case.parameters),
            "data": case.data, "noise": case.noise, "seed": case.seed}
    if isinstance(result, BaseException):
        return {**base, "status": "failed", "error": f"{type(result).__name__}: {result}"}
    if not isinstance(result, dict):
        return {**base, "status": "failed",
                "error": f"the case's run returned {type(result).__name__}, not a dict"}
    return {**base, "status": "ok", "error": "", **result}


def _run_on_dask(pending, record, client, workers, run):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as error:
        raise ImportError('sweeps on dask need dask.distributed: pip install '
                          '"physnode[distributed]" (or pass client="serial")') from error
    own = None
    if client is None:
        n = workers or os.cpu_count() or 1
        own = Client(LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                  dashboard_address=None))
        client = own
    elif isinstance(client, str):
        own = client = Client(client)
    try:
        futures = {client.submit(_attempt, run, case, key=_task_key(case), pure=False): case
                   for case in pending}
        for future in as_completed(futures):
            case = futures[future]
            try:
                result = future.result()
            except Exception as error:              # the worker died every time
                result = error
            record(_row(case, result))
    finally:
        if own is not None:
            cluster = getattr(own, "cluster", None)
            own.close()
            if cluster is not None:
                cluster.close()


def _task_key(case: Case) -> str:
    import hashlib
    return "physnode-case-" + hashlib.sha1(case.key.encode()).hexdigest()[:16]


def read_table(path) -> list[dict]:
    """The rows of a sweep table written by :func:`sweep` (none when there is no file)."""
    path = Path(path)
    if not path.is_file():
        return []
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for name in ("noise", "seconds", "max_coefficient_error", "fit_quality"):
            if row.get(name) not in (None, ""):
                row[name] = float(row[name])
        if row.get("seed") not in (None, ""):
            row["seed"] = int(row["seed"])
        if row.get("exact_support") in ("True", "False"):
            row["exact_support"] = row["exact_support"] == "True"
        for name, value in list(row.items()):
            if value == "":
                row[name] = None
    return rows


def write_table(path, rows) -> Path:
    """Write sweep rows as CSV (JSON lines for a ``.jsonl`` path), atomically."""
    if Path(path).suffix == ".jsonl":
        return write_text_atomic(path, "".join(json.dumps(row, default=_json_default) + "\n"
                                               for row in rows))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in COLUMNS})
    return write_text_atomic(path, buffer.getvalue())


def _json_default(value):
    """What JSON cannot hold as it is: numpy and torch scalars and arrays, tuples' kin."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"a sweep row holds a {type(value).__name__}, which JSON cannot store")


def _cell(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value
