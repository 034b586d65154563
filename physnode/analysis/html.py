"""Self-contained HTML reports: one file per run that reads without Python or a network.

A report is a title and a list of :class:`Section`, each a heading and blocks: :class:`Text`
(a paragraph with ``code``, ``**bold**`` and inline ``$math$``), :class:`Math` (display
LaTeX), :class:`Table`, :class:`Figure` (a PNG, embedded as base64) and :class:`Code`.
:func:`write_html` writes it atomically with KaTeX (bundled with physnode, MIT licence)
inlined: its script, its stylesheet and its woff2 fonts as ``data:`` URIs, so the file makes
no request when it is opened. The builders below (:func:`data_section`,
:func:`history_section`, ...) are the sections the ``physnode`` commands put in their reports.
"""

from __future__ import annotations

import base64
import functools
import html
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

from .._atomic import write_text_atomic

KATEX = Path(__file__).with_name("_katex")


@dataclass(frozen=True)
class Text:
    """A paragraph: ``code`` spans, ``**bold**`` and inline ``$LaTeX$``; the rest escaped."""

    text: str


@dataclass(frozen=True)
class Math:
    """Display mathematics in LaTeX; ``&`` and ``\\\\`` lines are set in an ``aligned`` block."""

    latex: str


@dataclass(frozen=True)
class Table:
    """A table: ``rows`` a list of dicts (``columns`` defaults to the first row's keys) or of
    sequences with ``columns`` given. Floats are written to 3 significant digits, None as –."""

    rows: list
    columns: tuple | None = None
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG file, embedded in the report as base64, with a caption."""

    path: str | Path
    caption: str = ""


@dataclass(frozen=True)
class Code:
    """Preformatted text (settings, equations as plain text)."""

    text: str


@dataclass
class Section:
    """A heading and its blocks, in order."""

    title: str
    blocks: list = field(default_factory=list)


def write_html(path, title: str, sections: list) -> Path:
    """Write a self-contained HTML report to ``path`` (atomically); returns the path.

    Parameters
    ----------
    path : str or Path
        The file to write, usually ``report.html`` beside a run's figures.
    title : str
        Page title and top heading.
    sections : list of Section
        The body, in order; blocks are :class:`Text`, :class:`Math`, :class:`Table`,
        :class:`Figure` or :class:`Code`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "report.html"
    >>> _ = write_html(out, "Pendulum", [Section("Equations", [Math(r"\\dot{q} &= p")])])
    >>> text = out.read_text()
    >>> '<div class="math display">' in text, 'src="http' in text, 'href="http' in text
    (True, False, False)
    """
    if not isinstance(sections, (list, tuple)):
        raise TypeError(f"`sections` must be a list of Section; got {type(sections).__name__}")
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        if not isinstance(section, Section):
            raise TypeError(f"`sections` must hold Section objects; got "
                            f"{type(section).__name__}")
        body.append(f"<section>\n<h2>{html.escape(section.title)}</h2>")
        body += [_block(block) for block in section.blocks]
        body.append("</section>")
    page = _PAGE.format(title=html.escape(title), css=_STYLE + _katex_css(),
                        katex=_katex_js(), body="\n".join(body))
    return write_text_atomic(path, page)


def _block(block) -> str:
    if isinstance(block, Text):
        return f"<p>{_inline(block.text)}</p>"
    if isinstance(block, Math):
        latex = block.latex.strip()
        if "&" in latex or "\\\\" in latex:
            latex = "\\begin{aligned}" + latex + "\\end{aligned}"
        return f'<div class="math display">{html.escape(latex)}</div>'
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        data = base64.b64encode(Path(block.path).read_bytes()).decode("ascii")
        caption = html.escape(block.caption or Path(block.path).name)
        return (f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
                f"<figcaption>{caption}</figcaption></figure>")
    if isinstance(block, Code):
        return f"<pre><code>{html.escape(block.text)}</code></pre>"
    raise TypeError(f"a report block must be Text, Math, Table, Figure or Code; got "
                    f"{type(block).__name__}")


def _inline(text: str) -> str:
    """Escape ``text``, then mark up ``code``, ``**bold**`` and ``$math$`` spans."""
    out = []
    for part in re.split(r"(`[^`]*`|\$[^$]+\$)", text):
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
        elif part.startswith("$") and part.endswith("$") and len(part) > 2:
            out.append(f'<span class="math">{html.escape(part[1:-1])}</span>')
        else:
            out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(part)))
    return "".join(out)


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _table(table: Table) -> str:
    rows = list(table.rows)
    columns = table.columns
    if columns is None:
        columns = tuple(rows[0]) if rows and isinstance(rows[0], dict) else ()
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    lines = []
    for row in rows:
        values = [row.get(c) for c in columns] if isinstance(row, dict) else list(row)
        lines.append("<tr>" + "".join(f"<td>{_inline(_cell(v))}</td>" for v in values)
                     + "</tr>")
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    return (f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(lines)
            + "\n</tbody></table>")


@functools.cache
def _katex_js() -> str:
    """KaTeX's script (read once per process)."""
    return (KATEX / "katex.min.js").read_text(encoding="utf-8")


@functools.cache
def _katex_css() -> str:
    """KaTeX's stylesheet with every font as a woff2 ``data:`` URI (the only format bundled),
    built once per process."""
    css = (KATEX / "katex.min.css").read_text(encoding="utf-8")

    def font(match):
        data = base64.b64encode((KATEX / "fonts" / f"{match.group(1)}.woff2").read_bytes())
        return f'src:url(data:font/woff2;base64,{data.decode("ascii")}) format("woff2")'

    return re.sub(r'src:url\(fonts/([\w-]+)\.woff2\) format\("woff2"\)[^;}]*', font, css)


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.5; }
h1 { border-bottom: 2px solid #3f51b5; padding-bottom: .3rem; }
h2 { color: #3f51b5; margin-top: 2rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: left; }
th { background: #eef; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: .3rem; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9rem; color: #555; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; }
code { font-size: .9em; }
.math.display { margin: 1rem 0; overflow-x: auto; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="physnode">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
{body}
<script>{katex}</script>
<script>
document.querySelectorAll(".math").forEach(function (el) {{
  katex.render(el.textContent, el, {{displayMode: el.classList.contains("display"),
                                     throwOnError: false}});
}});
</script>
</body>
</html>
"""


# ---- the sections the physnode commands report -------------------------------------------


def data_section(data, title: str = "Data") -> Section:
    """The trajectories: how many, their states and angles, sample times per trajectory and
    the noise level estimated from them (relative to each coordinate's spread)."""
    from ..discovery.quality import noise_level, spread

    rows = []
    for i, tr in enumerate(data):
        t = tr.t.double()
        steps = t.diff()
        rows.append({"trajectory": i, "samples": len(tr), "t start": float(t[0]),
                     "t end": float(t[-1]),
                     "step (min–max)": (f"{float(steps.min()):.3g}–{float(steps.max()):.3g}"
                                        if len(tr) > 1 else None)})
    noise = noise_level(data) / spread(data).clamp_min(1e-300)
    names = tuple(data.state_names)
    angles = tuple(getattr(data, "angles", ()) or ())
    blocks = [Text(f"{len(data)} trajectories of the states `{', '.join(names)}`"
                   + (f" (angles: `{', '.join(names[i] for i in angles)}`)" if angles else "")
                   + f", {sum(len(tr) for tr in data)} samples in all."),
              Table(rows[:20], caption="Sample times" + (f" (first 20 of {len(rows)})"
                                                         if len(rows) > 20 else "")),
              Table([{"state": n, "estimated noise (% of spread)": 100 * float(v)}
                     for n, v in zip(names, noise)],
                    caption="Noise estimated from local quartic fits of each trajectory")]
    return Section(title, blocks)


def history_section(history: list, figure=None, title: str = "Training") -> Section:
    """Loss history of a fit: its stages with their epochs and best losses, and the loss
    curve (``figure``, from :func:`~physnode.analysis.plot_history`) when given."""
    stages = list(dict.fromkeys(h["stage"] for h in history))
    rows = []
    for stage in stages:
        records = [h for h in history if h["stage"] == stage]
        val = [h["val_loss"] for h in records if h.get("val_loss") is not None]
        rows.append({"stage": stage, "epochs": len(records),
                     "first epoch": records[0]["epoch"],
                     "best train loss": min(h["train_loss"] for h in records),
                     "best validation loss": min(val) if val else None})
    blocks = [Text(f"{len(history)} epochs in {len(stages)} stage"
                   f"{'s' if len(stages) != 1 else ''}: " + " then ".join(
                       f"`{s}`" for s in stages) + "."),
              Table(rows, caption="Stages")]
    if figure is not None:
        blocks.append(Figure(figure, "Training and validation loss per epoch; the dashed "
                                     "lines mark where a stage starts"))
    return Section(title, blocks)


def quality_section(quality, title: str = "Fit quality") -> Section:
    """How well the model reproduces the observations against their noise
    (:class:`~physnode.discovery.FitQuality`); ``None`` says it could not be measured."""
    if quality is None:
        return Section(title, [Text("Not measured: no trajectory is long enough.")])
    verdict = ("**too poor to trust equations discovered from the model**"
               if not quality.trusted else
               "good enough by this measure, but **the sampling is coarse for the dynamics**: "
               "the noise figure is an upper bound, so this measure can look better than the "
               "model is, and derivative estimates are biased" if quality.coarse else
               "good enough to discover equations from")
    return Section(title, [
        Text(f"{quality}: {verdict}."),
        Table([{"rollout error (% of spread)": 100 * quality.rollout_error,
                "noise (% of spread)": 100 * quality.noise, "ratio": quality.ratio,
                "window (samples)": quality.horizon}])])


def equations_section(equations, energies: dict | None = None,
                      title: str = "Discovered equations") -> Section:
    """The equations as mathematics (and as plain text), their held-out scores and, for
    ensembles, how often each term was selected; ``energies`` ``{name: LaTeX}`` adds learned
    energies (Hamiltonian, Lagrangian)."""
    from ..discovery import round_floats

    blocks = [Text(f"Found by `{equations.method}`."), Math(equations.to_latex(digits=4))]
    for name, latex in (energies or {}).items():
        blocks += [Text(f"Learned {name}:"), Math(latex)]
    blocks.append(Code(str(equations)))
    if equations.scores:
        blocks.append(Table([{"equation": f"d{s}/dt", "held-out score": v}
                             for s, v in equations.scores.items()],
                            caption="Held-out score of each equation"))
    if equations.inclusion:
        rows = [{"equation": f"d{s}/dt", "term": str(round_floats(term, 4)),
                 "inclusion": share} for s, terms in equations.inclusion.items()
                for term, share in terms.items()]
        blocks.append(Table(rows, caption="How often each term was selected"))
    return Section(title, blocks)


def energy_section(report, figures=(), title: str = "Energy drift") -> Section:
    """An :class:`~physnode.analysis.EnergyReport`'s table and figures."""
    from .energy import COLUMNS
    from .energy import _cell as energy_cell

    t_end = float(report.t[-1]) if len(report.t) else 0.0
    rows = [[energy_cell(row.get(c), report.bands.get(row["model"], {}).get(c))
             for c in COLUMNS] for row in report.table]
    blocks = [Text(f"Every model rolled out to $t = {t_end:g}$ from "
                   f"{report.rollouts[next(iter(report.rollouts))].shape[1]} initial states "
                   "with its own integrator; the relative energy error is "
                   r"$|E(t) - E(0)| / |E(0)|$."),
              Table(rows, columns=COLUMNS, caption="Energy drift and trajectory error")]
    blocks += [Figure(f) for f in figures]
    return Section(title, blocks)


def settings_section(settings: dict, title: str = "Settings and versions") -> Section:
    """The settings the run used and the versions of Python, physnode and its libraries."""
    rows = [{"setting": k, "value": v if isinstance(v, (int, float)) or v is None else str(v)}
            for k, v in settings.items()]
    return Section(title, [Table(rows, columns=("setting", "value"), caption="Settings"),
                           Table(versions(), columns=("package", "version"),
                                 caption="Versions")])


def versions() -> list:
    """``[{"package", "version"}]`` for Python, the platform, physnode and its libraries."""
    from importlib import metadata

    rows = [{"package": "python", "version": platform.python_version()},
            {"package": "platform", "version": platform.platform()}]
    for name in ("physnode", "torch", "numpy", "scipy", "sympy", "pysindy", "matplotlib"):
        try:
            rows.append({"package": name, "version": metadata.version(name)})
        except metadata.PackageNotFoundError:
            continue
    return rows
