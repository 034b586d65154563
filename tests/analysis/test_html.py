"""The self-contained HTML report: its mathematics, tables and figures, and no network."""

import re

import pytest
import torch

import physnode as pn
from physnode.analysis import html as report

from .html_check import check_report


@pytest.fixture
def figure(tmp_path):
    data = pn.data.simulate(pn.systems.Pendulum(), n_trajectories=2, t_span=(0.0, 2.0),
                            n_points=20, seed=0)
    return pn.analysis.plot_fit({"truth": pn.systems.Pendulum()}, data, tmp_path / "fit.png")


def test_write_html_holds_math_tables_figures_and_makes_no_request(tmp_path, figure):
    path = report.write_html(tmp_path / "report.html", "A <pendulum> & co", [
        report.Section("Equations", [
            report.Text("Inline $E = p^2/2 - g \\cos q$ and `code` and **bold**."),
            report.Math("\\dot{q} &= p \\\\ \\dot{p} &= -9.81 \\sin q")]),
        report.Section("Numbers", [
            report.Table([{"model": "HNN", "error": 0.0123456, "none": None}]),
            report.Figure(figure, "fitted")]),
        report.Section("Settings", [report.Code("seed = 0 <no markup>")])])
    page = check_report(path)
    assert page.math == ["E = p^2/2 - g \\cos q",
                         "\\begin{aligned}\\dot{q} &= p \\\\ \\dot{p} &= -9.81 \\sin q"
                         "\\end{aligned}"]
    assert page.tables == 1 and len(page.images) == 1
    text = path.read_text()
    assert "<title>A &lt;pendulum&gt; &amp; co</title>" in text
    assert "<td>0.0123</td><td>–</td>" in text and "<strong>bold</strong>" in text
    assert "seed = 0 &lt;no markup&gt;" in text
    # KaTeX inlined: its script, its stylesheet and all twenty woff2 fonts as data URIs
    assert "katex.render(" in text and ".katex{" in text
    assert len(re.findall(r"url\(data:font/woff2;base64,", text)) == 20
    assert not list(tmp_path.glob(".report.html.*"))        # written atomically


def test_write_html_says_what_is_wrong():
    with pytest.raises(TypeError, match="`sections` must be a list of Section; got str"):
        report.write_html("x.html", "t", "body")
    with pytest.raises(TypeError, match="a report block must be Text, Math, Table, Figure or "
                                        "Code; got int"):
        report.write_html("x.html", "t", [report.Section("s", [1])])


def test_energy_report_to_html(tmp_path):
    pend = pn.systems.Pendulum()
    data = pn.data.simulate(pend, n_trajectories=2, t_span=(0.0, 3.0), n_points=40,
                            noise=0.01, seed=0)
    energy = pn.compare_energy({"exact field": pend}, system=pend, data=data, t_end=5.0,
                               dt=0.1, integrators={"exact field": "leapfrog"})
    path = energy.to_html(tmp_path / "report.html", sections=[report.data_section(data)],
                          settings={"t_end": 5.0})
    page = check_report(path)
    assert page.tables == 5          # sample times, noise, drift, settings, versions
    assert len(page.images) == 2     # energy error and phase portraits, drawn for the page
    assert any("|E(t) - E(0)|" in m for m in page.math)
    text = path.read_text()
    assert "<td>exact field</td><td>leapfrog</td>" in text
    assert "<td>torch</td><td>" + torch.__version__ + "</td>" in text
    assert list(tmp_path.iterdir()) == [path]       # the figures are only inside the page


def test_history_section_marks_the_stages(tmp_path):
    history = [{"epoch": e, "stage": "derivative" if e <= 3 else "rollout",
                "train_loss": 1.0 / e, "val_loss": 1.5 / e} for e in range(1, 7)]
    figure = pn.analysis.plot_history(history, tmp_path / "history.png")
    section = report.history_section(history, figure)
    assert section.blocks[0].text == "6 epochs in 2 stages: `derivative` then `rollout`."
    rows = section.blocks[1].rows
    assert [(r["stage"], r["epochs"], r["first epoch"]) for r in rows] == [
        ("derivative", 3, 1), ("rollout", 3, 4)]
    assert rows[1]["best validation loss"] == pytest.approx(0.25)
    check_report(report.write_html(tmp_path / "r.html", "fit", [section]))


def test_equations_to_html(tmp_path):
    pend = pn.systems.Pendulum()
    data = pn.data.simulate(pend, n_trajectories=2, t_span=(0.0, 3.0), n_points=40,
                            noise=0.01, seed=0)
    equations = pn.discovery.Equations(pend.equations())
    path = equations.to_html(tmp_path / "eqs.html", data=data,
                             energies={"Hamiltonian": "H = p^2/2 - 9.81 \\cos q"})
    page = check_report(path)
    assert page.math == ["\\begin{aligned}\\dot{q} &= p \\\\\n\\dot{p} &= - 9.81 "
                         "\\sin{\\left(q \\right)}\\end{aligned}", "H = p^2/2 - 9.81 \\cos q"]
    assert "Not measured" in path.read_text()          # no fit quality without a model
    assert page.tables == 4 and not page.images        # times, noise, settings, versions
