"""Escalation: who is told about a person's alarm, and when the next one is.

A person's family contacts are called in order, each with an acknowledgement timeout; when
the last one lets it pass, the control room takes over. A severe alarm (an emergency or a
critical one) goes to the whole family and the control room at once. An acknowledgement
stops the escalation wherever it stands.

Each step also says how its people are reached (`notifications`): a contact's app and SMS
at once and a voice call `voice_after_s` later, within the step; a severe alarm, every
contact on every channel at once. The notifier (`watchpost notify`) sends them.

This module is the one place that decides steps: the alarm store persists what it
returns, and the escalation ticker asks it what comes after a step whose timeout passed.
Pure: the chain and `now` come in, a step goes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "CONTROL_ROOM",
    "DEFAULT_VOICE_AFTER_S",
    "Channel",
    "Contact",
    "EscalationStep",
    "Notification",
    "contact_notifications",
    "family",
    "first_step",
    "is_due",
    "next_step",
]

CONTROL_ROOM = "control_room"

# How long the app and the SMS have to be acknowledged before the contact's phone rings,
# when the registry does not say: long enough to read a message, short enough that a
# sleeping family member is woken well inside a two-minute step.
DEFAULT_VOICE_AFTER_S = 60.0


class Channel(StrEnum):
    """How a family contact is reached: the family page, an SMS, a voice call."""

    APP = "app"
    SMS = "sms"
    VOICE = "voice"


@dataclass(frozen=True, slots=True)
class Contact:
    """One family member in a person's chain, in calling order, with the channels that
    reach them. `voice_after_s` is how long the app and SMS have before the phone rings;
    quiet hours never apply: every alarm that escalates is one somebody must answer."""

    username: str
    ack_timeout_s: float
    channels: tuple[Channel, ...] = (Channel.APP,)
    voice_after_s: float = DEFAULT_VOICE_AFTER_S


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to send at a step: to whom, by which channel, from when, and until when
    it is still worth sending (the step's deadline; None: as long as the alarm is open)."""

    username: str
    channel: Channel
    due_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """Where an escalation stands. `step` counts family contacts from 0; the control room's
    step is the chain's length. `notify` is who is told now; `next_at` is when the next
    step is due unless acknowledged (None: nobody is left to escalate to)."""

    step: int
    notify: tuple[str, ...]
    next_at: datetime | None
    notifications: tuple[Notification, ...] = field(default=())

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


# A partner district's duty contact, as the notifications of an alert the partner left
# unanswered name it (in place of a family member's username).
PARTNER_PREFIX = "partner:"


def partner_contact(partner_id: str) -> str:
    return f"{PARTNER_PREFIX}{partner_id}"


def partner_of(recipient: str) -> str | None:
    """The partner a notification's recipient is the duty contact of; None for a family member."""
    return recipient[len(PARTNER_PREFIX):] if recipient.startswith(PARTNER_PREFIX) else None


def first_step(chain: Sequence[Contact], *, severe: bool, now: datetime) -> EscalationStep:
    """The step an alarm starts at. Without a family chain the control room is the only
    one to tell."""
    if severe or not chain:
        # Everybody at once, on every channel they have: nobody waits for anybody.
        everyone = tuple(Notification(c.username, ch, now, None) for c in chain for ch in c.channels)
        return _control_room(chain, notify=(*(family(c.username) for c in chain), CONTROL_ROOM), notifications=everyone)
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


def contact_notifications(contact: Contact, now: datetime, deadline: datetime) -> tuple[Notification, ...]:
    """A contact's step: the app and the SMS at once, the phone call once `voice_after_s`
    passed unacknowledged (at once when voice is the contact's only channel)."""
    quiet = {Channel.APP, Channel.SMS} & set(contact.channels)
    voice_at = now + timedelta(seconds=contact.voice_after_s) if quiet else now
    return tuple(
        Notification(contact.username, ch, voice_at if ch is Channel.VOICE else now, deadline) for ch in contact.channels
    )


def _family_step(chain: Sequence[Contact], step: int, now: datetime) -> EscalationStep:
    contact = chain[step]
    deadline = now + timedelta(seconds=contact.ack_timeout_s)
    return EscalationStep(step, (family(contact.username),), deadline, contact_notifications(contact, now, deadline))


def _control_room(
    chain: Sequence[Contact], *, notify: tuple[str, ...], notifications: tuple[Notification, ...] = ()
) -> EscalationStep:
    return EscalationStep(len(chain), notify, None, notifications)
