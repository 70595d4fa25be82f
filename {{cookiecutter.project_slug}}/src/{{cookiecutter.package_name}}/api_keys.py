"""Who may call the prediction service, and how often.

Keys are random 256-bit tokens (`api-key new NAME` prints one and the line to store);
the service keeps only their sha256 digests. A plain sha256 is enough for keys this
random (nothing to guess), and it costs microseconds per request, where a password hash
(bcrypt, argon2) would cost milliseconds. Digests come from `serving.api_keys_file` and
the environment variable SERVING_API_KEYS, each one `<name> <sha256>` per line (the
variable also takes `;` between entries).

Without any key the service answers anyone, and `check_exposure` allows that only on a
loopback address. The rate limit is a token bucket per key (per client address when
there are no keys): `burst` requests at once, refilled at `requests_per_second`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .config import RateLimitConfig
from .errors import ConfigError

KEYS_ENV = "SERVING_API_KEYS"
_ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9_.@-]{1,64})\s+(?P<digest>[0-9a-f]{64})$")


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(name: str) -> tuple[str, str]:
    """A fresh key for `name`, and the `<name> <sha256>` line that lets it in."""
    if not _ENTRY.match(f"{name} {'0' * 64}"):
        raise ConfigError(f"key name {name!r}: use 1-64 letters, digits or . _ @ -")
    key = secrets.token_urlsafe(32)
    return key, f"{name} {key_digest(key)}"


def parse_entries(text: str, where: str) -> dict[str, str]:
    """digest -> key name, from `<name> <sha256>` lines (# comments and blank lines ignored)."""
    found: dict[str, str] = {}
    for number, raw in enumerate(re.split(r"[\n;]", text), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _ENTRY.match(line)
        if match is None:
            raise ConfigError(
                f"{where}, entry {number}: expected `<name> <sha256 hex>` (from `api-key new`), "
                "never the key itself"
            )
        if match["name"] in found.values():
            raise ConfigError(f"{where}: key name {match['name']!r} appears twice")
        found[match["digest"]] = match["name"]
    return found


def load_keys(keys_file: Path | None, environ: dict[str, str] | None = None) -> dict[str, str]:
    """digest -> name of every key the service accepts (file and environment)."""
    environ = dict(os.environ) if environ is None else environ
    keys: dict[str, str] = {}
    if keys_file is not None:
        if not keys_file.is_file():
            raise ConfigError(f"serving.api_keys_file {keys_file} does not exist")
        keys.update(parse_entries(keys_file.read_text(), str(keys_file)))
    if environ.get(KEYS_ENV, "").strip():
        for digest, name in parse_entries(environ[KEYS_ENV], KEYS_ENV).items():
            if name in keys.values() and keys.get(digest) != name:
                raise ConfigError(f"{KEYS_ENV}: key name {name!r} is also in {keys_file}")
            keys[digest] = name
    return keys


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, keys: dict[str, str]) -> None:
    """Refuse to serve anything but loopback without API keys."""
    if not keys and not is_loopback(host):
        raise ConfigError(
            f"the service would listen on {host} without API keys: set serving.api_keys_file "
            f"or {KEYS_ENV} (see `api-key new`), or bind 127.0.0.1"
        )


class Unauthorized(Exception):
    """No key, or not one of the accepted ones."""


@dataclass
class _Bucket:
    tokens: float
    updated: float


class Gatekeeper:
    """Names the caller of a request from its key, and meters each caller."""

    def __init__(self, keys: dict[str, str], limit: RateLimitConfig) -> None:
        self.keys = keys
        self.rate, self.burst = limit.requests_per_second, float(limit.burst)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def required(self) -> bool:
        return bool(self.keys)

    def identify(self, key: str | None, client: str) -> str:
        """The caller's name: its key's name, or (without keys configured) its address."""
        if not self.keys:
            return f"address:{client}"
        if not key:
            raise Unauthorized("an API key is required: send `Authorization: Bearer <key>`")
        # looked up by digest: the lookup's timing tells nothing about the stored keys
        name = self.keys.get(key_digest(key))
        if name is None:
            raise Unauthorized("the API key is not valid")
        return name

    def retry_after(self, caller: str, now: float | None = None) -> int:
        """0 if `caller` may go on now, else the whole seconds until it may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(caller)
            if bucket is None:
                bucket = self._buckets[caller] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0
            return max(1, math.ceil((1 - bucket.tokens) / self.rate))
