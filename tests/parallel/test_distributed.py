"""Data-parallel fit under torchrun: two gloo ranks in float64 end on the weights of one
process on the same data (minibatches of 7 rows: 4 and 3 per rank, and a last one of 1 row
that leaves rank 1 empty), a checkpoint written by two ranks resumes in one process, ranks
given different data are refused, and an error on one rank stops both."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("fit_ranks.py")


def launch(out: Path, *extra: str, ranks: int = 1) -> subprocess.CompletedProcess:
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    command = [sys.executable, str(SCRIPT), str(out), *extra]
    if ranks > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={ranks}", *command[1:]]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def weights(out: Path, rank: int = 0) -> dict:
    return torch.load(out / f"rank{rank}.pt", weights_only=True)


def relative_difference(a: dict, b: dict) -> float:
    return max(((a[k] - b[k]).norm() / b[k].norm().clamp_min(1e-300)).item()
               for k in b if b[k].is_floating_point())


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single")
    done = launch(out)
    assert done.returncode == 0, done.stderr
    return out


def test_two_gloo_ranks_give_the_weights_of_one_process(single, tmp_path):
    done = launch(tmp_path, ranks=2)
    assert done.returncode == 0, done.stderr
    one, two = weights(single), weights(tmp_path)
    assert all(torch.equal(two[k], weights(tmp_path, 1)[k]) for k in two)  # ranks agree
    assert relative_difference(two, one) < 1e-10                          # measured 1e-15
    history = json.loads((single / "rank0.json").read_text())
    assert len(history) == 50 and history[0]["val_loss"] is not None
    for a, b in zip(json.loads((tmp_path / "rank0.json").read_text()), history):
        assert a["epoch"] == b["epoch"] and a["lr"] == b["lr"]
        for key in ("train_loss", "val_loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-10)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.pt", "rank0.json", "rank0.pt", "rank1.json", "rank1.pt"]


def test_a_two_rank_checkpoint_resumes_in_one_process(single, tmp_path):
    stopped = launch(tmp_path, "--stop", "30", ranks=2)          # inside the rollout stage
    assert stopped.returncode != 0 and "Interrupt" in stopped.stderr
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["state"]["epoch"] == 30
    done = launch(tmp_path, "--resume")
    assert done.returncode == 0, done.stderr
    assert relative_difference(weights(tmp_path), weights(single)) < 1e-10


def test_ranks_given_different_data_are_refused(tmp_path):
    done = launch(tmp_path, "--data-per-rank", ranks=2)
    assert done.returncode != 0
    assert "ValueError: data-parallel fit: the ranks differ in their data or settings" in \
        done.stderr


def test_an_error_on_one_rank_stops_every_rank(tmp_path):
    done = launch(tmp_path, "--fail-rank", "1", ranks=2)       # would hang without the flag
    assert done.returncode != 0
    assert "ValueError: this rank's rows broke the model" in done.stderr
    assert "RuntimeError: data-parallel fit stopped: rank(s) [1] raised" in done.stderr


@pytest.mark.parametrize("value,error,message", [
    (True, ValueError, r"^`distributed=True` needs an initialised torch.distributed process "
                       r"group with more than one rank \(launch with torchrun\); got none$"),
    ("yes", TypeError, r"^`distributed` must be None, True or False; got 'yes'$"),
])
def test_the_distributed_argument_is_checked(value, error, message):
    import physnode as pn
    data = pn.data.simulate(pn.systems.MassSpring(), n_trajectories=2, n_points=12, seed=0)
    with pytest.raises(error, match=message):
        pn.fit(pn.models.HNN(dof=1, hidden=4), data, epochs=1, progress=False,
               distributed=value)
