"""Running the real server as a separate process, the way an operator does."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    data_dir: Path
    port: int
    proc: subprocess.Popen[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    signalled: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def credentials(self) -> dict[str, Any]:
        return json.loads((self.data_dir / "demo-credentials.json").read_text(encoding="utf-8"))

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def signal_once(self, sig: int = signal.SIGTERM) -> None:
        """Send one signal; a later :meth:`stop` waits instead of signalling again (a second
        SIGTERM interrupts the graceful shutdown on purpose)."""
        self.signalled = True
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None and not self.signalled:
            self.proc.send_signal(sig)
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)


def start_server(
    data_dir: Path,
    *,
    port: int | None = None,
    args: tuple[str, ...] = ("--demo", "--no-simulator"),
    env: dict[str, str] | None = None,
    ready_timeout: float = 90,
) -> ServerProcess:
    """Start ``python run.py`` and wait until ``/readyz`` answers 200."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CENTER_") or k.startswith("CENTER_TEST_")
    }
    full_env.update(env or {})
    log_path = data_dir / f"server-{port}-{int(time.time() * 1000)}.log"
    log = log_path.open("w", encoding="utf-8")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "run.py"),
            *args,
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
        cwd=str(ROOT),
    )
    server = ServerProcess(data_dir, port, proc, log_path, full_env)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.url}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"server did not become ready:\n{server.log()}")
