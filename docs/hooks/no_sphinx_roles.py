"""A mkdocs hook: fail the build on Sphinx markup that mkdocstrings prints literally.

mkdocstrings reads docstrings as Markdown, so a `:class:` role or a `::`
literal block passes `mkdocs build --strict` and shows up raw on the page.
This hook reads each built page's prose (code is left out: a page may quote
a role on purpose), names the API object whose docstring holds the markup,
and fails the build.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

log = logging.getLogger(f"mkdocs.hooks.{__name__}")

# Objects whose docstrings were being rewritten (issue 10's watch core) could
# be excused here by the module that holds them; the rewrite landed in
# Markdown, so nothing is excused and any Sphinx role fails the build.
PENDING: dict[str, str] = {}
_SOURCE_ROLE = re.compile(r":(?:class|meth|func|mod|attr|exc|data):`")

_CODE = re.compile(r"<(code|pre)\b.*?</\1>", re.DOTALL)
_HEADING = re.compile(r'<h[1-6] id="([^"]+)" class="doc doc-heading')
_ARTIFACT = re.compile(
    r":(?:py:)?(?:class|meth|func|mod|attr|exc|data|obj|const|ref):"
    # What reST's `::` leaves: a paragraph ending in a double colon.
    r"|::\s*</p>"
)


def _artifacts_by_object(html: str) -> dict[str, list[str]]:
    """Map each API object on a page (or "" for the page's own text) to its markup."""
    found: dict[str, list[str]] = {}
    starts = [(0, ""), *((m.start(), m.group(1)) for m in _HEADING.finditer(html))]
    ends = [start for start, _ in starts[1:]] + [len(html)]
    for (start, name), end in zip(starts, ends, strict=True):
        hits = _ARTIFACT.findall(_CODE.sub("", html[start:end]))
        if hits:
            found.setdefault(name, []).extend(hits)
    return found


def _pending(name: str) -> str | None:
    owner = next((p for p in PENDING if name == p or name.startswith(f"{p}.")), None)
    if owner is None:
        return None
    source = Path(__file__).parent.parent.parent / PENDING[owner]
    return (
        owner if source.is_file() and _SOURCE_ROLE.search(source.read_text()) else None
    )


def on_post_page(output: str, page: Any, config: Any) -> str:
    """Refuse a page whose prose holds a Sphinx role or a `::` marker."""
    errors = []
    for name, hits in _artifacts_by_object(output).items():
        where = f"{page.file.src_uri}: {name or 'page text'}"
        shown = ", ".join(sorted(set(hits)))
        pending = _pending(name)
        if pending is not None:
            log.info("%s: %d Sphinx artifact(s) (%s), pending", where, len(hits), shown)
        else:
            errors.append(f"{where}: {len(hits)} Sphinx artifact(s) ({shown})")
    if errors:
        raise PluginError(
            "Sphinx markup in the built docs; write docstrings in Markdown"
            " for mkdocstrings ([Name][openai_runs.Name], fenced code):\n"
            + "\n".join(errors)
        )
    return output
