"""`make airflow` for real: every component up, every listening socket on loopback,
the admin password printed, and SIGTERM stops everything (scripts/airflow-local.sh)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from airflow_helpers import airflow_env, free_port
from conftest import PROJECT_ROOT

pytestmark = pytest.mark.airflow

COMPONENTS = ("scheduler", "triggerer", "dag_processor")
LOOPBACK = {"127.0.0.1", "::1"}


def group_pids(pgid: int) -> set[int]:
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
                pids.add(int(stat.parent.name))
    return pids


def _address(hex_address: str) -> tuple[str, int]:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = ".".join(str(b) for b in raw[::-1])
    else:  # four little-endian 32-bit words
        words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        v6 = ipaddress.IPv6Address(words)
        ip = str(v6.ipv4_mapped or v6)
    return ip, int(port, 16)


def listening_sockets(pids: set[int]) -> dict[tuple[str, int], set[int]]:
    """(address, port) -> pids, for every TCP socket in LISTEN state the pids hold."""
    listening: dict[int, tuple[str, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A":  # TCP_LISTEN
                listening[int(cols[9])] = _address(cols[1])
    held: dict[tuple[str, int], set[int]] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    match = re.fullmatch(r"socket:\[(\d+)\]", str(fd.readlink()))
                    if match and int(match[1]) in listening:
                        held.setdefault(listening[int(match[1])], set()).add(pid)
    return held


def health(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2) as response:
            return json.load(response)
    except OSError:
        return None


def test_make_airflow_serves_on_loopback_only_and_stops_on_sigterm(tmp_path: Path) -> None:
    home, port = tmp_path / "airflow", free_port()
    url = f"http://127.0.0.1:{port}"
    env = airflow_env(home, PROJECT_ROOT / "dags")
    out = tmp_path / "make.out"
    command = ["make", "airflow", f"AIRFLOW_PORT={port}", f"AIRFLOW_HOME={home}"]
    with out.open("w") as log:
        proc = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 150
        status = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"make airflow exited {proc.returncode}:\n{out.read_text()}"
            status = health(url)
            if status and all(status.get(c, {}).get("status") == "healthy" for c in COMPONENTS):
                break
            time.sleep(1)
        else:
            pytest.fail(f"not every component healthy within 150 s: {status}\n{out.read_text()}")

        pids = group_pids(proc.pid)
        sockets = listening_sockets(pids)
        assert ("127.0.0.1", port) in sockets, sockets
        assert {address for address, _ in sockets} <= LOOPBACK, sockets

        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
        for _ in range(10):  # printed right after the health check passes
            if f"password: {password['admin']}" in out.read_text():
                break
            time.sleep(0.5)
        printed = out.read_text()
        assert f"password: {password['admin']}" in printed, printed
        assert f"Airflow UI: {url}" in printed

        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 10
        while group_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not group_pids(proc.pid), "left running after SIGTERM"
        assert "airflow-local: stopped" in out.read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
