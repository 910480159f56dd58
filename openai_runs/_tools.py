"""Serve a run's tool calls: the handler type, the registry, concurrent calls."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

from .exceptions import InvalidRequestError, ToolCallError
from .models import Run, ToolCall, ToolOutput

__all__ = ["ToolHandler", "serve_tool_calls", "tool_registry"]


class ToolHandler(Protocol):
    """Answers one tool call of a run with the output to submit for it.

    Any function of one [ToolCall][openai_runs.models.ToolCall] that returns
    a string, or a coroutine function that does. A coroutine function is
    awaited on the event loop; a plain function runs in a worker thread
    (`asyncio.to_thread`), so blocking code stalls no other watch and
    parallel calls overlap. Whatever it raises ends the watch with a
    [ToolCallError][openai_runs.exceptions.ToolCallError].
    """

    def __call__(self, call: ToolCall, /) -> str | Awaitable[str]: ...


def tool_registry(
    functions: Mapping[str, Callable[..., Any]],
    *,
    bad_calls: Literal["report", "raise"] = "report",
) -> ToolHandler:
    """Build a tool handler that calls Python functions by name.

    The result is a [ToolHandler][openai_runs.ToolHandler].

    Each function receives the call's JSON arguments as keyword arguments,
    and may be a plain or a coroutine function. What it returns is the
    output: a string as it is, anything else JSON-encoded.

    A call the registry cannot make (a name it does not have, arguments that
    are not a JSON object, or that do not fit the function's signature) is a
    mistake of the model, not of your code: by default it is answered with
    `{"error": "..."}` so the model can correct itself.

    Args:
        functions: Function names, as in the run's function tools, to
            callables.
        bad_calls: `"report"` to answer a bad call with an error output,
            `"raise"` to end the watch with a
            [ToolCallError][openai_runs.exceptions.ToolCallError] instead.

    Returns:
        A handler for `tool_handler=`.

    Raises:
        InvalidRequestError: *bad_calls* is neither `"report"` nor `"raise"`.
    """
    if bad_calls not in ("report", "raise"):
        raise InvalidRequestError("bad_calls", "must be 'report' or 'raise'")
    functions = dict(functions)

    async def handle(call: ToolCall) -> str:
        try:
            fn, arguments = _resolve(functions, call)
        except (TypeError, ValueError) as exc:
            if bad_calls == "raise":
                raise
            return json.dumps({"error": str(exc)})
        result = await _invoke(fn, **arguments)
        return result if isinstance(result, str) else json.dumps(result)

    return handle


def _resolve(
    functions: Mapping[str, Callable[..., Any]], call: ToolCall
) -> tuple[Callable[..., Any], dict[str, Any]]:
    """Find the function for *call* and parse its arguments.

    Raises:
        ValueError: The name is unknown, or the arguments are not JSON or do
            not fit the function's signature.
        TypeError: The arguments are not a JSON object.
    """
    name = call.function.name
    fn = functions.get(name)
    if fn is None:
        known = ", ".join(sorted(functions)) or "none"
        raise ValueError(f"unknown function {name!r}; known: {known}")
    try:
        arguments = json.loads(call.function.arguments or "{}")
    except ValueError as exc:
        raise ValueError(f"arguments of {name!r} are not valid JSON: {exc}") from None
    if not isinstance(arguments, dict):
        raise TypeError(f"arguments of {name!r} must be a JSON object")
    try:
        inspect.signature(fn).bind(**arguments)
    except TypeError as exc:
        raise ValueError(f"bad arguments for {name!r}: {exc}") from None
    except ValueError:  # pragma: no cover - a builtin without a signature
        pass
    return fn, arguments


async def _invoke(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Await a coroutine function; run a plain one in a worker thread.

    *fn* is positional-only, so a tool argument named `fn` reaches the tool.
    """
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    result = await asyncio.to_thread(fn, *args, **kwargs)
    if inspect.isawaitable(result):  # e.g. a lambda that returns a coroutine
        result = await result
    return result


async def serve_tool_calls(
    handler: ToolHandler, run: Run, *, limit: int
) -> list[ToolOutput]:
    """Answer every tool call of *run*, at most *limit* at once.

    Returns:
        One output per call, in the order of `run.tool_calls`.

    Raises:
        ToolCallError: The handler raised, or returned something that is not
            a string, for one call (the first to fail); the other calls still
            running are cancelled.
    """
    semaphore = asyncio.Semaphore(limit)

    async def answer(call: ToolCall) -> ToolOutput:
        async with semaphore:
            try:
                output = await _invoke(handler, call)
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # a real cancel, of the watch or of this group
                # The handler raised CancelledError of its own accord: a
                # failure of the handler, not a cancel of the watch.
                raise ToolCallError(
                    f"the tool handler raised CancelledError on "
                    f"{call.function.name!r} (call {call.id}) of run {run.id}",
                    run=run,
                    tool_call=call,
                ) from exc
            except Exception as exc:
                raise ToolCallError(
                    f"the tool handler failed on {call.function.name!r} "
                    f"(call {call.id}) of run {run.id}: {exc!r}",
                    run=run,
                    tool_call=call,
                ) from exc
        if not isinstance(output, str):
            raise ToolCallError(
                f"the tool handler returned {type(output).__name__}, not str, "
                f"for {call.function.name!r} (call {call.id}) of run {run.id}",
                run=run,
                tool_call=call,
            )
        return ToolOutput(tool_call_id=call.id, output=output)

    calls: Sequence[ToolCall] = run.tool_calls
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(answer(call)) for call in calls]
    except* ToolCallError as failed:
        raise failed.exceptions[0]  # noqa: B904 - keeps the handler's error as cause
    return [task.result() for task in tasks]
