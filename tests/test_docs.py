"""Every Python block of the README and docs/*.md runs, so the docs cannot rot.

A page's blocks run in order in one namespace, as a reader meets them, on one
event loop (a block may use top-level `await`). Names a page takes for
granted (`client`, `thread_id`, `run_id`, ...) come from its setup below,
backed by an emulator. A block that cannot run here says why in an HTML
comment just above it, which the rendered page does not show:

    <!-- test: skip needs an Azure resource and azure-identity -->
    <!-- test: pytest -->   (the block is a test module: run it with pytest)
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from _redis_server import MISSING, RedisServer, binary

from openai_runs import Run, RunsClient, RunWatcher, converter
from openai_runs.testing import Emulator, RunScript, ScriptedCall

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
_DIRECTIVE = re.compile(r"<!--\s*test:\s*(\w+)\s*(.*?)\s*-->")
_SNIPPET = re.compile(r'^--8<-- "(.+)"$', re.MULTILINE)


@attrs.frozen
class Block:
    page: str
    index: int
    line: int
    code: str
    directive: str
    reason: str


def _blocks(path: Path) -> list[Block]:
    text = path.read_text()
    blocks = []
    for index, match in enumerate(_FENCE.finditer(text)):
        before = text[: match.start()]
        # Directives are the HTML comments right above the fence.
        comments = re.search(r"((?:<!--.*?-->\s*)*)$", before)
        assert comments is not None
        directive = _DIRECTIVE.search(comments.group(1))
        code = _SNIPPET.sub(lambda m: (ROOT / m.group(1)).read_text(), match.group(1))
        blocks.append(
            Block(
                page=str(path.relative_to(ROOT)),
                index=index,
                line=before.count("\n") + 2,
                code=code,
                directive=directive.group(1) if directive else "",
                reason=directive.group(2) if directive else "",
            )
        )
    return blocks


BLOCKS = [block for page in PAGES for block in _blocks(page)]


# What each page takes for granted, as its reader would have it at hand.


def _run(emu: Emulator, script: RunScript | None = None) -> dict[str, Any]:
    return emu.create_run(script=script or RunScript.completed(after=0.1))


async def weather_service(arguments: str) -> str:
    return arguments


def get_time(city: str) -> str:
    return f"12:00 in {city}"


def _setup_emulator_page(emu: Emulator) -> dict[str, Any]:
    return {"emu": emu, "run": _run(emu)}


def _setup_quickstart(emu: Emulator) -> dict[str, Any]:
    run = _run(emu)
    return {
        "thread_id": run["thread_id"],
        "run_id": run["id"],
        "payload": emu.retrieve(run["id"]),
    }


def _setup_tools(emu: Emulator) -> dict[str, Any]:
    asks = RunScript.requires_action(
        ScriptedCall("get_weather", '{"city": "Paris"}'), after=0.1, then=0.1
    )
    run = _run(emu, asks)
    others = [_run(emu, asks) for _ in range(3)]
    return {
        "thread_id": run["thread_id"],
        "run_id": run["id"],
        "weather_service": weather_service,
        "get_time": get_time,
        "pairs": [(r["thread_id"], r["id"]) for r in others],
    }


def _setup_watching(emu: Emulator) -> dict[str, Any]:
    run = _run(emu)
    runs_by_order = {
        f"order-{n}": converter.structure(_run(emu), Run) for n in range(3)
    }
    return {
        "thread_id": run["thread_id"],
        "run_id": run["id"],
        "runs_by_order": runs_by_order,
    }


def _setup_pitfalls(emu: Emulator) -> dict[str, Any]:
    run = _run(emu)
    done, failing = _run(emu), _run(emu, RunScript.failed(after=0.1))
    return {
        "thread_id": run["thread_id"],
        "run_id": run["id"],
        "pairs": [
            (done["thread_id"], done["id"], "report"),
            (failing["thread_id"], failing["id"], "summary"),
        ],
    }


def _setup_streaming(emu: Emulator) -> dict[str, Any]:
    from openai_runs.models import FunctionDefinition, FunctionTool  # noqa: PLC0415

    def get_weather(city: str = "Paris") -> str:
        return f"sunny in {city}"

    return {
        "thread_id": emu.create_thread(),
        "assistant_id": "asst_docs",
        "get_weather": get_weather,
        "TOOLS": [FunctionTool(function=FunctionDefinition(name="get_weather"))],
    }


def _setup_conversations(emu: Emulator) -> dict[str, Any]:
    busy = emu.create_run(script=RunScript.endless())
    return {"assistant_id": "asst_demo", "busy_thread_id": busy["thread_id"]}


REDIS_PAGES = frozenset({"docs/scaling.md"})
"""Pages whose blocks use a Redis: a redis-server on a free port, `REDIS_URL`."""

SETUPS: dict[str, Callable[[Emulator], dict[str, Any]]] = {
    "docs/conversations.md": _setup_conversations,
    "docs/emulator.md": _setup_emulator_page,
    "docs/from-openai-python.md": lambda _: {},
    "docs/errors.md": _setup_quickstart,
    "docs/pitfalls.md": _setup_pitfalls,
    "docs/scaling.md": lambda _: {},
    "docs/quickstart.md": _setup_quickstart,
    "docs/streaming.md": _setup_streaming,
    "docs/tools.md": _setup_tools,
    "docs/watching.md": _setup_watching,
}


class Page:
    """One page's namespace, event loop and emulator, shared by its blocks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.done = -1
        self.stack = contextlib.ExitStack()
        self.runner = self.stack.enter_context(asyncio.Runner())
        self.namespace: dict[str, Any] = {"__name__": "__main__"}
        self.env: dict[str, str] = {}
        self.given: dict[str, Any] = {}
        self.clients: dict[int, RunsClient] = {}
        if name in SETUPS:
            emu = self.stack.enter_context(Emulator().running_in_thread())
            self.env = {"OPENAI_BASE_URL": emu.url, "OPENAI_API_KEY": emu.api_key}
            self.namespace.update(SETUPS[name](emu))
            self.namespace["client"] = self.runner.run(self._client(emu))
            if name == "docs/watching.md":
                self.namespace["watcher"] = RunWatcher(
                    self.namespace["client"],
                    self.namespace["thread_id"],
                    self.namespace["run_id"],
                )
            self.given = {"client": self.namespace["client"]}
        if name in REDIS_PAGES and binary() is not None:
            redis = self.stack.enter_context(RedisServer())
            self.env["REDIS_URL"] = redis.url

    async def _client(self, emu: Emulator) -> RunsClient:
        return RunsClient(base_url=emu.url, api_key=emu.api_key)

    def run(self, block: Block) -> None:
        """Run *block*, after any earlier block of the page not yet run."""
        for earlier in BLOCKS:
            if earlier.page == self.name and self.done < earlier.index <= block.index:
                self.done = earlier.index
                if not earlier.directive:
                    # A block that opens its own `async with RunsClient() as
                    # client` closes it at its end; later blocks mean the
                    # reader's open one.
                    self.namespace.update(self.given)
                    try:
                        self._execute(earlier)
                    finally:
                        self.clients.update(
                            (id(v), v)
                            for v in self.namespace.values()
                            if isinstance(v, RunsClient)
                        )

    def _execute(self, block: Block) -> None:
        code = compile(
            "\n" * (block.line - 1) + block.code,
            f"{block.page}",
            "exec",
            flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        )
        if code.co_flags & inspect.CO_COROUTINE:
            self.runner.run(eval(code, self.namespace))
        else:
            exec(code, self.namespace)

    def close(self) -> None:
        for client in self.clients.values():
            self.runner.run(client.aclose())
        self.stack.close()


@pytest.fixture(name="pages", scope="module")
def _pages() -> Iterator[dict[str, Page]]:
    pages: dict[str, Page] = {}
    yield pages
    for page in pages.values():
        page.close()


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.page}:{b.line}" for b in BLOCKS])
def test_block_runs(
    block: Block,
    pages: dict[str, Page],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The Python block runs as the page shows it, after the page's earlier blocks."""
    if block.directive == "skip":
        pytest.skip(block.reason)
    if block.directive == "pytest":
        _run_as_pytest(block, tmp_path)
        return
    assert not block.directive, f"unknown directive {block.directive!r}"
    if block.page in REDIS_PAGES and binary() is None:
        pytest.skip(MISSING)
    if block.page not in pages:
        pages[block.page] = Page(block.page)
    page = pages[block.page]
    for key, value in page.env.items():
        monkeypatch.setenv(key, value)
    page.run(block)


def _run_as_pytest(block: Block, tmp_path: Path) -> None:
    module = tmp_path / "test_example.py"
    module.write_text(block.code)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b[1-9]\d* passed", result.stdout), result.stdout


def test_every_page_is_collected() -> None:
    """The collector finds the blocks of every page that has Python in it."""
    pages = {block.page for block in BLOCKS}
    assert {"README.md", "docs/quickstart.md", "docs/watching.md"} <= pages
    assert all(block.code.strip() for block in BLOCKS)


def test_readme_quickstart_prints_the_runs() -> None:
    """The README's first Python block prints the finished run, its steps and a cancel."""
    code = BLOCKS[0].code
    assert BLOCKS[0].page == "README.md"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[1] == "completed"
    assert any(" message_creation completed" in line for line in lines)
    assert lines[-1] == "cancelling"
