"""The documentation site and the HTML report as a reader meets them.

The API-reference coverage check reads the markdown sources and always runs. Building the
site strictly runs every example (minutes) and needs the ``docs`` extra; loading a report in
a browser needs headless Chromium: both are marked ``slow`` and skip, saying why, when what
they need is missing.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import physnode

from .analysis.html_check import check_report

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def public_names() -> dict:
    """``{dotted public name: dotted path where it is defined}`` for ``physnode.__all__`` and
    each subpackage's ``__all__`` (the two differ for re-exported functions and classes)."""
    names = {}
    for name in physnode.__all__:
        value = getattr(physnode, name)
        if inspect.ismodule(value):
            module = importlib.import_module(f"physnode.{name}")
            for member in module.__all__:
                names[f"physnode.{name}.{member}"] = defined_at(getattr(module, member),
                                                                f"physnode.{name}.{member}")
        else:
            names[f"physnode.{name}"] = defined_at(value, f"physnode.{name}")
    return names


def defined_at(value, name: str) -> str:
    if inspect.isclass(value) or inspect.isfunction(value):
        return f"{value.__module__}.{value.__qualname__}"
    return name


def documented() -> tuple[set, set]:
    """``(modules rendered whole, objects rendered by name)`` in ``docs/api/*.md``: a
    ``::: target`` renders a module's public members unless its ``members:`` lists them."""
    whole, named = set(), set()
    for page in (DOCS / "api").glob("*.md"):
        for match in re.finditer(r"^::: (\S+)\n((?:    .*\n)*)", page.read_text(), re.M):
            target, options = match.groups()
            members = re.search(r"members: \[(.*)\]", options)
            if members:
                named |= {f"{target}.{m.strip()}" for m in members.group(1).split(",")}
            elif inspect.ismodule(_resolve(target)):
                whole.add(target)
            else:
                named.add(target)
    return whole, named


def _resolve(dotted: str):
    module, _, attribute = dotted.rpartition(".")
    try:
        return importlib.import_module(dotted)
    except ImportError:
        return getattr(importlib.import_module(module), attribute)


def test_every_public_name_is_in_the_api_reference():
    whole, named = documented()
    missing = [name for name, home in public_names().items()
               if not {name, home} & named and name.rsplit(".", 1)[0] not in whole]
    assert not missing, f"not in docs/api/*.md: {missing}"
    assert len(public_names()) > 100


def test_every_example_and_guide_page_is_in_the_navigation():
    config = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.rglob("*.md"):
        relative = page.relative_to(DOCS).as_posix()
        assert relative in config, f"{relative} is not in mkdocs.yml's nav"
    assert "hooks:\n  - docs/hooks.py" in config and "strict: true" in config


@pytest.mark.slow
def test_site_builds_strictly_with_every_example_run(tmp_path):
    """Runs every example with --quick, as CI does (the examples dominate: 24 s to 20 min
    each on a 2-core machine shared with other jobs)."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed "
                                         "(pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings[python] missing")
    site = tmp_path / "site"
    env = {**os.environ, "PHYSNODE_GALLERY_CACHE": str(tmp_path / "gallery"),
           "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    env.pop("PHYSNODE_GALLERY", None)
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d",
                            str(site)], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=1800)
    assert built.returncode == 0, built.stderr[-4000:]
    # every public name has its own anchor in the rendered reference
    ids = set()
    for page in (site / "api").rglob("index.html"):
        ids |= set(re.findall(r'id="(physnode[\w.]*)"', page.read_text()))
    missing = [name for name, home in public_names().items() if not {name, home} & ids]
    assert not missing, f"no anchor in the built API reference: {missing}"
    # every example page ran, with its output (and its figures, where it writes any)
    for example in sorted((ROOT / "examples").glob("*.py")):
        page = (site / "examples" / example.stem / "index.html").read_text()
        assert "<!-- example ran -->" in page and " took " in page, example.name
        for image in re.findall(r'<img[^>]* src="([^"]+)"', page):
            assert (site / "examples" / example.stem / image).is_file(), (example, image)
    # the benchmarks page is RESULTS.md as it stands
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    benchmarks = (site / "benchmarks" / "index.html").read_text()
    first = re.search(r"^## (.+?) —", results, re.M).group(1)
    assert first.split(":")[0] in benchmarks


def browser() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                "google-chrome"))), None)


@pytest.mark.slow
def test_report_renders_in_a_browser(tmp_path):
    """The equations are typeset by KaTeX (no LaTeX left as text) and every figure loads."""
    chromium = browser()
    if chromium is None:
        pytest.skip("no headless Chromium (apt-get install chromium)")
    import torch

    import physnode as pn
    from physnode.analysis import html

    pend = pn.systems.Pendulum()
    data = pn.data.simulate(pend, n_trajectories=2, t_span=(0.0, 3.0), n_points=40,
                            noise=0.01, seed=0)
    report = pn.compare_energy({"exact field": pend}, system=pend, data=data, t_end=5.0,
                               dt=0.1, integrators={"exact field": "leapfrog"})
    equations = pn.discovery.Equations(pend.equations())
    path = report.to_html(tmp_path / "report.html", sections=[
        html.data_section(data), html.equations_section(equations, {"energy": "H = p^2/2"})])
    page = check_report(path)
    assert len(page.math) >= 3 and len(page.images) == 2
    # A copy that records, once loaded, what a reader would see.
    probe = tmp_path / "probe.html"
    probe.write_text(path.read_text().replace("</body>", """<script>
window.addEventListener("load", function () {
  var broken = Array.from(document.images).filter(function (i) {
    return !(i.complete && i.naturalWidth > 0); }).length;
  document.body.setAttribute("data-images", document.images.length);
  document.body.setAttribute("data-broken", broken);
});
</script></body>"""))
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert 'data-images="2"' in dom and 'data-broken="0"' in dom, dom[:300]
    rendered = re.findall(r'class="math[^"]*"><span class="katex', dom)
    assert len(rendered) == len(page.math)
    assert 'class="katex-error"' not in dom
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style|annotation)\b.*?</\1>", " ", dom,
                                          flags=re.S))
    assert not re.search(r"\$[^$\s][^$]*\$", text), "raw $...$ left in the page"
    assert torch.__version__ in text
