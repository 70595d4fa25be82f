"""Servers the tests and the benchmark start for real on 127.0.0.1: a free port, and a
throw-away redis-server (installed by scripts/test-services.sh when missing and allowed).

This is the template's tooling: the package never imports it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def redis_server(project: Path = Path()) -> Iterator[str | None]:
    """A redis-server on 127.0.0.1 with nothing saved to disk ("host:port"), stopped on
    exit; None when there is none and `project`'s scripts/test-services.sh cannot install it."""
    installer = project / "scripts" / "test-services.sh"
    if shutil.which("redis-server") is None and installer.is_file():
        subprocess.run([str(installer)], check=False)
    if shutil.which("redis-server") is None:
        yield None
        return
    import redis

    port = free_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(["redis-server", *args], stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(200):  # bounded wait for start-up
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
