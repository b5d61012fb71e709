"""Who is asking: password hashes, signed tokens, roles, and the login throttle.

Pure apart from argon2's hashing: the clock comes in as `now`, the signing secret as an
argument. Tokens are JWTs (HS256) carrying the username and role; what a family member may
see is looked up per request, so unlinking a relative takes effect at once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
TOKEN_ALGORITHM = "HS256"


class Role(StrEnum):
    OPERATOR = "operator"  # sees everything, acknowledges
    DISPATCHER = "dispatcher"  # also assigns units
    FAMILY = "family"  # sees only the persons linked to them
    ADMIN = "admin"


CONTROL_ROOM = frozenset({Role.OPERATOR, Role.DISPATCHER, Role.ADMIN})


class AuthError(Exception):
    """The credentials or the token are not acceptable; the message says why."""


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    role: Role


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def issue_token(secret: str, principal: Principal, now: datetime, ttl: timedelta) -> str:
    claims = {"sub": principal.username, "role": principal.role.value, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=TOKEN_ALGORITHM)


def read_token(secret: str, token: str, now: datetime) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[TOKEN_ALGORITHM], options={"verify_exp": False, "require": ["sub", "role", "exp"]}
        )
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    if claims["exp"] <= now.timestamp():
        raise AuthError("token expired")
    try:
        return Principal(claims["sub"], Role(claims["role"]))
    except ValueError:
        raise AuthError("token names an unknown role") from None


class LoginThrottle:
    """At most `limit` failed logins per key (username, and client address) in `window`;
    beyond that, logins for that key are refused until the oldest failure ages out."""

    def __init__(self, limit: int = 5, window: timedelta = timedelta(minutes=5), max_keys: int = 100_000) -> None:
        self._limit = limit
        self._window = window
        self._max_keys = max_keys  # bounded: a flood of random usernames cannot grow it forever
        self._failures: dict[str, deque[datetime]] = {}

    def retry_after(self, keys: list[str], now: datetime) -> float:
        """Seconds to wait before another attempt is allowed, 0 if allowed now."""
        wait = 0.0
        for key in keys:
            failures = self._recent(key, now)
            if len(failures) >= self._limit:
                wait = max(wait, (failures[0] + self._window - now).total_seconds())
        return wait

    def record_failure(self, keys: list[str], now: datetime) -> None:
        if len(self._failures) >= self._max_keys:
            self._failures.clear()  # crude but bounded; failures are short-lived anyway
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    def record_success(self, keys: list[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        return failures
