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
from typing import Any

from mkdocs.exceptions import PluginError

log = logging.getLogger(f"mkdocs.hooks.{__name__}")

# Docstrings being rewritten on the watch-core branch (issue 10): their markup
# is reported, not fatal, until they land. Remove a name once it is clean;
# the build fails while a listed object has nothing left to excuse.
PENDING: frozenset[str] = frozenset()

_CODE = re.compile(r"<(code|pre)\b.*?</\1>", re.DOTALL)
_HEADING = re.compile(r'<h[1-6] id="([^"]+)" class="doc doc-heading')
_ARTIFACT = re.compile(
    r":(?:py:)?(?:class|meth|func|mod|attr|exc|data|obj|const|ref):"
    # What reST's `::` leaves: a paragraph ending in a double colon.
    r"|::\s*</p>"
)

_excused: set[str] = set()


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
    return next((p for p in PENDING if name == p or name.startswith(f"{p}.")), None)


def on_post_page(output: str, page: Any, config: Any) -> str:
    """Refuse a page whose prose holds a Sphinx role or a `::` marker."""
    errors = []
    for name, hits in _artifacts_by_object(output).items():
        where = f"{page.file.src_uri}: {name or 'page text'}"
        shown = ", ".join(sorted(set(hits)))
        pending = _pending(name)
        if pending is not None:
            _excused.add(pending)
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


def on_post_build(config: Any) -> None:
    """Fail while PENDING excuses an object that no longer needs it."""
    stale = sorted(PENDING - _excused)
    _excused.clear()
    if stale:
        raise PluginError(
            f"docs/hooks/no_sphinx_roles.py: remove {', '.join(stale)} from PENDING,"
            " their docstrings are clean now"
        )
