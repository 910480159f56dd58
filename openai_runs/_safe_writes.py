"""Writes that are safe to retry: find out whether a lost write acted before re-sending.

A POST whose answer is lost after it reached the server (a reset, a
timeout, a body cut short) may have acted. Sending it again blindly made a
second run, or raised a 400 for a submit or cancel that had succeeded. Here
each write, after such a failure, looks first:

- create run: the run carries a client-made key in its metadata; the
  thread's newest runs are searched for it, and only if it is absent is the
  create sent again (with the same key).
- submit tool outputs, cancel: the run is retrieved; if it shows the write
  took effect it is returned, else the write is sent again, and a 400 on
  that retry means "look at the run" once more.
- create thread and run: nothing lists threads, so nothing can be looked
  up: the outcome is raised as unknown (`OutcomeUnknownError`).

A connection that failed before the request was written is retried by the
request path as any other transient failure.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from ._validation import METADATA_MAX_KEYS, check_count
from .exceptions import (
    APIConnectionError,
    BadRequestError,
    InvalidRequestError,
    OutcomeUnknownError,
    ThreadLockedError,
)
from .models import Run, RunStatus

if TYPE_CHECKING:
    from ._client import Runs, RunsClient

__all__ = ["IDEMPOTENCY_KEY", "create_run", "idempotency_metadata", "write_to_run"]

IDEMPOTENCY_KEY: Final = "openai_runs_idempotency_key"
"""The metadata key under which a create carries its idempotency key."""

# Where a lost create is looked for: a run just created is the thread's
# newest, give or take runs others start at the same moment.
_NEWEST: Final = 20


def idempotency_metadata(
    metadata: Mapping[str, str] | None, key: str | bool
) -> tuple[dict[str, str] | None, str | None]:
    """Return *metadata* tagged with the idempotency key, and the key.

    Args:
        metadata: The caller's metadata (already checked).
        key: *True* for a fresh key, a string for the caller's own, *False*
            for none.
    """
    if key is False:
        return (None if metadata is None else dict(metadata)), None
    if key is True:
        if metadata is not None and len(metadata) >= METADATA_MAX_KEYS:
            # No room for the tag: the create goes untagged, and a lost
            # answer is then an OutcomeUnknownError rather than a lookup.
            return dict(metadata), None
        key = "idem_" + secrets.token_hex(12)
    given: object = key
    if not isinstance(given, str) or not given or len(given) > 512:
        raise InvalidRequestError(
            "idempotency_key", "must be True, False, or a string of 1 to 512 characters"
        )
    tagged = dict(metadata or {})
    if IDEMPOTENCY_KEY not in tagged and len(tagged) >= METADATA_MAX_KEYS:
        raise InvalidRequestError(
            "metadata",
            f"has {len(tagged)} keys, and the idempotency key needs one more "
            f"({IDEMPOTENCY_KEY}); drop one, or leave idempotency_key to its default",
        )
    tagged[IDEMPOTENCY_KEY] = key
    return tagged, key


async def _find(runs: Runs, thread_id: str, key: str) -> Run | None:
    page = await runs.list(thread_id, limit=_NEWEST, order="desc")
    for run in page.data:
        if (run.metadata or {}).get(IDEMPOTENCY_KEY) == key:
            return run
    return None


async def create_run(
    runs: Runs,
    client: RunsClient,
    path: tuple[str, ...],
    *,
    params: list[tuple[str, str]],
    body: dict[str, Any],
    key: str | None,
    timeout: float | None,
    max_retries: int | None,
) -> Run:
    """Send a create run; after a lost answer, look for the run before re-sending."""
    thread_id = path[1]
    resends = client.max_retries if max_retries is None else max_retries
    check_count("max_retries", resends)
    lost: APIConnectionError | None = None
    for _ in range(resends + 1):
        try:
            response = await client.request(
                "POST",
                path,
                Run,
                params=params,
                body=body,
                timeout=timeout,
                max_retries=max_retries,
                retry_sent=False,
            )
        except APIConnectionError as error:
            if not error.request_sent:
                raise  # it never left: already retried as any fault is
            if key is None:
                raise OutcomeUnknownError(
                    f"POST /{'/'.join(path)}: the answer was lost after the "
                    "request was sent, and without an idempotency key the run "
                    "cannot be looked for; it may or may not exist",
                    method="POST",
                    path="/" + "/".join(path),
                    idempotency_key=None,
                ) from error
            lost = error
        except ThreadLockedError:
            # The lost create may be the run that now holds the thread.
            if lost is None or key is None:
                raise
            if (found := await _find(runs, thread_id, key)) is not None:
                return found
            raise
        else:
            return response.parsed
        if (found := await _find(runs, thread_id, key)) is not None:
            return found
    assert lost is not None
    raise lost


def _submitted(run: Run, call_ids: frozenset[str]) -> bool:
    """Whether *run* shows that the outputs for *call_ids* were taken."""
    if run.status in (RunStatus.EXPIRED, RunStatus.CANCELLED, RunStatus.CANCELLING):
        return False
    if run.status != RunStatus.REQUIRES_ACTION:
        return True
    action = run.required_action
    waiting = (
        {call.id for call in action.submit_tool_outputs.tool_calls}
        if action is not None and action.submit_tool_outputs is not None
        else set()
    )
    # Waiting on other calls: a new round, after ours were taken.
    return not waiting & call_ids


def _cancelled(run: Run) -> bool:
    return run.status in (RunStatus.CANCELLING, RunStatus.CANCELLED)


async def write_to_run(
    runs: Runs,
    client: RunsClient,
    path: tuple[str, ...],
    *,
    body: dict[str, Any] | None,
    call_ids: frozenset[str] | None,
    timeout: float | None,
    max_retries: int | None,
) -> Run:
    """Submit tool outputs (*call_ids* given) or cancel, safe to retry.

    After a lost answer the run is retrieved: if it shows the write took
    effect it is returned; else the write is sent again, and a 400 on that
    retry is checked against the run the same way before it is raised.
    """
    thread_id, run_id = path[1], path[3]

    def took_effect(run: Run) -> bool:
        return _submitted(run, call_ids) if call_ids is not None else _cancelled(run)

    resends = client.max_retries if max_retries is None else max_retries
    check_count("max_retries", resends)
    lost: APIConnectionError | None = None
    for _ in range(resends + 1):
        try:
            response = await client.request(
                "POST",
                path,
                Run,
                body=body,
                timeout=timeout,
                max_retries=max_retries,
                retry_sent=False,
            )
        except APIConnectionError as error:
            if not error.request_sent:
                raise
            lost = error
        except BadRequestError:
            if lost is None:
                raise
            run = await runs.retrieve(thread_id, run_id)
            if took_effect(run):
                return run
            raise
        else:
            return response.parsed
        run = await runs.retrieve(thread_id, run_id)
        if took_effect(run):
            return run
    assert lost is not None
    raise lost


async def create_thread_and_run(
    client: RunsClient,
    *,
    body: dict[str, Any],
    key: str | None,
    timeout: float | None,
    max_retries: int | None,
) -> Run:
    """Send a create thread and run once; a lost answer is an unknown outcome."""
    try:
        response = await client.request(
            "POST",
            ("threads", "runs"),
            Run,
            body=body,
            timeout=timeout,
            max_retries=max_retries,
            retry_sent=False,
        )
    except APIConnectionError as error:
        if not error.request_sent:
            raise
        raise OutcomeUnknownError(
            "POST /threads/runs: the answer was lost after the request was "
            "sent; a thread and a run may exist, but there is no list of "
            "threads to look in, so it was not sent again"
            + (f" (the run's metadata carries {IDEMPOTENCY_KEY}={key})" if key else ""),
            method="POST",
            path="/threads/runs",
            idempotency_key=key,
        ) from error
    return response.parsed
