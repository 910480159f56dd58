"""The structuring fast path gives what cattrs' detailed hooks give, or defers to them.

Each model's hook first tries one generated function (openai_runs._fastpath);
anything it does not take goes to the detailed hooks, which decide. These tests
hold the two to the same answers: on the spec's payloads, generated ones, and
bodies built to fall between them.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import attrs
import cattrs
import pytest
from _spec import response_examples, schema_examples

from openai_runs import converter
from openai_runs._converter import _configure
from openai_runs._fastpath import kind_of
from openai_runs.models import (
    FunctionTool,
    Page,
    Run,
    RunStatus,
    RunStep,
    UnknownTool,
)

RUN: dict[str, Any] = {
    "id": "run_1",
    "object": "thread.run",
    "created_at": 1_700_000_000,
    "thread_id": "thread_1",
    "assistant_id": "asst_1",
    "status": "in_progress",
    "expires_at": 1_700_000_600,
    "model": "gpt-4o",
    "instructions": "Be brief.",
    "tools": [
        {"type": "code_interpreter"},
        {"type": "function", "function": {"name": "f", "parameters": {}}},
    ],
    "metadata": {"k": "v"},
    "temperature": 1.0,
    "top_p": 1,
    "truncation_strategy": {"type": "auto", "last_messages": None},
    "tool_choice": "auto",
    "response_format": {"type": "json_object"},
    "parallel_tool_calls": True,
}

STEP: dict[str, Any] = {
    "id": "step_1",
    "object": "thread.run.step",
    "created_at": 1_700_000_000,
    "assistant_id": "asst_1",
    "thread_id": "thread_1",
    "run_id": "run_1",
    "type": "tool_calls",
    "status": "completed",
    "step_details": {
        "type": "tool_calls",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "f", "arguments": "{}", "output": None},
            }
        ],
    },
    "metadata": {},
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
}


DETAILED = _configure(cattrs.Converter(omit_if_default=False), fast_path=False)
"""Configured as the public converter is, with cattrs' detailed hooks alone."""


def detailed(data: Any, cl: Any) -> Any:
    """Structure *data* with the detailed hooks alone."""
    return DETAILED.structure(data, cl)


def outcome(fn: Any, data: Any, cl: Any) -> tuple[str, Any]:
    """What structuring gives: ("ok", model) or ("error", its messages)."""
    try:
        return "ok", fn(copy.deepcopy(data), cl)
    except cattrs.BaseValidationError as exc:
        return "error", cattrs.transform_error(exc)
    except Exception as exc:  # compared, not hidden
        return "error", repr(exc)


def assert_same(data: Any, cl: Any) -> None:
    """The hook (fast path first) and the detailed path agree on *data*."""
    fast = outcome(converter.structure, data, cl)
    slow = outcome(detailed, data, cl)
    if fast[0] == "error":
        # The exception objects differ; what they say must not.
        assert slow[0] == "error"
        assert fast[1] == slow[1]
        return
    assert fast == slow
    if fast[0] == "ok":
        # Same fields, same classes, same extra: unstructured they are equal too.
        assert converter.unstructure(fast[1]) == converter.unstructure(slow[1])
        for got, want in _pairs(fast[1], slow[1]):
            assert type(got) is type(want)


def _pairs(a: Any, b: Any) -> list[tuple[Any, Any]]:
    """Every value of *a* beside *b*'s, depth first (models, lists, dicts)."""
    out = [(a, b)]
    if attrs.has(type(a)) and type(a) is type(b):
        for field in attrs.fields(type(a)):
            out += _pairs(getattr(a, field.name), getattr(b, field.name))
    elif (
        isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b)
    ):
        for x, y in zip(a, b, strict=True):
            out += _pairs(x, y)
    elif isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        for key in a:
            out += _pairs(a[key], b[key])
    return out


def test_models_have_a_fast_path() -> None:
    """A run, a step and a page of steps are structured by one generated function."""
    for cl in (Run, RunStep, Page[RunStep]):
        kind = kind_of(converter.get_structure_hook(cl))
        assert kind is not None
        assert kind[0] == "model"


def test_fast_path_structures_a_run_and_a_page() -> None:
    """The fast path builds the same models the detailed path does, `extra`,
    open enums and tagged unions included."""
    run = {**RUN, "reasoning_effort": None, "new_field": [1, 2]}
    assert_same(run, Run)
    got = converter.structure(run, Run)
    assert got.status is RunStatus.IN_PROGRESS
    assert got.extra == {"reasoning_effort": None, "new_field": [1, 2]}
    assert isinstance(got.tools[1], FunctionTool)
    page = {"object": "list", "data": [STEP] * 3, "has_more": False}
    assert_same(page, Page[RunStep])
    assert len(converter.structure(page, Page[RunStep]).data) == 3


class _Str(str):
    __slots__ = ()


class _Dict(dict):  # type: ignore[type-arg]
    pass


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def _drop(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


@pytest.mark.parametrize(
    ("data", "cl"),
    [
        (_set(RUN, ("id",), None), Run),
        (_set(RUN, ("id",), 5), Run),
        (_set(RUN, ("id",), _Str("run_1")), Run),
        (_set(RUN, ("created_at",), True), Run),
        (_set(RUN, ("created_at",), 1.5), Run),
        (_set(RUN, ("created_at",), None), Run),
        (_set(RUN, ("expires_at",), 10**400), Run),
        (_set(RUN, ("temperature",), True), Run),
        (_set(RUN, ("temperature",), "1"), Run),
        (_set(RUN, ("parallel_tool_calls",), 1), Run),
        (_set(RUN, ("status",), "paused_for_review"), Run),
        (_set(RUN, ("status",), 3), Run),
        (_set(RUN, ("status",), RunStatus.COMPLETED), Run),
        (_set(RUN, ("metadata",), {"k": 1}), Run),
        (_set(RUN, ("metadata",), {1: "v"}), Run),
        (_set(RUN, ("metadata",), _Dict(k="v")), Run),
        (_set(RUN, ("tools",), ({"type": "code_interpreter"},)), Run),
        (_set(RUN, ("tools", 0), {"type": "browser", "x": 1}), Run),
        (_set(RUN, ("tools", 0), {"no_type": 1}), Run),
        (_set(RUN, ("tools", 0), {"type": ["unhashable"]}), Run),
        (_set(RUN, ("tools", 0), "code_interpreter"), Run),
        (
            _set(
                RUN, ("tool_choice",), {"type": "function", "function": {"name": "f"}}
            ),
            Run,
        ),
        (_set(RUN, ("tool_choice",), 7), Run),
        (_set(RUN, ("response_format",), "auto"), Run),
        (_set(RUN, ("truncation_strategy",), None), Run),
        (_drop(RUN, "id"), Run),
        (_drop(RUN, "object"), Run),
        (_drop(RUN, "tools"), Run),
        (_Dict(RUN), Run),
        (None, Run),
        ("run", Run),
        (_set(STEP, ("step_details", "type"), "thinking"), RunStep),
        (_set(STEP, ("step_details", "tool_calls", 0, "type"), "browser"), RunStep),
        (_set(STEP, ("usage",), None), RunStep),
        (_set(STEP, ("usage", "total_tokens"), "3"), RunStep),
        ({"data": [STEP, _set(STEP, ("id",), None)]}, Page[RunStep]),
        ({"data": (STEP,)}, Page[RunStep]),
        ({"data": [STEP], "has_more": None}, Page[RunStep]),
    ],
)
def test_fast_and_detailed_paths_agree(data: Any, cl: Any) -> None:
    """A body the fast path does not take exactly as the API sends it (a null,
    a bool for an int, a str or dict subclass, a tuple for a list, an unknown
    tag or status, a missing key) gives what the detailed path gives: the same
    model or the same detailed error."""
    assert_same(data, cl)


def test_unknown_tool_from_fast_path_keeps_its_keys() -> None:
    """An unknown tool type taken by the fast path keeps its type and keys."""
    run = converter.structure(_set(RUN, ("tools", 0), {"type": "browser", "x": 1}), Run)
    tool = run.tools[0]
    assert isinstance(tool, UnknownTool)
    assert attrs.asdict(tool)["type"] == "browser"
    assert tool.extra == {"x": 1}


def test_user_hook_on_a_fresh_converter_is_called() -> None:
    """A hook registered before a model's hook is built is called for its fields,
    on the fast path as on the detailed one."""
    mine = _configure(cattrs.Converter(omit_if_default=False))
    mine.register_structure_hook(RunStatus | str, lambda value, _: "mine")
    assert mine.structure(RUN, Run).status == "mine"


MODEL_OF_SCHEMA: dict[str, Any] = {
    "RunObject": Run,
    "RunStepObject": RunStep,
    "ListRunsResponse": Page[Run],
    "ListRunStepsResponse": Page[RunStep],
}


@pytest.mark.parametrize(
    ("schema_name", "text"),
    [
        pytest.param(name, text, id=label)
        for label, name, text in response_examples()
        if name in MODEL_OF_SCHEMA
    ]
    + [
        pytest.param(name, text, id=f"{name}.example")
        for name, text in schema_examples()
        if name in MODEL_OF_SCHEMA
    ],
)
def test_spec_examples_agree(schema_name: str, text: str) -> None:
    """Every example of the API reference structures the same on both paths."""
    assert_same(json.loads(text), MODEL_OF_SCHEMA[schema_name])
