"""Azure AI Foundry's Runs spec, loaded and turned into JSON Schema for tests.

``tests/foundry-runs.swagger.json`` is the Runs extract of Foundry's stable
v1 REST spec (see ``foundry-runs.swagger.json.md``): swagger 2.0, written by
autorest. :func:`json_schema` rewrites it into plain JSON Schema 2020-12 for
``jsonschema`` and ``hypothesis-jsonschema``:

- ``$ref: #/definitions/X`` becomes ``$ref: #/$defs/X``;
- ``x-nullable: true`` becomes ``anyOf: [<the schema>, null]``;
- a polymorphic base (``discriminator: type``) becomes the ``anyOf`` of its
  subtypes; swagger 2.0 names a subtype's base only in the subtype's own
  ``allOf``, and its tag in ``x-ms-discriminator-value``, so each subtype
  becomes the base's properties plus its own, with ``type`` pinned to its tag;
- ``x-*`` vendor keys are dropped.

Three schemas are narrowed where the document lost what the service sends
(each named in :data:`INTENDED`): ``tool_choice`` and ``response_format`` are
empty schemas ``{}`` in the swagger (the emitter dropped the TypeSpec unions;
the intended parts are in the full upstream file), and a function's
``parameters`` is ``{}`` where the description says "a JSON Schema object".
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

SPEC_PATH = Path(__file__).with_name("foundry-runs.swagger.json")

_DEFINITIONS = "#/definitions/"

INTENDED: dict[str, Any] = {
    # AgentsToolChoiceOptionMode | AgentsNamedToolChoice.
    "AgentsToolChoiceOption": {
        "anyOf": [
            {"enum": ["none", "auto"]},
            {
                "type": "object",
                "properties": {
                    "type": {
                        "enum": [
                            "function",
                            "code_interpreter",
                            "file_search",
                            "azure_ai_search",
                            "bing_custom_search",
                            "connected_agent",
                        ]
                    },
                    "function": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}},
                        "required": ["name"],
                    },
                },
                "required": ["type"],
            },
        ]
    },
    # AgentsApiResponseFormatMode | AgentsApiResponseFormat | ResponseFormatJsonSchemaType.
    "AgentsResponseFormatOption": {
        "anyOf": [
            {"enum": ["auto", "none"]},
            {
                "type": "object",
                "properties": {"type": {"enum": ["text", "json_object"]}},
                "required": ["type"],
            },
            {
                "type": "object",
                "properties": {
                    "type": {"const": "json_schema"},
                    "json_schema": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "description": {"type": "string"},
                            "schema": {"type": "object"},
                        },
                        "required": ["name", "schema"],
                    },
                },
                "required": ["type", "json_schema"],
            },
        ]
    },
}


@functools.cache
def spec() -> dict[str, Any]:
    """The swagger document, parsed once."""
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def _convert(node: Any) -> Any:
    """Rewrite one node of the document into JSON Schema 2020-12."""
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    nullable = False
    for key, value in node.items():
        if key == "x-nullable":
            nullable = bool(value)
        elif key.startswith("x-") or key in {"discriminator", "readOnly"}:
            continue
        elif key == "$ref":
            out[key] = "#/$defs/" + value.removeprefix(_DEFINITIONS)
        elif key == "properties":
            out[key] = {name: _convert(sub) for name, sub in value.items()}
        elif key == "collectionFormat":
            continue
        else:
            out[key] = _convert(value)
    if nullable:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def subtypes() -> dict[str, dict[str, str]]:
    """Each polymorphic base: ``{base: {tag: subtype}}``."""
    found: dict[str, dict[str, str]] = {}
    definitions = spec()["definitions"]
    for name, schema in definitions.items():
        for part in schema.get("allOf", ()):
            base = part.get("$ref", "").removeprefix(_DEFINITIONS)
            if "discriminator" in definitions.get(base, {}):
                tag = schema["x-ms-discriminator-value"]
                found.setdefault(base, {})[tag] = name
    return found


@functools.cache
def _defs() -> dict[str, Any]:
    definitions = spec()["definitions"]
    polymorphic = subtypes()
    defs: dict[str, Any] = {}
    for name, schema in definitions.items():
        if name in INTENDED:
            defs[name] = INTENDED[name]
        elif name in polymorphic:
            defs[name] = {
                "anyOf": [
                    {"$ref": f"#/$defs/{sub}"} for sub in polymorphic[name].values()
                ]
            }
        else:
            defs[name] = _convert(schema)
    for base, tags in polymorphic.items():
        root = definitions[base]
        for tag, sub in tags.items():
            own = definitions[sub]
            properties = {
                **_convert(root.get("properties", {})),
                **_convert(own.get("properties", {})),
                "type": {"const": tag},
            }
            defs[sub] = {
                "type": "object",
                "properties": properties,
                "required": sorted(
                    {*root.get("required", ()), *own.get("required", ())}
                ),
            }
    # "The parameters the functions accepts, described as a JSON Schema object."
    defs["FunctionDefinition"]["properties"]["parameters"] = {"type": "object"}
    return defs


def _with_defs(schema: dict[str, Any]) -> dict[str, Any]:
    return json.loads(
        json.dumps(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                **schema,
                "$defs": _defs(),
            }
        )
    )


def json_schema(name: str) -> dict[str, Any]:
    """The definition *name* as a self-contained JSON Schema 2020-12."""
    return _with_defs(_defs()[name])


def response_schema(operation_id: str, status: str = "200") -> dict[str, Any]:
    """The response schema of *operation_id* (inline list pages included)."""
    for item in spec()["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                return _with_defs(_convert(op["responses"][status]["schema"]))
    raise KeyError(operation_id)


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation of the document as ``(method, path, operation)``."""
    return [
        (method, path, op)
        for path, item in spec()["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    ]


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A ``jsonschema`` validator for *schema*."""
    return jsonschema.Draft202012Validator(schema)
