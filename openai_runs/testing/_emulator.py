"""The `Emulator`: a stateful fake of the Runs API, served over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Literal, Self

from aiohttp import web

from ._app import Access, build_app, run_fields
from ._assistants import Assistant, Assistants
from ._clock import Clock, SystemClock
from ._foundry import PROJECTS
from ._ratelimit import RateLimit, RateLimiter
from ._schema import check_body
from ._script import Fault, RunScript
from ._state import JSON, EmulatorState, RequestCounts


class Emulator:
    """A stateful Runs API on 127.0.0.1, for tests, demos and benchmarks.

    Runs follow a `RunScript` against the emulator's clock, evaluated
    lazily whenever they are read: there is no background task per run.

    Start it in one of three ways: in async code with `async with
    Emulator() as emu:` (a free port) or `await emu.start(host, port)`; from
    synchronous code with `with emu.running_in_thread():`; or as a process
    of its own with [serve][openai_runs.testing.serve], which blocks, or
    `openai-runs serve`. `emu.app` is the `aiohttp.web.Application`, for
    `aiohttp.test_utils.TestServer`.

    Args:
        api_key: The key requests must send as `Authorization: Bearer KEY`
            or `api-key: KEY`; `None` accepts any request.
        clock: Where time comes from; a `ManualClock` lets tests move runs
            without sleeping. Defaults to the real clock.
        prefix: Where the API is mounted.
        require_beta: Whether to reject requests without
            `OpenAI-Beta: assistants=v2`, as the live API does.
        default_script: The script of runs that choose none. By default a
            run completes after a second, or first asks for tool outputs if
            it has function tools.
        scripts: Named scripts, chosen by a run created with the metadata
            key `emulator_script`.
        cancel_delay: Seconds a cancelled run spends `cancelling`.
        expires_after: Seconds from a run's creation to its `expires_at`;
            `None` for runs that never expire.
        poll_after_ms: An `openai-poll-after-ms` hint for run responses.
        seed: Seeds the random draws of faults with a probability.
        rate_limit: The request rate limit per key, reported in
            `x-ratelimit-*` headers and enforced with 429s; by default
            10,000 requests a minute, reported but not enforced.
        assistants: Registered assistants: runs on them inherit their model,
            instructions and tools unless the request overrides them.
        strict_assistants: Refuse runs on an assistant not registered, with
            the API's 404; by default any `assistant_id` is accepted.
        metadata_update: How modifying a run treats its metadata: `replace`
            it with what is sent, or `merge` what is sent into it (an empty
            string removes a key). The live behaviour is not documented.
        unknown_cursor: How a list answers an `after`/`before` id it does
            not know: a 400 (`error`) or an empty page (`empty`). The live
            behaviour is not documented.
        dialect: `openai`, or `foundry` to serve the API as Azure AI Foundry
            Agent Service does: at `/api/projects/{project}/...` (*url* is
            the project endpoint), requiring `api-version` and a bearer token
            (any token), with Foundry's list pages, statuses and tool types.
            *api_key*, *prefix* and *require_beta* are then unused.
        project: The project name in *url*, for the `foundry` dialect (any
            name is served).
    """

    def __init__(
        self,
        *,
        api_key: str | None = "sk-emulator",
        clock: Clock | None = None,
        prefix: str = "/v1",
        require_beta: bool = True,
        default_script: RunScript | None = None,
        scripts: Mapping[str, RunScript] | None = None,
        cancel_delay: float = 0.5,
        expires_after: float | None = 600.0,
        poll_after_ms: int | None = None,
        seed: int = 0,
        rate_limit: RateLimit | None = None,
        assistants: Iterable[Assistant] = (),
        strict_assistants: bool = False,
        metadata_update: Literal["replace", "merge"] = "replace",
        unknown_cursor: Literal["error", "empty"] = "error",
        dialect: Literal["openai", "foundry"] = "openai",
        project: str = "emulator",
    ) -> None:
        if dialect not in ("openai", "foundry"):
            raise ValueError(f"dialect must be 'openai' or 'foundry', not {dialect!r}")
        self.api_key = api_key
        self.dialect = dialect
        self.prefix = f"{PROJECTS}/{project}" if dialect == "foundry" else prefix
        self._state = EmulatorState(
            clock=clock or SystemClock(),
            default_script=default_script,
            scripts=dict(scripts or {}),
            cancel_delay=cancel_delay,
            expires_after=expires_after,
            poll_after_ms=poll_after_ms,
            seed=seed,
        )
        if rate_limit is not None:
            self._state.rate_limiter = RateLimiter(rate_limit)
        self._state.assistants = Assistants(assistants, strict=strict_assistants)
        self._state.metadata_update = metadata_update
        self._state.unknown_cursor = unknown_cursor
        self.app = build_app(
            self._state,
            prefix=prefix,
            access=Access(api_key, require_beta),
            dialect=dialect,
        )
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def clock(self) -> Clock:
        """The clock runs are evaluated against."""
        return self._state.clock

    @property
    def counts(self) -> RequestCounts:
        """How many API requests were answered, in total and per run."""
        return self._state.counts

    @property
    def scripts(self) -> dict[str, RunScript]:
        """Named scripts that runs choose with the metadata key `emulator_script`."""
        return self._state.scripts

    @property
    def url(self) -> str:
        """The API's base URL, such as `http://127.0.0.1:PORT/v1`.

        For the `foundry` dialect, the project endpoint:
        `http://127.0.0.1:PORT/api/projects/PROJECT`.

        Raises:
            RuntimeError: If the emulator is not serving.
        """
        if self._url is None:
            raise RuntimeError("the emulator is not serving; use `async with`")
        return self._url

    # -- serving ------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on *host* and *port* (0 picks a free port) until `close`."""
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self._url = f"http://{bound_host}:{bound_port}{self.prefix}"

    async def close(self) -> None:
        """Stop serving; the state is kept."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[Self]:
        """Serve from a background thread with its own event loop.

        For synchronous code and tests that call `asyncio.run` themselves:
        the emulator outlives any one event loop. Its methods are safe to
        call from the calling thread while it serves.
        """
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        thread = threading.Thread(
            target=_serve_forever, args=(self, loop, ready), daemon=True
        )
        thread.start()
        ready.wait()
        if self._url is None:
            thread.join()
            raise RuntimeError("the emulator failed to start")
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.close(), loop).result()
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    # -- the Python control API ---------------------------------------------

    def create_thread(self, metadata: dict[str, str] | None = None) -> str:
        """Create an empty thread and return its id."""
        return str(self._state.create_thread(metadata)["id"])

    def create_run(
        self,
        thread_id: str | None = None,
        *,
        script: RunScript | None = None,
        assistant_id: str = "asst_emulator",
        tools: Sequence[JSON] = (),
        metadata: dict[str, str] | None = None,
    ) -> JSON:
        """Create a run without an HTTP request and return it as a `RunObject`.

        Args:
            thread_id: The thread to run; a new thread by default.
            script: What the run will do; see `RunScript`.
            assistant_id: The run's `assistant_id`.
            tools: The run's tools, as the API's tool objects; none: the
                assistant's, if it is registered.
            metadata: The run's metadata.

        Raises:
            ApiError: If the thread does not exist or a field is invalid.
        """
        body: JSON = {"assistant_id": assistant_id, "metadata": metadata}
        if tools:
            body["tools"] = list(tools)
        checked = check_body("CreateRunRequest", body)
        fields = run_fields(self._state.inherit(checked))
        thread_id = thread_id or self.create_thread()
        return self._state.create_run(thread_id, fields, script).to_json()

    def add_assistant(self, assistant: Assistant) -> None:
        """Register *assistant* (replacing one with its id) for runs to inherit."""
        self._state.assistants.add(assistant)

    def retrieve(self, run_id: str) -> JSON:
        """Return a run as a `RunObject`, without counting a request."""
        return self._state.run(None, run_id).to_json()

    def set_script(self, run_id: str, script: RunScript) -> JSON:
        """Make a run follow *script* from its first phase, starting now.

        Returns:
            The run, as a `RunObject`.

        Raises:
            ApiError: If the run does not exist or has ended.
        """
        return self._state.rescript(run_id, script)

    def cancel(self, run_id: str) -> JSON:
        """Cancel a run as if a client asked, and return it."""
        return self._state.cancel(None, run_id)

    def set_default_script(self, script: RunScript | None) -> None:
        """Use *script* for runs created from now on that choose none."""
        self._state.default_script = script

    def inject(self, fault: Fault) -> None:
        """Apply *fault* to matching API requests from now on."""
        self._state.add_fault(fault)

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._state.clear_faults()


def _serve_forever(
    emulator: Emulator, loop: asyncio.AbstractEventLoop, ready: threading.Event
) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(emulator.start())
    finally:
        ready.set()
    loop.run_forever()
    loop.run_until_complete(loop.shutdown_asyncgens())


def serve(
    emulator: Emulator | None = None, *, host: str = "127.0.0.1", port: int = 8080
) -> None:
    """Serve *emulator* (a default one if `None`) until interrupted; this blocks.

    For a script or a shell: Ctrl-C stops it. It binds to loopback unless
    *host* says otherwise. In async code, `await emulator.start(host, port)`
    instead (and `await emulator.close()` when done), or `async with
    Emulator()` for a free port.

    Raises:
        OSError: The port is taken, or *host* is not an address of this machine.
    """
    emulator = emulator or Emulator()

    async def forever() -> None:
        await emulator.start(host, port)
        try:
            await asyncio.Event().wait()
        finally:
            await emulator.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(forever())
