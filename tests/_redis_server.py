"""A real `redis-server` on a free loopback port, for tests and the bench.

Standard library only, so the bench (which has no pytest) can start one too.
The server keeps nothing on disk (`--save ''`, `--appendonly no`) and runs in
a temporary folder of its own; `stop()` ends it, `start()` brings it back on
the same port (a test of a Redis outage and its recovery).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

BINARY = "redis-server"
MISSING = (
    "redis-server is not installed (apt-get install redis-server; "
    ".ci/run installs it), so the Redis tests cannot start one"
)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def binary() -> str | None:
    """The redis-server executable, or *None* when it is not installed."""
    return shutil.which(BINARY)


class RedisServer:
    """One redis-server process on 127.0.0.1; a context manager."""

    def __init__(self, port: int | None = None, *, start_timeout: float = 10.0) -> None:
        found = binary()
        if found is None:
            raise FileNotFoundError(MISSING)
        self.executable = found
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self._dir = tempfile.TemporaryDirectory(prefix="openai-runs-redis-")
        self._log = Path(self._dir.name) / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:PORT/0`."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        if self.running:
            return
        command = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir.name,
            "--logfile", str(self._log),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + self.start_timeout
        while not self._answers_ping():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log = self._log.read_text() if self._log.exists() else ""
                self.stop()
                raise RuntimeError(
                    f"redis-server did not start on port {self.port}:\n{log[-2000:]}"
                )
            time.sleep(0.01)

    def stop(self) -> None:
        """End the server (its data goes with it)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a frozen server cannot end
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def freeze(self) -> None:
        """Stop the process without ending it (SIGSTOP): Redis stops answering."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server go on (SIGCONT)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        """Stop the server and remove its folder."""
        self.stop()
        self._dir.cleanup()

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
