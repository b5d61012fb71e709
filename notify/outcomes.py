"""What became of one notification attempt, and what the notifier does next.

Pure: the outcome, the attempt number, `now` and the step's deadline come in; the state to
store and when to try again go out. A busy line, no answer, a rejected call or a dead trunk
or SMSC is tried again with a doubling wait while the step lasts, and no longer: the chain
moves on instead of waiting for a channel that does not work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

__all__ = ["DOCTOR_MENU", "FAMILY_MENU", "Keypad", "Menu", "Outcome", "RetryPolicy", "State", "Next", "after_attempt", "RETRYABLE", "TERMINAL", "IN_PROGRESS"]


class State(StrEnum):
    """A notification's state, as stored in `notifications.state`."""

    QUEUED = "queued"  # waiting for its due time
    SENDING = "sending"  # claimed by a notifier, the attempt started
    RINGING = "ringing"  # the called phone rings
    ANSWERED = "answered"  # somebody picked up; no "on my way" (yet)
    ACKED = "acked"  # keypad 1: "I'm on my way" (a village doctor: "I accept")
    DECLINED = "declined"  # a village doctor's keypad 2: not coming
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    REJECTED = "rejected"
    FAILED = "failed"  # the trunk or SMSC refused or could not be reached
    ACCEPTED = "accepted"  # the SMSC took the SMS
    DELIVERED = "delivered"  # the SMSC's delivery report (the app: told on the family page)
    CANCELLED = "cancelled"  # acknowledged or cleared before it was sent
    EXPIRED = "expired"  # its step passed before it could be sent


RETRYABLE = frozenset({State.NO_ANSWER, State.BUSY, State.REJECTED, State.FAILED})
IN_PROGRESS = frozenset({State.SENDING, State.RINGING, State.ANSWERED})
TERMINAL = frozenset(State) - RETRYABLE - IN_PROGRESS - {State.QUEUED}


class Keypad(StrEnum):
    """What a family member can press during a call."""

    ON_MY_WAY = "1"  # the same acknowledgement as the family page's button
    REPEAT = "2"
    CALL_CONTROL_ROOM = "9"  # flagged for the operator, who calls back


@dataclass(frozen=True, slots=True)
class Menu:
    """The keys a call listens for: `final` ones end the call (the answer), `repeat` plays the
    message again; any other key is kept and ignored."""

    final: frozenset[str]
    repeat: str


FAMILY_MENU = Menu(frozenset({Keypad.ON_MY_WAY, Keypad.CALL_CONTROL_ROOM}), Keypad.REPEAT)
# The village doctor answers the alert as on the page: 1 accept, 2 decline (0 repeats).
DOCTOR_ACCEPT, DOCTOR_DECLINE, DOCTOR_REPEAT = "1", "2", "0"
DOCTOR_MENU = Menu(frozenset({DOCTOR_ACCEPT, DOCTOR_DECLINE}), DOCTOR_REPEAT)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The end of one attempt. `ref` is the SMSC's message id or the call's id; `keypad`
    what the family member pressed (in order); `detail` what the trunk or SMSC said."""

    state: State
    ref: str | None = None
    keypad: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def acknowledged(self) -> bool:
        return Keypad.ON_MY_WAY in self.keypad

    @property
    def wants_control_room(self) -> bool:
        return Keypad.CALL_CONTROL_ROOM in self.keypad

    def doctor_answer(self) -> str | None:
        """A village doctor's answer on the keypad: the last of 1 (accept) or 2 (decline)."""
        answers = [k for k in self.keypad if k in DOCTOR_MENU.final]
        return answers[-1] if answers else None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    base_s: float = 10.0

    def backoff(self, attempt: int) -> timedelta:
        """The wait after attempt number `attempt` (1-based): base, 2·base, 4·base, …"""
        return timedelta(seconds=self.base_s * 2 ** max(attempt - 1, 0))


@dataclass(frozen=True, slots=True)
class Next:
    """What to store after an attempt: the state, and when to try again (None: never)."""

    state: State
    retry_at: datetime | None

    @property
    def gave_up(self) -> bool:
        """The channel failed for good: the chain should move on without waiting."""
        return self.retry_at is None and self.state in RETRYABLE


def after_attempt(outcome: Outcome, attempt: int, now: datetime, expires_at: datetime | None, policy: RetryPolicy) -> Next:
    if outcome.acknowledged:
        return Next(State.ACKED, None)
    if outcome.state in RETRYABLE and attempt < policy.max_attempts:
        retry_at = now + policy.backoff(attempt)
        if expires_at is None or retry_at < expires_at:
            return Next(State.QUEUED, retry_at)
    return Next(outcome.state, None)
