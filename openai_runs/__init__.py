"""An asyncio SDK for the OpenAI Assistants Runs API.

Start with [RunsClient][openai_runs.RunsClient]; the models are in
[openai_runs.models][openai_runs.models], the errors in
[openai_runs.exceptions][openai_runs.exceptions], authentication schemes in
[openai_runs.auth][openai_runs.auth], and the emulator in
[openai_runs.testing][openai_runs.testing].
"""

# The one source of the version: hatch reads it for the wheel, and it is set
# before the imports below so that _client can put it in the User-Agent.
__version__ = "0.1.0"

from ._budget import Budget, LocalBudget
from ._client import RunCreateParams, Runs, RunsClient, RunSteps
from ._converter import converter
from ._events import StreamEvent
from ._http import Response
from ._many import WatchResult
from ._pagination import AsyncPager
from ._retry import RetryPolicy
from ._streaming import RunStream
from ._threads import Messages, Threads
from ._tools import ToolHandler, tool_registry
from ._watch_core import WatchOptions, WatchPolicy
from ._watcher import RunWatcher, WatchState
from .exceptions import OpenAIRunsError
from .models import Run, RunStatus, RunStep

__all__ = [
    "AsyncPager",
    "Budget",
    "LocalBudget",
    "Messages",
    "OpenAIRunsError",
    "Response",
    "RetryPolicy",
    "Run",
    "RunCreateParams",
    "RunStatus",
    "RunStep",
    "RunSteps",
    "RunStream",
    "RunWatcher",
    "Runs",
    "RunsClient",
    "StreamEvent",
    "Threads",
    "ToolHandler",
    "WatchOptions",
    "WatchPolicy",
    "WatchResult",
    "WatchState",
    "converter",
    "tool_registry",
]


def __getattr__(name: str) -> type[WatchPolicy]:
    # PollPolicy, the name of WatchPolicy before 0.2, still imports; it is
    # left out of __all__ and of the docs.
    if name == "PollPolicy":
        return WatchPolicy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
