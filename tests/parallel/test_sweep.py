"""Sweeps: cases from a configuration, serial and dask runs give the same table, failures are
recorded, reruns skip finished cases, a dead worker's case is retried."""

import json
import os
import subprocess
import sys

import pytest

import physnode as pn
from physnode.parallel import Case, cases, read_table

SMALL = {"n_trajectories": 4, "n_points": 40, "fit_options": {"epochs": 5}}


def small_cases():
    return [Case(system="massspring", seed=0, **SMALL),
            Case(system="pendulum", seed=1, **SMALL),
            Case(system="massspring", parameters={"stiffness": 2.0}, **SMALL)]   # no such keyword


def test_a_grid_is_the_product_of_its_values_on_the_base_case():
    found = cases({"case": {"noise": 0.05, "t_span": [0, 5]},
                   "grid": {"system": ["pendulum", "duffing"], "seed": [0, 1, 2]}})
    assert [(c.system, c.seed) for c in found] == [
        (s, k) for s in ("pendulum", "duffing") for k in (0, 1, 2)]
    assert all(c.noise == 0.05 and c.t_span == (0.0, 5.0) for c in found)
    assert len({c.key for c in found}) == 6
    assert Case(system="pendulum", t_span=[0, 5]).key == Case(system="pendulum",
                                                              t_span=(0.0, 5.0)).key
    assert Case(system="pendulum", noise=0).key == Case(system="pendulum", noise=0.0).key
    listed = cases({"case": {"seed": 3}, "cases": [{"system": "pendulum"},
                                                   {"system": "kepler", "seed": 4}]})
    assert [(c.system, c.seed) for c in listed] == [("pendulum", 3), ("kepler", 4)]


@pytest.mark.parametrize("config,error,message", [
    ({"grid": {"sytem": ["pendulum"]}}, ValueError,
     r"^unknown case fields \['sytem'\] in \[grid\]"),
    ({"grid": {"seed": 3}}, ValueError, r"^grid\['seed'\] must be a non-empty list of values; "
                                        r"got 3$"),
    ({"case": {"system": "pendulm"}}, ValueError, r"^`system` must be one of .*; got 'pendulm'$"),
    ({"case": {}}, ValueError, r"^a case needs a `system` to simulate or a `data` file; got "
                               r"neither$"),
    ({"case": {"system": "pendulum", "model": "mlp"}}, ValueError,
     r"^`model` must be one of 'auto', 'hnn', 'lnn', 'node', 'sonode'; got 'mlp'$"),
    ({"case": {"system": "pendulum", "parameters": 2}}, TypeError,
     r"^`parameters` must be a dict of keywords; got int$"),
    ({"runs": []}, ValueError, r"^unknown configuration sections \['runs'\]"),
    ({"case": {"system": 3}}, TypeError, r"^`system` must be a string; got int$"),
    ({"case": {"system": "pendulum", "noise": -0.1}}, ValueError,
     r"^`noise` must be non-negative; got -0.1$"),
    ({"case": {"system": "pendulum", "seed": 1.5}}, TypeError,
     r"^`seed` must be an integer; got float$"),
])
def test_bad_configurations_are_named(config, error, message):
    with pytest.raises(error, match=message):
        cases(config)


def test_a_sweep_needs_at_least_one_worker():
    with pytest.raises(ValueError, match=r"^`workers` must be at least 1; got 0$"):
        pn.sweep([Case(system="pendulum")], workers=0)


def test_a_serial_sweep_records_failures_and_a_rerun_skips_finished_cases(tmp_path):
    out = tmp_path / "sweep.csv"
    rows = pn.sweep(small_cases(), out, client="serial")
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert "unexpected keyword argument 'stiffness'" in rows[2]["error"]
    ok = rows[0]
    found = pn.discovery.Equations.from_json(ok["equations"])
    assert ok["model"] == "HNN" and isinstance(ok["exact_support"], bool)
    assert found.compare(pn.systems.MassSpring())["max_relative_coefficient_error"] == \
        pytest.approx(ok["max_coefficient_error"])
    table = read_table(out)
    assert [r["key"] for r in table] == [c.key for c in small_cases()]
    assert table[0]["equations"] == ok["equations"]

    ran = []
    again = pn.sweep(small_cases(), out, client="serial",
                     run=lambda case: ran.append(case) or {"model": "x"})
    assert [c.seed for c in ran] == [0]          # only the failed case runs again
    assert [r["status"] for r in again] == ["ok", "ok", "ok"]
    assert len(read_table(out)) == 3             # replaced, never duplicated


def test_a_sweep_on_two_local_workers_equals_the_serial_one(tmp_path):
    serial = pn.sweep(small_cases(), client="serial")
    parallel = pn.sweep(small_cases(), tmp_path / "sweep.csv", workers=2)
    for a, b in zip(serial, parallel):
        assert (a["status"], a["error"]) == (b["status"], b["error"])
        assert a.get("equations") == b.get("equations")
        assert a.get("max_coefficient_error") == b.get("max_coefficient_error")
    assert [r["status"] for r in read_table(tmp_path / "sweep.csv")] == ["ok", "ok", "failed"]


def dies_once(case):
    """Kills its worker process the first time it runs a case (a marker file records it)."""
    marker = os.path.join(os.environ["PHYSNODE_TEST_MARKERS"], str(case.seed))
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return {"model": "stand-in", "seconds": 0.0}


def test_the_case_of_a_worker_that_dies_is_retried_once_in_the_table(tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSNODE_TEST_MARKERS", str(tmp_path))     # workers inherit it
    todo = [Case(system="pendulum", seed=s) for s in (0, 1)]
    rows = pn.sweep(todo, tmp_path / "sweep.csv", workers=2, run=dies_once)
    assert [(r["status"], r["model"]) for r in rows] == [("ok", "stand-in")] * 2
    assert len(read_table(tmp_path / "sweep.csv")) == 2


def test_the_sweep_command_runs_a_toml_configuration(tmp_path):
    (tmp_path / "grid.toml").write_text(
        'out = "table.csv"\n[case]\nn_trajectories = 4\nn_points = 40\n'
        'fit_options = { epochs = 5 }\n[grid]\nsystem = ["massspring", "pendulum"]\n')
    result = subprocess.run([sys.executable, "-m", "physnode.cli", "sweep", "grid.toml",
                             "--serial"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert "2 cases: 2 ok, 0 failed" in result.stdout and "wrote table.csv" in result.stdout
    rows = read_table(tmp_path / "table.csv")
    assert [json.loads(r["key"])["system"] for r in rows] == ["massspring", "pendulum"]
    bad = subprocess.run([sys.executable, "-m", "physnode.cli", "sweep", "missing.toml"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "physnode sweep: error: no sweep configuration at missing.toml"


def nested_pipeline(case):
    """A pipeline of one's own: reads the case's options, returns nested values."""
    if case.options.get("fail"):
        raise RuntimeError("asked to fail")
    return {"label": case.options["label"], "scores": {"exact": [True, False]},
            "epochs": {"derivative": 3}, "ratio": float("inf")}


def test_a_jsonl_table_keeps_nested_rows_and_the_options_key_cases(tmp_path):
    out = tmp_path / "zoo.jsonl"
    todo = [Case(system="pendulum", options={"label": "a"}),
            Case(system="pendulum", options={"label": "b"}),
            Case(system="pendulum", options={"label": "c", "fail": True})]
    rows = pn.sweep(todo, out, client="serial", run=nested_pipeline)
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    table = read_table(out)
    assert table[:2] == rows[:2]                  # nested values come back as written
    assert table[0]["scores"] == {"exact": [True, False]} and table[1]["label"] == "b"
    assert "RuntimeError: asked to fail" in table[2]["error"]
    ran = []
    pn.sweep(todo, out, client="serial",
             run=lambda case: ran.append(case.options["label"]) or {"label": "again"})
    assert ran == ["c"] and len(read_table(out)) == 3


def test_the_default_pipeline_refuses_options():
    (row,) = pn.sweep([Case(system="pendulum", options={"units": True})], client="serial")
    assert row["status"] == "failed"
    assert row["error"] == ("ValueError: the default pipeline takes no `options`; got "
                            "['units'] (they are for a `run=` of your own)")
