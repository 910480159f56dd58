"""Relay an assistant's reply to the browser as it is written, with aiohttp.web.

Runs as it is against the emulator: ``python docs/examples/stream_web.py``,
then open http://127.0.0.1:8081/ask?q=Hello (``curl -N`` shows the words
arrive one by one).
"""

import asyncio

from aiohttp import web

from openai_runs import RunsClient, WatchPolicy, testing
from openai_runs.models import MessageRequest, ThreadRequest

CLIENT = web.AppKey("client", RunsClient)
ASSISTANT = web.AppKey("assistant", str)
# This handler cancelled (the browser went away): stop the run too.
CANCEL_WITH_HANDLER = WatchPolicy(cancel_on_caller_cancel=True)


async def ask(request: web.Request) -> web.StreamResponse:
    """Start a run on a new thread and send its text as it arrives."""
    question = request.query.get("q", "Hello!")
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await response.prepare(request)
    stream = request.app[CLIENT].runs.create_thread_and_run_stream(
        assistant_id=request.app[ASSISTANT],
        thread=ThreadRequest(messages=[MessageRequest(role="user", content=question)]),
        timeout=120,  # the whole answer, not one read
        policy=CANCEL_WITH_HANDLER,
    )
    async with stream:
        async for text in stream.text_deltas():
            await response.write(text.encode())
        run = await stream.final_run()
    await response.write(f"\n[{run.status}]\n".encode())
    await response.write_eof()
    return response


def make_app(client: RunsClient, assistant_id: str) -> web.Application:
    """The web application: one route, one shared RunsClient."""
    app = web.Application()
    app[CLIENT] = client
    app[ASSISTANT] = assistant_id
    app.router.add_get("/ask", ask)
    return app


async def main() -> None:
    async with (
        testing.Emulator() as emulator,
        RunsClient(api_key=emulator.api_key, base_url=emulator.url) as client,
    ):
        runner = web.AppRunner(make_app(client, "asst_demo"))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 8081).start()
        print("serving on http://127.0.0.1:8081/ask?q=Hello")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
