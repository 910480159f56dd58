"""Start a run, serve its function calls, and print how it ended.

Runs as it is against the emulator: ``python docs/examples/tool_loop.py``.
"""

import asyncio
from typing import Any

from openai_runs import Run, RunsClient, testing, tool_registry
from openai_runs.models import (
    FunctionCall,
    FunctionDefinition,
    FunctionTool,
    MessageRequest,
    ToolCallsDetails,
)

TOOLS = [
    FunctionTool(
        function=FunctionDefinition(
            name="get_weather",
            description="The current weather in a city.",
            parameters={
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        )
    ),
    FunctionTool(
        function=FunctionDefinition(
            name="get_time",
            description="The local time in a city.",
            parameters={
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        )
    ),
]


def get_weather(city: str, unit: str = "celsius") -> dict[str, Any]:
    """A plain function: it runs in a worker thread, so it may block."""
    return {"city": city, "temperature": 21, "unit": unit}


async def get_time(city: str) -> str:
    """A coroutine function: awaited on the event loop. A str is sent as is."""
    await asyncio.sleep(0.01)
    return f"12:00 in {city}"


def show(run: Run) -> None:
    print("status:", run.status)


async def main() -> None:
    # The emulator plays the model: it asks for both functions at once, as a
    # model making parallel tool calls does, then completes the run.
    script = testing.RunScript.requires_action(
        testing.ScriptedCall("get_weather", '{"city": "Paris"}'),
        testing.ScriptedCall("get_time", '{"city": "Paris"}'),
        after=0.1,
        then=0.1,
    )
    async with (
        testing.Emulator(default_script=script) as emulator,
        RunsClient(base_url=emulator.url, api_key=emulator.api_key) as client,
    ):
        thread_id = emulator.create_thread()
        run = await client.runs.create_and_poll(
            thread_id,
            assistant_id="asst_demo",
            tools=TOOLS,
            additional_messages=[
                MessageRequest(role="user", content="Weather and time in Paris?")
            ],
            tool_handler=tool_registry(
                {"get_weather": get_weather, "get_time": get_time}
            ),
            on_status=show,
            timeout=60,
        )
        print("final:", run.status)
        async for step in client.runs.steps.list(thread_id, run.id, order="asc"):
            if isinstance(step.step_details, ToolCallsDetails):
                for call in step.step_details.tool_calls:
                    if isinstance(call, FunctionCall):
                        print(f"{call.function.name} -> {call.function.output}")


if __name__ == "__main__":
    asyncio.run(main())
