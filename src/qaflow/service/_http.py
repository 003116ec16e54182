"""Request plumbing: who is calling, query and header parameters, JSON bodies, times.

Everything here raises a :class:`~qaflow.errors.QAFlowError` subclass, which the app turns
into problem+json; nothing here quotes a request's free text back.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import attrs
import jsonschema_rs
from jsonschema import Draft202012Validator
from starlette.requests import Request

from qaflow.directory import InMemoryDirectory, UnknownPerson
from qaflow.errors import QAFlowError, ValidationError
from qaflow.service._auth import AuthenticationFailed, Caller, KeyStore, presented_key
from qaflow.service._schemas import SCHEMAS, Operation

__all__ = [
    "OPERATOR_ROLE",
    "Authenticator",
    "OperatorRequired",
    "parse_etag",
    "parse_moment",
    "read_body",
    "read_params",
]

#: The role that may tick and drain the outbox over HTTP: the host system's integration.
OPERATOR_ROLE = "qaflow_operator"


class OperatorRequired(QAFlowError, PermissionError):
    """Ticking and draining the outbox are for the host system's operator account (403)."""

    def __init__(self, *, person_id: str, role: str) -> None:
        self.person_id = person_id
        self.role = role
        super().__init__(f"person {person_id!r} does not hold {role!r}, which this operation needs")


class _Check:
    """One schema, compiled twice: a fast Rust check for the common valid request, and
    ``jsonschema`` to name the first problem of a refused one (same messages as before).

    ``jsonschema`` alone took ~0.1 ms per request body, a tenth of the service's own cost per
    command; ``jsonschema_rs`` answers "valid?" in ~1 us. Where the two disagree the request is
    refused: the Rust check follows ECMA-262 regexes (``$`` is the end of the text, so an id
    ending in a newline is refused), which is what the published schema means.
    """

    __slots__ = ("_fast", "_full")

    def __init__(self, schema: dict[str, Any]) -> None:
        self._fast = jsonschema_rs.Draft202012Validator(schema)
        self._full = Draft202012Validator(schema)

    def first_error(self, value: Any) -> Any:
        """``None`` when ``value`` is valid, else the first ``jsonschema`` error (or a stand-in)."""
        if self._fast.is_valid(value):
            return None
        found = next(iter(self._full.iter_errors(value)), None)
        return found if found is not None else _Disagreed(value)


@attrs.frozen
class _Disagreed:
    """Refused by the Rust check only; shaped like a ``jsonschema`` error for ``_expected``."""

    instance: Any
    validator: str = "pattern"
    validator_value: Any = None
    absolute_path: tuple[str, ...] = ()
    schema: dict[str, Any] = attrs.Factory(dict)


_VALIDATORS = {name: _Check(schema) for name, schema in SCHEMAS.items() if name.endswith("Request")}
_MAX_BODY = 1_000_000
# One compiled check per parameter schema (the schemas live as long as OPERATIONS).
_PARAM_VALIDATORS: dict[int, _Check] = {}


class Authenticator:
    """Maps a request's credentials to a :class:`Caller` (roles come from the directory).

    With a key store, every request but the public ones needs a live key whose person is in
    the directory. ``insecure_local`` (loopback only) trusts an ``X-QAFlow-Person`` header and
    lets requests without one read, never write.
    """

    def __init__(
        self,
        directory: InMemoryDirectory,
        keys: KeyStore | None,
        *,
        insecure_local: bool,
        operator_role: str = OPERATOR_ROLE,
    ) -> None:
        if keys is None and not insecure_local:
            raise ValidationError(
                field="keys", value=None, expected="a key store (or insecure_local=True)"
            )
        self.directory = directory
        self.keys = keys
        self.insecure_local = insecure_local
        self.operator_role = operator_role

    def caller(self, request: Request, op: Operation) -> Caller:
        """Who is calling; for an operator's operation, only someone holding the role."""
        found = self._caller(request, op)
        if op.operator and (
            found.person_id is None
            or not self.directory.has_role(found.person_id, self.operator_role)
        ):
            if found.person_id is None:
                raise AuthenticationFailed(problem="operator operations need a caller")
            raise OperatorRequired(person_id=found.person_id, role=self.operator_role)
        return found

    def _caller(self, request: Request, op: Operation) -> Caller:
        if not op.auth:
            return Caller(None)
        key = presented_key(request.headers)
        if key is not None and self.keys is not None:
            entry = self.keys.person_for(key)
            self._known(entry.person_id)
            return Caller(entry.person_id, entry.id)
        if self.insecure_local:
            person = request.headers.get("x-qaflow-person")
            if person:
                self._known(person)
                return Caller(person)
            if not op.writes:
                return Caller(None)
            raise AuthenticationFailed(problem="name yourself with X-QAFlow-Person to write")
        raise AuthenticationFailed(problem="present an API key ('Authorization: Bearer <key>')")

    def _known(self, person_id: str) -> None:
        if person_id not in self.directory:
            raise UnknownPerson(person_id=person_id)


def _coerce(name: str, schema: dict[str, Any], text: str) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValidationError(field=name, value=text, expected="an integer") from None
    if kind == "boolean":
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise ValidationError(field=name, value=text, expected="true or false")
        return lowered == "true"
    return text


def read_params(request: Request, op: Operation) -> dict[str, Any]:
    """Path, query and header parameters, typed and checked against the operation's schema."""
    out: dict[str, Any] = {}
    for param in op.params:
        name, where, schema = param["name"], param["in"], param["schema"]
        if where == "path":
            raw = request.path_params.get(name)
        elif where == "query":
            raw = request.query_params.get(name)
        else:
            raw = request.headers.get(name)
        if raw is None:
            if param.get("required"):
                raise ValidationError(field=name, value=None, expected="given")
            continue
        value = _coerce(name, schema, raw)
        validator = _PARAM_VALIDATORS.get(id(schema))
        if validator is None:
            validator = _PARAM_VALIDATORS[id(schema)] = _Check(schema)
        error = validator.first_error(value)
        if error is not None:
            raise ValidationError(field=name, value=value, expected=_expected(error))
        out[name] = value
    return out


def _expected(error: Any) -> str:
    keyword, bound = error.validator, error.validator_value
    if keyword == "type":
        return f"of type {bound}"
    if keyword == "enum":
        return "one of " + ", ".join(repr(v) for v in bound)
    if keyword in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"):
        return f"{keyword} {bound}"
    if keyword == "pattern":
        return "an id of letters, digits and ._:- (starting with a letter or digit)"
    return f"valid ({keyword})"


async def read_body(request: Request, op: Operation) -> dict[str, Any]:
    """The JSON body, checked against the operation's request schema."""
    if op.body is None:
        return {}
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        raise ValidationError(field="body", value=len(raw), expected=f"at most {_MAX_BODY} bytes")
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError):
        raise ValidationError(
            field="body", value=None, expected="a JSON object (no NaN or Infinity)"
        ) from None
    error = _VALIDATORS[op.body].first_error(body)
    if error is not None:
        if error.validator == "required":
            missing = [m for m in error.validator_value if m not in error.instance]
            field = missing[0] if missing else "body"
            raise ValidationError(field=field, value=None, expected="given")
        if error.validator == "additionalProperties":
            allowed = ", ".join(repr(k) for k in error.schema.get("properties", {}))
            raise ValidationError(field="body", value=None, expected=f"only the fields {allowed}")
        field = ".".join(str(p) for p in error.absolute_path) or "body"
        shown = error.instance if isinstance(error.instance, (int, float, bool)) else None
        raise ValidationError(field=field, value=shown, expected=_expected(error))
    assert isinstance(body, dict)
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are not JSON


def parse_etag(value: str | None) -> int | None:
    """The version an ``If-Match`` header names (``*`` or absent: any)."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip()
    if text.startswith('"') and text.endswith('"') and len(text) > 2:
        text = text[1:-1]
    if not text.isdigit() or len(text) > 18:
        raise ValidationError(
            field="If-Match", value=None, expected='an ETag this service gave, e.g. "3"'
        )
    return int(text)


def parse_moment(name: str, text: str) -> date | datetime:
    """A date (``2026-01-01``) or an ISO 8601 time with an offset; naive times refused."""
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            field=name, value=None, expected="a date or an ISO 8601 time with an offset"
        ) from None
    if moment.tzinfo is None:
        raise ValidationError(
            field=name, value=None, expected="an ISO 8601 time with an offset (naive refused)"
        )
    return moment
