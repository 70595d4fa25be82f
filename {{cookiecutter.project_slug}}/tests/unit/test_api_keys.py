"""api_keys.py: where keys come from (digests only), who may serve without them, and the
per-caller token bucket."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.api_keys import (
    KEYS_ENV,
    Gatekeeper,
    Unauthorized,
    check_exposure,
    load_keys,
    new_key,
    parse_entries,
)
from {{ cookiecutter.package_name }}.config import RateLimitConfig
from {{ cookiecutter.package_name }}.errors import ConfigError


def test_serving_off_loopback_needs_keys(tmp_path) -> None:
    keys = parse_entries(new_key("ops")[1], "test")
    check_exposure("127.0.0.1", {})
    check_exposure("::1", {})
    check_exposure("0.0.0.0", keys)
    for host in ("0.0.0.0", "10.1.2.3", "service.internal"):
        with pytest.raises(ConfigError, match=f"listen on {host} without API keys"):
            check_exposure(host, {})


def test_keys_come_hashed_from_a_file_and_the_environment(tmp_path) -> None:
    key, line = new_key("ops")
    other_key, other_line = new_key("ci")
    stored = tmp_path / "api_keys"
    stored.write_text(f"# who may call\n{line}\n")
    keys = load_keys(stored, environ={KEYS_ENV: other_line})
    assert sorted(keys.values()) == ["ci", "ops"]
    assert key not in stored.read_text()
    gate = Gatekeeper(keys, RateLimitConfig())
    assert gate.identify(key, "127.0.0.1") == "ops"
    assert gate.identify(other_key, "127.0.0.1") == "ci"
    for bad in (f"ops {key}", "ops", f"{line}\n{line}"):
        stored.write_text(bad)
        with pytest.raises(ConfigError) as refused:
            load_keys(stored, environ={})
        assert key not in str(refused.value)  # a key pasted by mistake is not echoed
    with pytest.raises(ConfigError, match="does not exist"):
        load_keys(tmp_path / "missing", environ={})


def test_unknown_or_missing_keys_are_unauthorized() -> None:
    key, line = new_key("ops")
    gate = Gatekeeper(parse_entries(line, "test"), RateLimitConfig())
    assert gate.required
    for wrong in (None, "", key[:-1], key + "x"):
        with pytest.raises(Unauthorized):
            gate.identify(wrong, "127.0.0.1")
    open_gate = Gatekeeper({}, RateLimitConfig())
    assert not open_gate.required
    assert open_gate.identify(None, "10.0.0.7") == "address:10.0.0.7"


def test_the_bucket_allows_a_burst_then_the_rate_and_says_when() -> None:
    gate = Gatekeeper({}, RateLimitConfig(requests_per_second=2, burst=4))
    waits = [gate.retry_after("a", now=100.0) for _ in range(5)]
    assert waits == [0, 0, 0, 0, 1]
    assert gate.retry_after("b", now=100.0) == 0  # callers do not share a bucket
    assert gate.retry_after("a", now=100.5) == 0  # half a second refills one request at 2/s
    assert gate.retry_after("a", now=100.5) == 1
    slow = Gatekeeper({}, RateLimitConfig(requests_per_second=0.1, burst=1))
    assert slow.retry_after("a", now=0.0) == 0
    assert slow.retry_after("a", now=0.0) == 10  # whole seconds, rounded up
