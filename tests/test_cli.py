"""The `physnode` command, through a subprocess as users run it."""

import json
import subprocess
import sys

import pytest

import physnode as pn
from physnode.runs import load_run

from .analysis.html_check import check_report


def physnode(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "physnode.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_demo_quick_prints_equations_and_writes_figures(tmp_path):
    result = physnode("demo", "--quick", "--out", "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "dp/dt = " in result.stdout and "sin(q)" in result.stdout
    assert "exact support: True" in result.stdout
    for name in ("energy.png", "energy_phase.png", "fit.png", "report.md", "report.html",
                 "equations.json", "hnn/model.pt", "neuralode/model.pt", "pendulum.csv"):
        assert (tmp_path / "demo" / name).is_file(), name
        assert f"demo/{name}" in result.stdout or "/" in name or name == "pendulum.csv"
    found = pn.discovery.Equations.from_json((tmp_path / "demo" / "equations.json").read_text())
    assert found.compare(pn.systems.Pendulum())["exact_support"]
    page = check_report(tmp_path / "demo" / "report.html")
    # data (2), two fits' stages, fit quality, drift, settings, versions; every figure inside
    assert page.tables == 9 and len(page.images) == 5
    assert any("\\sin" in m for m in page.math) and any(m.startswith("H = ") for m in page.math)


def test_fit_discover_compare_round_trip(tmp_path):
    data = tmp_path / "spring.csv"
    assert physnode("simulate", "massspring", "--out", data, "--n-trajectories", 8,
                    "--noise", 0.01).returncode == 0
    fitted = physnode("fit", data, "--model", "hnn", "--out", tmp_path / "run",
                      "--epochs", 300, "--hidden", 32)
    assert fitted.returncode == 0, fitted.stderr
    assert "wrote run" in fitted.stdout
    assert f"wrote {tmp_path / 'run' / 'report.html'}" in fitted.stdout
    page = check_report(tmp_path / "run" / "report.html")
    assert page.tables == 6 and len(page.images) == 2     # loss history, fitted vs observed
    found = physnode("discover", tmp_path / "run", "--out", tmp_path / "eqs.json",
                     "--library", "poly", "--degree", 2)
    assert found.returncode == 0, found.stderr
    assert "learned hamiltonian" in found.stdout
    assert f"wrote {tmp_path / 'eqs.html'}" in found.stdout
    page = check_report(tmp_path / "eqs.html")
    assert any("\\dot{p}" in m for m in page.math) and any("H = " in m for m in page.math)
    equations = json.loads((tmp_path / "eqs.json").read_text())
    assert equations["state"] == ["q", "p"]
    compared = physnode("compare", tmp_path / "run", "--out", tmp_path / "report",
                        "--system", "massspring", "--t-end", 10)
    assert compared.returncode == 0, compared.stderr
    assert "| run (HNN) | yoshida4 |" not in compared.stdout   # general HNN: Gauss-Legendre
    assert "| run (HNN) | gauss_legendre4 |" in compared.stdout
    assert (tmp_path / "report" / "energy.png").is_file()
    assert f"wrote {tmp_path / 'report' / 'report.html'}" in compared.stdout
    page = check_report(tmp_path / "report" / "report.html")
    assert page.tables == 5 and len(page.images) == 3


@pytest.mark.parametrize("model,energy", [("hnn", "hamiltonian"), ("lnn", "lagrangian")])
def test_fit_and_discover_positions_only_data(tmp_path, model, energy):
    # A table of angles alone: the run's model takes (theta, thetadot), its report rolls out
    # from the smoothed first angle and its estimated velocity, and discovery names the
    # velocity after the angle.
    # The table is a recording's plain text (trial, time, angle; a comment header naming the
    # last column), its columns picked with --columns.
    data = pn.data.simulate(pn.systems.Pendulum(), n_trajectories=6, t_span=(0, 6),
                            n_points=80, noise=0.01, seed=0)
    rows = [f"{i} {t:.6f} {q:.6f}" for i, tr in enumerate(data)
            for t, q in zip(tr.t.tolist(), tr.y[:, 0].tolist())]
    (tmp_path / "angles.txt").write_text("% theta\n" + "\n".join(rows) + "\n")
    fitted = physnode("fit", tmp_path / "angles.txt", "--columns", "trajectory=0", "t=1",
                      "theta=theta", "--model", model, "--positions-only", "--angles", 0,
                      "--out", tmp_path / "run", "--epochs", 60, "--hidden", 32)
    assert fitted.returncode == 0, fitted.stderr
    page = check_report(tmp_path / "run" / "report.html")
    assert len(page.images) == 2
    fitted_model, _, _ = load_run(tmp_path / "run")
    assert fitted_model.dof == 1
    assert model == "lnn" or fitted_model.coordinates == "velocity"
    found = physnode("discover", tmp_path / "run", "--out", tmp_path / "eqs.json")
    assert found.returncode == 0, found.stderr
    line = next(line for line in found.stdout.splitlines() if f"learned {energy}" in line)
    assert "thetadot" in line and "qdot" not in line.replace("thetadot", "")
    assert json.loads((tmp_path / "eqs.json").read_text())["state"] == ["theta", "thetadot"]
    compared = physnode("compare", tmp_path / "run", "--out", tmp_path / "report", "--t-end", 5)
    assert compared.returncode == 0, compared.stderr
    assert (tmp_path / "report" / "fit.png").is_file()


@pytest.mark.parametrize("args,message", [
    (["fit", "missing.csv", "--model", "hnn", "--out", "run"], "missing.csv"),
    (["fit", "DATA", "--model", "transformer", "--out", "run"],
     "unknown model 'transformer'; choose one of hnn, lnn, node, sonode"),
    (["discover", "nowhere", "--out", "e.json"], "no run directory at 'nowhere'"),
    (["compare", "nowhere", "--out", "r"], "no run directory at 'nowhere'"),
    (["fit", "BAD", "--model", "hnn", "--out", "run"], "column"),
    (["fit", "DATA", "--model", "hnn", "--out", "run", "--angles", "1"],
     "`angles` entries must be indices of positions q, 0..0; got 1"),
    (["fit", "DATA", "--model", "node", "--out", "run", "--positions-only"],
     "--positions-only needs a model of positions and velocities (hnn, lnn or sonode); got "
     "--model node"),
    (["fit", "ODD", "--model", "lnn", "--out", "run"],
     "(pass --positions-only if they are positions alone)"),
    (["fit", "TABLE", "--model", "hnn", "--out", "run"],
     "which column is time? The file has 3 columns: 0, 1, 2 'x'. Pass `columns=` to name "
     "them, e.g. columns={'trajectory': 0, 't': 1, 'x': 'x'} (on the command line: --columns "
     "NAME=COLUMN ...)"),
    (["fit", "TABLE", "--model", "hnn", "--out", "run", "--columns", "t=1", "x"],
     "--columns entries must be NAME=COLUMN (a 0-based index or a header label); got 'x'"),
])
def test_bad_input_exits_with_one_line_and_no_traceback(tmp_path, args, message):
    pn.data.simulate(pn.systems.MassSpring(), n_trajectories=2, n_points=5).save(
        tmp_path / "DATA.csv")
    (tmp_path / "BAD.csv").write_text("trajectory,t,q,p\n0,0.0,1.0,oops\n")
    (tmp_path / "ODD.csv").write_text("trajectory,t,x\n0,0.0,1.0\n0,0.1,1.1\n0,0.2,1.3\n")
    (tmp_path / "TABLE.txt").write_text("% x\n0 0.0 1.0\n0 0.1 1.1\n0 0.2 1.3\n")
    args = [f"{a}.csv" if a in ("DATA", "BAD", "ODD") else "TABLE.txt" if a == "TABLE" else a
            for a in args]
    result = physnode(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
