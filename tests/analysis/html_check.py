"""What a report.html must hold, read with the standard library's HTML parser."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path


class ReportParser(HTMLParser):
    """Collects the math nodes, tables, images and every src/href of a page."""

    def __init__(self):
        super().__init__()
        self.math, self.tables, self.images, self.links = [], 0, [], []
        self.urls = []              # (tag, attribute, value) of every src and href
        self._math_tag = None       # math nodes hold only their LaTeX until KaTeX renders

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href"):
            if name in attrs:
                self.urls.append((tag, name, attrs[name] or ""))
        if tag == "table":
            self.tables += 1
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if "math" in (attrs.get("class") or "").split():
            self.math.append("")
            self._math_tag = tag

    def handle_endtag(self, tag):
        if tag == self._math_tag:
            self._math_tag = None

    def handle_data(self, data):
        if self._math_tag is not None:
            self.math[-1] += data


def check_report(path) -> ReportParser:
    """Parse ``path`` and assert it is self-contained: images are data URIs, no src or href
    points at the network (except ``<a href>`` links for the reader), no stylesheet or script
    comes from a file. Returns the parser for further checks."""
    text = Path(path).read_text(encoding="utf-8")
    parser = ReportParser()
    parser.feed(text)
    parser.close()
    for tag, attribute, value in parser.urls:
        if tag == "a" and attribute == "href":
            continue
        assert not value.lower().startswith(("http:", "https:", "//")), (tag, attribute, value)
        assert value.startswith("data:"), f"<{tag} {attribute}={value[:60]!r}> is not embedded"
    assert all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert "url(fonts/" not in text and "url(http" not in text
    return parser
