"""API keys and tenants: which key belongs to which tenant, where keys come from, and where a
server without keys may listen.

A key is sent in the `x-api-key` header (what `langgraph-sdk` sends). Each key names a tenant;
a tenant sees and cancels only its own threads and runs. Keys are kept as SHA-256 digests, so a
lookup takes the same time whichever key is tried.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "TETHER_API_KEYS"
"""`key1:tenantA,key2:tenantB` — the keys the server accepts when none are given."""

HEADER = "x-api-key"
LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling.

    Attributes:
        tenant: the tenant of the caller's key; None when the server runs without auth (the
            caller then sees every thread).
        slot_key: what the caller's open streams are counted against.
    """

    tenant: str | None
    slot_key: str


LOCAL = Principal(None, "local")
"""The caller of a server without auth."""


class ApiKeys:
    """The accepted keys, each with its tenant.

    Args:
        keys: key → tenant.

    Raises:
        ValueError: no keys, an empty key or tenant, or a key with a colon or whitespace.
    """

    def __init__(self, keys: Mapping[str, str]) -> None:
        if not keys:
            raise ValueError("no API keys given")
        self._tenants: dict[bytes, str] = {}
        for key, tenant in keys.items():
            _check_entry(key, tenant)
            self._tenants[_digest(key)] = tenant

    def __len__(self) -> int:
        return len(self._tenants)

    def principal(self, key: str | None) -> Principal | None:
        """The caller a key stands for, or None for a missing or unknown key."""
        if not key:
            return None
        tenant = self._tenants.get(_digest(key))
        return None if tenant is None else Principal(tenant, f"tenant:{tenant}")

    @property
    def tenants(self) -> frozenset[str]:
        """Every tenant some key belongs to."""
        return frozenset(self._tenants.values())

    @classmethod
    def parse(cls, text: str, *, source: str = "keys") -> ApiKeys:
        """Keys from `key:tenant` entries separated by commas or newlines (`#` starts a comment).

        Raises:
            ValueError: naming `source` and the entry, for a malformed entry or no entries.
        """
        keys: dict[str, str] = {}
        for number, entry in enumerate(_entries(text), start=1):
            key, sep, tenant = entry.partition(":")
            key, tenant = key.strip(), tenant.strip()
            if not sep or not key or not tenant:
                raise ValueError(f"{source}: entry {number} is not 'key:tenant'")
            if keys.get(key, tenant) != tenant:
                raise ValueError(f"{source}: key {_shown(key)} is given two tenants")
            keys[key] = tenant
        if not keys:
            raise ValueError(f"{source}: no 'key:tenant' entries")
        return cls(keys)


def load_api_keys(*, file: str | os.PathLike[str] | None = None,
                  env: Mapping[str, str] | None = None) -> ApiKeys | None:
    """The keys from `file` if given, else from `$TETHER_API_KEYS`; None when neither has any.

    Raises:
        ValueError: a malformed file or variable.
        OSError: the file cannot be read.
    """
    if file is not None:
        path = Path(file)
        return ApiKeys.parse(path.read_text(encoding="utf-8"), source=str(path))
    text = (os.environ if env is None else env).get(ENV_VAR, "").strip()
    return ApiKeys.parse(text, source=f"${ENV_VAR}") if text else None


@functools.lru_cache(maxsize=1024)
def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`. Remembered per address: a server without
    keys asks it of every request, with the same few client addresses."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, *, auth: bool) -> None:
    """Refuse to serve without auth anywhere but on the loopback interface.

    Raises:
        ValueError: `auth` is off and `host` is not a loopback address.
    """
    if not auth and not is_loopback(host):
        raise ValueError(
            f"refusing to serve without API keys on {host!r}: anyone who can reach it could "
            "read and cancel every run. Bind to 127.0.0.1, or set TETHER_API_KEYS "
            "('key1:tenantA,key2:tenantB') or pass an API keys file"
        )


def _entries(text: str) -> Iterable[str]:
    for line in text.splitlines():
        for entry in line.split("#", 1)[0].split(","):
            if entry.strip():
                yield entry.strip()


def _check_entry(key: str, tenant: str) -> None:
    if not key or not tenant:
        raise ValueError("an API key and its tenant must not be empty")
    if ":" in key or any(c.isspace() for c in key):
        raise ValueError(f"API key {_shown(key)} contains a colon or whitespace")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _shown(key: str) -> str:
    return f"{key[:3]}…" if len(key) > 3 else "…"


__all__ = ["ENV_VAR", "HEADER", "LOCAL", "ApiKeys", "Principal", "check_bind", "is_loopback",
           "load_api_keys"]
