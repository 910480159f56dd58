"""Where observers (telemetry, the CLI's `--verbose`) attach to requests and watches.

The request path and the watch drivers read one module attribute, [hooks][],
and do nothing more while it is *None*: instrumentation that is off costs a
global lookup and a comparison. This module imports nothing heavy; the
OpenTelemetry code lives in `openai_runs.telemetry`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._http import Transport
    from ._tools import ToolHandler
    from ._watch_core import WatchMachine

__all__ = [
    "Observer",
    "RequestLog",
    "RequestTrace",
    "WatchKind",
    "WatchTrace",
    "entered",
    "hooks",
    "install",
    "request_id_of",
    "request_log",
    "resends",
    "uninstall",
]

WatchKind = str
"""`"watch"` (a RunWatcher), `"watch_many"` (one run of watch_many), `"stream"`."""


class RequestTrace(Protocol):
    """One HTTP attempt being observed; told once how it ended."""

    def answered(self, status: int, headers: Mapping[str, str]) -> None:
        """The server answered with *status* (any status, errors included)."""

    def failed(self, exc: BaseException) -> None:
        """No answer: a timeout, a broken connection, a cancel."""


class WatchTrace(Protocol):
    """One watch (or stream) being observed, from its start to its end."""

    def enter(self, resend: int) -> object:
        """Make the watch the parent of the requests sent until [leave][].

        *resend* is how many attempts of this request failed before it.
        Returns what [leave][] takes back, in the same task.
        """

    def leave(self, token: object) -> None:
        """Undo [enter][]."""

    def saw(self, machine: WatchMachine, changed: bool) -> None:
        """The watch saw `machine.run`; *changed* if its status differs."""

    def tools(self, handler: ToolHandler) -> ToolHandler:
        """Wrap *handler* so that each tool call it serves is observed."""

    def finish(self, machine: WatchMachine, error: Exception | None) -> None:
        """The machine ended the watch, with the run or with *error*."""

    def close(self, error: BaseException | None = None) -> None:
        """The driver let go of the watch; end it (once).

        Called from the drivers' `finally`: a watch the machine did not
        finish ends with what is raising there (`sys.exception()`), or with
        *error* when given.
        """


class Observer(Protocol):
    """What [install][] takes: a factory of request and watch traces."""

    def request(
        self,
        transport: Transport,
        method: str,
        path: Sequence[str],
        query: Sequence[tuple[str, str]],
        resend: int,
    ) -> RequestTrace:
        """An attempt of a request is about to be sent."""

    def watch(
        self,
        kind: WatchKind,
        base_url: str | None,
        thread_id: str | None,
        run_id: str | None,
    ) -> WatchTrace | None:
        """A watch starts; *None* when this observer does not follow watches."""


hooks: Observer | None = None
"""The installed observers (one, or a fan-out of several); *None* for none."""

resends: ContextVar[int] = ContextVar("openai_runs_resends", default=0)
"""Failed attempts of the request a watch is sending (set by `WatchTrace.enter`)."""


@contextmanager
def entered(trace: WatchTrace | None, resend: int = 0) -> Iterator[None]:
    """[WatchTrace.enter][] for the block, if there is a trace."""
    if trace is None:
        yield
        return
    token = trace.enter(resend)
    try:
        yield
    finally:
        trace.leave(token)


_installed: dict[str, Observer] = {}


def install(name: str, observer: Observer) -> None:
    """Install *observer* under *name*, replacing any with that name."""
    global hooks  # noqa: PLW0603 - the one switch the hot paths read
    _installed[name] = observer
    hooks = _combined()


def uninstall(name: str) -> None:
    """Remove the observer installed under *name*, if any."""
    global hooks  # noqa: PLW0603 - the one switch the hot paths read
    _installed.pop(name, None)
    hooks = _combined()


def _combined() -> Observer | None:
    observers = list(_installed.values())
    if not observers:
        return None
    if len(observers) == 1:
        return observers[0]
    return _FanOut(observers)


class _FanOut:
    """Several observers as one: each is told everything."""

    def __init__(self, observers: list[Observer]) -> None:
        self.observers = observers

    def request(
        self,
        transport: Transport,
        method: str,
        path: Sequence[str],
        query: Sequence[tuple[str, str]],
        resend: int,
    ) -> RequestTrace:
        return _Requests(
            [o.request(transport, method, path, query, resend) for o in self.observers]
        )

    def watch(
        self,
        kind: WatchKind,
        base_url: str | None,
        thread_id: str | None,
        run_id: str | None,
    ) -> WatchTrace | None:
        traces = [o.watch(kind, base_url, thread_id, run_id) for o in self.observers]
        kept = [t for t in traces if t is not None]
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else _Watches(kept)


class _Requests:
    def __init__(self, traces: list[RequestTrace]) -> None:
        self.traces = traces

    def answered(self, status: int, headers: Mapping[str, str]) -> None:
        for trace in self.traces:
            trace.answered(status, headers)

    def failed(self, exc: BaseException) -> None:
        for trace in self.traces:
            trace.failed(exc)


class _Watches:
    def __init__(self, traces: list[WatchTrace]) -> None:
        self.traces = traces

    def enter(self, resend: int) -> object:
        return [trace.enter(resend) for trace in self.traces]

    def leave(self, token: object) -> None:
        assert isinstance(token, list)
        for trace, entered_ in reversed(list(zip(self.traces, token, strict=True))):
            trace.leave(entered_)

    def saw(self, machine: WatchMachine, changed: bool) -> None:
        for trace in self.traces:
            trace.saw(machine, changed)

    def tools(self, handler: ToolHandler) -> ToolHandler:
        for trace in self.traces:
            handler = trace.tools(handler)
        return handler

    def finish(self, machine: WatchMachine, error: Exception | None) -> None:
        for trace in self.traces:
            trace.finish(machine, error)

    def close(self, error: BaseException | None = None) -> None:
        for trace in self.traces:
            trace.close(error)


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The API's request id: `x-request-id`, or Azure's `apim-request-id`."""
    return (
        headers.get("x-request-id")
        or headers.get("apim-request-id")
        or headers.get("x-ms-request-id")
    )


request_log = logging.getLogger("openai_runs.requests")
"""Where [RequestLog][] writes: one INFO line per HTTP attempt."""


class RequestLog:
    """An observer that logs each HTTP attempt in one line (the CLI's `--verbose`).

    `GET /threads/thread_1/runs/run_1 -> 200 in 12.3 ms (attempt 1, request id
    req_1)`: the method, the path (ids only: never the query, the headers or
    the key), the status or the failure, the time, and which attempt it was.
    """

    def request(
        self,
        transport: Transport,
        method: str,
        path: Sequence[str],
        query: Sequence[tuple[str, str]],
        resend: int,
    ) -> RequestTrace:
        where = transport.scrub_text(f"{method} /{'/'.join(path)}")
        return _LoggedRequest(where, resend + 1)

    def watch(
        self,
        kind: WatchKind,
        base_url: str | None,
        thread_id: str | None,
        run_id: str | None,
    ) -> WatchTrace | None:
        return _AttemptsOnly()


class _AttemptsOnly:
    """A watch trace that only counts a watch's retries as attempts."""

    def enter(self, resend: int) -> object:
        return resends.set(resend)

    def leave(self, token: object) -> None:
        resends.reset(token)  # type: ignore[arg-type]

    def saw(self, machine: WatchMachine, changed: bool) -> None:
        pass

    def tools(self, handler: ToolHandler) -> ToolHandler:
        return handler

    def finish(self, machine: WatchMachine, error: Exception | None) -> None:
        pass

    def close(self, error: BaseException | None = None) -> None:
        pass


class _LoggedRequest:
    __slots__ = ("attempt", "started", "where")

    def __init__(self, where: str, attempt: int) -> None:
        self.where = where
        self.attempt = attempt
        self.started = time.perf_counter()

    def answered(self, status: int, headers: Mapping[str, str]) -> None:
        request_id = request_id_of(headers)
        self._log(str(status), f", request id {request_id}" if request_id else "")

    def failed(self, exc: BaseException) -> None:
        self._log(type(exc).__name__, "")

    def _log(self, outcome: str, extra: str) -> None:
        request_log.info(
            "%s -> %s in %.1f ms (attempt %d%s)",
            self.where,
            outcome,
            (time.perf_counter() - self.started) * 1000,
            self.attempt,
            extra,
        )
