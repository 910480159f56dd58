"""The optional orjson decoder (``openai-runs[fast]``) agrees with json.loads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openai_runs import _json

orjson = pytest.importorskip("orjson")

json_documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _outcome(loads: Any, raw: bytes) -> tuple[str, str]:
    try:
        return "ok", repr(loads(raw))
    except ValueError as error:
        return "error", type(error).__name__


@pytest.mark.parametrize(
    "raw",
    [
        b'{"created_at": 123456789012345678901234567890}',
        b'{"n": -9223372036854775809, "m": 18446744073709551616}',
        b'{"id": "run_0000000000000000000000"}',
        b"[NaN, Infinity, -Infinity, 1e400]",
        b'["\\ud800"]',
        '{"a": "\u00e9"}'.encode("utf-16"),
        b'\xef\xbb\xbf{"a": 1}',
        b'{"a": 1}x',
        b'"\xff"',
        b"",
        b"12345678901234567890",
    ],
)
def test_orjson_decodes_what_json_loads_decodes(raw: bytes) -> None:
    """Big integers, NaN, lone surrogates, UTF-16 and bad bodies decode (or fail) alike."""
    assert _outcome(_json._orjson_loads, raw) == _outcome(json.loads, raw)


@settings(max_examples=300, deadline=None)
@given(doc=json_documents, ascii_only=st.booleans(), indent=st.sampled_from([None, 1]))
def test_orjson_agrees_with_json_loads_on_any_document(
    doc: Any, ascii_only: bool, indent: int | None
) -> None:
    """Any JSON document decodes to the same values, types included, either way."""
    raw = json.dumps(doc, ensure_ascii=ascii_only, indent=indent).encode(
        "utf-8", "surrogatepass"
    )
    assert _outcome(_json._orjson_loads, raw) == _outcome(json.loads, raw)


def test_orjson_is_used_when_installed() -> None:
    """With orjson importable, bodies are decoded through it."""
    assert _json._decode is _json._orjson_loads
