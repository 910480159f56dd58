"""The objects of the Runs API, as frozen attrs classes.

Field names are the API's JSON keys. Every model keeps the keys this version
does not know in its `extra` attribute, and enum-like fields hold a
`enum.StrEnum` member for the values we know and the plain string for
values the API adds later, so a newer server never breaks parsing.

Timestamps stay the API's Unix seconds (`int`);
[as_datetime][openai_runs.models.as_datetime] turns one into an aware
`datetime.datetime`.

Models are built from JSON by [openai_runs.converter][openai_runs.converter]:

```python
from openai_runs import Run, converter

run = converter.structure(payload, Run)
```

"""

from __future__ import annotations

import datetime as _dt
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar

import attrs

__all__ = [
    "TERMINAL_STATUSES",
    "Annotation",
    "AnnotationDelta",
    "Attachment",
    "AzureAISearchCall",
    "AzureAISearchTool",
    "AzureFunctionBinding",
    "AzureFunctionDefinition",
    "AzureFunctionStorageQueue",
    "AzureFunctionTool",
    "BingGroundingCall",
    "BingGroundingConfiguration",
    "BingGroundingSearch",
    "BingGroundingTool",
    "CodeInterpreterCall",
    "CodeInterpreterCallDelta",
    "CodeInterpreterCallDetails",
    "CodeInterpreterDelta",
    "CodeInterpreterTool",
    "CodeOutput",
    "CodeOutputImage",
    "CodeOutputImageFile",
    "CodeOutputLogs",
    "ConnectedAgent",
    "ConnectedAgentTool",
    "DeletedMessage",
    "DeletedThread",
    "ErrorObject",
    "FileCitation",
    "FileCitationAnnotation",
    "FilePath",
    "FilePathAnnotation",
    "FileSearchCall",
    "FileSearchCallDelta",
    "FileSearchCallDetails",
    "FileSearchOptions",
    "FileSearchRankingOptions",
    "FileSearchResult",
    "FileSearchResultContent",
    "FileSearchTool",
    "FunctionCall",
    "FunctionCallDelta",
    "FunctionCallDetails",
    "FunctionDefinition",
    "FunctionDelta",
    "FunctionTool",
    "ImageFile",
    "ImageFileContent",
    "ImageFilePartDelta",
    "ImageUrl",
    "ImageUrlContent",
    "ImageUrlPartDelta",
    "IncompleteDetails",
    "JsonSchemaFormat",
    "LastError",
    "Message",
    "MessageContent",
    "MessageCreation",
    "MessageCreationDelta",
    "MessageCreationDetails",
    "MessageDelta",
    "MessageDeltaBody",
    "MessagePart",
    "MessagePartDelta",
    "MessageRequest",
    "MessageStatus",
    "NamedToolChoice",
    "NamedToolChoiceFunction",
    "OpenApiAnonymousAuth",
    "OpenApiAuth",
    "OpenApiCall",
    "OpenApiConnectionAuth",
    "OpenApiConnectionScheme",
    "OpenApiFunctionDefinition",
    "OpenApiManagedAuth",
    "OpenApiManagedScheme",
    "OpenApiTool",
    "Page",
    "RefusalPart",
    "RefusalPartDelta",
    "RequiredAction",
    "RequiredToolCall",
    "ResponseFormat",
    "ResponseFormatJsonObject",
    "ResponseFormatJsonSchema",
    "ResponseFormatText",
    "Run",
    "RunStatus",
    "RunStep",
    "RunStepDelta",
    "RunStepDeltaBody",
    "RunStepStatus",
    "StepDetails",
    "StepDetailsDelta",
    "StepToolCall",
    "SubmitToolOutputs",
    "Text",
    "TextContent",
    "TextDelta",
    "TextPart",
    "TextPartDelta",
    "Thread",
    "ThreadRequest",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallFunction",
    "ToolCallsDelta",
    "ToolCallsDetails",
    "ToolOutput",
    "TruncationStrategy",
    "UnknownAnnotation",
    "UnknownCodeOutput",
    "UnknownOpenApiAuth",
    "UnknownPart",
    "UnknownPartDelta",
    "UnknownResponseFormat",
    "UnknownStepDetails",
    "UnknownStepToolCall",
    "UnknownTool",
    "UnknownToolCall",
    "UnknownToolCallDelta",
    "Usage",
    "as_datetime",
]

T = TypeVar("T")


_ABSENT_IF_NONE = {"openai_runs.absent_if_none": True}
"""Field metadata: a key the schema does not require and does not let be
null. *None* stands for the key left out, and unstructures to no key."""


def _extra() -> Any:
    """Keys the API sent that this version has no field for."""
    return attrs.field(factory=dict, kw_only=True, repr=False)


def as_datetime(timestamp: int | None) -> _dt.datetime | None:
    """Turn one of the API's Unix timestamps into an aware UTC datetime.

    Args:
        timestamp: Seconds since the epoch, as the API sends them, or *None*.

    Returns:
        The moment in UTC, or *None* when *timestamp* is *None*.

    Raises:
        ValueError: The moment is outside the years 1 to 9999, which a
            datetime cannot hold (the API's schema sets no bound).
    """
    if timestamp is None:
        return None
    try:
        return _dt.datetime.fromtimestamp(timestamp, tz=_dt.UTC)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"the timestamp is out of range: {exc}") from None


class RunStatus(StrEnum):
    """The statuses of a run that this version knows.

    A run goes `queued` → `in_progress` → one of the terminal statuses.
    `requires_action` is not an end: the run waits for tool outputs.
    A cancel goes through `cancelling` before `cancelled`.
    """

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    REQUIRES_ACTION = "requires_action"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    EXPIRED = "expired"


TERMINAL_STATUSES: Final = frozenset(
    {
        RunStatus.CANCELLED,
        RunStatus.FAILED,
        RunStatus.COMPLETED,
        RunStatus.INCOMPLETE,
        RunStatus.EXPIRED,
    }
)
"""The statuses after which a run never changes again."""


class RunStepStatus(StrEnum):
    """The statuses of a run step that this version knows."""

    IN_PROGRESS = "in_progress"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"
    EXPIRED = "expired"


# --- Tools a run may use ----------------------------------------------------


@attrs.frozen(kw_only=True)
class CodeInterpreterTool:
    """The code interpreter tool."""

    type: str = "code_interpreter"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FileSearchRankingOptions:
    """How file search ranks its results.

    Attributes:
        score_threshold: Results below this score (0 to 1) are dropped.
        ranker: The ranker, `auto` or a dated ranker name.
    """

    score_threshold: float
    ranker: str | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FileSearchOptions:
    """Settings of the file search tool."""

    max_num_results: int | None = None
    ranking_options: FileSearchRankingOptions | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FileSearchTool:
    """The file search tool."""

    type: str = "file_search"
    file_search: FileSearchOptions | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FunctionDefinition:
    """A function the model may call.

    Attributes:
        name: The function's name.
        description: What the function does, for the model.
        parameters: The arguments, as a JSON Schema object.
        strict: Whether the model must follow the schema exactly.
    """

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FunctionTool:
    """A function tool, served by the caller through tool outputs."""

    function: FunctionDefinition
    type: str = "function"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class UnknownTool:
    """A tool of a type this version does not know; its data is in *extra*."""

    type: str
    extra: dict[str, Any] = _extra()


# --- Azure AI Foundry tools ---------------------------------------------------
# The tool types Azure AI Foundry Agent Service adds to OpenAI's three
# (its `ToolDefinition` subtypes). Field names are the wire's JSON keys.


@attrs.frozen(kw_only=True)
class AzureAISearchTool:
    """Azure AI Foundry: search an Azure AI Search index.

    The index is named in the agent's or the thread's
    `tool_resources["azure_ai_search"]`, not here.
    """

    type: str = "azure_ai_search"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class AzureFunctionStorageQueue:
    """An Azure Storage queue: its service endpoint and name."""

    queue_service_endpoint: str
    queue_name: str
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class AzureFunctionBinding:
    """Where an Azure Function reads its input or writes its output."""

    storage_queue: AzureFunctionStorageQueue
    type: str = "storage_queue"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class AzureFunctionDefinition:
    """An Azure Function: its signature and the queues it talks through."""

    function: FunctionDefinition
    input_binding: AzureFunctionBinding
    output_binding: AzureFunctionBinding
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class AzureFunctionTool:
    """Azure AI Foundry: call an Azure Function through storage queues."""

    azure_function: AzureFunctionDefinition
    type: str = "azure_function"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class BingGroundingConfiguration:
    """One Grounding with Bing Search connection and its query options.

    Attributes:
        connection_id: The project connection to the Bing resource.
        market: The market results come from (`en-US`, ...).
        set_lang: The language of user interface strings.
        count: How many results to ask for.
        freshness: Only results from this period (`Day`, `Week`, ...).
    """

    connection_id: str
    market: str | None = None
    set_lang: str | None = None
    count: int | None = None
    freshness: str | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class BingGroundingSearch:
    """The search configurations of a `bing_grounding` tool (at most one)."""

    search_configurations: list[BingGroundingConfiguration]
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class BingGroundingTool:
    """Azure AI Foundry: ground answers in Bing search results."""

    bing_grounding: BingGroundingSearch
    type: str = "bing_grounding"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ConnectedAgent:
    """Another agent, called as a tool: its id, and what the model is told of it."""

    id: str
    name: str
    description: str
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ConnectedAgentTool:
    """Azure AI Foundry: hand part of the work to another agent."""

    connected_agent: ConnectedAgent
    type: str = "connected_agent"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class OpenApiAnonymousAuth:
    """An OpenAPI tool's service needs no authentication."""

    type: str = "anonymous"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class OpenApiConnectionScheme:
    """The project connection that holds an OpenAPI service's key."""

    connection_id: str
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class OpenApiConnectionAuth:
    """Authenticate an OpenAPI tool's calls with a project connection."""

    security_scheme: OpenApiConnectionScheme
    type: str = "connection"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class OpenApiManagedScheme:
    """The audience of the managed identity token an OpenAPI service wants."""

    audience: str
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class OpenApiManagedAuth:
    """Authenticate an OpenAPI tool's calls with the project's managed identity."""

    security_scheme: OpenApiManagedScheme
    type: str = "managed_identity"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class UnknownOpenApiAuth:
    """An OpenAPI authentication type this version does not know."""

    type: str
    extra: dict[str, Any] = _extra()


OpenApiAuth = (
    OpenApiAnonymousAuth
    | OpenApiConnectionAuth
    | OpenApiManagedAuth
    | UnknownOpenApiAuth
)


@attrs.frozen(kw_only=True)
class OpenApiFunctionDefinition:
    """An OpenAPI service the agent may call.

    Attributes:
        name: The tool's name.
        spec: The OpenAPI document, as JSON.
        auth: How calls to the service authenticate.
        description: What the service does, for the model.
        default_params: Parameters with defaults in the document the model
            need not fill.
        functions: The operations the service found in *spec* (read only).
    """

    name: str
    spec: Any
    auth: OpenApiAuth
    description: str | None = None
    default_params: list[str] | None = None
    functions: list[FunctionDefinition] | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class OpenApiTool:
    """Azure AI Foundry: call the operations of an OpenAPI service."""

    openapi: OpenApiFunctionDefinition
    type: str = "openapi"
    extra: dict[str, Any] = _extra()


Tool = (
    CodeInterpreterTool
    | FileSearchTool
    | FunctionTool
    | AzureAISearchTool
    | AzureFunctionTool
    | BingGroundingTool
    | ConnectedAgentTool
    | OpenApiTool
    | UnknownTool
)


# --- Run settings -----------------------------------------------------------


@attrs.frozen(kw_only=True)
class TruncationStrategy:
    """How the thread is truncated before the run.

    Attributes:
        type: `auto` or `last_messages`.
        last_messages: How many recent messages to keep, for `last_messages`.
    """

    type: str
    last_messages: int | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class NamedToolChoiceFunction:
    """The function a named tool choice forces."""

    name: str
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class NamedToolChoice:
    """Forces one tool: `type` names it, `function` picks the function."""

    type: str
    function: NamedToolChoiceFunction | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ResponseFormatText:
    """Plain text responses."""

    type: str = "text"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ResponseFormatJsonObject:
    """JSON mode: the model answers with a JSON object."""

    type: str = "json_object"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class JsonSchemaFormat:
    """A named JSON Schema that structured outputs follow."""

    name: str
    description: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ResponseFormatJsonSchema:
    """Structured outputs that follow *json_schema*."""

    json_schema: JsonSchemaFormat
    type: str = "json_schema"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class UnknownResponseFormat:
    """A response format this version does not know; its data is in *extra*."""

    type: str
    extra: dict[str, Any] = _extra()


ResponseFormat = (
    ResponseFormatText
    | ResponseFormatJsonObject
    | ResponseFormatJsonSchema
    | UnknownResponseFormat
)


# --- The run ----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ToolCallFunction:
    """The function a tool call asks for, with its arguments as a JSON string."""

    name: str
    arguments: str
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ToolCall:
    """One tool call that the run waits on; answer it by its *id*."""

    id: str
    type: str
    function: ToolCallFunction
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class UnknownToolCall:
    """A required tool call of a type this version does not know.

    Its data is in *extra*; answer it with a [ToolOutput][openai_runs.models.ToolOutput]
    by its *id*.
    """

    id: str
    type: str
    extra: dict[str, Any] = _extra()


RequiredToolCall = ToolCall | UnknownToolCall


@attrs.frozen(kw_only=True)
class SubmitToolOutputs:
    """The tool calls that need outputs before the run can go on."""

    tool_calls: list[RequiredToolCall]
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class RequiredAction:
    """What a run in `requires_action` waits for.

    Attributes:
        type: `submit_tool_outputs`, or an action added later (its data is
            then in *extra*).
        submit_tool_outputs: The tool calls to answer; *None* for another
            *type*.
    """

    type: str
    submit_tool_outputs: SubmitToolOutputs | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class LastError:
    """Why a run or a step failed.

    Attributes:
        code: `server_error`, `rate_limit_exceeded`, `invalid_prompt`,
            or a code added later.
        message: A human-readable description.
    """

    code: str
    message: str
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class IncompleteDetails:
    """Why a run ended `incomplete`: a token limit named by *reason*."""

    reason: str | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class Usage:
    """Tokens used by a run or a step."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class Run:
    """A run: one execution of an assistant on a thread.

    The API sends every field; the defaults below only make the models
    usable with the API reference's own examples, which omit some.

    Attributes:
        id: The run's id, `run_…`.
        status: A [RunStatus][openai_runs.models.RunStatus], or the plain string of a
            status added after this version.
        required_action: Set while the run is `requires_action`.
        extra: Keys the API sent that this version does not know (Azure AI
            Foundry's `tool_resources` is there).
    """

    id: str
    object: str = "thread.run"
    created_at: int
    thread_id: str
    assistant_id: str
    status: RunStatus | str
    required_action: RequiredAction | None = None
    last_error: LastError | None = None
    expires_at: int | None = None
    started_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    completed_at: int | None = None
    incomplete_details: IncompleteDetails | None = None
    model: str | None = None
    instructions: str | None = None
    tools: list[Tool] = attrs.field(factory=list)
    metadata: dict[str, str] | None = None
    usage: Usage | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_prompt_tokens: int | None = None
    max_completion_tokens: int | None = None
    truncation_strategy: TruncationStrategy | None = None
    tool_choice: str | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: str | ResponseFormat | None = None
    extra: dict[str, Any] = _extra()

    @property
    def is_terminal(self) -> bool:
        """Whether the run has ended and will never change again.

        A status this version does not know counts as terminal only when the
        run carries a terminal timestamp (`completed_at`, `failed_at`,
        `cancelled_at`).
        """
        if self.status in TERMINAL_STATUSES:
            return True
        if isinstance(self.status, RunStatus):
            return False
        # `is not None`: a timestamp of 0 (the epoch) is still a timestamp.
        stamps = (self.completed_at, self.failed_at, self.cancelled_at)
        return any(t is not None for t in stamps)

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The function calls the run waits on; empty unless `requires_action`.

        Calls of a type this version does not know are left out here; they
        are in `required_action.submit_tool_outputs.tool_calls` as
        [UnknownToolCall][openai_runs.models.UnknownToolCall].
        """
        action = self.required_action
        if action is None or action.submit_tool_outputs is None:
            return []
        calls = action.submit_tool_outputs.tool_calls
        return [call for call in calls if isinstance(call, ToolCall)]


# --- Run steps --------------------------------------------------------------


@attrs.frozen(kw_only=True)
class MessageCreation:
    """The message a step created."""

    message_id: str
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class MessageCreationDetails:
    """Details of a `message_creation` step."""

    message_creation: MessageCreation
    type: str = "message_creation"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class CodeOutputLogs:
    """Text the code interpreter printed."""

    logs: str
    type: str = "logs"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class CodeOutputImageFile:
    """The file of an image the code interpreter made."""

    file_id: str
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class CodeOutputImage:
    """An image the code interpreter made."""

    image: CodeOutputImageFile
    type: str = "image"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class UnknownCodeOutput:
    """A code interpreter output this version does not know."""

    type: str
    extra: dict[str, Any] = _extra()


CodeOutput = CodeOutputLogs | CodeOutputImage | UnknownCodeOutput


@attrs.frozen(kw_only=True)
class CodeInterpreterCallDetails:
    """The code the interpreter ran and what came out."""

    input: str
    outputs: list[CodeOutput]
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class CodeInterpreterCall:
    """A code interpreter tool call in a step."""

    id: str
    code_interpreter: CodeInterpreterCallDetails
    type: str = "code_interpreter"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FileSearchResultContent:
    """Content of a file search result (sent only when included)."""

    type: str | None = None
    text: str | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FileSearchResult:
    """One file that file search found."""

    file_id: str
    file_name: str
    score: float
    content: list[FileSearchResultContent] | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FileSearchCallDetails:
    """The ranking used and the results of a file search."""

    ranking_options: FileSearchRankingOptions | None = None
    results: list[FileSearchResult] | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FileSearchCall:
    """A file search tool call in a step."""

    id: str
    file_search: FileSearchCallDetails
    type: str = "file_search"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FunctionCallDetails:
    """A function call with its output, once submitted."""

    name: str
    arguments: str
    output: str | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FunctionCall:
    """A function tool call in a step."""

    id: str
    function: FunctionCallDetails
    type: str = "function"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class UnknownStepToolCall:
    """A step tool call of a type this version does not know."""

    type: str
    id: str | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class AzureAISearchCall:
    """Azure AI Foundry: a search of an Azure AI Search index, in a step.

    Attributes:
        azure_ai_search: What the service reports of the call; the spec
            types it as a map of strings "reserved for future use".
    """

    id: str
    azure_ai_search: dict[str, Any]
    type: str = "azure_ai_search"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class BingGroundingCall:
    """Azure AI Foundry: a Bing search, in a step.

    Attributes:
        bing_grounding: What the service reports of the search (such as
            `requesturl`); a map of strings "reserved for future use".
    """

    id: str
    bing_grounding: dict[str, Any]
    type: str = "bing_grounding"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class OpenApiCall:
    """Azure AI Foundry: a call of an OpenAPI tool, in a step.

    Attributes:
        openapi: What the service reports of the call; a map of strings
            "reserved for future use".
    """

    id: str
    openapi: dict[str, Any]
    type: str = "openapi"
    extra: dict[str, Any] = _extra()


StepToolCall = (
    CodeInterpreterCall
    | FileSearchCall
    | FunctionCall
    | AzureAISearchCall
    | BingGroundingCall
    | OpenApiCall
    | UnknownStepToolCall
)


@attrs.frozen(kw_only=True)
class ToolCallsDetails:
    """Details of a `tool_calls` step."""

    tool_calls: list[StepToolCall]
    type: str = "tool_calls"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class UnknownStepDetails:
    """Step details of a type this version does not know."""

    type: str
    extra: dict[str, Any] = _extra()


StepDetails = MessageCreationDetails | ToolCallsDetails | UnknownStepDetails


@attrs.frozen(kw_only=True)
class RunStep:
    """One step of a run: a message it created or tool calls it made.

    Attributes:
        id: The step's id, `step_…`.
        type: `message_creation`, `tool_calls`, or a type added later.
        status: A [RunStepStatus][openai_runs.models.RunStepStatus], or the plain string
            of a newer one.
        step_details: The details, a variant chosen by its `type`.
        extra: Keys the API sent that this version does not know.
    """

    id: str
    object: str = "thread.run.step"
    created_at: int
    assistant_id: str
    thread_id: str
    run_id: str
    type: str
    status: RunStepStatus | str
    step_details: StepDetails
    last_error: LastError | None = None
    expired_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    completed_at: int | None = None
    metadata: dict[str, str] | None = None
    usage: Usage | None = None
    extra: dict[str, Any] = _extra()


# --- Request bodies -----------------------------------------------------------


@attrs.frozen(kw_only=True)
class ToolOutput:
    """The output of one tool call, submitted to let the run go on.

    Attributes:
        tool_call_id: The id of the [ToolCall][openai_runs.models.ToolCall] this
            answers.
        output: The output, as a string (JSON-encode structured results).
    """

    tool_call_id: str
    output: str
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class TextContent:
    """Text in a message."""

    text: str
    type: str = "text"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ImageFile:
    """An uploaded image file; *detail* is `auto`, `low` or `high`."""

    file_id: str
    detail: str | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ImageFileContent:
    """An uploaded image in a message."""

    image_file: ImageFile
    type: str = "image_file"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ImageUrl:
    """An image on the web; *detail* is `auto`, `low` or `high`."""

    url: str
    detail: str | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ImageUrlContent:
    """An image by URL in a message."""

    image_url: ImageUrl
    type: str = "image_url"
    extra: dict[str, Any] = _extra()


MessageContent = TextContent | ImageFileContent | ImageUrlContent


@attrs.frozen(kw_only=True)
class Attachment:
    """A file attached to a message, and the tools that may read it.

    Attributes:
        file_id: The file. Required in what you send; the API's schema lets
            an answer leave it out (*None* then).
        tools: The tools that may read the file; *None* when an answer
            leaves them out.

    A key an answer leaves out stays out when the attachment is unstructured.
    """

    file_id: str | None = attrs.field(default=None, metadata=_ABSENT_IF_NONE)
    tools: list[CodeInterpreterTool | FileSearchTool] | None = attrs.field(
        default=None, metadata=_ABSENT_IF_NONE
    )
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class MessageRequest:
    """A message to add to a thread before a run.

    Attributes:
        role: `user` or `assistant`.
        content: Text, or a list of text and image parts.
        attachments: Files for the code interpreter or file search.
        metadata: At most 16 string pairs.
    """

    role: str
    content: str | list[MessageContent]
    attachments: list[Attachment] | None = None
    metadata: dict[str, str] | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ThreadRequest:
    """The thread that `create_thread_and_run` creates.

    See [create_thread_and_run][openai_runs.Runs.create_thread_and_run].

    Attributes:
        messages: The messages to start the thread with.
        tool_resources: Files and vector stores for the tools, as the API
            takes them (`{"code_interpreter": {"file_ids": [...]}}`).
        metadata: At most 16 string pairs.
    """

    messages: list[MessageRequest] | None = None
    tool_resources: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class Page(Generic[T]):
    """One page of a list: its items and where it sits.

    Attributes:
        data: The items of this page.
        first_id: The id of the first item, for paging backwards.
        last_id: The id of the last item, for paging forwards.
        has_more: Whether more items follow in the direction of paging.
    """

    data: list[T]
    # `list` from OpenAI; Azure AI Foundry's pages have no `object` key.
    object: str | None = None
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False
    extra: dict[str, Any] = _extra()


# --- Threads and messages -----------------------------------------------------


class MessageStatus(StrEnum):
    """The statuses of a message that this version knows."""

    IN_PROGRESS = "in_progress"
    INCOMPLETE = "incomplete"
    COMPLETED = "completed"


@attrs.frozen(kw_only=True)
class Thread:
    """A thread: the conversation that runs read and add messages to.

    Attributes:
        id: The thread's id, ``thread_…``.
        created_at: When it was created, in Unix seconds.
        tool_resources: Files and vector stores for the tools, as the API
            sends them.
        metadata: At most 16 string pairs.
    """

    id: str
    object: str = "thread"
    created_at: int
    tool_resources: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class DeletedThread:
    """What deleting a thread answers.

    Attributes:
        id: The thread's id.
        deleted: Whether the thread is gone.
    """

    id: str
    object: str = "thread.deleted"
    deleted: bool
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class DeletedMessage:
    """What deleting a message answers.

    Attributes:
        id: The message's id.
        deleted: Whether the message is gone.
    """

    id: str
    object: str = "thread.message.deleted"
    deleted: bool
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FileCitation:
    """The file a citation quotes."""

    file_id: str
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FileCitationAnnotation:
    """A quote from a file that file search found, at *start_index*..*end_index*.

    Attributes:
        text: The text in the message that the annotation replaces.
    """

    text: str
    file_citation: FileCitation
    start_index: int
    end_index: int
    type: str = "file_citation"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FilePath:
    """A file the code interpreter wrote."""

    file_id: str
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FilePathAnnotation:
    """A link to a file the code interpreter wrote, at *start_index*..*end_index*."""

    text: str
    file_path: FilePath
    start_index: int
    end_index: int
    type: str = "file_path"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class UnknownAnnotation:
    """An annotation of a type this version does not know; its data is in *extra*."""

    type: str
    extra: dict[str, Any] = _extra()


Annotation = FileCitationAnnotation | FilePathAnnotation | UnknownAnnotation


@attrs.frozen(kw_only=True)
class Text:
    """The text of a message part and its annotations."""

    # Defaults: a snapshot rebuilt from deltas may lack what a delta never sent.
    value: str = ""
    annotations: list[Annotation] = attrs.field(factory=list)
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class TextPart:
    """A text part of a message.

    The request side's text part is [TextContent][openai_runs.models.TextContent].
    """

    text: Text
    type: str = "text"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class RefusalPart:
    """The model's refusal to answer, in place of text."""

    refusal: str
    type: str = "refusal"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class UnknownPart:
    """A message part of a type this version does not know; its data is in *extra*."""

    type: str
    extra: dict[str, Any] = _extra()


MessagePart = TextPart | ImageFileContent | ImageUrlContent | RefusalPart | UnknownPart


@attrs.frozen(kw_only=True)
class Message:
    """A message in a thread, from the user or the assistant.

    Attributes:
        id: The message's id, ``msg_…``.
        thread_id: The thread it belongs to.
        status: A [MessageStatus][openai_runs.models.MessageStatus], or the
            plain string of a newer one.
        role: ``user`` or ``assistant``.
        content: Its parts, each a variant chosen by its ``type``.
        assistant_id: The assistant that wrote it, for an assistant's message.
        run_id: The run that wrote it, for an assistant's message.
        extra: Keys the API sent that this version does not know.
    """

    id: str
    object: str = "thread.message"
    created_at: int
    thread_id: str
    # The API reference's message examples lack the four fields below,
    # although MessageObject requires them: they default here.
    status: MessageStatus | str = MessageStatus.COMPLETED
    incomplete_details: IncompleteDetails | None = None
    completed_at: int | None = None
    incomplete_at: int | None = None
    role: str
    content: list[MessagePart] = attrs.field(factory=list)
    assistant_id: str | None = None
    run_id: str | None = None
    attachments: list[Attachment] | None = None
    metadata: dict[str, str] | None = None
    extra: dict[str, Any] = _extra()

    @property
    def text(self) -> str:
        """The values of the message's text parts, joined: what most callers want."""
        return "".join(
            part.text.value for part in self.content if isinstance(part, TextPart)
        )

    @property
    def refusal(self) -> str | None:
        """The refusal parts joined, or *None* when the model did not refuse."""
        parts = [p.refusal for p in self.content if isinstance(p, RefusalPart)]
        return "".join(parts) if parts else None


# --- Stream deltas ------------------------------------------------------------
# Deltas carry only what changed: every field but ``index`` and ``type`` may be
# missing, so every field here is optional.


@attrs.frozen(kw_only=True)
class AnnotationDelta:
    """A piece of an annotation; *index* names the annotation it extends.

    *file_citation* (``file_id``, and ``quote``, which the full annotation
    lacks) and *file_path* (``file_id``) stay as the API sends them.
    """

    index: int
    type: str
    text: str | None = None
    start_index: int | None = None
    end_index: int | None = None
    file_citation: dict[str, Any] | None = None
    file_path: dict[str, Any] | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class TextDelta:
    """A fragment of text to append, and any annotations that came with it."""

    value: str | None = None
    annotations: list[AnnotationDelta] | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class TextPartDelta:
    """A change to the text part at *index* of a message."""

    index: int
    text: TextDelta | None = None
    type: str = "text"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class RefusalPartDelta:
    """A fragment of a refusal, for the part at *index*."""

    index: int
    refusal: str | None = None
    type: str = "refusal"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ImageFilePartDelta:
    """An image file part at *index* (``file_id``, ``detail`` as sent)."""

    index: int
    image_file: dict[str, Any] | None = None
    type: str = "image_file"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ImageUrlPartDelta:
    """An image URL part at *index* (``url``, ``detail`` as sent)."""

    index: int
    image_url: dict[str, Any] | None = None
    type: str = "image_url"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class UnknownPartDelta:
    """A change to a part of a type this version does not know."""

    type: str
    index: int | None = None
    extra: dict[str, Any] = _extra()


MessagePartDelta = (
    TextPartDelta
    | RefusalPartDelta
    | ImageFilePartDelta
    | ImageUrlPartDelta
    | UnknownPartDelta
)


@attrs.frozen(kw_only=True)
class MessageDeltaBody:
    """What changed in a message: its role, or parts by index."""

    role: str | None = None
    content: list[MessagePartDelta] | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class MessageDelta:
    """The data of a ``thread.message.delta`` event.

    Attributes:
        id: The message that changed.
        delta: What changed.
    """

    id: str
    object: str = "thread.message.delta"
    delta: MessageDeltaBody
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FunctionDelta:
    """Pieces of a function call: *name* first, then *arguments* fragments."""

    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FunctionCallDelta:
    """A change to the function call at *index*; the first brings its *id*."""

    index: int
    id: str | None = None
    function: FunctionDelta | None = None
    type: str = "function"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class CodeInterpreterDelta:
    """Pieces of a code interpreter call: *input* fragments, outputs as sent."""

    input: str | None = None
    outputs: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class CodeInterpreterCallDelta:
    """A change to the code interpreter call at *index*."""

    index: int
    id: str | None = None
    code_interpreter: CodeInterpreterDelta | None = None
    type: str = "code_interpreter"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FileSearchCallDelta:
    """A change to the file search call at *index* (its data as sent)."""

    index: int
    id: str | None = None
    file_search: dict[str, Any] = attrs.field(factory=dict)
    type: str = "file_search"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class UnknownToolCallDelta:
    """A change to a tool call of a type this version does not know."""

    type: str
    index: int | None = None
    id: str | None = None
    extra: dict[str, Any] = _extra()


ToolCallDelta = (
    FunctionCallDelta
    | CodeInterpreterCallDelta
    | FileSearchCallDelta
    | UnknownToolCallDelta
)


@attrs.frozen(kw_only=True)
class MessageCreationDelta:
    """A ``message_creation`` step's details (``message_id`` as sent)."""

    message_creation: dict[str, Any] | None = None
    type: str = "message_creation"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ToolCallsDelta:
    """A ``tool_calls`` step's new tool calls or pieces of them, by index."""

    tool_calls: list[ToolCallDelta] | None = None
    type: str = "tool_calls"
    extra: dict[str, Any] = _extra()


StepDetailsDelta = MessageCreationDelta | ToolCallsDelta | UnknownStepDetails


@attrs.frozen(kw_only=True)
class RunStepDeltaBody:
    """What changed in a run step."""

    step_details: StepDetailsDelta | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class RunStepDelta:
    """The data of a ``thread.run.step.delta`` event.

    Attributes:
        id: The step that changed.
        delta: What changed.
    """

    id: str
    object: str = "thread.run.step.delta"
    delta: RunStepDeltaBody
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ErrorObject:
    """The data of an ``error`` event: the API's error, not wrapped in ``error``.

    Attributes:
        message: What went wrong.
        type: The error's type, such as ``server_error``.
        code: A machine-readable code, if any.
        param: The parameter at fault, if any.
    """

    message: str
    type: str | None = None
    code: str | None = None
    param: str | None = None
    extra: dict[str, Any] = _extra()
