import subprocess
import sys

import numpy as np
import pytest
import torch

import physnode as pn
from physnode.data import Trajectories, Trajectory


@pytest.fixture
def noisy_irregular():
    return pn.data.simulate(pn.systems.Pendulum(), n_trajectories=4, t_span=(0.0, 3.0),
                            n_points=12, noise=0.1, irregular=True, seed=3, derivatives=True)


def _assert_identical(a: Trajectories, b: Trajectories):
    assert a.state_names == b.state_names and len(a) == len(b)
    for x, y in zip(a, b):
        assert torch.equal(x.t.cpu(), y.t.cpu()) and torch.equal(x.y.cpu(), y.y.cpu())
        assert (x.dy is None) == (y.dy is None)
        if x.dy is not None:
            assert torch.equal(x.dy.cpu(), y.dy.cpu())


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_round_trip_is_exact(tmp_path, noisy_irregular, suffix):
    path = tmp_path / f"pend{suffix}"
    noisy_irregular.save(path)
    _assert_identical(pn.data.load(path), noisy_irregular)


def test_round_trip_without_derivatives_and_uneven_lengths(tmp_path):
    data = Trajectories([Trajectory(torch.tensor([0.0, 0.1, 0.35], dtype=torch.float64),
                                    torch.rand(3, 2, dtype=torch.float64)),
                         Trajectory(torch.linspace(0, 1, 7, dtype=torch.float64),
                                    torch.rand(7, 2, dtype=torch.float64))], ("x", "v"))
    for suffix in (".csv", ".npz"):
        pn.data.save(data, tmp_path / f"d{suffix}")
        _assert_identical(pn.data.load(tmp_path / f"d{suffix}"), data)


def test_simulate_is_reproducible_and_seeded():
    spring = pn.systems.MassSpring()
    a = pn.data.simulate(spring, n_trajectories=3, noise=0.05, irregular=True, seed=11)
    b = pn.data.simulate(spring, n_trajectories=3, noise=0.05, irregular=True, seed=11)
    c = pn.data.simulate(spring, n_trajectories=3, noise=0.05, irregular=True, seed=12)
    _assert_identical(a, b)
    assert not torch.equal(a[0].y, c[0].y)


def test_simulate_clean_data_follow_the_closed_form_and_noise_is_relative():
    spring = pn.systems.MassSpring(k=2.0, mass=0.5, damping=0.1)
    clean = pn.data.simulate(spring, n_trajectories=20, t_span=(0, 5), n_points=50, seed=2,
                             derivatives=True)
    for tr in clean:
        torch.testing.assert_close(tr.y, spring.solution(tr.t, tr.y[0]), atol=1e-8, rtol=0)
        torch.testing.assert_close(tr.dy, spring(0.0, tr.y), atol=1e-12, rtol=0)
    noisy = pn.data.simulate(spring, n_trajectories=20, t_span=(0, 5), n_points=50, seed=2,
                             noise=0.1)
    residual = torch.cat([n.y - c.y for n, c in zip(noisy, clean)])
    spread = torch.cat([c.y for c in clean]).std(0)
    ratio = residual.std(0) / (0.1 * spread)
    assert torch.all((ratio > 0.9) & (ratio < 1.1)), ratio


def test_simulate_irregular_times_are_sorted_random_and_start_at_t0():
    data = pn.data.simulate(pn.systems.Pendulum(), n_trajectories=2, t_span=(1.0, 4.0),
                            n_points=20, irregular=True, seed=0)
    for tr in data:
        assert tr.t[0] == 1.0 and tr.t[-1] <= 4.0
        steps = tr.t.diff()
        assert (steps > 0).all() and steps.std() > 0.1 * steps.mean()
    assert not torch.equal(data[0].t, data[1].t)


def test_simulate_draws_initial_states_from_the_documented_box():
    pend = pn.systems.Pendulum(length=2.0)
    data = pn.data.simulate(pend, n_trajectories=200, n_points=3, seed=0)
    y0 = torch.stack([tr.y[0] for tr in data])
    assert y0[:, 0].abs().max() <= 1.5 and y0[:, 1].abs().max() <= 2.0 * pend.inertia
    assert y0[:, 0].abs().max() > 1.4


@pytest.mark.parametrize("kwargs,message", [
    ({"n_points": 2}, r"^`n_points` must be at least 3; got 2$"),
    ({"noise": -0.1}, r"^`noise` must be non-negative; got -0.1$"),
    ({"t_span": (3.0, 1.0)}, r"^`t_span` must be finite with t0 < t1; got \(3.0, 1.0\)$"),
    ({"t_span": "ab"}, r"^`t_span` must be a pair \(t0, t1\) of numbers; got 'ab'$"),
    ({"n_trajectories": 0}, r"^`n_trajectories` must be at least 1; got 0$"),
])
def test_simulate_bad_input_is_pinned(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pn.data.simulate(pn.systems.Pendulum(), **kwargs)


GOOD = "trajectory,t,q,p\n0,0.0,1.0,0.0\n0,0.1,0.9,-0.1\n0,0.2,0.8,-0.2\n"


@pytest.mark.parametrize("text,message", [
    ("trajectory,q,p\n0,1,2\n", r"missing column 't'; expected columns "
                                r"'trajectory,t,<state names>', got trajectory,q,p$"),
    ("t,q,p\n0,1,2\n", r"missing column 'trajectory'"),
    ("trajectory,t\n0,1\n", r"missing state columns"),
    (GOOD.replace("0.9,", "nan,"), r": row 2, column 'q': value is nan; expected a finite number$"),
    (GOOD.replace("-0.2", "inf"), r": row 3, column 'p': value is inf; expected a finite number$"),
    (GOOD.replace("0,0.1,", "0,0.0,"), r": row 2, column 't': time 0.0 does not increase after "
                                       r"0.0 in trajectory 0; expected strictly increasing times$"),
    (GOOD + "1,0.0,1.0,0.0\n1,0.1,1.0,0.0\n",
     r": row 4, column 'trajectory': trajectory 1 has 2 samples; expected at least 3$"),
    (GOOD.replace("0.8,", "abc,"), r": row 3, column 'q': expected a number, got 'abc'$"),
    (GOOD + "1,0,1,0\n1,1,1,0\n1,2,1,0\n0,5,1,0\n0,6,1,0\n0,7,1,0\n",
     r": row 7, column 'trajectory': trajectory 0 appears again after other trajectories"),
    (GOOD + "0,0.3,1.0\n", r": row 4 has 3 values; expected 4 \(trajectory,t,q,p\)$"),
    ("", r": the file is empty"),
])
def test_load_rejects_bad_csv_naming_file_row_and_column(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        pn.data.load(path)
    assert str(path) in str(info.value)


def test_load_rejects_bad_npz(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, trajectory=np.zeros(3), t=np.array([0, 1, np.nan]), y=np.zeros((3, 1)),
             state_names=np.array(["x"]))
    with pytest.raises(ValueError, match=r"bad.npz: row 3, column 't': value is nan"):
        pn.data.load(path)
    np.savez(path, trajectory=np.zeros(3), t=np.arange(3.0))
    with pytest.raises(ValueError, match=r"bad.npz: missing array 'y'"):
        pn.data.load(path)


def test_load_missing_file_and_bad_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^no trajectory file at '.*nope.csv'$"):
        pn.data.load(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match=r"^`path` must end in .csv, .npz, .txt, .dat or .tsv; "
                                         r"got '.*x\.xyz'$"):
        pn.data.load(tmp_path / "x.xyz")


def test_failed_write_leaves_the_old_file_intact(tmp_path, noisy_irregular, monkeypatch):
    path = tmp_path / "keep.csv"
    noisy_irregular.save(path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "column_stack", broken)
    with pytest.raises(OSError, match="disk full"):
        noisy_irregular.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.csv"]


def test_cli_simulate_writes_what_simulate_makes(tmp_path):
    out = tmp_path / "x.csv"
    proc = subprocess.run([sys.executable, "-m", "physnode.cli", "simulate", "pendulum",
                           "--out", str(out)], capture_output=True, text=True, check=True)
    assert str(out) in proc.stdout
    expected = pn.data.simulate(pn.systems.Pendulum())
    _assert_identical(pn.data.load(out), expected)


def test_cli_bad_input_exits_nonzero_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "physnode.cli", "simulate", "blob",
                           "--out", str(tmp_path / "x.csv")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "unknown system 'blob'; choose one of" in proc.stderr


def test_saved_files_get_ordinary_permissions(tmp_path, noisy_irregular):
    import os
    umask = os.umask(0o022)
    try:
        noisy_irregular.save(tmp_path / "perm.csv")
    finally:
        os.umask(umask)
    assert (tmp_path / "perm.csv").stat().st_mode & 0o777 == 0o644


def test_angles_are_indices_or_names_kept_through_slicing_and_simulation():
    tr = pn.data.Trajectory(torch.linspace(0, 1, 5), torch.zeros(5, 3))
    data = pn.data.Trajectories([tr, tr], ("a", "b", "c"), angles=("c", 0))
    assert data.angles == (0, 2) and data[:1].angles == (0, 2)
    assert pn.data.Trajectories([tr]).angles is None
    assert pn.data.simulate(pn.systems.DoublePendulum(), n_trajectories=1,
                            n_points=3).angles == (0, 1)
    assert pn.data.simulate(pn.systems.MassSpring(), n_trajectories=1, n_points=3).angles == ()


@pytest.mark.parametrize("angles,error,message", [
    ("a", TypeError, r"^`angles` must be a sequence of state indices or names; got 'a'$"),
    (("z",), ValueError, r"^`angles` entries must be state names \('a', 'b', 'c'\) or "
                         r"indices 0\.\.2; got 'z'$"),
    ((3,), ValueError, r"^`angles` entries must be .* got 3$"),
    ((True,), ValueError, r"^`angles` entries must be .* got True$"),
])
def test_bad_angles_are_named(angles, error, message):
    tr = pn.data.Trajectory(torch.linspace(0, 1, 5), torch.zeros(5, 3))
    with pytest.raises(error, match=message):
        pn.data.Trajectories([tr], ("a", "b", "c"), angles=angles)
