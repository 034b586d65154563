"""Reading recordings: plain text tables, arrays and DataFrames, and the real Schmidt & Lipson
files when they are present."""

import ast
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import physnode as pn
from physnode.data import Trajectories, Trajectory, from_arrays, from_dataframe, load

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LIPSON = {"trajectory": 0, "t": 1}


def _e(value: float) -> str:
    """A number as the Lipson files write it: ``%e`` with 16 digits and a 3-digit exponent."""
    mantissa, exponent = f"{value:.16e}".split("e")
    return f"{mantissa}e{int(exponent):+04d}"


def _lipson_bytes(header: str, table: np.ndarray, trailing_space=False) -> bytes:
    """Bytes laid out exactly like the real files: CRLF, a ``%`` header, right-aligned
    ``%e`` fields separated by spaces, optionally a trailing space (the pendulum file)."""
    lines = [header]
    for row in table:
        line = " " + " ".join(f"{_e(v):>24}" for v in row)
        lines.append(line + (" " if trailing_space else ""))
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _table(rng, n, n_states, trial=0.0):
    """trial, t (a 1/30 s grid with a few missing frames), then states of pixel size."""
    frames = np.sort(rng.choice(np.arange(1, 2 * n), size=n, replace=False))
    t = frames * (1.0 / 30.0)
    states = rng.normal(scale=100.0, size=(n, n_states))
    states[:, 0] = np.round(states[:, 0])  # tracked positions are integers
    return np.column_stack([np.full(n, trial), t, states])


def _write(path, text):
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _assert_equal(a: Trajectories, b: Trajectories):
    assert a.state_names == b.state_names and len(a) == len(b)
    for x, y in zip(a, b):
        assert x.t.dtype == x.y.dtype == torch.float64
        assert torch.equal(x.t.cpu(), y.t.cpu()) and torch.equal(x.y.cpu(), y.y.cpu())
        assert (x.dy is None) == (y.dy is None)
        if x.dy is not None:
            assert torch.equal(x.dy.cpu(), y.dy.cpu())


# --- text tables ---------------------------------------------------------------------------


@pytest.mark.parametrize("header,labels,trailing_space", [
    ("% x v", ("x", "v"), False),                        # real_linear_h_1.txt
    ("%o v", ("o", "v"), True),                          # real_pend_h_1.txt
    ("% x a v", ("x", "a", "v"), False),                 # real_linear_a_1.txt
    ("% x1 x2 v1 v2", ("x1", "x2", "v1", "v2"), False),  # real_double_linear_h_1.txt
])
def test_lipson_layout_loads_bit_equal_to_loadtxt(tmp_path, header, labels, trailing_space):
    rng = np.random.default_rng(len(header))
    table = _table(rng, 40, len(labels))
    path = _write(tmp_path / "rec.txt", _lipson_bytes(header, table, trailing_space))
    assert b"\r\n" in path.read_bytes() and b"e+002" in path.read_bytes()
    reference = np.loadtxt(path, comments="%")
    data = load(path, columns={**LIPSON, **{name: name for name in labels}})
    assert data.state_names == labels and len(data) == 1
    assert np.array_equal(data[0].t.numpy(), reference[:, 1])
    assert np.array_equal(data[0].y.numpy(), reference[:, 2:])
    assert data[0].dy is None


def test_without_columns_the_error_lists_the_columns_and_its_example_works(tmp_path):
    table = _table(np.random.default_rng(0), 10, 2)
    path = _write(tmp_path / "rec.txt", _lipson_bytes("% x v", table))
    message = (re.escape(f"{path}: which column is time? The file has 4 columns: 0, 1, 2 'x', "
                         f"3 'v'. Pass `columns=` to name them, e.g. columns=") +
               r"(\{.*\})$")
    with pytest.raises(ValueError, match=message) as info:
        load(path)
    example = ast.literal_eval(re.search(message, str(info.value)).group(1))
    assert example == {"trajectory": 0, "t": 1, "x": "x", "v": "v"}
    assert np.array_equal(load(path, columns=example)[0].y.numpy(), table[:, 2:])


@pytest.mark.parametrize("text,example", [
    ("0 1 2\n1 2 3\n2 3 4\n", "{'t': 0, 'x0': 1, 'x1': 2}"),
    ("# made by hand, 2 columns\n0 1\n1 2\n2 3\n", "{'t': 0, 'x0': 1}"),  # prose, not labels
    ("time x v\n0 1 2\n1 2 3\n2 3 4\n", "{'t': 'time', 'x': 'x', 'v': 'v'}"),
])
def test_without_columns_or_header_the_example_is_generic(tmp_path, text, example):
    path = _write(tmp_path / "plain.dat", text)
    with pytest.raises(ValueError, match=re.escape(f"e.g. columns={example}") + "$"):
        load(path)


def test_comma_separated_with_hash_header_in_physnode_layout_needs_no_columns(tmp_path):
    text = ("# a hand-made recording\n# trajectory, t, x, v, dx/dt, dv/dt\n"
            "0, 0.0, 1.0, 0.0, 0.0, -1.0\n0, 0.1, 0.99, -0.1, -0.1, -0.99\n"
            "0, 0.3, 0.96, -0.3, -0.3, -0.96\n"
            "7, 0.0, 2.0, 0.0, 0.0, -2.0\n7, 0.2, 1.96, -0.4, -0.4, -1.96\n"
            "7, 0.4, 1.84, -0.8, -0.8, -1.84\n")
    for name in ("rec.csv", "rec.txt"):
        data = load(_write(tmp_path / name, text.replace("\n", "\r\n")))
        assert data.state_names == ("x", "v") and len(data) == 2 and data.has_derivatives
        assert data[0].t.tolist() == [0.0, 0.1, 0.3]       # the gap at 0.2 is kept
        assert data[1].y[:, 0].tolist() == [2.0, 1.96, 1.84]
        assert data[1].dy[:, 1].tolist() == [-2.0, -1.96, -1.84]


def test_trajectory_column_splits_contiguous_runs(tmp_path):
    rng = np.random.default_rng(1)
    table = np.vstack([_table(rng, 8, 2, trial=0.0), _table(rng, 5, 2, trial=1.0)])
    path = _write(tmp_path / "two.txt", _lipson_bytes("% x v", table))
    data = load(path, columns={**LIPSON, "x": "x", "v": "v"})
    assert [len(tr) for tr in data] == [8, 5]
    assert np.array_equal(data[1].t.numpy(), table[8:, 1])
    assert np.array_equal(data[1].y.numpy(), table[8:, 2:])
    # without the trajectory column the second run's times go back: an error that says so
    with pytest.raises(ValueError, match=re.escape(
            f"{path}: row 9, column 't': time {float(table[8, 1])!r} does not increase after "
            f"{float(table[7, 1])!r}; expected strictly increasing times, or a trajectory column "
            f"that splits the rows into runs") + "$"):
        load(path, columns={"t": 1, "x": "x", "v": "v"})


def test_derivative_columns_attach_dy_and_a_column_may_serve_twice(tmp_path):
    table = _table(np.random.default_rng(2), 12, 3)  # x, a, v
    path = _write(tmp_path / "acc.txt", _lipson_bytes("% x a v", table))
    data = load(path, columns={"t": 1, "x": "x", "v": "v", "dx/dt": "v", "dv/dt": 3})
    assert data.state_names == ("x", "v") and data.has_derivatives
    assert np.array_equal(data[0].y.numpy(), table[:, [2, 4]])
    assert np.array_equal(data[0].dy.numpy(), table[:, [4, 3]])


def test_gaps_in_time_are_kept_as_irregular_times(tmp_path):
    text = "% t x\n0.0 1\n0.5 2\n2.0 3\n2.25 4\n"
    data = load(_write(tmp_path / "gaps.txt", text), columns={"t": 0, "x": 1})
    assert data[0].t.tolist() == [0.0, 0.5, 2.0, 2.25] and data.state_names == ("x",)


def test_other_separators_suffixes_and_unused_columns(tmp_path):
    expected = [[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]
    tsv = "t\tx\tv\tnote\n0\t1\t10\tstart\n1\t2\t20\t-\n2\t3\t30\tend\n"
    data = load(_write(tmp_path / "a.tsv", tsv), columns={"t": "t", "x": "x", "v": "v"})
    assert data[0].y.tolist() == expected                  # the text column is never read
    csv_no_header = "0,1,10\n1,2,20\n2,3,30\n"             # .csv, but not physnode's layout
    data = load(_write(tmp_path / "b.csv", csv_no_header), columns={"t": 0, "x": 1, "v": 2})
    assert data[0].y.tolist() == expected
    physnode_csv = "trajectory,t,x,v\n0,0,1,10\n0,1,2,20\n0,2,3,30\n"
    data = load(_write(tmp_path / "c.csv", physnode_csv), columns={"t": "t", "pos": "x"})
    assert data.state_names == ("pos",) and data[0].y[:, 0].tolist() == [1.0, 2.0, 3.0]
    dat = "\n% comment\n\n0 1 10\r\n1 2 20\n# a comment after the data\n2 3 30"
    data = load(_write(tmp_path / "d.DAT", dat), columns={"t": np.int64(0), "x": 1, "v": 2})
    assert data[0].y.tolist() == expected


def test_values_are_taken_as_they_are(tmp_path):
    """Pixels and minutes stay pixels and minutes: nothing assumes SI, nothing rescales."""
    text = "% x\n0 0.0 1500\n0 0.5 1520\n0 1.0 1590\n"
    data = load(_write(tmp_path / "px.txt", text), columns={**LIPSON, "x": "x"})
    assert data[0].y[:, 0].tolist() == [1500.0, 1520.0, 1590.0]
    assert data[0].t.tolist() == [0.0, 0.5, 1.0]


GOOD = "% x v\n0 0.0 1.0 0.0\n0 0.1 0.9 -1.0\n0 0.2 0.7 -2.0\n"
COLUMNS = {**LIPSON, "x": "x", "v": "v"}


@pytest.mark.parametrize("text,columns,message", [
    (GOOD, {**COLUMNS, "x": 4},
     r": `columns\['x'\]` is 4, but the file has 4 columns: expected an index from 0 to 3$"),
    (GOOD, {**COLUMNS, "x": "q"},
     r": `columns\['x'\]` is 'q', which is not a header label; the labels are \['x', 'v'\], "
     r"and columns are numbered 0 to 3$"),
    (GOOD.replace("% x v", "% x x"), COLUMNS,
     r": `columns\['x'\]` is 'x', which names columns 2 and 3; use an index; the labels are "
     r"\['x', 'x'\], and columns are numbered 0 to 3$"),
    (GOOD.replace("% x v\n", ""), COLUMNS,
     r": `columns\['x'\]` is 'x', which is not a header label; the file has no header labels, "
     r"and columns are numbered 0 to 3$"),
    (GOOD + "0 0.3 0.5\n", COLUMNS, r": row 4 has 3 values; expected 4 \(0, 1, 2 'x', 3 'v'\)$"),
    (GOOD.replace("0.9", "abc"), COLUMNS, r": row 2, column 'x': expected a number, got 'abc'$"),
    (GOOD.replace("-2.0", "nan"), COLUMNS,
     r": row 3, column 'v': value is nan; expected a finite number$"),
    (GOOD.replace("0 0.1", "0 0.0"), {"t": 1, "x": "x", "v": "v"},
     r": row 2, column 't': time 0.0 does not increase after 0.0; expected strictly increasing "
     r"times, or a trajectory column that splits the rows into runs$"),
    (GOOD.replace("0 0.1", "0 0.0"), COLUMNS,
     r": row 2, column 't': time 0.0 does not increase after 0.0 in trajectory 0; expected "
     r"strictly increasing times$"),
    (GOOD + "1 0.0 1.0 0.0\n1 0.2 1.0 0.0\n", COLUMNS,
     r": row 4, column 'trajectory': trajectory 1 has 2 samples; expected at least 3$"),
    (GOOD + "1 0.0 1.0 0.0\n1 0.2 1.0 0.0\n1 0.3 1.0 0.0\n0 0.5 1 1\n0 0.6 1 1\n0 0.7 1 1\n",
     COLUMNS, r": row 7, column 'trajectory': trajectory 0 appears again after other "
              r"trajectories; expected its rows to be contiguous$"),
    (GOOD.replace("0 0.2", "0 0.1"), {"trial": 0, "t": 1, "x": 2},
     r": row 3, column 't': time 0.1 does not increase after 0.1; expected strictly"),
    (GOOD.replace("0 0.0", "5 0.0"), COLUMNS,
     r": row 1, column 'trajectory': trajectory 5 has 1 samples; expected at least 3$"),
    ("0 0 1\n0 1 2\n", {"t": 1, "x": 2}, r": the table has 2 samples; expected at least 3$"),
    ("% only comments\n\n", COLUMNS,
     r": no data rows; expected lines of numbers separated by whitespace or commas, after any "
     r"comment lines starting with % or #$"),
    ("t,x\n0,1,2\n1,2,3\n", {"t": 0, "x": 1},
     r": the header row has 2 labels \(t, x\) but row 1 has 3 values; expected one label per "
     r"column$"),
])
def test_text_errors_name_file_row_and_column(tmp_path, text, columns, message):
    path = _write(tmp_path / "bad.txt", text)
    with pytest.raises(ValueError, match=message) as info:
        load(path, columns=columns)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize("columns,error,message", [
    ([("t", 0)], TypeError,
     r"^`columns` must be a mapping \{name: column\}, e.g. \{'t': 0, 'x': 1\}; got list$"),
    ({0: 1, "t": 0}, TypeError, r"^`columns` keys must be non-empty names \(str\); got 0$"),
    ({"t": 0, "x": 1.0}, TypeError,
     r"^`columns\['x'\]` must be a 0-based column index \(int\) or a header label \(str\); "
     r"got 1.0 \(float\)$"),
    ({"t": 0, "x": True}, TypeError, r"^`columns\['x'\]` must be a 0-based column index"),
    ({"t": 0, "x": -1}, ValueError,
     r"^`columns\['x'\]` must be a 0-based column index, at least 0; got -1$"),
    ({"x": 2}, ValueError, r"^`columns` must name the time column 't'; got \{'x': 2\}$"),
    ({"t": 1, "trajectory": 0}, ValueError,
     r"^`columns` must name at least one state besides 't', 'trajectory' and derivatives "
     r"'d<state>/dt'; got \{'t': 1, 'trajectory': 0\}$"),
    ({"t": 1, "x": 2, "dv/dt": 3}, ValueError,
     r"^`columns` names 'dv/dt' but no state 'v'; derivatives need their state, got "),
    ({"t": 1, "x": 2, "v": 3, "dx/dt": 3}, ValueError,
     r"^`columns` must give a derivative column for every state or for none; missing 'dv/dt'$"),
])
def test_bad_columns_are_pinned(tmp_path, columns, error, message):
    path = _write(tmp_path / "ok.txt", GOOD)
    with pytest.raises(error, match=message):
        load(path, columns=columns)


def test_columns_with_npz_and_unknown_suffixes(tmp_path):
    data = from_arrays(np.arange(3.0), np.zeros((3, 1)))
    path = data.save(tmp_path / "d.npz")
    with pytest.raises(ValueError, match=re.escape(
            f"{path}: `columns` names the columns of a text table; an .npz file holds the named "
            f"arrays 'trajectory', 't', 'y', 'state_names' and reads without it; got "
            f"columns={{'t': 0, 'x': 1}}") + "$"):
        load(path, columns={"t": 0, "x": 1})
    with pytest.raises(ValueError, match=r"^`path` must end in .csv, .npz, .txt, .dat or .tsv; "
                                         r"got '.*x\.xyz'$"):
        load(tmp_path / "x.xyz")
    with pytest.raises(FileNotFoundError, match=r"^no trajectory file at '.*nope\.txt'$"):
        load(tmp_path / "nope.txt", columns={"t": 0, "x": 1})
    with pytest.raises(ValueError, match=r"^`path` must end in .csv or .npz; got '.*x\.txt'$"):
        data.save(tmp_path / "x.txt")  # writing stays physnode's own formats


# --- from_arrays ---------------------------------------------------------------------------


@pytest.fixture
def simulated():
    return pn.data.simulate(pn.systems.Pendulum(), n_trajectories=3, t_span=(0.0, 2.0),
                            n_points=9, noise=0.05, irregular=True, seed=4, derivatives=True)


def _long(data):
    ids = np.concatenate([np.full(len(tr), i) for i, tr in enumerate(data)])
    t, y, dy = (torch.cat([getattr(tr, k) for tr in data]) for k in ("t", "y", "dy"))
    return ids, t, y, dy


def test_from_arrays_round_trip_with_numpy_and_tensors(simulated):
    ids, t, y, dy = _long(simulated)
    _assert_equal(from_arrays(t.numpy(), y.numpy(), names=("q", "p"), trajectory=ids,
                              dy=dy.numpy()), simulated)
    _assert_equal(from_arrays(t, y, names=["q", "p"], trajectory=torch.from_numpy(ids), dy=dy),
                  simulated)
    letters = np.array(["a", "b", "c"])[ids]                 # string ids split the same way
    _assert_equal(from_arrays(t, y, ("q", "p"), letters, dy), simulated)


def test_from_arrays_converts_to_float64_and_defaults_names():
    t = torch.tensor([0.0, 0.5, 1.25], dtype=torch.float32)
    data = from_arrays(t, [1, 2, 3])
    assert data.state_names == ("x0",) and data[0].y.dtype == torch.float64
    assert data[0].y[:, 0].tolist() == [1.0, 2.0, 3.0] and data[0].t.tolist() == [0.0, 0.5, 1.25]
    assert data[0].dy is None and data[0].t.device.type == "cpu"


@pytest.mark.parametrize("kwargs,error,message", [
    ({"t": np.zeros((3, 1))}, ValueError, r"^`t` must be 1-D, shape \(n,\); got shape \(3, 1\)$"),
    ({"y": np.zeros((4, 2))}, ValueError,
     r"^`y` must have shape \(n, dim\) or \(n,\) with n = len\(t\) = 3 and dim >= 1; "
     r"got shape \(4, 2\)$"),
    ({"y": np.zeros((3, 0))}, ValueError, r"^`y` must have shape .* got shape \(3, 0\)$"),
    ({"dy": np.zeros((3, 3))}, ValueError,
     r"^`dy` must have the shape of `y`, \(3, 2\); got \(3, 3\)$"),
    ({"trajectory": [0, 0]}, ValueError,
     r"^`trajectory` must have shape \(n,\) with n = len\(t\) = 3; got shape \(2,\)$"),
    ({"names": ("a",)}, ValueError,
     r"^`names` must have 2 names, one per state; got 1: \('a',\)$"),
    ({"names": "ab"}, TypeError,
     r"^`names` must be a sequence of strings, one per state; got str$"),
    ({"names": ("a", 1)}, TypeError, r"^`names\[1\]` must be a string; got int$"),
    ({"names": ("a", "a")}, ValueError, r"^`names` must be distinct; got 'a' twice in"),
    ({"y": np.array([["a", "b"]] * 3)}, TypeError,
     r"^`y` must be an array of real numbers \(numpy array, torch tensor or list\); "
     r"got ndarray of dtype <U1$"),
    ({"t": [[0.0], [1.0, 2.0]]}, TypeError, r"^`t` must be an array of real numbers .*got list$"),
    ({"y": torch.zeros(3, 2, dtype=torch.complex64)}, TypeError,
     r"^`y` must hold real numbers; got a tensor of dtype torch.complex64$"),
    ({"y": np.array([[0.0, 0.0], [np.nan, 0.0], [0.0, 0.0]])}, ValueError,
     r"^from_arrays: index 1, column 'x0': value is nan; expected a finite number$"),
    ({"t": np.array([0.0, 2.0, 1.0])}, ValueError,
     r"^from_arrays: index 2, column 't': time 1.0 does not increase after 2.0; expected"),
    ({"trajectory": ["a", "b", "b"]}, ValueError,
     r"^from_arrays: index 0, column 'trajectory': trajectory 'a' has 1 samples; "
     r"expected at least 3$"),
    ({"t": np.zeros(0), "y": np.zeros((0, 2))}, ValueError,
     r"^from_arrays: no samples; expected at least one trajectory with 3 or more samples$"),
])
def test_from_arrays_errors_are_pinned(kwargs, error, message):
    args = {"t": np.arange(3.0), "y": np.zeros((3, 2)), **kwargs}
    with pytest.raises(error, match=message):
        from_arrays(**args)


def test_from_arrays_reappearing_id_is_an_error():
    with pytest.raises(ValueError, match=r"^from_arrays: index 6, column 'trajectory': "
                                         r"trajectory 'a' appears again after other"):
        from_arrays(np.r_[0:3, 0:3, 5:8].astype(float), np.zeros(9),
                    trajectory=list("aaabbbaaa"))


# --- from_dataframe ------------------------------------------------------------------------


def test_from_dataframe_reads_a_physnode_csv_through_pandas(tmp_path, simulated):
    pd = pytest.importorskip("pandas")
    path = simulated.save(tmp_path / "pend.csv")
    df = pd.read_csv(path)                      # columns trajectory,t,q,p,dq/dt,dp/dt
    _assert_equal(from_dataframe(df, trajectory="trajectory"), simulated)
    explicit = from_dataframe(df, t="t", state=["q", "p"], trajectory="trajectory",
                              derivatives={"p": "dp/dt", "q": "dq/dt"})
    _assert_equal(explicit, simulated)
    listed = from_dataframe(df, state=["q", "p"], trajectory="trajectory",
                            derivatives=["dq/dt", "dp/dt"])
    _assert_equal(listed, simulated)


def test_from_dataframe_defaults_skip_text_columns_and_keep_order():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"run": ["a"] * 3 + ["b"] * 3, "time": [0, 1, 3, 0, 2, 3],
                       "label": list("uvwxyz"), "v": np.arange(6.0), "x": np.arange(6.0) * 2})
    data = from_dataframe(df, t="time", trajectory="run")
    assert data.state_names == ("v", "x") and [len(tr) for tr in data] == [3, 3]
    assert data[1].t.tolist() == [0.0, 2.0, 3.0] and data[1].y[:, 1].tolist() == [6.0, 8.0, 10.0]
    one = from_dataframe(df.iloc[:3], t="time", state="x")
    assert one.state_names == ("x",) and not one.has_derivatives


@pytest.mark.parametrize("kwargs,error,message", [
    ({"df": {"t": [0, 1, 2]}}, TypeError, r"^`df` must be a pandas.DataFrame; got dict$"),
    ({"t": "time"}, ValueError,
     r"^`t` must name a column of `df`; got 'time', columns are \['t', 'x', 'dx/dt', 's'\]$"),
    ({"trajectory": "run"}, ValueError, r"^`trajectory` must name a column of `df`; got 'run'"),
    ({"state": ["x", "y"]}, ValueError, r"^`state\[1\]` must name a column of `df`; got 'y'"),
    ({"derivatives": ["vx"]}, ValueError,
     r"^`derivatives\[0\]` must name a column of `df`; got 'vx'"),
    ({"state": ["s"]}, TypeError, r"^`df\['s'\]` must hold numbers; got dtype (object|str)$"),
    ({"derivatives": {"z": "dx/dt"}}, ValueError,
     r"^`derivatives` must map every state \['x'\] to a column; got keys \['z'\]$"),
    ({"derivatives": ["dx/dt", "x"]}, ValueError,
     r"^`derivatives` must give one column per state \['x'\]; got \['dx/dt', 'x'\]$"),
    ({"state": ["x", "t"]}, ValueError,
     r"^`df` has derivative columns for some states but not 'dt/dt'; expected one for every "
     r"state or none \(choose with `state=` and `derivatives=`\)$"),
])
def test_from_dataframe_errors_are_pinned(kwargs, error, message):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"t": [0.0, 1.0, 2.0], "x": [1.0, 2.0, 3.0], "dx/dt": [1.0, 1.0, 1.0],
                       "s": ["a", "b", "c"]})
    with pytest.raises(error, match=message):
        from_dataframe(**{"df": df, **kwargs})


def test_from_dataframe_names_the_index_label_of_a_bad_value():
    pd = pytest.importorskip("pandas")
    # One NaN beside a finite state (a row of NaN states alone is a lost frame, dropped).
    df = pd.DataFrame({"t": [0.0, 1.0, 2.0], "x": [1.0, None, 3.0], "v": [0.0, 1.0, 2.0]},
                      index=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"^from_dataframe: index 'b', column 'x': value is nan; "
                                         r"expected a finite number$"):
        from_dataframe(df)
    df = pd.DataFrame({"time": [0.0, 2.0, 1.0], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"^from_dataframe: index 2, column 'time': time 1.0 "
                                         r"does not increase after 2.0; expected"):
        from_dataframe(df, t="time")
    with pytest.raises(ValueError, match=r"^`df` has no numeric state column besides `t` and "
                                         r"`trajectory`; columns are \['time'\]$"):
        from_dataframe(df[["time"]], t="time")


def test_from_dataframe_without_pandas_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)   # import pandas now raises ImportError
    with pytest.raises(ImportError, match=r"^physnode.data.from_dataframe needs pandas; install "
                                          r"it with `pip install pandas`$"):
        from_dataframe(object())


# --- Trajectories default names ------------------------------------------------------------


def test_trajectories_default_and_checked_state_names():
    tr = Trajectory(torch.linspace(0, 1, 4), torch.zeros(4, 3))
    assert Trajectories([tr, tr]).state_names == ("x0", "x1", "x2")
    assert Trajectories([tr], ("a", "b", "c")).state_names == ("a", "b", "c")
    assert Trajectories([]).state_names == () and Trajectories([]).dim == 0
    assert Trajectories([tr])[0:1].state_names == ("x0", "x1", "x2")
    narrow = Trajectory(torch.linspace(0, 1, 4), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"^`trajectories\[1\]` has 2 states but "
                                         r"`trajectories\[0\]` has 3; expected one state width$"):
        Trajectories([tr, narrow])
    with pytest.raises(TypeError, match=r"^`state_names` must be a sequence of strings, one per "
                                        r"state; got str$"):
        Trajectories([tr], "abc")
    with pytest.raises(ValueError, match=r"^`state_names` must be distinct; got 'a' twice in "
                                         r"\('a', 'b', 'a'\)$"):
        Trajectories([tr], ("a", "b", "a"))


# --- the real recordings (Schmidt & Lipson 2009), when present ------------------------------


def _real(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"real recording {path} is absent (third-party data, not shipped)")
    return path


def test_real_single_cart():
    path = _real("real_oscillators/real_linear_h_1.txt")
    data = load(path, columns={**LIPSON, "x": "x", "v": "v"})
    assert len(data) == 1 and len(data[0]) == 870 and data.state_names == ("x", "v")
    x, v = data[0].y.T
    assert x.min() == -102 and x.max() == 102 and -252 < v.min() < -250 and 255 < v.max() < 257
    assert abs(data[0].t[0] - 0.033) < 1e-12 and abs(data[0].t[-1] - 29.04) < 0.005
    assert np.array_equal(data[0].y.numpy(), np.loadtxt(path, comments="%")[:, 2:])


def test_real_coupled_carts():
    path = _real("real_oscillators/real_double_linear_h_1.txt")
    data = load(path, columns={**LIPSON, "x1": "x1", "x2": "x2", "v1": "v1", "v2": "v2"})
    assert len(data[0]) == 495 and data.dim == 4
    y = data[0].y
    assert y[:, 0].min() == -18 and y[:, 0].max() == 143
    assert y[:, 1].min() == -143 and y[:, 1].max() == 18


def test_real_pendulum_keeps_its_missing_frames():
    path = _real("real_pendulum/real_pend_h_1.txt")
    data = load(path, columns={**LIPSON, "q": "o", "p": "v"})
    t = data[0].t
    assert len(t) == 556 and t[0] == 5.0 and t[-1] == 99.5
    steps = torch.round(t.diff() * 6).int().tolist()
    assert steps.count(1) == 545 and steps.count(2) == 8 and steps.count(3) == 2


def test_real_acceleration_fit_matches_the_readme():
    """README sanity check: least squares of the given acceleration on (x, v, 1) gives
    a ≈ -6.03 x - 0.012 v - 0.14."""
    path = _real("real_oscillators/real_linear_a_1.txt")
    data = load(path, columns={**LIPSON, "x": "x", "v": "v", "dx/dt": "v", "dv/dt": "a"})
    tr = data[0]
    design = np.column_stack([tr.y.numpy(), np.ones(len(tr))])
    coefficients = np.linalg.lstsq(design, tr.dy[:, 1].numpy(), rcond=None)[0]
    assert abs(coefficients[0] - -6.03) < 0.01
    assert abs(coefficients[1] - -0.012) < 0.001 and abs(coefficients[2] - -0.14) < 0.01


def test_angles_can_be_declared_when_reading(tmp_path):
    path = tmp_path / "pendulum.txt"
    path.write_text("% t theta omega\n0 0.1 0\n0.1 0.2 1\n0.2 0.3 1\n")
    data = load(path, columns={"t": 0, "theta": 1, "omega": 2}, angles=("theta",))
    assert data.angles == (0,)
    assert load(path, columns={"t": 0, "theta": 1, "omega": 2}).angles is None
    arrays = pn.data.from_arrays([0.0, 0.1, 0.2], [[0.1, 0], [0.2, 1], [0.3, 1]], angles=(0,))
    assert arrays.angles == (0,)
    with pytest.raises(ValueError, match=r"^`angles` entries must be state names "
                                         r"\('theta', 'omega'\) or indices 0\.\.1; got 'x'$"):
        load(path, columns={"t": 0, "theta": 1, "omega": 2}, angles=("x",))


def test_rows_whose_states_are_all_nan_are_lost_frames_kept_as_gaps(tmp_path):
    # A tracker that loses the object writes NaN for every state of that frame: the frame is
    # a gap in the times, not an error. A single NaN among finite states stays an error.
    t = np.arange(8) * 0.1
    y = np.column_stack([np.sin(t), np.cos(t)])
    y[[2, 5]] = np.nan
    data = pn.data.from_arrays(t, y, names=("x", "v"))
    assert len(data) == 1 and len(data[0]) == 6
    np.testing.assert_array_equal(data[0].t.numpy(), t[[0, 1, 3, 4, 6, 7]])
    np.testing.assert_array_equal(data[0].y.numpy(), y[[0, 1, 3, 4, 6, 7]])
    path = tmp_path / "lost.txt"
    path.write_text("% t x v\n" + "".join(f"{a} {b} {c}\n" for a, (b, c) in zip(t, y)))
    loaded = pn.data.load(path, columns={"t": 0, "x": 1, "v": 2})
    np.testing.assert_array_equal(loaded[0].t.numpy(), t[[0, 1, 3, 4, 6, 7]])
    y[6, 0] = np.nan
    path.write_text("% t x v\n" + "".join(f"{a} {b} {c}\n" for a, (b, c) in zip(t, y)))
    with pytest.raises(ValueError, match=r": row 7, column 'x': value is nan; expected a "
                                         r"finite number$"):
        pn.data.load(path, columns={"t": 0, "x": 1, "v": 2})
