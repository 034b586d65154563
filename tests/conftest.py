"""Fixtures built from physnode.systems.reference (DESIGN convention 7)."""

import json
from pathlib import Path

import pytest
import torch

from physnode import systems

REPO = Path(__file__).resolve().parents[1]
#: Published reference solutions of the Test Set for IVP Solvers (Mazzia & Magherini, Bari),
#: kept in the repository (from ../shared/reference) so the tests using them run everywhere.
STIFF_REFERENCE = Path(__file__).resolve().parent / "reference" / "stiff.json"


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu",
                     help="torch device the suite creates its tensors on (e.g. cuda)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--device") == "cpu":
        return
    skip = pytest.mark.skip(reason="doctest outputs are CPU tensor reprs")
    for item in items:
        if isinstance(item, pytest.DoctestItem):
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def default_device(request):
    """Run the whole suite on another device: tensors created without one land there."""
    device = torch.device(request.config.getoption("--device"))
    if device.type == "cuda" and not torch.cuda.is_available():
        pytest.exit("--device cuda given but torch sees no CUDA device", returncode=4)
    if device.type == "cpu":  # a default-device mode costs every torch call; skip it on the CPU
        yield device
        return
    torch.set_default_device(device)
    yield device
    torch.set_default_device(None)


def all_reference_systems():
    """One instance of every reference system, plus damped and non-unit variants."""
    return [
        systems.Pendulum(), systems.Pendulum(g=3.0, length=2.0, mass=0.5, damping=0.3),
        systems.MassSpring(), systems.MassSpring(k=2.5, mass=1.7, damping=0.4),
        systems.Duffing(alpha=-1.0, beta=1.0, delta=0.2, gamma=0.3, omega=1.2),
        systems.DoublePendulum(m1=1.3, m2=0.7, l1=1.1, l2=0.8), systems.Kepler(),
        systems.HenonHeiles(), systems.VanDerPol(mu=5.0), systems.VanDerPol(eps=1e-3),
        systems.Robertson(), systems.HIRES(), systems.Oregonator(), systems.Brusselator(points=6),
        systems.LotkaVolterra(alpha=1.1, beta=0.5, delta=0.2, gamma=0.7),
        systems.Lorenz(), systems.CoupledSprings(),
        systems.CoupledSprings(k1=1.3, k2=0.7, k3=2.1, m1=0.8, m2=1.9, damping=0.25),
    ]


@pytest.fixture(scope="session")
def stiff_reference():
    return json.loads(STIFF_REFERENCE.read_text())


@pytest.fixture
def generator():
    return torch.Generator(device=torch.get_default_device()).manual_seed(1234)
