"""The login throttle's memory, in the database, so every API process sees the same failures
(several API processes behind one address would otherwise each allow their own attempts).

Two rows count a failed login: one for the (username, client address) pair, one for the
address alone (username ''). The pair's row slows a guesser of one account; the address's
row slows a guesser spraying many accounts. Waits grow by `dashboard.auth.login_delay`. A
successful login clears only its own pair's row: it never resets what an address has done
against other accounts. `watchpost user unlock NAME` clears a user's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection

from dashboard.auth import login_delay

ANY_USER = ""  # the username of an address's own row


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    free_attempts: int = 5  # per user and address
    address_free_attempts: int = 30  # per address, whatever the usernames
    max_delay: timedelta = timedelta(minutes=15)
    # A row quiet for this long is forgotten: the next failure starts again from one.
    forget_after: timedelta = timedelta(hours=1)


async def retry_after(conn: AsyncConnection, username: str, address: str, now: datetime, limits: ThrottleLimits) -> float:
    """Seconds before this user may try again from this address; 0: now."""
    cur = await conn.execute(
        "SELECT max(blocked_until) FROM login_failures WHERE address = %s AND username IN (%s, %s) AND last_failed_at > %s",
        (address, username, ANY_USER, now - limits.forget_after),
    )
    row = await cur.fetchone()
    blocked_until = row[0] if row else None
    return max(0.0, (blocked_until - now).total_seconds()) if blocked_until else 0.0


async def record_failure(conn: AsyncConnection, username: str, address: str, now: datetime, limits: ThrottleLimits) -> None:
    async with conn.transaction():
        for who, free in ((username, limits.free_attempts), (ANY_USER, limits.address_free_attempts)):
            cur = await conn.execute(
                """INSERT INTO login_failures AS f (username, address, failures, last_failed_at, blocked_until)
                   VALUES (%(u)s, %(a)s, 1, %(now)s, %(now)s)
                   ON CONFLICT (username, address) DO UPDATE
                   SET failures = CASE WHEN f.last_failed_at <= %(stale)s THEN 1 ELSE f.failures + 1 END,
                       last_failed_at = %(now)s
                   RETURNING failures""",
                {"u": who, "a": address, "now": now, "stale": now - limits.forget_after},
            )
            row = await cur.fetchone()
            failures = row[0] if row else 1
            await conn.execute(
                "UPDATE login_failures SET blocked_until = %s WHERE username = %s AND address = %s",
                (now + login_delay(failures, free, limits.max_delay), who, address),
            )


async def record_success(conn: AsyncConnection, username: str, address: str) -> None:
    await conn.execute("DELETE FROM login_failures WHERE username = %s AND address = %s", (username, address))
