"""Who is asking: password hashes, signed tokens, roles, and the login throttle's rule.

Pure apart from argon2's hashing: the clock comes in as `now`, the signing secret as an
argument. Tokens are JWTs (HS256) carrying the username, role and the user's token version;
the version is checked against the users table on every request and by open websockets,
so deleting, demoting or re-passwording a user ends their sessions at once (see
dashboard/context.py). What a family member may see is looked up per request too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    # The three tiers, each scoped to one registry id (users.scope_id): they see only the
    # incidents that name it, while open and for a grace period after (dashboard/tiers.py).
    FIRST_AID = "first_aid"  # a village first-aid post's doctor: scoped to the post
    HOSPITAL = "hospital"  # a receiving hospital's emergency department: scoped to the hospital
    CREW = "crew"  # an ambulance or patrol crew's terminal: scoped to its unit


CONTROL_ROOM = frozenset({Role.OPERATOR, Role.DISPATCHER, Role.ADMIN})
SCOPED = frozenset({Role.FIRST_AID, Role.HOSPITAL, Role.CREW})


class AuthError(Exception):
    """The credentials or the token are not acceptable; the message says why."""


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    role: Role
    token_version: int = 1
    scope: str | None = None  # the post, hospital or unit of a scoped role (from the users table)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a valid signature vouches for; the users table still has to agree."""

    principal: Principal
    expires_at: datetime


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
    claims = {
        "sub": principal.username, "role": principal.role.value, "ver": principal.token_version, "iat": now, "exp": now + ttl,
    }
    return jwt.encode(claims, secret, algorithm=TOKEN_ALGORITHM)


def read_token(secret: str, token: str, now: datetime) -> TokenClaims:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[TOKEN_ALGORITHM],
            options={"verify_exp": False, "require": ["sub", "role", "ver", "exp"]},
        )
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    if claims["exp"] <= now.timestamp():
        raise AuthError("token expired")
    if not isinstance(claims["ver"], int):
        raise AuthError("invalid token: ver is not a number")
    try:
        principal = Principal(claims["sub"], Role(claims["role"]), claims["ver"])
    except ValueError:
        raise AuthError("token names an unknown role") from None
    return TokenClaims(principal, datetime.fromtimestamp(claims["exp"], now.tzinfo))


def check_current(claims: TokenClaims, current: tuple[str, int] | tuple[str, int, str | None] | None) -> Principal:
    """The token's principal if the users table (`current`: role, token version and, for a
    scoped role, its scope; None for a deleted user) still agrees with it."""
    if current is None:
        raise AuthError("token revoked: the user no longer exists")
    role, version = current[0], current[1]
    if version != claims.principal.token_version or role != claims.principal.role.value:
        raise AuthError("token revoked: the user's password or role changed; log in again")
    scope = current[2] if len(current) > 2 else None
    if claims.principal.role in SCOPED:
        if not scope:
            raise AuthError(f"a {role} user needs a scope in the registry")
        return replace(claims.principal, scope=scope)
    return claims.principal


# --- the login throttle's rule ---------------------------------------------------------------
# The first wait once the free attempts are used up; each further failure doubles it. A
# mistyping operator waits seconds, a password guesser from one address soon waits the
# maximum per guess; nobody is locked out for good, so a guesser cannot lock the control
# room out (the throttle is per user and address: the guesser's address, not theirs).
FIRST_LOGIN_DELAY = timedelta(seconds=15)


def login_delay(failures: int, free_attempts: int, max_delay: timedelta) -> timedelta:
    """How long the next attempt waits after `failures` failed logins in a row."""
    if failures < free_attempts:
        return timedelta(0)
    doublings = min(failures - free_attempts, 32)  # bounded: 2**32 waits are all the maximum anyway
    return min(max_delay, FIRST_LOGIN_DELAY * 2**doublings)
