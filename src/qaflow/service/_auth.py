"""Who is calling: API keys stored hashed, each mapped to a person in the Directory.

A key is ``qfk_<key id>_<secret>``: the id finds the stored entry and the SHA-256 of the whole
key is compared in constant time. The secret is 256 random bits, so a fast hash is enough
(nothing to brute-force); the key itself is shown once, when it is made, and never stored.
The key store is one JSON file::

    {"format": "qaflow-keys", "version": 1,
     "keys": [{"id": "k3f9a1c20", "person_id": "TM-1", "sha256": "<hex>",
               "created_at": "2026-01-05T09:00:00+00:00", "revoked": false}]}

A caller is the person the key maps to; the actor of a command is always that person, in a
role the Directory says they hold. Nothing a caller types can change who they are.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from qaflow.errors import QAFlowError, ValidationError

__all__ = ["ApiKey", "AuthenticationFailed", "Caller", "KeyStore"]

FORMAT = "qaflow-keys"
VERSION = 1
_KEY_RE = re.compile(r"^qfk_(k[0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


class AuthenticationFailed(QAFlowError, PermissionError):
    """No credentials, or credentials that match no live key (HTTP 401)."""

    def __init__(self, *, problem: str) -> None:
        self.problem = problem
        super().__init__(f"not authenticated: {problem}")


@attrs.frozen
class ApiKey:
    """One stored key: its id, the person it stands for and the SHA-256 of the key."""

    id: str
    person_id: str
    sha256: str
    created_at: str
    revoked: bool = False


@attrs.frozen
class Caller:
    """The authenticated person behind a request (``None`` id: an anonymous local reader)."""

    person_id: str | None
    key_id: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.person_id is None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """The API keys a service accepts, read from (and written to) one JSON file."""

    def __init__(self, keys: Mapping[str, ApiKey] | None = None, path: Path | None = None) -> None:
        self._keys: dict[str, ApiKey] = dict(keys or {})
        self.path = path

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[ApiKey]:
        return iter(sorted(self._keys.values(), key=lambda k: k.id))

    @classmethod
    def load(cls, path: str | Path) -> KeyStore:
        """Read a key store file; raises :class:`ValidationError` naming what is wrong."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValidationError(
                field="--keys", value=str(path), expected="an existing key store file"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValidationError(
                field="--keys", value=str(path), expected="a JSON key store file"
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValidationError(field="format", value=None, expected=repr(FORMAT))
        if data.get("version") != VERSION:
            raise ValidationError(field="version", value=data.get("version"), expected=str(VERSION))
        keys: dict[str, ApiKey] = {}
        for index, row in enumerate(data.get("keys", [])):
            try:
                key = ApiKey(**row)
            except TypeError:
                raise ValidationError(
                    field=f"keys[{index}]",
                    value=None,
                    expected="id, person_id, sha256, created_at and revoked",
                ) from None
            keys[key.id] = key
        return cls(keys, path)

    def save(self, path: str | Path | None = None) -> Path:
        """Write the store (readable by its owner only); returns the path written."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValidationError(field="path", value=None, expected="a file to write")
        body = {
            "format": FORMAT,
            "version": VERSION,
            "keys": [attrs.asdict(k) for k in self],
        }
        tmp = target.with_name(target.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(body, out, indent=2)
            out.write("\n")
        os.replace(tmp, target)
        self.path = target
        return target

    def add(self, person_id: str, *, now: datetime | None = None) -> tuple[ApiKey, str]:
        """Make a key for ``person_id``; returns the stored entry and the key (shown once)."""
        if not isinstance(person_id, str) or not _ID_RE.match(person_id):
            raise ValidationError(
                field="person_id", value=person_id, expected="an id of letters, digits, ._:-"
            )
        key_id = "k" + secrets.token_hex(4)
        while key_id in self._keys:  # pragma: no cover - 32 random bits
            key_id = "k" + secrets.token_hex(4)
        key = f"qfk_{key_id}_{secrets.token_urlsafe(32)}"
        moment = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
        entry = ApiKey(key_id, person_id, _digest(key), moment)
        self._keys[key_id] = entry
        return entry, key

    def revoke(self, key_id: str) -> ApiKey:
        """Mark a key revoked (kept, so the id is never reused)."""
        if key_id not in self._keys:
            raise ValidationError(field="key_id", value=key_id, expected="the id of a stored key")
        entry = attrs.evolve(self._keys[key_id], revoked=True)
        self._keys[key_id] = entry
        return entry

    def person_for(self, key: str) -> ApiKey:
        """The live entry for a presented key; raises :class:`AuthenticationFailed`."""
        match = _KEY_RE.match(key)
        entry = self._keys.get(match.group(1)) if match else None
        if entry is None or not hmac.compare_digest(entry.sha256, _digest(key)):
            raise AuthenticationFailed(problem="the key is not recognised")
        if entry.revoked:
            raise AuthenticationFailed(problem="the key has been revoked")
        return entry


def presented_key(headers: Mapping[str, Any]) -> str | None:
    """The key in ``Authorization: Bearer``, ``Authorization: Basic`` (as the password) or
    ``X-API-Key``; ``None`` when the request carries none."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = str(auth).partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and value.strip():
            return value.strip()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise AuthenticationFailed(problem="malformed Basic credentials") from None
            return decoded.partition(":")[2]
        raise AuthenticationFailed(problem="use 'Authorization: Bearer <key>'")
    key = headers.get("x-api-key")
    return str(key) if key else None
