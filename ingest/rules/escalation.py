"""Escalation: who is told about a person's alarm, and when the next one is.

A person's family contacts are called in order, each with an acknowledgement timeout; when
the last one lets it pass, the control room takes over. A severe alarm (an emergency or a
critical one) goes to the whole family and the control room at once. An acknowledgement
stops the escalation wherever it stands.

This module is the one place that decides steps: the alarm store persists what it
returns, and the escalation ticker asks it what comes after a step whose timeout passed.
Pure: the chain and `now` come in, a step goes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["CONTROL_ROOM", "Contact", "EscalationStep", "family", "first_step", "is_due", "next_step"]

CONTROL_ROOM = "control_room"


@dataclass(frozen=True, slots=True)
class Contact:
    """One family member in a person's chain, in calling order."""

    username: str
    ack_timeout_s: float


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """Where an escalation stands. `step` counts family contacts from 0; the control room's
    step is the chain's length. `notify` is who is told now; `next_at` is when the next
    step is due unless acknowledged (None: nobody is left to escalate to)."""

    step: int
    notify: tuple[str, ...]
    next_at: datetime | None

    @property
    def notified(self) -> str:
        """Who holds the alarm at this step: the contact called, or the control room."""
        return self.notify[-1]

    @property
    def reaches_control_room(self) -> bool:
        return CONTROL_ROOM in self.notify


def family(username: str) -> str:
    """The recipient name of a family contact, as stored and shown."""
    return f"family:{username}"


def first_step(chain: Sequence[Contact], *, severe: bool, now: datetime) -> EscalationStep:
    """The step an alarm starts at. Without a family chain the control room is the only
    one to tell."""
    if severe or not chain:
        return _control_room(chain, notify=(*(family(c.username) for c in chain), CONTROL_ROOM))
    return _family_step(chain, 0, now)


def next_step(chain: Sequence[Contact], step: int, now: datetime) -> EscalationStep:
    """The step after `step`, whose acknowledgement timeout passed at `now`. The chain is
    read again at each step, so a contact removed meanwhile is skipped, not called."""
    following = step + 1
    if following < len(chain):
        return _family_step(chain, following, now)
    return _control_room(chain, notify=(CONTROL_ROOM,))


def is_due(next_at: datetime | None, now: datetime) -> bool:
    """An escalation advances once its timeout has passed; an acknowledged or finished one
    (no `next_at`) never does."""
    return next_at is not None and next_at <= now


def _family_step(chain: Sequence[Contact], step: int, now: datetime) -> EscalationStep:
    contact = chain[step]
    return EscalationStep(step, (family(contact.username),), now + timedelta(seconds=contact.ack_timeout_s))


def _control_room(chain: Sequence[Contact], *, notify: tuple[str, ...]) -> EscalationStep:
    return EscalationStep(len(chain), notify, None)
