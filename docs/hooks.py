"""MkDocs hooks: pages generated when the site is built.

* ``examples/*.md``: every ``examples/*.py`` is run with ``--quick --out DIR`` and gets a page
  with what it does (its docstring), its source, what it printed and the figures it wrote.
  Runs are cached under ``.cache/gallery`` by the hash of the example and of physnode's
  sources (``PHYSNODE_GALLERY_CACHE`` moves the cache); ``PHYSNODE_GALLERY=skip`` writes the
  pages without running anything, for a quick ``mkdocs serve``, and ``cached`` shows the
  cached runs and runs nothing.
* ``benchmarks.md``: ``benchmarks/RESULTS.md``, read when the site is built.
* Every public name (``__all__`` of physnode and of its subpackages) must have a docstring:
  a missing one is a warning, which fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
log = logging.getLogger("mkdocs.hooks.physnode")
#: Marks a page whose example ran in this build (checked by tests/test_docs.py).
RAN = "<!-- example ran -->"


def on_config(config, **kwargs):
    """The Examples section of the navigation lists every example."""
    pages = ["examples/index.md"] + [f"examples/{e.stem}.md"
                                     for e in sorted(EXAMPLES.glob("*.py"))]
    for entry in config["nav"]:
        if isinstance(entry, dict) and "Examples" in entry:
            entry["Examples"] = pages
    return config


def on_pre_build(config, **kwargs):
    _check_docstrings()


def on_files(files, config, **kwargs):
    files.append(File.generated(config, "benchmarks.md", content=_benchmarks()))
    pages = []
    for example in sorted(EXAMPLES.glob("*.py")):
        page, figures = _example_page(example)
        pages.append(example.stem)
        files.append(File.generated(config, f"examples/{example.stem}.md", content=page))
        for figure in figures:
            files.append(File.generated(config, f"examples/{example.stem}/{figure.name}",
                                        abs_src_path=str(figure)))
    files.append(File.generated(config, "examples/index.md", content=_gallery_index(pages)))
    return files


# ---- API: every public name documented ---------------------------------------------------


def _check_docstrings():
    sys.path.insert(0, str(ROOT))
    import physnode

    modules = [physnode] + [importlib.import_module(f"physnode.{name}")
                            for name in physnode.__all__
                            if inspect.ismodule(getattr(physnode, name))]
    for module in modules:
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.ismodule(value) or inspect.isclass(value) or callable(value):
                documented = bool((inspect.getdoc(value) or "").strip())
            else:                       # a constant: a string right after its assignment
                documented = _attribute_docstring(Path(module.__file__).parent, name)
            if not documented:
                log.warning(f"{module.__name__}.{name} has no docstring")


def _attribute_docstring(package: Path, name: str) -> bool:
    for source in package.rglob("*.py"):
        body = ast.parse(source.read_text(encoding="utf-8")).body
        for node, after in zip(body, body[1:]):
            targets = (node.targets if isinstance(node, ast.Assign) else
                       [node.target] if isinstance(node, ast.AnnAssign) else [])
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                        and isinstance(after.value.value, str))
    return False


# ---- benchmarks ---------------------------------------------------------------------------


def _benchmarks() -> str:
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    note = ("!!! note \"Generated\"\n    This page is `benchmarks/RESULTS.md` as it stood when "
            "the site was built. Each section names the script under `benchmarks/` that "
            "measured it and how to rerun it.\n\n")
    lines = text.splitlines()
    title = lines[0] if lines and lines[0].startswith("# ") else "# Benchmarks"
    body = "\n".join(lines[1:] if lines and lines[0].startswith("# ") else lines)
    return f"{title}\n\n{note}{body}\n"


# ---- examples -----------------------------------------------------------------------------


def _fingerprint(example: Path) -> str:
    """Hash of the example and of physnode's code, docstrings and comments left out (editing
    documentation does not rerun the examples)."""
    digest = hashlib.sha256(example.read_bytes())
    for source in sorted((ROOT / "physnode").rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list):
                node.body = [n for n in body if not (isinstance(n, ast.Expr) and isinstance(
                    n.value, ast.Constant) and isinstance(n.value.value, str))] or [ast.Pass()]
        digest.update(source.relative_to(ROOT).as_posix().encode())
        digest.update(ast.dump(tree).encode())
    return digest.hexdigest()[:16]


def _run(example: Path) -> dict:
    """Run the example (or take its cached run); ``{"stdout", "seconds", "figures"}``."""
    cache = Path(os.environ.get("PHYSNODE_GALLERY_CACHE", ROOT / ".cache" / "gallery"))
    folder = cache / f"{example.stem}-{_fingerprint(example)}"
    record = folder / "run.json"
    if record.is_file():
        return {**json.loads(record.read_text()), "folder": folder}
    if os.environ.get("PHYSNODE_GALLERY") == "cached":
        return None
    if folder.exists():
        shutil.rmtree(folder)
    out = folder / "out"
    out.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), "MPLBACKEND": "Agg"}
    log.info(f"running {example.name} --quick")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(example), "--quick", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"examples/{example.name} --quick failed with status "
                           f"{done.returncode}:\n{done.stderr[-3000:]}")
    result = {"stdout": done.stdout, "seconds": seconds}
    record.write_text(json.dumps(result))
    return {**result, "folder": folder}


def _example_page(example: Path):
    source = example.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source)) or ""
    title = doc.splitlines()[0].rstrip(".") if doc else example.stem
    # The usage line of the docstring is replaced by the "Run it" line below.
    body = [line for line in doc.splitlines()[1:]
            if not line.strip().startswith(f"python examples/{example.name}")]
    lines = [f"# {example.stem}.py", "", title + ".", "", *body, "",
             f"Run it: `python examples/{example.name}` (add `--quick` for the short version "
             "shown here, `--out DIR` for where its figures go).", ""]
    figures = []
    run = None if os.environ.get("PHYSNODE_GALLERY") == "skip" else _run(example)
    if run is None:
        lines += ["!!! warning \"Not run\"", "    This build did not run the example "
                  "(`PHYSNODE_GALLERY=skip`, or `cached` without a cached run).", ""]
    else:
        figures = sorted((run["folder"] / "out").rglob("*.png"))
        # The run wrote into the cache; the page shows OUT, the reader's --out.
        printed = re.sub(rf"\S*{re.escape(example.stem)}-[0-9a-f]{{16}}/out", "OUT",
                         run["stdout"].rstrip())
        lines += [RAN, "## Output", "",
                  f"`python examples/{example.name} --quick --out OUT` took "
                  f"{run['seconds']:.0f} s on the machine that built this site and printed:",
                  "",
                  "```text", printed or "(nothing)", "```", ""]
        if figures:
            lines += ["## Figures", ""]
            lines += [f"![{f.stem}]({example.stem}/{f.name})" for f in figures]
            lines.append("")
    lines += ["## Source", "", "```python", source.rstrip(), "```", ""]
    return "\n".join(lines), figures


def _gallery_index(pages: list) -> str:
    lines = ["# Examples", "",
             "Every script in `examples/` is readable top to bottom and runs with `--quick`. "
             "The pages below were made by running each with `--quick` on the code this site "
             "was built from: what it printed and the figures it wrote.", ""]
    for stem in pages:
        doc = ast.get_docstring(ast.parse((EXAMPLES / f"{stem}.py").read_text())) or ""
        lines.append(f"- [{stem}.py]({stem}.md): {doc.splitlines()[0] if doc else ''}")
    return "\n".join(lines) + "\n"
