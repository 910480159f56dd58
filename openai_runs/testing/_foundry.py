"""The emulator's Azure AI Foundry dialect: the same runs, as Foundry serves them.

`Emulator(dialect="foundry")` mounts the API's routes at
`/api/projects/{project}/...` (the project endpoint, with no `/v1`) instead of
the prefix, behind a middleware that speaks Foundry Agent Service's rules, as
its v1 REST spec (`foundry-runs.swagger.json`) states them:

- every request carries the query parameter `api-version` (`v1`, or a dated
  version such as `2025-05-15-preview`); without it, a 400;
- requests authenticate with `Authorization: Bearer <Entra ID token>`; the
  emulator accepts any token (it cannot check Entra ID's signature), but not
  none (401), and no `OpenAI-Beta` header is needed;
- list pages are `{data, last_id, has_more}`: no `object`, no `first_id`,
  and no `last_id` on an empty page;
- Foundry's `RunStatus` has no `incomplete`: a run a script ends `incomplete`
  is reported `completed`, its `incomplete_details` set (the schema's
  "`null` if the run is not incomplete");
- `required_action` is left out, not `null`, while a run needs nothing
  (Foundry's `ThreadRun` does not require the key);
- create bodies take Foundry's tools (`azure_ai_search`, `azure_function`,
  `bing_grounding`, `connected_agent`, `openapi`), its tool choice modes
  (`none`, `auto`: no `required`) and response format `none`, and refuse
  `reasoning_effort`, which Foundry's create run lacks, and a function tool
  without `parameters`, which Foundry's `FunctionDefinition` requires.

Errors keep the shape both services share, `{"error": {message, type, param,
code}}` (Foundry's `AgentV1Error`). The wording of the emulator's own Foundry
errors is the emulator's: the spec declares no messages.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler

from ._schema import check_body
from ._state import ApiError

JSON = dict[str, Any]

PROJECTS: Final = "/api/projects"
"""Where the Foundry dialect mounts the API; a project's endpoint is below it."""

# The wire keys each Foundry tool type must carry.
_TOOLS: Final = {
    "azure_ai_search": (),
    "azure_function": ("azure_function",),
    "bing_grounding": ("bing_grounding",),
    "connected_agent": ("connected_agent",),
    "openapi": ("openapi",),
}
# AgentsNamedToolChoiceType values OpenAI does not have.
_NAMED_CHOICES: Final = frozenset(
    {"azure_ai_search", "bing_custom_search", "connected_agent"}
)
_API_VERSION: Final = re.compile(r"v1|\d{4}-\d{2}-\d{2}(-preview)?")
_CREATE: Final = frozenset({"CreateRunRequest", "CreateThreadAndRunRequest"})


def check_foundry_body(schema_name: str, body: object) -> JSON:
    """Check a request body as Foundry does: OpenAI's rules, plus its tools and modes.

    Foundry's parts (its tools, `tool_choice` modes and named types,
    `response_format: none`) are checked here and taken out of what OpenAI's
    schema check sees; the body is returned whole.

    Raises:
        ApiError: 400 for the first fault.
    """
    if schema_name not in _CREATE or not isinstance(body, dict):
        return check_body(schema_name, body)
    if "reasoning_effort" in body:
        raise ApiError(
            400,
            "Unrecognized request argument supplied: reasoning_effort",
            param="reasoning_effort",
            code="unknown_parameter",
        )
    openai_view = dict(body)
    choice = body.get("tool_choice")
    if choice == "required":
        raise ApiError(
            400,
            "Invalid 'tool_choice': 'required'. Expected 'none', 'auto' or a "
            "named tool.",
            param="tool_choice",
            code="invalid_value",
        )
    if isinstance(choice, dict) and choice.get("type") in _NAMED_CHOICES:
        del openai_view["tool_choice"]
    if body.get("response_format") == "none":
        del openai_view["response_format"]
    tools = body.get("tools")
    if isinstance(tools, list):
        openai_view["tools"] = [
            tool for i, tool in enumerate(tools) if not _foundry_tool(tool, i)
        ]
    check_body(schema_name, openai_view)
    return body


def _foundry_tool(tool: object, index: int) -> bool:
    """Whether *tool* is one of Foundry's own, checked; raise if it is malformed."""
    kind = tool.get("type") if isinstance(tool, dict) else None
    if kind == "function" and isinstance(tool, dict):
        function = tool.get("function")
        # Foundry's FunctionDefinition requires `parameters`; OpenAI's does not.
        if isinstance(function, dict) and "parameters" not in function:
            raise ApiError(
                400,
                f"Missing required parameter: 'tools[{index}].function.parameters'.",
                param=f"tools[{index}].function.parameters",
                code="missing_required_parameter",
            )
    if not isinstance(tool, dict) or kind not in _TOOLS:
        return False
    for key in _TOOLS[kind]:
        if not isinstance(tool.get(key), dict):
            raise ApiError(
                400,
                f"Missing required parameter: 'tools[{index}].{key}'.",
                param=f"tools[{index}].{key}",
                code="missing_required_parameter",
            )
    return True


@web.middleware
async def foundry_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Check Foundry's access rules, then reshape the answer as Foundry's."""
    version = request.query.get("api-version")
    if not version:
        raise ApiError(
            400,
            "Missing required query parameter: api-version.",
            param="api-version",
            code="missing_required_parameter",
        )
    if not _API_VERSION.fullmatch(version):
        raise ApiError(
            400,
            f"Unsupported api-version '{version}'. Use 'v1'.",
            param="api-version",
            code="unsupported_api_version",
        )
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "Access token is missing or invalid: send 'Authorization: Bearer "
            "<token>' with a Microsoft Entra ID token for the scope "
            "https://ai.azure.com/.default.",
            type="invalid_request_error",
            code="unauthorized",
        )
    response = await handler(request)
    if isinstance(response, web.Response) and response.status == 200:
        raw = response.body
        if isinstance(raw, bytes) and raw.startswith(b"{"):
            response.body = json.dumps(foundry_shape(json.loads(raw))).encode()
    return response


def foundry_shape(payload: JSON) -> JSON:
    """Reshape one answer of the API (a run, a step, a page) as Foundry sends it."""
    kind = payload.get("object")
    if kind == "list":
        page = {
            "data": [foundry_shape(item) for item in payload["data"]],
            "has_more": payload["has_more"],
        }
        if payload.get("last_id") is not None:
            page["last_id"] = payload["last_id"]
        return page
    if kind == "thread.run":
        run = dict(payload)
        if run.get("status") == "incomplete":
            run["status"] = "completed"
        if run.get("required_action") is None:
            run.pop("required_action", None)
        return run
    return payload


def mount_foundry(app: web.Application, api: web.Application) -> None:
    """Serve *api*'s routes under `/api/projects/{project}` on *app*, Foundry's way.

    The routes, their handlers and names are *api*'s, so the dialect serves
    whatever the emulator serves; only the middleware in front differs.
    """
    from ._app import ACCESS, BODY_CHECK, Access  # noqa: PLC0415 - _app imports us

    foundry = web.Application(middlewares=[foundry_middleware, *api.middlewares])
    # Foundry's own checks above stand in for the key and the beta header.
    foundry[ACCESS] = Access(None, require_beta=False)
    foundry[BODY_CHECK] = check_foundry_body
    for route in api.router.routes():
        path = "/{project}" + route.resource.canonical  # type: ignore[union-attr]
        foundry.router.add_route(route.method, path, route.handler, name=route.name)
    app.add_subapp(PROJECTS, foundry)
