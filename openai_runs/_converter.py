"""The one cattrs converter that turns API JSON into models and back."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from enum import StrEnum
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.strategies import configure_tagged_union

from . import models as m
from ._fastpath import build_model, field_types, kind_of, mark, not_fast

__all__ = ["client_converter", "converter", "request_converter"]


# A timestamp must fit a float: the watch computes `expires_at - time.time()`,
# which raises OverflowError for an int beyond ~1.8e308 (an expires_at of
# 10**400). The spec sets no bound, so anything a float holds still parses.
_FLOAT_MAX = int(sys.float_info.max)


def _timestamp(value: Any, _: Any) -> Any:
    if value is None:
        return None
    if value.__class__ is not int:
        raise TypeError(f"expected int, got {type(value).__name__}")
    if not -_FLOAT_MAX <= value <= _FLOAT_MAX:
        raise ValueError("expected a Unix time, got a number beyond any float")
    return value


mark(_timestamp, "timestamp", _FLOAT_MAX)


def _model_structure_hook(
    cl: type,
    converter: cattrs.Converter,
    *,
    fast_path: bool = True,
    built: dict[Any, Callable[[Any], Any]] | None = None,
) -> Callable[[Any, Any], Any]:
    """Structure *cl*, collecting keys it has no field for into `extra`."""
    attrs.resolve_types(get_origin(cl) or cl)
    known = frozenset(a.name for a in attrs.fields(cl)) - {"extra"}
    stamps: dict[str, Any] = {
        a.name: override(struct_hook=_timestamp)
        for a in attrs.fields(cl)
        if a.name.endswith("_at") and a.type in (int, int | None)
    }
    base: Callable[[Any, Any], Any] = make_dict_structure_fn(
        cl, converter, extra=override(omit=True), **stamps
    )
    # The fast path (see _fastpath): the same hooks cattrs just looked up,
    # folded into one function, generated at first use; anything it does not
    # take goes to the detailed hook.
    types = field_types(cl) if fast_path else None
    fast: Callable[[Any], Any] | None = None
    building = False

    def get_fast() -> Callable[[Any], Any] | None:
        nonlocal fast, building
        if fast is None and built is not None:
            # cattrs builds a model's hook more than once (a field's hook is
            # looked up without caching): the fast function once per converter.
            fast = built.get(cl)
        if fast is None and not building and types is not None:
            building = True  # a model nested in itself calls its hook
            try:
                hooks = {
                    name: _timestamp
                    if name in stamps
                    else converter.get_structure_hook(t)
                    for name, t in types.items()
                    if name != "extra"
                }
                fast = build_model(converter, cl, hooks, known) or not_fast
                if built is not None:
                    built[cl] = fast
            finally:
                building = False
        return None if fast is not_fast else fast

    def detailed(data: Any, _: Any) -> Any:
        # `__class__ is dict` first: what json.loads returns, and far cheaper
        # than the ABC check of isinstance(..., Mapping).
        if data.__class__ is not dict and not isinstance(data, Mapping):
            # Without this a JSON null fails with a bare TypeError from deep in
            # the generated code, and a string as one "missing" error per field.
            problem = TypeError(f"expected a JSON object, got {type(data).__name__}")
            raise cattrs.ClassValidationError(
                f"While structuring {cl.__name__}", [problem], cl
            )
        obj = base(data, cl)
        if not known.issuperset(data):
            # object.__setattr__ is how attrs itself sets frozen fields.
            extra = {k: v for k, v in data.items() if k not in known}
            object.__setattr__(obj, "extra", extra)
        return obj

    if types is None:
        return detailed

    def structure(data: Any, _: Any) -> Any:
        try:
            return (fast or get_fast() or not_fast)(data)
        except Exception:  # noqa: BLE001 - the detailed path decides, and says why
            return detailed(data, _)

    return mark(structure, "model", get_fast)


def _model_unstructure_hook(
    cl: type, converter: cattrs.Converter
) -> Callable[[Any], dict[str, Any]]:
    """Unstructure *cl*, writing `extra` back beside the known keys."""
    absent: dict[str, Any] = {
        a.name: override(omit_if_default=True)
        for a in attrs.fields(cl)
        if a.metadata.get("openai_runs.absent_if_none")
    }
    base: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(
        cl, converter, extra=override(omit=True), **absent
    )

    def unstructure(obj: Any) -> dict[str, Any]:
        data: dict[str, Any] = base(obj)
        if obj.extra:
            return {**obj.extra, **data}
        return data

    return unstructure


def _is_model(cl: Any) -> bool:
    return attrs.has(cl) and any(a.name == "extra" for a in attrs.fields(cl))


def _json_scalar(kind: type, accepts: tuple[type, ...]) -> Callable[[Any, Any], Any]:
    """Accept a JSON scalar for *kind* only if it already has that JSON type.

    cattrs' default calls `kind(value)`, which turns a null `id` into the
    string `"None"`, `1.7` into `1` and `"no"` into `True`: a body
    that is not what the API sends must fail, not parse into wrong data. An
    integer stays as it is for a `float` field, since JSON does not tell
    `1` from `1.0` and a type checker accepts an `int` as a `float`.
    """

    def structure(value: Any, cl: Any) -> Any:
        if value.__class__ is kind and cl is kind:  # the common case, cheaply
            return value
        if not isinstance(value, accepts) or (
            isinstance(value, bool) and kind is not bool
        ):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        # A subclass (a StrEnum) is dispatched here too: build it as cattrs would.
        return value if cl is kind else cl(value)

    return mark(structure, "scalar", kind)


def _is_optional(cl: Any) -> bool:
    args = get_args(cl)
    return get_origin(cl) in (Union, UnionType) and len(args) == 2 and NoneType in args


def _optional_hook(cl: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """Structure `X | None` with X's hook, looked up once.

    cattrs' own hook dispatches on X again at every call; a run has a dozen
    optional fields.
    """
    inner = next(arg for arg in get_args(cl) if arg is not NoneType)
    hook = converter.get_structure_hook(inner)
    if inner in _SCALARS:
        # One call, not two, for the dozen optional scalars of a run: a null
        # or a value of exactly the JSON type needs no check beyond this.
        def structure_scalar(value: Any, _: Any) -> Any:
            if value is None or value.__class__ is inner:
                return value
            return hook(value, inner)

        if kind_of(hook) == ("scalar", inner):
            mark(structure_scalar, "optional_scalar", inner)
        return structure_scalar

    def structure(value: Any, _: Any) -> Any:
        return None if value is None else hook(value, inner)

    return mark(structure, "optional", hook, inner)


_SCALARS = {str: (str,), int: (int,), float: (int, float), bool: (bool,)}


def _open_enum_hook(enum: type[StrEnum]) -> Callable[[Any, Any], Any]:
    """Structure a known value into *enum*, keep an unknown one as a string."""
    members: dict[str, StrEnum] = {e.value: e for e in enum}

    def structure(value: Any, _: Any) -> Any:
        if value.__class__ is not str and not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return members.get(value, value)

    return mark(structure, "enum", members)


def _str_or(converter: cattrs.Converter, model: Any) -> Callable[[Any, Any], Any]:
    """Structure `str | X | None`: a string stays a string, an object is an X."""
    hook = converter.get_structure_hook(model)

    def structure(value: Any, _: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        return hook(value, model)

    return mark(structure, "str_or", hook, model)


def _tagged(
    converter: cattrs.Converter, union: Any, unknown: type, tags: dict[type, str]
) -> None:
    """Tag *union* by its `type` key, with *unknown* for types added later."""
    configure_tagged_union(
        union,
        converter,
        tag_generator=lambda cl: tags.get(cl, ""),
        tag_name="type",
        default=unknown,
    )
    # The fast path dispatches as the strategy's hook does, straight to each
    # variant's fast function.
    by_tag = {tags.get(cl, ""): cl for cl in get_args(union)}
    mark(converter.get_structure_hook(union), "tagged", by_tag, unknown)
    # Every variant keeps `type` as a field, so unstructure by the value's own
    # class: the strategy's hook would overwrite an unknown variant's tag.
    converter.register_unstructure_hook(
        union, lambda v: converter.unstructure(v, v.__class__)
    )


def _configure(
    converter: cattrs.Converter, *, fast_path: bool = True
) -> cattrs.Converter:
    """Teach *converter* the API's JSON: models, scalars, open enums, unions.

    Without *fast_path* every model is structured by cattrs' detailed hooks
    alone (for the tests that hold the fast path to them).
    """
    mark(converter.get_structure_hook(Any), "any")
    converter.register_structure_hook_factory(
        _is_model,
        functools.partial(_model_structure_hook, fast_path=fast_path, built={}),
    )
    converter.register_unstructure_hook_factory(_is_model, _model_unstructure_hook)
    converter.register_structure_hook_factory(_is_optional, _optional_hook)
    # Registered before any hook below is built: generated hooks look these up once.
    for _kind, _accepts in _SCALARS.items():
        converter.register_structure_hook(_kind, _json_scalar(_kind, _accepts))
    for _enum in (m.RunStatus, m.RunStepStatus, m.MessageStatus):
        converter.register_structure_hook(_enum | str, _open_enum_hook(_enum))
    # Before the tool union: an OpenAPI tool's hook is built with it.
    _tagged(
        converter,
        m.OpenApiAuth,
        m.UnknownOpenApiAuth,
        {
            m.OpenApiAnonymousAuth: "anonymous",
            m.OpenApiConnectionAuth: "connection",
            m.OpenApiManagedAuth: "managed_identity",
        },
    )
    _tagged(
        converter,
        m.Tool,
        m.UnknownTool,
        {
            m.CodeInterpreterTool: "code_interpreter",
            m.FileSearchTool: "file_search",
            m.FunctionTool: "function",
            m.AzureAISearchTool: "azure_ai_search",
            m.AzureFunctionTool: "azure_function",
            m.BingGroundingTool: "bing_grounding",
            m.ConnectedAgentTool: "connected_agent",
            m.OpenApiTool: "openapi",
        },
    )
    _tagged(converter, m.RequiredToolCall, m.UnknownToolCall, {m.ToolCall: "function"})
    _tagged(
        converter,
        m.ResponseFormat,
        m.UnknownResponseFormat,
        {
            m.ResponseFormatText: "text",
            m.ResponseFormatJsonObject: "json_object",
            m.ResponseFormatJsonSchema: "json_schema",
        },
    )
    _tagged(
        converter,
        m.MessageContent,
        m.TextContent,
        {m.ImageFileContent: "image_file", m.ImageUrlContent: "image_url"},
    )
    _tagged(
        converter,
        m.CodeOutput,
        m.UnknownCodeOutput,
        {m.CodeOutputLogs: "logs", m.CodeOutputImage: "image"},
    )
    _tagged(
        converter,
        m.StepToolCall,
        m.UnknownStepToolCall,
        {
            m.CodeInterpreterCall: "code_interpreter",
            m.FileSearchCall: "file_search",
            m.FunctionCall: "function",
            m.AzureAISearchCall: "azure_ai_search",
            m.BingGroundingCall: "bing_grounding",
            m.OpenApiCall: "openapi",
        },
    )
    _tagged(
        converter,
        m.StepDetails,
        m.UnknownStepDetails,
        {
            m.MessageCreationDetails: "message_creation",
            m.ToolCallsDetails: "tool_calls",
        },
    )
    _tagged(
        converter,
        m.Annotation,
        m.UnknownAnnotation,
        {m.FileCitationAnnotation: "file_citation", m.FilePathAnnotation: "file_path"},
    )
    _tagged(
        converter,
        m.MessagePart,
        m.UnknownPart,
        {
            m.TextPart: "text",
            m.ImageFileContent: "image_file",
            m.ImageUrlContent: "image_url",
            m.RefusalPart: "refusal",
        },
    )
    _tagged(
        converter,
        m.MessagePartDelta,
        m.UnknownPartDelta,
        {
            m.TextPartDelta: "text",
            m.RefusalPartDelta: "refusal",
            m.ImageFilePartDelta: "image_file",
            m.ImageUrlPartDelta: "image_url",
        },
    )
    _tagged(
        converter,
        m.ToolCallDelta,
        m.UnknownToolCallDelta,
        {
            m.FunctionCallDelta: "function",
            m.CodeInterpreterCallDelta: "code_interpreter",
            m.FileSearchCallDelta: "file_search",
        },
    )
    _tagged(
        converter,
        m.StepDetailsDelta,
        m.UnknownStepDetails,
        {m.MessageCreationDelta: "message_creation", m.ToolCallsDelta: "tool_calls"},
    )
    # ``X | None`` of a union flattens into one union that _is_optional misses.
    _step_details_delta = converter.get_structure_hook(m.StepDetailsDelta)
    converter.register_structure_hook(
        m.StepDetailsDelta | None,
        lambda value, _: (
            None if value is None else _step_details_delta(value, m.StepDetailsDelta)
        ),
    )
    for _model in (m.NamedToolChoice, m.ResponseFormat):
        converter.register_structure_hook(
            str | _model | None, _str_or(converter, _model)
        )
    converter.register_structure_hook(
        str | list[m.MessageContent], _str_or(converter, list[m.MessageContent])
    )
    # An attachment's tools are a subset of the tool union: structure them as one.
    converter.register_structure_hook(
        m.CodeInterpreterTool | m.FileSearchTool, converter.get_structure_hook(m.Tool)
    )
    return converter


converter = _configure(cattrs.Converter(omit_if_default=False))
"""The configured `cattrs.Converter` for every model of this package.

Use it to structure stored or webhook JSON into models, and to turn models
back into the API's JSON:

```python
run = openai_runs.converter.structure(payload, openai_runs.Run)
payload = openai_runs.converter.unstructure(run)
```

Unknown keys land in each model's `extra` and are written back on
unstructure; unknown enum values stay plain strings; unknown `type` tags
structure into the `Unknown…` variants.

It is yours to extend: a hook you register on it changes what you structure
with it, never what the client reads from the API, which parses with a
converter of its own.
"""


@functools.cache
def client_converter() -> cattrs.Converter:
    """The converter the client parses with, built on first use.

    Configured as `converter` is, but its own: a hook a user registers on
    the public one cannot change what the client reads from the API. Built
    lazily because building one costs about as much as importing aiohttp,
    and a program that never calls the API need not pay it twice.
    """
    return _configure(cattrs.Converter(omit_if_default=False))


request_converter = cattrs.Converter()
"""Unstructures request bodies: like [converter][openai_runs.converter], but a field
that is *None* by default and unset is left out, since the API rejects `null` for
many optional fields of a request (`description`, `detail`, ...)."""


def _request_unstructure_hook(cl: type) -> Callable[[Any], dict[str, Any]]:
    omit: dict[str, Any] = {
        a.name: override(omit_if_default=True)
        for a in attrs.fields(cl)
        if a.default is None
    }
    base: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(
        cl, request_converter, extra=override(omit=True), **omit
    )

    def unstructure(obj: Any) -> dict[str, Any]:
        data = base(obj)
        return {**obj.extra, **data} if obj.extra else data

    return unstructure


request_converter.register_unstructure_hook_factory(
    _is_model, _request_unstructure_hook
)
