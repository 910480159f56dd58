"""Request bodies checked against the contract's own request schemas.

The emulator ships `runs.openapi.json` (the official document's Runs extract,
unchanged; see `runs.openapi.json.md` beside it) and checks every request body
against the schema the document declares for it (`CreateRunRequest`,
`CreateThreadAndRunRequest`, `SubmitToolOutputsRunRequest`,
`ModifyRunRequest`). The check is a small walker over the JSON Schema
keywords those schemas use, not a general validator: `type`, `enum`,
`properties`, `required`, `additionalProperties`, `items`, `minItems`,
`maxItems`, `minimum`, `maximum`, `anyOf`, `oneOf`, `allOf`, `$ref`,
`format: uri`, and OpenAPI 3.0's `nullable`, which the document uses although
it declares 3.1. A keyword it does not know fails loudly in the test suite
(`unknown_keywords`), so a new spec cannot be checked only halfway.

The first error found is answered the way the live API words it: a 400
`invalid_request_error` with the path of the offending parameter in `param`
(`tools[0].function.name`) and a machine-readable `code` (`invalid_type`,
`invalid_value`, `missing_required_parameter`, `integer_below_min_value`,
...). Limits the document states only in prose are checked after the schema:
see `_PROSE_RULES`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from ._state import ApiError, check_metadata

JSON = dict[str, Any]
SPEC_FILE = "runs.openapi.json"

# Every keyword the walker understands; the rest are annotations it may skip.
KEYWORDS = frozenset(
    {
        "type", "enum", "properties", "required", "additionalProperties",
        "items", "minItems", "maxItems", "minimum", "maximum", "anyOf",
        "oneOf", "allOf", "$ref", "format", "nullable",
    }
)  # fmt: skip
ANNOTATIONS = frozenset({"description", "title", "default", "example", "deprecated"})

# The API's limit on one tool output. Not in the document; the emulator
# needs some limit (the issue: "there is no size limit"), and 512,000
# characters is the limit of a message's text in the Assistants API.
MAX_TOOL_OUTPUT = 512_000
# tools[].function.name and response_format.json_schema.name: "Must be a-z,
# A-Z, 0-9, or contain underscores and dashes, with a maximum length of 64."
_NAME = re.compile(r"[a-zA-Z0-9_-]+")

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a decimal",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


@functools.cache
def spec() -> JSON:
    """Return the shipped OpenAPI document, parsed once."""
    text = resources.files(__package__).joinpath(SPEC_FILE).read_text("utf-8")
    document: JSON = json.loads(text)
    return document


def _schemas() -> JSON:
    schemas: JSON = spec()["components"]["schemas"]
    return schemas


_PY_TYPES = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def _type_of(value: object) -> str:
    if value is None:
        return "null"
    for python, name in _PY_TYPES:
        if isinstance(value, python):
            return name
    return "object"


def _fits(kind: str, value: object) -> bool:
    actual = _type_of(value)
    # JSON has one number type: 3.0 is an integer, 3 is a number.
    return (
        actual == kind
        or (kind == "number" and actual == "integer")
        or (kind == "integer" and actual == "number" and float(value).is_integer())  # type: ignore[arg-type]
    )


def _join(items: list[str], word: str) -> str:
    if len(items) <= 2:
        return f" {word} ".join(items)
    return ", ".join(items[:-1]) + f", {word} " + items[-1]


def _param(path: str) -> str | None:
    return path or None


def _type_error(path: str, expected: Iterable[str], value: object) -> ApiError:
    names = list(dict.fromkeys(_TYPE_NAMES[kind] for kind in expected))
    what = names[0] if len(names) == 1 else "one of " + _join(names, "or")
    got = _TYPE_NAMES[_type_of(value)]
    return ApiError(
        400,
        f"Invalid type for '{path}': expected {what}, but got {got} instead.",
        param=_param(path),
        code="invalid_type",
    )


def _enum_error(path: str, allowed: list[Any], value: object) -> ApiError:
    listed = _join(
        [repr(v) if isinstance(v, str) else json.dumps(v) for v in allowed], "and"
    )
    shown = repr(value) if isinstance(value, str) else json.dumps(value)
    return ApiError(
        400,
        f"Invalid value for '{path}': {shown}. Supported values are: {listed}.",
        param=_param(path),
        code="invalid_value",
    )


def _invalid(path: str, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, f"Invalid '{path}': {message}", param=_param(path), code=code)


class _Walker:
    """Checks a value against a schema of the document, raising the first error.

    The document never changes while the emulator runs, so what is derived
    from one of its schema nodes (the node behind a `$ref`, its JSON types,
    whether it admits null) is kept, keyed by the node's identity.
    """

    def __init__(self) -> None:
        self.schemas = _schemas()
        self._resolved: dict[int, JSON] = {}
        self._types: dict[int, list[str]] = {}
        self._nullable: dict[int, bool] = {}

    def resolve(self, schema: JSON) -> JSON:
        if "$ref" not in schema:
            return schema
        key = id(schema)
        found = self._resolved.get(key)
        if found is None:
            found = schema
            while "$ref" in found:
                extra = {k: v for k, v in found.items() if k != "$ref"}
                target = self.schemas[found["$ref"].rsplit("/", 1)[-1]]
                found = {**target, **extra}
            self._resolved[key] = found
        return found

    def nullable(self, schema: JSON) -> bool:
        key = id(schema)
        found = self._nullable.get(key)
        if found is None:
            found = self._admits_null(self.resolve(schema))
            self._nullable[key] = found
        return found

    def _admits_null(self, schema: JSON) -> bool:
        if schema.get("nullable") or schema.get("type") == "null":
            return True
        if any(part == {"nullable": True} for part in schema.get("allOf", ())):
            return True
        return any(self.nullable(part) for part in schema.get("anyOf", ()))

    def types(self, schema: JSON) -> list[str]:
        """The JSON types *schema* admits (empty: any)."""
        key = id(schema)
        found = self._types.get(key)
        if found is None:
            found = self._types_of(self.resolve(schema))
            self._types[key] = found
        return found

    def _types_of(self, schema: JSON) -> list[str]:
        if "type" in schema:
            kinds = schema["type"]
            found = [kinds] if isinstance(kinds, str) else list(kinds)
        else:
            found = []
            for key in ("anyOf", "oneOf", "allOf"):
                for part in schema.get(key, ()):
                    if part == {"nullable": True}:
                        continue
                    more = self.types(part)
                    if not more:
                        return []
                    found += more
        if schema.get("nullable"):
            found.append("null")
        return list(dict.fromkeys(found))

    def check(self, schema: JSON, value: object, path: str) -> None:
        schema = self.resolve(schema)
        if value is None and self.nullable(schema):
            return
        if "allOf" in schema:
            for part in schema["allOf"]:
                if part != {"nullable": True}:
                    self.check(part, value, path)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                self.union(schema[key], value, path)
        kind = schema.get("type")
        if kind is not None:
            kinds = [kind] if isinstance(kind, str) else kind
            if not any(_fits(k, value) for k in kinds):
                raise _type_error(path, kinds, value)
        if "enum" in schema and value not in schema["enum"]:
            raise _enum_error(path, schema["enum"], value)
        self.contents(schema, value, path)

    def contents(self, schema: JSON, value: object, path: str) -> None:
        """Check what is inside *value*: its keys, items, bounds or format."""
        if isinstance(value, dict):
            self.object(schema, value, path)
        elif isinstance(value, list):
            self.array(schema, value, path)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self.number(schema, value, path)
        elif isinstance(value, str) and schema.get("format") == "uri":
            url = urlsplit(value)
            if not (url.scheme and (url.netloc or url.scheme == "data")):
                raise _invalid(path, "expected a valid URL.")

    def union(self, parts: list[JSON], value: object, path: str) -> None:
        parts = [self.resolve(p) for p in parts if p != {"nullable": True}]
        fitting = [p for p in parts if self._fits_any(p, value)]
        if not fitting:
            kinds = [k for p in parts for k in self.types(p)]
            raise _type_error(path, kinds, value)
        if isinstance(value, dict) and len(fitting) > 1:
            # The document's object unions are told apart by `type`.
            tagged = {
                tag: p
                for p in fitting
                for tag in p.get("properties", {}).get("type", {}).get("enum", ())
            }
            if tagged:
                tag = value.get("type")
                if tag is None:
                    raise ApiError(
                        400,
                        f"Missing required parameter: '{_dot(path, 'type')}'.",
                        param=_dot(path, "type"),
                        code="missing_required_parameter",
                    )
                if tag not in tagged:
                    raise _enum_error(_dot(path, "type"), list(tagged), tag)
                fitting = [tagged[tag]]
        first: ApiError | None = None
        for part in fitting:
            try:
                self.check(part, value, path)
            except ApiError as error:
                first = first or error
            else:
                return
        assert first is not None
        raise first

    def _fits_any(self, schema: JSON, value: object) -> bool:
        kinds = self.types(schema)
        return not kinds or any(_fits(kind, value) for kind in kinds)

    def object(self, schema: JSON, value: JSON, path: str) -> None:
        properties: JSON = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                param = _dot(path, key)
                raise ApiError(
                    400,
                    f"Missing required parameter: '{param}'.",
                    param=param,
                    code="missing_required_parameter",
                )
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            param = _dot(path, key)
            if key in properties:
                self.check(properties[key], item, param)
            elif extra is False:
                if not path:
                    # The live API's wording for an unknown top-level key.
                    raise ApiError(
                        400, f"Unrecognized request argument supplied: {key}"
                    )
                raise ApiError(
                    400,
                    f"Unknown parameter: '{param}'.",
                    param=param,
                    code="unknown_parameter",
                )
            elif isinstance(extra, dict):
                self.check(extra, item, param)

    def array(self, schema: JSON, value: list[Any], path: str) -> None:
        low, high = schema.get("minItems"), schema.get("maxItems")
        if low is not None and len(value) < low:
            if not value:
                raise _invalid(
                    path,
                    f"empty array. Expected an array with minimum length {low}, "
                    "but got an empty array instead.",
                    "empty_array",
                )
            raise _invalid(
                path,
                f"array too short. Expected an array with minimum length {low}, "
                f"but got an array with length {len(value)} instead.",
                "array_below_min_length",
            )
        if high is not None and len(value) > high:
            raise _invalid(
                path,
                f"array too long. Expected an array with maximum length {high}, "
                f"but got an array with length {len(value)} instead.",
                "array_above_max_length",
            )
        if "items" in schema:
            for i, item in enumerate(value):
                self.check(schema["items"], item, f"{path}[{i}]")

    def number(self, schema: JSON, value: float, path: str) -> None:
        kind = "integer" if schema.get("type") == "integer" else "decimal"
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and value < low:
            raise _invalid(
                path,
                f"{kind} below minimum value. Expected a value >= {low}, but got "
                f"{value} instead.",
                f"{kind}_below_min_value",
            )
        if high is not None and value > high:
            raise _invalid(
                path,
                f"{kind} above maximum value. Expected a value <= {high}, but got "
                f"{value} instead.",
                f"{kind}_above_max_value",
            )


@functools.cache
def _walker() -> _Walker:
    return _Walker()


def _dot(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check_body(schema_name: str, body: object) -> JSON:
    """Check a request *body* against the document's schema *schema_name*.

    Then apply the limits the document states only in prose (metadata sizes,
    function names). Returns the body.

    Raises:
        ApiError: 400, worded as the live API words it, for the first fault.
    """
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    walker = _walker()
    walker.check(_schemas()[schema_name], body, "")
    _prose_rules(body)
    return body


def _prose_rules(body: JSON) -> None:
    """The limits the document states in descriptions, not in keywords."""
    check_metadata(body.get("metadata"))
    thread = body.get("thread")
    if isinstance(thread, dict):
        check_metadata(thread.get("metadata"), "thread.metadata")
        for i, message in enumerate(thread.get("messages") or ()):
            check_metadata(message.get("metadata"), f"thread.messages[{i}].metadata")
    for i, message in enumerate(body.get("additional_messages") or ()):
        check_metadata(message.get("metadata"), f"additional_messages[{i}].metadata")
    for i, tool in enumerate(body.get("tools") or ()):
        if tool["type"] == "function":
            _check_name(tool["function"]["name"], f"tools[{i}].function.name")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format["type"] == "json_schema":
        _check_name(
            response_format["json_schema"]["name"], "response_format.json_schema.name"
        )
    tool_choice = body.get("tool_choice")
    if (
        isinstance(tool_choice, dict)
        and tool_choice["type"] == "function"
        and "function" not in tool_choice
    ):
        raise ApiError(
            400,
            "Missing required parameter: 'tool_choice.function'.",
            param="tool_choice.function",
            code="missing_required_parameter",
        )
    truncation = body.get("truncation_strategy")
    if (
        isinstance(truncation, dict)
        and truncation["type"] == "last_messages"
        and truncation.get("last_messages") is None
    ):
        raise ApiError(
            400,
            "Missing required parameter: 'truncation_strategy.last_messages'.",
            param="truncation_strategy.last_messages",
            code="missing_required_parameter",
        )
    outputs = body.get("tool_outputs")
    if outputs is not None:
        _check_tool_outputs(outputs)


def _check_name(name: str, path: str) -> None:
    if len(name) > 64:
        raise _invalid(
            path,
            f"string too long. Expected a string with maximum length 64, but got a "
            f"string with length {len(name)} instead.",
            "string_above_max_length",
        )
    if not _NAME.fullmatch(name):
        raise _invalid(
            path,
            "string does not match pattern. Expected a string that matches the "
            "pattern '^[a-zA-Z0-9_-]+$'.",
        )


def _check_tool_outputs(outputs: list[JSON]) -> None:
    # The schema requires neither field; the live API refuses an output
    # without them rather than submit an empty string.
    seen: set[str] = set()
    for i, output in enumerate(outputs):
        for key in ("tool_call_id", "output"):
            if key not in output:
                param = f"tool_outputs[{i}].{key}"
                raise ApiError(
                    400,
                    f"Missing required parameter: '{param}'.",
                    param=param,
                    code="missing_required_parameter",
                )
        call_id = output["tool_call_id"]
        if call_id in seen:
            raise _invalid(
                f"tool_outputs[{i}].tool_call_id",
                f"duplicate value: '{call_id}'. Each tool call takes one output.",
            )
        seen.add(call_id)
        if len(output["output"]) > MAX_TOOL_OUTPUT:
            raise _invalid(
                f"tool_outputs[{i}].output",
                f"string too long. Expected a string with maximum length "
                f"{MAX_TOOL_OUTPUT}, but got a string with length "
                f"{len(output['output'])} instead.",
                "string_above_max_length",
            )


def unknown_keywords(schema_names: Iterable[str]) -> set[str]:
    """Return the keywords reachable from *schema_names* that the walker ignores.

    For the test suite: if the document grows a keyword, the checks must
    grow too.
    """
    schemas = _schemas()
    found: set[str] = set()
    seen: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            if key.startswith("x-") or key in ANNOTATIONS:
                continue
            if key not in KEYWORDS:
                found.add(key)
            if key == "$ref":
                name = value.rsplit("/", 1)[-1]
                if name not in seen:
                    seen.add(name)
                    walk(schemas[name])
            elif key == "properties":
                for sub in value.values():
                    walk(sub)
            elif key not in ("enum", "required", "type"):
                walk(value)

    for name in schema_names:
        seen.add(name)
        walk(schemas[name])
    return found
