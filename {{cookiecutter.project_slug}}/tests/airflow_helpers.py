"""Airflow, moto_server and a stoppable S3 endpoint for the DAG tests (servers on 127.0.0.1 only)."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pipeline_helpers import env as pipeline_env
from tools.airflow_cluster import stop, wait_for
from tools.local_servers import free_port

BIN = Path(sys.executable).parent
S3_REGION = "us-east-1"
AWS_TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": S3_REGION,
}


@contextlib.contextmanager
def moto_server(log: Path) -> Iterator[str]:
    """An S3-compatible endpoint (moto_server) on a free 127.0.0.1 port; yields its URL."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/moto-api/", timeout=30, proc=proc)
        yield url
    finally:
        stop(proc)


def create_bucket(endpoint: str, bucket: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=S3_REGION, **_boto_credentials())
    s3.create_bucket(Bucket=bucket)


def bucket_keys(endpoint: str, bucket: str) -> set[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=S3_REGION, **_boto_credentials())
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.update(obj["Key"] for obj in page.get("Contents", []))
    return keys


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


class TcpProxy:
    """127.0.0.1:<port> forwarded to a target port. `down()` makes the endpoint refuse
    connections (as a crashed S3 endpoint would), `up()` brings it back on the same port,
    while the server behind it (and its data) lives on."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        if self._server is not None:
            return
        self._stop.clear()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def down(self) -> None:
        if self._server is None:
            return
        self._stop.set()
        self._server.close()
        self._server = None
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()
        self._conns.clear()

    def _accept(self, server: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            self._conns += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


class WebhookReceiver:
    """A webhook on 127.0.0.1 that records the JSON bodies POSTed to it (`bodies`)."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/pipeline"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self) -> list[str]:
        return [body.get("text", "") for body in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def airflow_env(home: Path, dags: Path, **extra: str) -> dict[str, str]:
    """Environment for `airflow ...` on an embedded SQLite DB in `home`, examples off,
    stage commands through this test venv, no AWS credentials unless given."""
    env = {
        k: v
        for k, v in pipeline_env().items()
        if not k.startswith(("AIRFLOW", "AWS_", "PIPELINE_", "PROJECT_VENV"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "PROJECT_VENV": sys.prefix,
        }
    )
    env.update(extra)
    return env


def airflow(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "airflow"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def dags_test(
    dag_id: str,
    day: str,
    env: dict[str, str],
    cwd: Path,
    on_line: Callable[[str], None] | None = None,
    timeout: float = 600,
) -> tuple[int, str, float]:
    """`airflow dags test <dag_id> <day>`, streaming its output through `on_line`.
    Returns (exit code, output, seconds); killed after `timeout` seconds."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(BIN / "airflow"), "dags", "test", dag_id, day],
        cwd=cwd,
        env={**env, "PYTHONUNBUFFERED": "1"},  # lines as they come, for on_line
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    watchdog = threading.Timer(timeout, stop, args=(proc,))
    watchdog.start()
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if on_line is not None:
                on_line(line)
        proc.wait()
    finally:
        watchdog.cancel()
        stop(proc)
    return proc.returncode, "".join(lines), time.monotonic() - started
