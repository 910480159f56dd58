"""The Threads and Messages calls: ``client.threads`` and ``client.messages``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from ._body import structured
from ._converter import request_converter
from ._http import Response
from ._pagination import AsyncPager
from ._validation import check_id, check_metadata, list_params
from .exceptions import InvalidRequestError
from .models import (
    Attachment,
    CodeInterpreterTool,
    DeletedMessage,
    DeletedThread,
    FileSearchTool,
    ImageFileContent,
    ImageUrlContent,
    Message,
    MessageContent,
    MessageRequest,
    Page,
    TextContent,
    Thread,
)

if TYPE_CHECKING:
    from ._client import RunsClient

__all__ = ["Messages", "Threads", "check_messages", "message_body"]

ROLES: Final = ("user", "assistant")
_TOOL_RESOURCES: Final = frozenset({"code_interpreter", "file_search"})


class Threads:
    """The thread calls: ``client.threads``.

    Attributes:
        messages: The same [Messages][openai_runs.Messages] as
            ``client.messages``, for those used to ``client.beta.threads.messages``.
    """

    def __init__(self, client: RunsClient, messages: Messages) -> None:
        self._client = client
        self.messages = messages

    async def create(
        self,
        *,
        messages: Sequence[MessageRequest | Mapping[str, Any]] | None = None,
        tool_resources: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Thread:
        """Create a thread, empty or with its first messages.

        Args:
            messages: Messages to start the thread with, oldest first.
            tool_resources: Files and vector stores for the tools, as the API
                takes them (``{"code_interpreter": {"file_ids": [...]}}``).
            metadata: At most 16 string pairs; keys up to 64 characters,
                values up to 512.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's. A
                create retried after a lost answer may make a second thread.

        Returns:
            The new thread.

        Raises:
            InvalidRequestError: An argument is invalid (nothing is sent).
        """
        body: dict[str, Any] = {}
        if messages is not None:
            requests: list[MessageRequest] = structured(
                "messages", messages, list[MessageRequest]
            )
            check_messages(requests)
            body["messages"] = [message_body(m) for m in requests]
        if tool_resources is not None:
            body["tool_resources"] = _tool_resources(tool_resources)
        if (checked := check_metadata(metadata)) is not None:
            body["metadata"] = dict(checked)
        response = await self._client.request(
            "POST",
            ("threads",),
            Thread,
            body=body,
            timeout=timeout,
            max_retries=max_retries,
        )
        return response.parsed

    async def retrieve(
        self,
        thread_id: str,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Thread:
        """Retrieve a thread.

        Args:
            thread_id: The thread.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's.

        Returns:
            The thread.

        Raises:
            InvalidRequestError: The id is empty or unsafe (nothing is sent).
            NotFoundError: No such thread.
        """
        response = await self._client.request(
            "GET",
            _thread_path(thread_id),
            Thread,
            timeout=timeout,
            max_retries=max_retries,
        )
        return response.parsed

    async def update(
        self,
        thread_id: str,
        *,
        metadata: Mapping[str, str] | None = None,
        tool_resources: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Thread:
        """Modify a thread: its *metadata* and its *tool_resources*.

        Args:
            thread_id: The thread.
            metadata: At most 16 string pairs; replaces the thread's metadata.
            tool_resources: Replaces the thread's tool resources.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's.

        Returns:
            The modified thread.

        Raises:
            InvalidRequestError: An argument is invalid (nothing is sent).
            NotFoundError: No such thread.
        """
        path = _thread_path(thread_id)
        body: dict[str, Any] = {}
        if (checked := check_metadata(metadata)) is not None:
            body["metadata"] = dict(checked)
        if tool_resources is not None:
            body["tool_resources"] = _tool_resources(tool_resources)
        response = await self._client.request(
            "POST", path, Thread, body=body, timeout=timeout, max_retries=max_retries
        )
        return response.parsed

    async def delete(
        self,
        thread_id: str,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> DeletedThread:
        """Delete a thread, with its messages and runs.

        Args:
            thread_id: The thread.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's.

        Returns:
            The API's answer: the id and ``deleted``.

        Raises:
            InvalidRequestError: The id is empty or unsafe (nothing is sent).
            NotFoundError: No such thread (also when a retried delete had
                already succeeded).
        """
        response = await self._client.request(
            "DELETE",
            _thread_path(thread_id),
            DeletedThread,
            timeout=timeout,
            max_retries=max_retries,
        )
        return response.parsed


class Messages:
    """The message calls: ``client.messages``."""

    def __init__(self, client: RunsClient) -> None:
        self._client = client

    async def create(
        self,
        thread_id: str,
        *,
        content: str | Sequence[MessageContent | Mapping[str, Any]],
        role: str = "user",
        attachments: Sequence[Attachment | Mapping[str, Any]] | None = None,
        metadata: Mapping[str, str] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Message:
        """Add a message to a thread.

        A thread takes no message while a run on it is active (``queued``,
        ``in_progress``, ``requires_action``, ``cancelling``): the API then
        answers 400, raised as
        [ThreadLockedError][openai_runs.exceptions.ThreadLockedError] naming
        the run, so you can wait for it
        ([wait_idle][openai_runs.Runs.wait_idle]) or cancel it.

        Args:
            thread_id: The thread.
            content: The text, or a list of parts:
                [TextContent][openai_runs.models.TextContent],
                [ImageFileContent][openai_runs.models.ImageFileContent],
                [ImageUrlContent][openai_runs.models.ImageUrlContent].
            role: ``user`` (the default) or ``assistant``, to put words in
                the assistant's mouth.
            attachments: Files for the code interpreter or file search.
            metadata: At most 16 string pairs.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's. A
                create retried after a lost answer may add the message twice.

        Returns:
            The new message.

        Raises:
            InvalidRequestError: An argument is invalid (nothing is sent).
            ThreadLockedError: A run on the thread is active.
            NotFoundError: No such thread.
        """
        path = (*_thread_path(thread_id), "messages")
        # Typed arguments are still checked: a caller's dicts or None must
        # come back as an InvalidRequestError, not a TypeError half-way.
        given: object = content
        if not isinstance(given, str) and isinstance(given, Sequence):
            given = structured("content", given, list[MessageContent])
        if attachments is not None:
            attachments = structured("attachments", attachments, list[Attachment])
        request = MessageRequest(
            role=role,
            content=_listed(given),
            attachments=None if attachments is None else _listed(attachments),
            metadata=metadata,  # type: ignore[arg-type] # checked just below
        )
        check_messages([request], param="")
        response = await self._client.request(
            "POST",
            path,
            Message,
            body=message_body(request),
            timeout=timeout,
            max_retries=max_retries,
        )
        return response.parsed

    def list(
        self,
        thread_id: str,
        *,
        run_id: str | None = None,
        limit: int | None = None,
        order: str | None = None,
        after: str | None = None,
        before: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> AsyncPager[Message]:
        """List the messages of a thread, newest first unless *order* says.

        ``await`` the result for one page, or ``async for`` over it for every
        message, page after page, as with ``runs.steps.list``:

        ```python
        page = await client.messages.list(thread_id, run_id=run.id)
        reply = page.data[0].text
        ```

        Args:
            thread_id: The thread.
            run_id: Only the messages this run wrote.
            limit: Messages per page, 1 to 100 (the API's default is 20).
            order: ``asc`` or ``desc`` by creation time (the API's default).
            after: List the messages after this message id.
            before: List the messages before this message id; iteration then
                goes on backwards.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for each page, instead of the client's.

        Returns:
            A pager over the messages.

        Raises:
            InvalidRequestError: An argument is invalid (raised at once).
        """
        path = (*_thread_path(thread_id), "messages")
        params = list_params(limit, order, after, before)
        if run_id is not None:
            params["run_id"] = check_id("run_id", run_id)

        async def fetch(params: dict[str, str]) -> Response[Page[Message]]:
            return await self._client.request(
                "GET",
                path,
                Page[Message],
                params=params.items(),
                timeout=timeout,
                max_retries=max_retries,
            )

        return AsyncPager(fetch, params)

    async def retrieve(
        self,
        thread_id: str,
        message_id: str,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Message:
        """Retrieve one message.

        Args:
            thread_id: The thread.
            message_id: The message.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's.

        Returns:
            The message.

        Raises:
            InvalidRequestError: An id is empty or unsafe (nothing is sent).
            NotFoundError: No such thread or message.
        """
        response = await self._client.request(
            "GET",
            _message_path(thread_id, message_id),
            Message,
            timeout=timeout,
            max_retries=max_retries,
        )
        return response.parsed

    async def update(
        self,
        thread_id: str,
        message_id: str,
        *,
        metadata: Mapping[str, str] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Message:
        """Modify a message: set its *metadata*, the only field that changes.

        Args:
            thread_id: The thread.
            message_id: The message.
            metadata: At most 16 string pairs; replaces the message's metadata.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's.

        Returns:
            The modified message.

        Raises:
            InvalidRequestError: An argument is invalid (nothing is sent).
            NotFoundError: No such thread or message.
        """
        path = _message_path(thread_id, message_id)
        checked = check_metadata(metadata)
        body = {} if checked is None else {"metadata": dict(checked)}
        response = await self._client.request(
            "POST", path, Message, body=body, timeout=timeout, max_retries=max_retries
        )
        return response.parsed

    async def delete(
        self,
        thread_id: str,
        message_id: str,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> DeletedMessage:
        """Delete a message.

        Args:
            thread_id: The thread.
            message_id: The message.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's.

        Returns:
            The API's answer: the id and ``deleted``.

        Raises:
            InvalidRequestError: An id is empty or unsafe (nothing is sent).
            NotFoundError: No such thread or message.
        """
        response = await self._client.request(
            "DELETE",
            _message_path(thread_id, message_id),
            DeletedMessage,
            timeout=timeout,
            max_retries=max_retries,
        )
        return response.parsed


def _listed(values: object) -> Any:
    return list(values) if isinstance(values, list | tuple) else values


def check_messages(messages: object, *, param: str = "messages") -> None:
    """Refuse a message the API would refuse, before anything is sent.

    Args:
        messages: The messages.
        param: How errors name them (``messages``, or ``""`` for the
            arguments of ``messages.create``).
    """
    prefix = f"{param}." if param else ""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise InvalidRequestError(
            param or "messages", "must be a list of MessageRequest"
        )
    for message in messages:
        if not isinstance(message, MessageRequest):
            raise InvalidRequestError(
                param or "messages", f"{message!r} is not a MessageRequest"
            )
        role: object = message.role
        if not isinstance(role, str) or role not in ROLES:
            raise InvalidRequestError(
                f"{prefix}role",
                f"must be 'user' or 'assistant', not {message.role!r}",
            )
        _check_content(f"{prefix}content", message.content)
        _check_attachments(f"{prefix}attachments", message.attachments)
        check_metadata(message.metadata)


def _check_content(param: str, content: object) -> None:
    if isinstance(content, str):
        if not content:
            raise InvalidRequestError(param, "must not be empty")
        return
    if not isinstance(content, list) or not content:
        raise InvalidRequestError(
            param, "must be a non-empty string or a non-empty list of content parts"
        )
    for part in content:
        if isinstance(part, TextContent):
            text: object = part.text
            if not isinstance(text, str):
                raise InvalidRequestError(
                    f"{param}.text", f"must be a string, not {type(text).__name__}"
                )
        elif isinstance(part, ImageFileContent):
            check_id(f"{param}.image_file.file_id", part.image_file.file_id)
        elif isinstance(part, ImageUrlContent):
            url: object = part.image_url.url
            if not isinstance(url, str) or not url.startswith(
                ("https://", "http://", "data:")
            ):
                raise InvalidRequestError(
                    f"{param}.image_url.url", "must be an http(s) or data: URL"
                )
        else:
            raise InvalidRequestError(
                param,
                f"{part!r} is not a TextContent, ImageFileContent or ImageUrlContent "
                "(build parts with these models, not dicts)",
            )


def _check_attachments(param: str, attachments: object) -> None:
    if attachments is None:
        return
    if not isinstance(attachments, list):
        raise InvalidRequestError(param, "must be a list of Attachment")
    for attachment in attachments:
        if not isinstance(attachment, Attachment):
            raise InvalidRequestError(param, f"{attachment!r} is not an Attachment")
        check_id(f"{param}.file_id", attachment.file_id)
        for tool in attachment.tools or ():
            if not isinstance(tool, CodeInterpreterTool | FileSearchTool):
                raise InvalidRequestError(
                    f"{param}.tools",
                    f"{tool!r} is not a CodeInterpreterTool or FileSearchTool",
                )


def _tool_resources(resources: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(resources, Mapping):
        raise InvalidRequestError("tool_resources", "must be a mapping")
    unknown = set(resources) - _TOOL_RESOURCES
    if unknown:
        raise InvalidRequestError(
            "tool_resources",
            f"unknown keys {sorted(unknown)}; known: code_interpreter, file_search",
        )
    return dict(resources)


def message_body(message: MessageRequest) -> dict[str, Any]:
    """The JSON of one message, without the fields left unset."""
    body: dict[str, Any] = request_converter.unstructure(message)
    return body


def _thread_path(thread_id: str) -> tuple[str, ...]:
    return ("threads", check_id("thread_id", thread_id))


def _message_path(thread_id: str, message_id: str) -> tuple[str, ...]:
    return (*_thread_path(thread_id), "messages", check_id("message_id", message_id))
