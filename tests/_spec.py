"""The Runs API's OpenAPI document, loaded and turned into JSON Schema for tests.

``tests/runs.openapi.json`` is the official document's Runs extract (see
``runs.openapi.json.md``). It is OpenAPI 3.1 in name but marks nullable fields
with the 3.0 keyword ``nullable: true``, which a JSON Schema 2020-12 tool
ignores; :func:`json_schema` rewrites the document into plain 2020-12 so that
``jsonschema`` validates and ``hypothesis-jsonschema`` generates what the
document means.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SPEC_PATH = Path(__file__).with_name("runs.openapi.json")
RUNS = SPEC_PATH.name
THREADS = "threads-messages.openapi.json"
"""The Threads and Messages extract (see ``threads-messages.openapi.json.md``)."""

_COMPONENTS = "#/components/schemas/"


@functools.cache
def spec(document: str = RUNS) -> dict[str, Any]:
    """The OpenAPI *document* (a file name beside this one), parsed once."""
    return json.loads(SPEC_PATH.with_name(document).read_text(encoding="utf-8"))


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _convert(node: Any) -> Any:
    """Rewrite one node of the document into JSON Schema 2020-12.

    - ``$ref: #/components/schemas/X`` becomes ``$ref: #/$defs/X``;
    - ``nullable: true`` becomes ``anyOf: [<the schema without it>, null]``;
      ``allOf: [X, {nullable: true}]`` (how ``truncation_strategy`` and
      ``tool_choice`` say it) becomes ``anyOf: [X, null]``, because a bare
      ``{nullable: true}`` inside ``allOf`` cannot widen X;
    - ``x-*`` vendor keys are dropped.
    """
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    nullable = False
    for key, value in node.items():
        if key.startswith("x-"):
            continue
        if key == "nullable":
            nullable = bool(value)
        elif key == "$ref" and value.startswith(_COMPONENTS):
            out[key] = "#/$defs/" + value.removeprefix(_COMPONENTS)
        elif key == "allOf":
            parts = [p for p in value if p != {"nullable": True}]
            nullable = nullable or len(parts) < len(value)
            converted = [_convert(p) for p in parts]
            if len(converted) == 1:
                out.update(converted[0])
            else:
                out[key] = converted
        elif key in {"properties", "$defs", "patternProperties"}:
            # Maps of names to schemas: the names are not keywords.
            out[key] = {name: _convert(sub) for name, sub in value.items()}
        else:
            out[key] = _convert(value)
    return _nullable(out) if nullable else out


@functools.cache
def _defs(document: str) -> dict[str, Any]:
    return {
        name: _convert(schema)
        for name, schema in spec(document)["components"]["schemas"].items()
    }


def json_schema(schema_name: str, document: str = RUNS) -> dict[str, Any]:
    """The component *schema_name* as a self-contained JSON Schema 2020-12.

    Every component is carried along in ``$defs`` so references resolve.
    Returns a fresh dict each call; callers may change it.
    """
    defs = _defs(document)
    return json.loads(
        json.dumps(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                **defs[schema_name],
                "$defs": defs,
            }
        )
    )


def validator(
    schema_name: str, document: str = RUNS
) -> jsonschema.Draft202012Validator:
    """A ``jsonschema`` validator for the component *schema_name*."""
    return jsonschema.Draft202012Validator(json_schema(schema_name, document))


def operations(document: str = RUNS) -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation of the document as ``(method, path, operation)``."""
    return [
        (method, path, op)
        for path, item in spec(document)["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    ]


def response_examples(document: str = RUNS) -> list[tuple[str, str, str]]:
    """The API reference's example responses: ``(label, schema name, JSON text)``.

    Each operation's ``x-oaiMeta.examples`` is one example or a list of titled
    ones. Streaming examples are server-sent events (they start with
    ``event:``), not one JSON object, and are left out. The schema name is
    that of the operation's 200 response.
    """
    found = []
    for _method, _path, op in operations(document):
        examples = op.get("x-oaiMeta", {}).get("examples")
        if examples is None:
            continue
        if isinstance(examples, dict):
            examples = [examples]
        ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        schema_name = ref.removeprefix(_COMPONENTS)
        for example in examples:
            response = example.get("response", "").strip()
            if not response or response.startswith("event:"):
                continue
            label = op["operationId"]
            if "title" in example:
                label += f"[{example['title']}]"
            found.append((label, schema_name, response))
    return found


def schema_examples(document: str = RUNS) -> list[tuple[str, str]]:
    """The components' own examples: ``(schema name, JSON text)``."""
    return [
        (name, schema["x-oaiMeta"]["example"])
        for name, schema in spec(document)["components"]["schemas"].items()
        if "example" in schema.get("x-oaiMeta", {})
    ]


GENERATED = pytest.mark.timeout(600)
"""The time limit of the spec-generated property tests. hypothesis-jsonschema
builds some strategies slowly (MessageObject took over the 120 s default on
Python 3.13 in CI, a RunObject test as long under a loaded machine), and a
timeout inside generation surfaces as hypothesis' FlakyStrategyDefinition.
They are pure CPU: nothing in them can wait forever."""
