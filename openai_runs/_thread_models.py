"""Threads and messages, as frozen attrs classes (re-exported by `models`).

Kept apart from the run models so that each stays a module one can read in
one sitting; :mod:`openai_runs.models` is where users import them from.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import attrs

from .models import Attachment, ImageFileContent, ImageUrlContent, _extra

__all__ = [
    "Annotation",
    "CodeInterpreterResources",
    "DeletedMessage",
    "DeletedThread",
    "FileCitation",
    "FileCitationAnnotation",
    "FilePath",
    "FilePathAnnotation",
    "FileSearchResources",
    "Message",
    "MessageContentPart",
    "MessageIncompleteDetails",
    "MessageStatus",
    "MessageText",
    "MessageTextContent",
    "RefusalContent",
    "Thread",
    "ThreadToolResources",
    "UnknownAnnotation",
    "UnknownContent",
]


class MessageStatus(StrEnum):
    """The statuses of a message that this version knows.

    A message a run writes is ``in_progress`` while the run works on it; one
    a caller adds is ``completed`` at once.
    """

    IN_PROGRESS = "in_progress"
    INCOMPLETE = "incomplete"
    COMPLETED = "completed"


# --- Threads ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CodeInterpreterResources:
    """The files the code interpreter may read in a thread (at most 20)."""

    file_ids: list[str] | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FileSearchResources:
    """The vector store file search uses in a thread (at most one)."""

    vector_store_ids: list[str] | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class ThreadToolResources:
    """What a thread gives its tools: files and vector stores."""

    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class Thread:
    """A thread: the conversation that messages belong to and runs work on.

    Attributes:
        id: The thread's id, ``thread_…``.
        created_at: Unix seconds.
        tool_resources: Files and vector stores for the tools.
        metadata: At most 16 string pairs.
        extra: Keys the API sent that this version does not know.
    """

    id: str
    object: str = "thread"
    created_at: int
    tool_resources: ThreadToolResources | None = None
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


# --- Message content ----------------------------------------------------------


@attrs.frozen(kw_only=True)
class FileCitation:
    """The file a citation quotes."""

    file_id: str
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FileCitationAnnotation:
    """A quote from a file that file search found.

    Attributes:
        text: The text in the message that stands for the citation.
        file_citation: The file quoted.
        start_index: Where *text* starts in the message text.
        end_index: Where *text* ends in the message text.
    """

    text: str
    file_citation: FileCitation
    start_index: int
    end_index: int
    type: str = "file_citation"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FilePath:
    """A file the code interpreter made."""

    file_id: str
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FilePathAnnotation:
    """A link to a file the code interpreter made.

    Attributes:
        text: The text in the message that stands for the link.
        file_path: The file.
        start_index: Where *text* starts in the message text.
        end_index: Where *text* ends in the message text.
    """

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
class MessageText:
    """The text of a text part, and what in it points at files.

    Attributes:
        value: The text.
        annotations: Citations and file links inside *value*.
    """

    value: str
    annotations: list[Annotation] = attrs.field(factory=list)
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class MessageTextContent:
    """A text part of a message the API sends.

    The request's text part is [TextContent][openai_runs.models.TextContent],
    a plain string.
    """

    text: MessageText
    type: str = "text"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class RefusalContent:
    """The model's refusal to answer, in place of text."""

    refusal: str
    type: str = "refusal"
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class UnknownContent:
    """A content part of a type this version does not know; its data is in *extra*."""

    type: str
    extra: dict[str, Any] = _extra()


MessageContentPart = (
    MessageTextContent
    | ImageFileContent
    | ImageUrlContent
    | RefusalContent
    | UnknownContent
)


# --- Messages -----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class MessageIncompleteDetails:
    """Why a message ended ``incomplete``.

    Attributes:
        reason: ``content_filter``, ``max_tokens``, ``run_cancelled``,
            ``run_expired``, ``run_failed``, or a reason added later.
    """

    reason: str
    extra: dict[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class Message:
    """A message in a thread, from the user or written by a run.

    The API sends every field; the defaults below only make the models
    usable with the API reference's own examples, which omit ``status``,
    ``incomplete_details``, ``completed_at`` and ``incomplete_at``.

    Attributes:
        id: The message's id, ``msg_…``.
        thread_id: The thread it belongs to.
        role: ``user`` or ``assistant``.
        content: Its parts: text, images, refusals; a part of a type this
            version does not know is an
            [UnknownContent][openai_runs.models.UnknownContent].
        status: A [MessageStatus][openai_runs.models.MessageStatus], or the
            plain string of a newer one; *None* if the API left it out.
        assistant_id: The assistant that wrote it, for a run's message.
        run_id: The run that wrote it; *None* for a message a caller added.
        attachments: Files attached, and the tools that may read them.
        metadata: At most 16 string pairs.
        extra: Keys the API sent that this version does not know.
    """

    id: str
    object: str = "thread.message"
    created_at: int
    thread_id: str
    status: MessageStatus | str | None = None
    incomplete_details: MessageIncompleteDetails | None = None
    completed_at: int | None = None
    incomplete_at: int | None = None
    role: str
    content: list[MessageContentPart] = attrs.field(factory=list)
    assistant_id: str | None = None
    run_id: str | None = None
    attachments: list[Attachment] | None = None
    metadata: dict[str, str] | None = None
    extra: dict[str, Any] = _extra()

    @property
    def text(self) -> str:
        """The values of the text parts, joined with nothing between them.

        What most callers want from an assistant's reply. Images, refusals
        and parts of unknown types are left out (see
        [refusal][openai_runs.models.Message.refusal]); annotations stay in
        the text as the API wrote them (``【4:0†source】``).
        """
        return "".join(
            part.text.value
            for part in self.content
            if isinstance(part, MessageTextContent)
        )

    @property
    def refusal(self) -> str | None:
        """The refusal parts joined, or *None* when the model did not refuse."""
        parts = [p.refusal for p in self.content if isinstance(p, RefusalContent)]
        return "".join(parts) if parts else None
