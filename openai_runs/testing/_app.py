"""The emulator's aiohttp application: the Runs API and the control channel.

The API lives in a sub-application mounted at the prefix (`/v1`), whose
middleware counts requests, checks the key and the beta header, and applies
faults. The control channel lives at `/_emulator` on the root application
and needs no key.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import cattrs
from aiohttp import web
from aiohttp.typedefs import Handler

from ._assistants import Assistant
from ._clock import ManualClock
from ._conversation import CONVERSATIONS, Conversations, routes
from ._foundry import mount_foundry
from ._schema import check_body
from ._script import FAULT_PRESETS, Fault, RunScript, converter
from ._state import (
    FILE_SEARCH_CONTENT,
    JSON,
    ApiError,
    EmulatorState,
    new_id,
)
from ._streaming import RunView, created_events, stream_run

STATE = web.AppKey("state", EmulatorState)
_T = TypeVar("_T")


@attrs.frozen
class Access:
    """Who may call the API.

    Attributes:
        api_key: The key to require, `None` to accept any request.
        require_beta: Whether to require `OpenAI-Beta: assistants=v2`.
    """

    api_key: str | None
    require_beta: bool


ACCESS = web.AppKey("access", Access)
BodyCheck = Callable[[str, object], JSON]
BODY_CHECK: web.AppKey[BodyCheck] = web.AppKey("body_check")
"""How request bodies are checked: `check_body`, or a dialect's own."""


def build_app(
    state: EmulatorState, *, prefix: str, access: Access, dialect: str = "openai"
) -> web.Application:
    """Return the emulator's application.

    Args:
        state: The emulator's state.
        prefix: Where the API is mounted, such as `/v1`.
        access: The key and header requirements of the API.
        dialect: `openai`, or `foundry` for Azure AI Foundry's shape at
            `/api/projects/{project}` (see `_foundry`; *prefix* and *access*
            are then unused).
    """
    api = web.Application(middlewares=[_api_middleware])
    api.add_routes(
        [
            web.post("/threads", _create_thread),
            web.post("/threads/runs", _create_thread_and_run),
            web.get("/threads/{thread_id}/runs", _list_runs),
            web.post("/threads/{thread_id}/runs", _create_run),
            web.get("/threads/{thread_id}/runs/{run_id}", _get_run, name="get_run"),
            web.post("/threads/{thread_id}/runs/{run_id}", _modify_run),
            web.post("/threads/{thread_id}/runs/{run_id}/cancel", _cancel_run),
            web.get("/threads/{thread_id}/runs/{run_id}/steps", _list_steps),
            web.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}", _get_step),
            web.post("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", _submit),
            *routes(),
        ]
    )
    app = web.Application(middlewares=[_error_middleware])
    app[STATE] = state
    app[CONVERSATIONS] = Conversations(state)
    app[ACCESS] = access
    app.add_routes(
        [
            web.get("/_emulator/stats", _stats),
            web.post("/_emulator/clock/advance", _advance_clock),
            web.get("/_emulator/faults", _list_faults),
            web.post("/_emulator/faults", _add_fault),
            web.delete("/_emulator/faults", _clear_faults),
            web.post("/_emulator/runs/{run_id}/script", _rescript),
            web.put("/_emulator/scripts/{name}", _put_script),
            web.get("/_emulator/assistants", _list_assistants),
            web.put("/_emulator/assistants/{assistant_id}", _put_assistant),
            web.get("/_emulator/config", _config),
            web.patch("/_emulator/config", _patch_config),
        ]
    )
    if dialect == "foundry":
        mount_foundry(app, api)
    else:
        app.add_subapp(prefix, api)
    app.on_response_prepare.append(_add_request_id)
    return app


async def _add_request_id(_: web.Request, response: web.StreamResponse) -> None:
    response.headers["x-request-id"] = new_id("req")


@web.middleware
async def _error_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return web.json_response(error.body, status=error.status, headers=error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        # The API answers unknown paths with 404 and its error body; a
        # known path with the wrong method is an unknown route to it too.
        if error.status in (404, 405):
            message = f"Invalid URL ({request.method} {request.path})"
            return web.json_response(ApiError(404, message).body, status=404)
        return web.json_response(
            ApiError(error.status, error.reason).body, status=error.status
        )


@web.middleware
async def _api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.config_dict[STATE]
    run_id = request.match_info.get("run_id")
    state.counts.record(run_id, retrieve=request.match_info.route.name == "get_run")
    key = _check_access(request, request.config_dict[ACCESS])
    limits, wait = state.rate_limiter.take(key, state.clock.now())
    if wait is not None:
        message, retry = state.rate_limiter.refusal(wait)
        raise ApiError(
            429,
            message,
            type="requests",
            code="rate_limit_exceeded",
            headers={**limits, **retry},
        )
    try:
        response = await _faulty(request, handler, state, run_id)
    except ApiError as error:
        error.headers = {**limits, **error.headers}
        raise
    if not response.prepared:  # a stream has sent its headers already
        for name, value in limits.items():
            response.headers.setdefault(name, value)
    return response


async def _faulty(
    request: web.Request, handler: Handler, state: EmulatorState, run_id: str | None
) -> web.StreamResponse:
    fault = state.draw_fault(run_id)
    if fault is None:
        _check_ids(request)
        return await handler(request)
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.disconnect:
        if request.transport is not None:
            request.transport.close()
        raise asyncio.CancelledError
    if fault.status is not None:
        raise _fault_error(fault)
    _check_ids(request)
    response = await handler(request)
    if not response.prepared:
        response.headers.update(fault.headers)
    if fault.body is not None and isinstance(response, web.Response):
        body = bytes(response.body or b"")  # type: ignore[arg-type]
        response.body = (
            body[: len(body) // 2] if fault.body == "truncated" else b"{'id': run_, ]"
        )
    return response


_ID_PREFIXES = (("thread_id", "thread"), ("run_id", "run"), ("step_id", "step"))


def _check_ids(request: web.Request) -> None:
    # A malformed id is a 400, not a 404: the API checks the prefix before
    # looking anything up (`undefined` when a caller swaps its arguments).
    for param, prefix in _ID_PREFIXES:
        value = request.match_info.get(param)
        if value is not None and not value.startswith(prefix):
            raise ApiError(
                400,
                f"Invalid '{param}': '{value}'. Expected an ID that begins with "
                f"'{prefix}'.",
                param=param,
                code="invalid_value",
            )


def _check_access(request: web.Request, access: Access) -> str:
    """Check the key and the beta header; return who is asking, for limits.

    The caller is named by a digest of its key, so the key itself is never
    kept.
    """
    bearer = request.headers.get("Authorization", "")
    key = request.headers.get("api-key") or bearer.removeprefix("Bearer ").strip()
    if access.api_key is not None:
        if not key:
            raise ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in "
                "an Authorization header using Bearer auth (i.e. Authorization: "
                "Bearer YOUR_KEY).",
            )
        if key != access.api_key:
            raise ApiError(401, incorrect_key_message(key), code="invalid_api_key")
    betas = request.headers.get("OpenAI-Beta", "").split(",")
    if access.require_beta and "assistants=v2" not in (b.strip() for b in betas):
        raise ApiError(
            400,
            "You must provide the 'OpenAI-Beta' header to access the Assistants "
            "API. Please try again by setting the header 'OpenAI-Beta: "
            "assistants=v2'.",
            code="invalid_beta",
        )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def incorrect_key_message(key: str) -> str:
    """Return the API's 401 message for a wrong *key*, the key masked.

    The API shows the key's first and last four characters; a key too
    short for that is not shown at all.
    """
    shown = f"{key[:4]}{'*' * (len(key) - 8)}{key[-4:]}" if len(key) > 12 else "***"
    return (
        f"Incorrect API key provided: {shown}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )


def _fault_error(fault: Fault) -> ApiError:
    status = fault.status or 500
    message, kind, code = fault.error()
    headers = dict(fault.headers)
    if fault.retry_after is not None:
        headers["Retry-After"] = str(math.ceil(fault.retry_after))
        headers["retry-after-ms"] = str(round(fault.retry_after * 1000))
    return ApiError(status, message, type=kind, code=code, headers=headers)


# -- reading requests ---------------------------------------------------------


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. The OpenAI API "
            "expects a JSON payload.",
        ) from None


async def _body(request: web.Request, schema: str) -> JSON:
    """Read a request body and check it against the contract's *schema*."""
    check = request.config_dict.get(BODY_CHECK, check_body)
    return check(schema, await _json(request))


def _invalid(param: str, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, f"Invalid '{param}': {message}", param=param, code=code)


def run_fields(body: JSON) -> JSON:
    """Return the static `RunObject` fields for a checked create-run *body*.

    Raises:
        ApiError: 400 if the body asks for what the emulator cannot do.
    """
    instructions = "\n".join(
        text
        for text in (body.get("instructions"), body.get("additional_instructions"))
        if text
    )
    truncation = body.get("truncation_strategy") or {"type": "auto"}
    fields = {
        "assistant_id": body["assistant_id"],
        "model": body.get("model") or "gpt-4o",
        # RunObject types `instructions` as a string; the API reference's
        # examples show null, but a string is what the schema promises.
        "instructions": instructions,
        "tools": body.get("tools") or [],
        "metadata": dict(body.get("metadata") or {}),
        "temperature": _or(body.get("temperature"), 1.0),
        "top_p": _or(body.get("top_p"), 1.0),
        "max_prompt_tokens": body.get("max_prompt_tokens"),
        "max_completion_tokens": body.get("max_completion_tokens"),
        # The API answers the strategy in full: `last_messages` is null for
        # `auto`.
        "truncation_strategy": {
            "type": truncation["type"],
            "last_messages": truncation.get("last_messages"),
        },
        "tool_choice": body.get("tool_choice") or "auto",
        "parallel_tool_calls": _or(body.get("parallel_tool_calls"), True),
        "response_format": body.get("response_format") or "auto",
    }
    _check_tool_choice(fields)
    return fields


def _check_tool_choice(fields: JSON) -> None:
    # A forced tool must be one the run has; the spec cannot say so.
    choice = fields["tool_choice"]
    if not isinstance(choice, dict):
        return
    kind = choice["type"]
    tools = fields["tools"]
    if kind == "function":
        name = choice["function"]["name"]
        if not any(
            t["type"] == "function" and t["function"]["name"] == name for t in tools
        ):
            raise ApiError(
                400,
                f"Invalid value for 'tool_choice': no function named '{name}' in "
                "the run's tools.",
                param="tool_choice",
                code="invalid_value",
            )
    elif kind in ("code_interpreter", "file_search") and not any(
        t["type"] == kind for t in tools
    ):
        # Only the OpenAI tool types: Foundry's named choices
        # (`bing_custom_search`, ...) need not match a tool type.
        raise ApiError(
            400,
            f"Invalid value for 'tool_choice': no '{kind}' tool in the run's tools.",
            param="tool_choice",
            code="invalid_value",
        )


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _page_params(request: web.Request) -> dict[str, Any]:
    query = request.query
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        raise _invalid("limit", "expected an integer.", "invalid_type") from None
    if limit < 1:
        raise _invalid(
            "limit",
            f"integer below minimum value. Expected a value >= 1, but got {limit} "
            "instead.",
            "integer_below_min_value",
        )
    if limit > 100:
        raise _invalid(
            "limit",
            f"integer above maximum value. Expected a value <= 100, but got {limit} "
            "instead.",
            "integer_above_max_value",
        )
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise _invalid("order", f"expected one of 'asc' or 'desc', got '{order}'.")
    return {
        "limit": limit,
        "order": order,
        "after": query.get("after"),
        "before": query.get("before"),
    }


def _wants_content(request: web.Request) -> bool:
    include = request.query.getall("include[]", [])
    for value in include:
        if value != FILE_SEARCH_CONTENT:
            raise _invalid("include[]", f"unknown value '{value}'.")
    return bool(include)


def _run_response(state: EmulatorState, payload: JSON) -> web.Response:
    # The live API sends this hint so that pollers can pace themselves.
    script = state.runs[payload["id"]].script
    hint = script.poll_after_ms or state.poll_after_ms
    headers = {} if hint is None else {"openai-poll-after-ms": str(hint)}
    return web.json_response(payload, headers=headers)


# -- the API ------------------------------------------------------------------


async def _create_thread(request: web.Request) -> web.Response:
    # createThread's body is optional: its curl example sends `-d ''`.
    body = await _body(request, "CreateThreadRequest") if request.body_exists else {}
    conversations = request.config_dict[CONVERSATIONS]
    return web.json_response(conversations.create_thread(body))


async def _create_run(request: web.Request) -> web.StreamResponse:
    _wants_content(request)
    state = request.config_dict[STATE]
    conversations = request.config_dict[CONVERSATIONS]
    body = await _body(request, "CreateRunRequest")
    fields = run_fields(state.inherit(body))
    thread_id = request.match_info["thread_id"]
    with state.lock:
        conversations.check_run_allowed(thread_id)
        conversations.add_messages(thread_id, body.get("additional_messages"))
        run = state.create_run(thread_id, fields)
    if body.get("stream"):
        return await stream_run(
            request, state, run, RunView(), opening=created_events(run)
        )
    return _run_response(state, run.to_json())


async def _create_thread_and_run(request: web.Request) -> web.StreamResponse:
    state = request.config_dict[STATE]
    conversations = request.config_dict[CONVERSATIONS]
    body = await _body(request, "CreateThreadAndRunRequest")
    thread = body.get("thread") or {}
    fields = run_fields(state.inherit(body))
    with state.lock:
        created = conversations.create_thread(thread)
        run = state.create_run(created["id"], fields)
    if body.get("stream"):
        opening = created_events(run, created)
        return await stream_run(request, state, run, RunView(), opening=opening)
    return _run_response(state, run.to_json())


async def _list_runs(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    params = _page_params(request)
    return web.json_response(state.list_runs(request.match_info["thread_id"], **params))


async def _get_run(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    info = request.match_info
    return _run_response(state, state.run(info["thread_id"], info["run_id"]).to_json())


async def _modify_run(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    body = await _body(request, "ModifyRunRequest")
    info = request.match_info
    payload = state.modify(info["thread_id"], info["run_id"], body.get("metadata"))
    return _run_response(state, payload)


async def _cancel_run(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    info = request.match_info
    return _run_response(state, state.cancel(info["thread_id"], info["run_id"]))


async def _submit(request: web.Request) -> web.StreamResponse:
    state = request.config_dict[STATE]
    body = await _body(request, "SubmitToolOutputsRunRequest")
    given = {o["tool_call_id"]: o["output"] for o in body["tool_outputs"]}
    info = request.match_info
    if body.get("stream"):
        with state.lock:
            run = state.run(info["thread_id"], info["run_id"])
            view = RunView.of(run)
            state.submit(info["thread_id"], info["run_id"], given)
        return await stream_run(request, state, run, view)
    return _run_response(state, state.submit(info["thread_id"], info["run_id"], given))


async def _list_steps(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    params = _page_params(request)
    content = _wants_content(request)
    info = request.match_info
    return web.json_response(
        state.list_steps(info["thread_id"], info["run_id"], content=content, **params)
    )


async def _get_step(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    content = _wants_content(request)
    info = request.match_info
    return web.json_response(
        state.step(info["thread_id"], info["run_id"], info["step_id"], content=content)
    )


# -- the control channel ------------------------------------------------------


async def _structure(request: web.Request, cls: type[_T]) -> _T:
    return _structure_json(await _json(request), cls)


def _structure_json(body: Any, cls: type[_T]) -> _T:
    try:
        return converter.structure(body, cls)
    except cattrs.BaseValidationError as error:
        message = "; ".join(cattrs.transform_error(error))
    except (ValueError, TypeError) as error:
        # attrs validators raise these from __init__, outside cattrs.
        message = str(error)
    raise ApiError(400, f"Invalid {cls.__name__}: {message}")


async def _stats(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    return web.json_response({**state.counts.to_json(), "now": state.clock.now()})


async def _advance_clock(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    body = await _json(request)
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if not isinstance(state.clock, ManualClock):
        raise ApiError(400, "The emulator's clock is not a ManualClock.")
    if not isinstance(seconds, int | float) or seconds < 0:
        raise _invalid("seconds", "expected a number >= 0.")
    return web.json_response({"now": state.clock.advance(seconds)})


def _faults_json(state: EmulatorState) -> web.Response:
    return web.json_response({"faults": converter.unstructure(state.faults())})


async def _list_faults(request: web.Request) -> web.Response:
    return _faults_json(request.config_dict[STATE])


async def _add_fault(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    body = await _json(request)
    if isinstance(body, dict) and "preset" in body:
        # {"preset": "insufficient_quota", "times": 1}: the preset's fields,
        # then the ones given beside it.
        name = body.pop("preset")
        if name not in FAULT_PRESETS:
            raise _invalid(
                "preset", f"no preset named {name!r}; one of {sorted(FAULT_PRESETS)}."
            )
        body = {**converter.unstructure(FAULT_PRESETS[name]), **body}
    state.add_fault(_structure_json(body, Fault))
    return _faults_json(state)


async def _clear_faults(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    state.clear_faults()
    return _faults_json(state)


async def _rescript(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    script = await _structure(request, RunScript)
    return web.json_response(state.rescript(request.match_info["run_id"], script))


async def _put_script(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    script = await _structure(request, RunScript)
    name = request.match_info["name"]
    if name == "default":
        state.default_script = script
    else:
        state.scripts[name] = script
    return web.json_response({"name": name, "script": converter.unstructure(script)})


def _assistants_json(state: EmulatorState) -> web.Response:
    assistants = state.assistants
    return web.json_response(
        {
            "strict": assistants.strict,
            "assistants": [converter.unstructure(a) for a in assistants.all()],
        }
    )


async def _list_assistants(request: web.Request) -> web.Response:
    return _assistants_json(request.config_dict[STATE])


async def _put_assistant(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    body = await _json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid Assistant: expected a JSON object.")
    body = {**body, "id": request.match_info["assistant_id"]}
    state.assistants.add(_structure_json(body, Assistant))
    return _assistants_json(state)


def _config_json(state: EmulatorState) -> web.Response:
    return web.json_response(
        {
            "clock": "manual" if isinstance(state.clock, ManualClock) else "system",
            "now": state.clock.now(),
            "poll_after_ms": state.poll_after_ms,
            "expires_after": state.expires_after,
            "cancel_delay": state.cancel_delay,
            "strict_assistants": state.assistants.strict,
            "metadata_update": state.metadata_update,
            "unknown_cursor": state.unknown_cursor,
        }
    )


async def _config(request: web.Request) -> web.Response:
    return _config_json(request.config_dict[STATE])


_CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "poll_after_ms": (int, type(None)),
    "expires_after": (int, float, type(None)),
    "cancel_delay": (int, float),
    "strict_assistants": (bool,),
    "metadata_update": (str,),
    "unknown_cursor": (str,),
}
_CONFIG_CHOICES = {
    "metadata_update": ("replace", "merge"),
    "unknown_cursor": ("error", "empty"),
}


async def _patch_config(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    body = await _json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    for key, value in body.items():
        kinds = _CONFIG_TYPES.get(key)
        if kinds is None:
            raise ApiError(
                400, f"Unknown setting '{key}'; one of {sorted(_CONFIG_TYPES)}."
            )
        number = isinstance(value, int | float) and not isinstance(value, bool)
        # JSON's true is a Python int too: only a boolean setting takes it.
        valid = isinstance(value, kinds) and (
            bool in kinds or not isinstance(value, bool)
        )
        choices = _CONFIG_CHOICES.get(key)
        if choices is not None and value not in choices:
            valid = False
        if not valid or (number and float(value) < 0):
            raise _invalid(key, f"not a valid value: {value!r}.")
    with state.lock:
        for key, value in body.items():
            if key == "strict_assistants":
                state.assistants.strict = value
            else:
                setattr(state, key, value)
    return _config_json(state)
