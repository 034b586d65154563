"""Energy-drift comparison: the structure-preserving claim, the report and its figures."""

import pytest
import torch

import physnode as pn


@pytest.mark.parametrize("system,measured", [
    (pn.systems.MassSpring(), 259),
    pytest.param(pn.systems.Pendulum(), 1695, marks=pytest.mark.slow),  # 70-110 s
])
def test_hnn_keeps_true_energy_100x_better_than_a_neural_ode_over_t_1000(system, measured):
    data = pn.data.simulate(system, n_trajectories=25, t_span=(0, 3), n_points=30, seed=0,
                            derivatives=True)
    torch.manual_seed(0)
    hnn = pn.models.HNN(dof=1, hidden=64, separable=True)
    node = pn.models.NeuralODE(dim=2, hidden=64)
    for model in (hnn, node):
        pn.fit(model, data, progress=False)             # defaults
    y0 = system.sample_initial_states(4, torch.Generator().manual_seed(1))
    report = pn.compare_energy({"HNN": hnn, "NeuralODE": node}, system=system, y0=y0,
                               t_end=1000.0, dt=0.1, integrators={"NeuralODE": "rk4"})
    hnn_row, node_row = report.table
    assert hnn_row["integrator"] == "yoshida4" and node_row["integrator"] == "rk4"
    ratio = node_row["max_rel_energy_error"] / hnn_row["max_rel_energy_error"]
    assert ratio > 100, ratio                              # measured: see `measured`
    assert abs(hnn_row["energy_drift_slope"]) < 1e-7 < node_row["energy_drift_slope"]


def test_report_table_markdown_and_plots(tmp_path):
    pendulum = pn.systems.Pendulum()
    y0 = torch.tensor([[1.0, 0.0], [0.5, 1.0]], dtype=torch.float64)
    report = pn.compare_energy({"leapfrog": pendulum, "euler": pendulum}, system=pendulum,
                               y0=y0, t_end=20.0, dt=0.05,
                               integrators={"leapfrog": "leapfrog", "euler": "euler"})
    leapfrog, euler = report.table
    assert set(pn.analysis.energy.COLUMNS) <= set(leapfrog)
    # Explicit Euler gains energy steadily; leapfrog's error stays bounded and small.
    assert euler["energy_drift_slope"] > 100 * abs(leapfrog["energy_drift_slope"])
    assert leapfrog["max_rel_energy_error"] < 0.01 < euler["max_rel_energy_error"]
    assert leapfrog["trajectory_rmse"] < euler["trajectory_rmse"]
    lines = report.to_markdown().splitlines()
    assert len(lines) == 4 and lines[2].startswith("| leapfrog | leapfrog | ")
    paths = report.plot(tmp_path / "figs" / "energy.png")
    assert [p.name for p in paths] == ["energy.png", "energy_phase.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == \
        ["energy.png", "energy_phase.png"]                 # no temporary files left


def test_without_a_system_the_data_and_learned_energies_are_used():
    spring = pn.systems.MassSpring()
    data = pn.data.simulate(spring, n_trajectories=3, t_span=(0, 5), n_points=20,
                            irregular=True, seed=0)
    report = pn.compare_energy({"exact": spring}, data=data, t_end=5.0, dt=0.01)
    row = report.table[0]
    assert row["max_rel_energy_error"] is None and row["max_rel_learned_energy_error"] < 1e-6
    assert row["trajectory_rmse"] < 1e-6
    assert report.truth is None and report.rollouts["exact"].shape == (501, 3, 2)


class _SpringInVelocities(torch.nn.Module):
    """``q̈ = −q`` as a model of ``(q, q̇)`` with its energy."""

    dof, dim = 1, 2

    def forward(self, t, y):
        return torch.stack([y[..., 1], -y[..., 0]], -1)

    def energy(self, y):
        return 0.5 * (y[..., 0] ** 2 + y[..., 1] ** 2)


def test_positions_only_data_start_from_estimated_velocities():
    data = pn.data.simulate(pn.systems.MassSpring(), n_trajectories=3, t_span=(0, 5),
                            n_points=40, irregular=True, seed=0)
    positions = pn.data.Trajectories([pn.data.Trajectory(tr.t, tr.y[:, :1]) for tr in data],
                                     ("x",))
    report = pn.compare_energy({"exact": _SpringInVelocities()}, data=positions, t_end=5.0,
                               dt=0.01)
    row = report.table[0]
    assert report.rollouts["exact"].shape == (501, 3, 2)
    assert row["max_rel_learned_energy_error"] < 1e-6
    assert row["trajectory_rmse"] < 1e-3         # the start velocity's estimate, not zero
    mixed = {"exact": _SpringInVelocities(), "node": pn.models.NeuralODE(dim=1, hidden=4)}
    with pytest.raises(ValueError, match=r"^the models take states of different widths from "
                                         r"`data` \(1 states \('x',\)\): \{'exact': 2, "
                                         r"'node': 1\}"):
        pn.compare_energy(mixed, data=positions, t_end=1.0)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"models": {}}, TypeError, r"^`models` must be a non-empty dict"),
    ({"integrators": {"other": "rk4"}}, ValueError,
     r"^`integrators` names models not in `models`: \['other'\]$"),
    ({"system": None}, ValueError, r"^pass `system` \(the truth\) or `data`"),
    ({"y0": None}, ValueError, r"^pass `y0` or `data`"),
    ({"dt": -0.1}, ValueError, r"^`dt` must be"),
])
def test_bad_input_is_named(kwargs, error, message):
    pendulum = pn.systems.Pendulum()
    arguments = {"models": {"m": pendulum}, "system": pendulum,
                 "y0": torch.tensor([1.0, 0.0]), **kwargs}
    with pytest.raises(error, match=message):
        pn.compare_energy(**arguments)
