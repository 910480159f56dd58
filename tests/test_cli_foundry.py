"""The command line against Azure AI Foundry: `--foundry-endpoint` (or the
environment), an Azure credential when azure-identity is there, and
`serve --dialect foundry`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from typing import Any, ClassVar, NamedTuple

import pytest

from openai_runs._cli import main
from openai_runs.auth import FOUNDRY_SCOPE
from openai_runs.testing import Emulator, RunScript


class AccessToken(NamedTuple):
    token: str
    expires_on: int


class FakeDefaultAzureCredential:
    """Stands in for azure.identity.aio.DefaultAzureCredential (not installed here)."""

    instances: ClassVar[list[FakeDefaultAzureCredential]] = []

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []
        self.closed = False
        self.instances.append(self)

    async def get_token(self, *scopes: str) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("entra-token-SECRET", int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed = True


@pytest.fixture(name="emu", scope="module")
def _emu() -> Iterator[Emulator]:
    emulator = Emulator(dialect="foundry", project="proj", poll_after_ms=20)
    with emulator.running_in_thread():
        yield emulator


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "AZURE_AI_PROJECT_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_foundry_endpoint_with_a_token(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--foundry-endpoint` with `--api-key` reads a run from a Foundry project."""
    run = emu.create_run(script=RunScript.completed(after=0))

    code, out, err = cli(
        capsys,
        "get",
        run["thread_id"],
        run["id"],
        "--foundry-endpoint",
        emu.url,
        "--api-key",
        "a-token",
    )

    assert (code, err) == (0, "")
    assert run["id"] in out


def test_endpoint_from_env_uses_azure_credential(
    emu: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With AZURE_AI_PROJECT_ENDPOINT set and azure-identity importable, the
    CLI uses DefaultAzureCredential for Foundry's scope, and closes it."""
    module = types.ModuleType("azure.identity.aio")
    module.DefaultAzureCredential = FakeDefaultAzureCredential  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azure.identity.aio", module)
    monkeypatch.setenv("AZURE_AI_PROJECT_ENDPOINT", emu.url)
    FakeDefaultAzureCredential.instances.clear()
    run = emu.create_run(script=RunScript.completed(after=0))

    code, out, _ = cli(capsys, "get", run["thread_id"], run["id"], "--json")

    assert code == 0
    assert run["id"] in out
    assert "SECRET" not in out
    (credential,) = FakeDefaultAzureCredential.instances
    assert credential.scopes == [(FOUNDRY_SCOPE,)]
    assert credential.closed


def test_without_azure_identity_is_a_usage_error(
    emu: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without azure-identity and without --api-key, one line says what to
    install; exit 2."""
    monkeypatch.setitem(sys.modules, "azure.identity.aio", None)

    code, _, err = cli(
        capsys, "get", "thread_1", "run_1", "--foundry-endpoint", emu.url
    )

    assert code == 2
    assert "pip install azure-identity" in err
    assert err.count("\n") == 1


def test_base_url_wins_over_the_foundry_env(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """AZURE_AI_PROJECT_ENDPOINT is used only when no OpenAI base URL is set."""
    with Emulator(api_key="sk-x").running_in_thread() as openai_emu:
        run = openai_emu.create_run(script=RunScript.completed(after=0))
        monkeypatch.setenv(
            "AZURE_AI_PROJECT_ENDPOINT", "https://unused.invalid/api/projects/p"
        )
        monkeypatch.setenv("OPENAI_BASE_URL", openai_emu.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-x")

        code, out, _ = cli(capsys, "get", run["thread_id"], run["id"])

    assert code == 0
    assert run["id"] in out


def test_watch_exits_6_for_a_foundry_run_cut_short(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Foundry run that ends `completed` with `incomplete_details` (Foundry
    has no `incomplete` status) exits 6, as an incomplete run does."""
    run = emu.create_run(script=RunScript.incomplete(after=0.05))

    code, _, _ = cli(
        capsys,
        "watch",
        run["thread_id"],
        run["id"],
        "--timeout",
        "10",
        "--foundry-endpoint",
        emu.url,
        "--api-key",
        "a-token",
    )

    assert code == 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_dialect_foundry() -> None:
    """`openai-runs serve --dialect foundry` serves a project endpoint that
    `get --foundry-endpoint` talks to."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}/api/projects/emulator"
    env: dict[str, Any] = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_"))
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openai_runs",
            "serve",
            "--port",
            str(port),
            "--dialect",
            "foundry",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        command = [sys.executable, "-m", "openai_runs", "get", "thread_x", "run_x"]
        result = subprocess.run(
            [*command, "--foundry-endpoint", endpoint, "--api-key", "t"],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    finally:
        server.terminate()
        _, server_err = server.communicate(timeout=10)
    assert result.returncode == 1
    assert "no thread found" in result.stderr.lower()
    assert endpoint in server_err
