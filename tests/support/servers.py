"""The local stand-in servers (``gdc-server``, ``pdc-server``) run as subprocesses in tests."""

from __future__ import annotations

import selectors
import socket
import subprocess
import time


def read_url(proc: subprocess.Popen[str], *, name: str, timeout_s: float = 30.0) -> str:
    """The URL the server ``proc`` prints on stdout once it listens; fails if it exits or prints none."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if selector.select(timeout=0.2):
            line = proc.stdout.readline().strip()
            if line.startswith("http://"):
                return line
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"{name} printed no URL")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
