"""Check the internal links of the built site: every relative ``href``/``src`` of every page
points at a file of the build, and every ``#anchor`` at an ``id`` of its target page.

    python docs/check_links.py docs/_build/html

External links (with a scheme: https:, mailto:, ...) are not followed (CI has no network). Sphinx
with ``-W`` already fails on a page link or cross-reference it cannot resolve; this catches what
reaches the HTML anyway (raw HTML, links inside notebook outputs, theme templates).
"""
from __future__ import annotations

import html.parser
import pathlib
import sys
import urllib.parse


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for key in ("href", "src"):
            if a.get(key) and not (tag == "link" and a.get("rel") in ("preconnect",
                                                                       "dns-prefetch")):
                self.links.append(a[key])


def _parse(path: pathlib.Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(errors="replace"))
    return p


def broken_links(site: pathlib.Path) -> list[str]:
    """``"page: link (why)"`` for each internal link of ``site`` that does not resolve."""
    site = site.resolve()
    # the pages (not the theme's template fragments copied into _static)
    pages = {p: _parse(p) for p in site.rglob("*.html")
             if "_static" not in p.relative_to(site).parts}
    bad = []
    for page, parsed in pages.items():
        for link in parsed.links:
            url = urllib.parse.urlsplit(link)
            if url.scheme or url.netloc or link.startswith("//"):
                continue                                  # external
            target = page if not url.path else (page.parent / urllib.parse.unquote(url.path))
            target = target.resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(site)}: {link}"
            if not target.is_relative_to(site):
                bad.append(f"{where} (outside the site)")
            elif not target.exists():
                bad.append(f"{where} (no such file)")
            elif url.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if urllib.parse.unquote(url.fragment) not in ids:
                    bad.append(f"{where} (no anchor #{url.fragment})")
    return sorted(bad)


def main(argv: list[str]) -> int:
    site = pathlib.Path(argv[0] if argv else "docs/_build/html")
    if not (site / "index.html").exists():
        print(f"{site}: no built site (run sphinx-build first)", file=sys.stderr)
        return 2
    bad = broken_links(site)
    n = sum(1 for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)
    for b in bad:
        print(b)
    print(f"{len(bad)} broken internal links in {n} pages")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
