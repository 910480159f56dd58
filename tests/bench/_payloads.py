"""Spec-shaped Run and RunStep payloads, as the live API sends them."""

from __future__ import annotations

import json
from typing import Any

CREATED = 1_795_596_072
ASSISTANT = "asst_4fJ8xUq2cR1vT9mN0pLk3sWd"
INSTRUCTIONS = (
    "You are a careful data analyst. Answer with a short summary first, then "
    "the details; use the code interpreter for any arithmetic and cite the "
    "files you searched."
)


def run(
    thread_id: str, run_id: str, status: str, created: int = CREATED
) -> dict[str, Any]:
    """A run of an assistant with three tools, *status* now.

    Its ``expires_at`` is ten minutes after *created* (Unix seconds), as the
    live API sets it: a watch gives up on a run past it.
    """
    done = status == "completed"
    return {
        "id": run_id,
        "object": "thread.run",
        "created_at": created,
        "assistant_id": ASSISTANT,
        "thread_id": thread_id,
        "status": status,
        "started_at": created + 1,
        "expires_at": None if done else created + 600,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": created + 9 if done else None,
        "required_action": None,
        "last_error": None,
        "model": "gpt-4o-2024-08-06",
        "instructions": INSTRUCTIONS,
        "tools": [
            {"type": "code_interpreter"},
            {
                "type": "file_search",
                "file_search": {
                    "max_num_results": 20,
                    "ranking_options": {"ranker": "auto", "score_threshold": 0.0},
                },
            },
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Get the weather for a city.",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                    "strict": False,
                },
            },
        ],
        "metadata": {"customer": "c_1842", "ticket": "T-99812"},
        "incomplete_details": None,
        "usage": {
            "prompt_tokens": 1245,
            "completion_tokens": 312,
            "total_tokens": 1557,
        }
        if done
        else None,
        "temperature": 1.0,
        "top_p": 1.0,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "response_format": "auto",
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning_effort": None,
    }


def step(thread_id: str, run_id: str, i: int) -> dict[str, Any]:
    """Step *i* of a finished run: messages and the three kinds of tool call."""
    kind = i % 4
    if kind == 0:
        details: dict[str, Any] = {
            "type": "message_creation",
            "message_creation": {"message_id": f"msg_{i:024x}"},
        }
    else:
        call: dict[str, Any]
        if kind == 1:
            call = {
                "id": f"call_{i:024x}",
                "type": "code_interpreter",
                "code_interpreter": {
                    "input": "import math\nprint(math.sqrt(1764))",
                    "outputs": [{"type": "logs", "logs": "42.0\n"}],
                },
            }
        elif kind == 2:
            call = {
                "id": f"call_{i:024x}",
                "type": "file_search",
                "file_search": {
                    "ranking_options": {"ranker": "auto", "score_threshold": 0.0},
                    "results": [],
                },
            }
        else:
            call = {
                "id": f"call_{i:024x}",
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "arguments": '{"city": "Paris"}',
                    "output": '{"temperature_c": 21, "sky": "clear"}',
                },
            }
        details = {"type": "tool_calls", "tool_calls": [call]}
    return {
        "id": f"step_{i:024x}",
        "object": "thread.run.step",
        "created_at": CREATED + i,
        "assistant_id": ASSISTANT,
        "thread_id": thread_id,
        "run_id": run_id,
        "type": details["type"],
        "status": "completed",
        "step_details": details,
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": CREATED + i + 1,
        "metadata": {},
        "usage": {"prompt_tokens": 310, "completion_tokens": 42, "total_tokens": 352},
    }


def steps_page(
    steps: list[dict[str, Any]], *, limit: int, after: str | None
) -> dict[str, Any]:
    """The page of *steps* after the step *after*, as the list call answers."""
    start = 0
    if after is not None:
        start = next(i for i, s in enumerate(steps) if s["id"] == after) + 1
    data = steps[start : start + limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": start + limit < len(steps),
    }


def dumps(payload: Any) -> bytes:
    """Serialize compactly, as the API does."""
    return json.dumps(payload, separators=(",", ":")).encode()
