"""A partner's answer to our CAP water alert, and when its silence escalates.

A cross-border station's alarm goes to the partner district as a CAP 1.2 Alert
(`dispatch.cap`). The partner answers on `{root}/partner/{partner_id}/water-ack` with a CAP
document of `msgType` Ack (accepted) or Error (refused, with a `note`) whose `references`
names our alert (`sender,identifier,sent`, space-separated). As in a handover between
control centres, the alert is handed over only when the partner accepts or refuses it; with
no answer within the partner's timeout (default 10 min) it escalates to the partner's duty
contact, shown on the console.

Pure: bytes in, a `PartnerAck` or a named `AckRejected` out; `overdue` takes `now`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from xml.etree import ElementTree as ET

from dispatch.cap import CAP_NS

# A CAP Ack is a few hundred bytes; anything far larger is not one.
MAX_ACK_BYTES = 16384
DEFAULT_ACK_TIMEOUT = timedelta(minutes=10)
_NS = {"cap": CAP_NS}
ANSWER_TYPES = frozenset({"Ack", "Error"})


class AckRejected(Exception):
    """A message on a partner's water-ack topic that is not an answer to one of our alerts."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class PartnerAck:
    msg_type: str  # Ack (accepted) or Error (refused)
    sender: str  # who at the partner answered
    sent: datetime
    identifiers: tuple[str, ...]  # our alert identifiers it references
    note: str | None = None

    @property
    def accepted(self) -> bool:
        return self.msg_type == "Ack"


def parse_ack(payload: bytes, our_sender: str) -> PartnerAck:
    """Read a partner's CAP Ack/Error. Raises AckRejected."""
    if len(payload) > MAX_ACK_BYTES:
        raise AckRejected("oversized", f"{len(payload)} bytes, the limit is {MAX_ACK_BYTES}")
    # No document type declarations: entity expansion has no place in a CAP message.
    if b"<!DOCTYPE" in payload.upper() or b"<!ENTITY" in payload.upper():
        raise AckRejected("not_cap", "a DOCTYPE or ENTITY declaration")
    try:
        root = ET.fromstring(payload)
    except ET.ParseError as exc:
        raise AckRejected("not_xml", str(exc)) from None
    if root.tag != f"{{{CAP_NS}}}alert":
        raise AckRejected("not_cap", f"root element {root.tag[:80]!r} is not a CAP 1.2 alert")

    def text(tag: str) -> str | None:
        element = root.find(f"cap:{tag}", _NS)
        return None if element is None or element.text is None else element.text.strip()

    msg_type = text("msgType")
    if msg_type not in ANSWER_TYPES:
        raise AckRejected("not_an_answer", f"msgType {msg_type!r} is not Ack or Error")
    sender, sent_text = text("sender"), text("sent")
    if not sender or not sent_text:
        raise AckRejected("not_cap", "sender and sent are required")
    try:
        sent = datetime.fromisoformat(sent_text)
    except ValueError:
        raise AckRejected("not_cap", f"sent {sent_text[:40]!r} is not a CAP time") from None
    if sent.tzinfo is None:
        raise AckRejected("not_cap", f"sent {sent_text[:40]!r} has no offset")
    ours = []
    for reference in (text("references") or "").split():
        parts = reference.split(",")
        if len(parts) == 3 and parts[0] == our_sender:
            ours.append(parts[1])
    if not ours:
        raise AckRejected("unknown_reference", "references names none of our alerts")
    return PartnerAck(msg_type=msg_type, sender=sender[:200], sent=sent, identifiers=tuple(ours), note=(text("note") or None))


def overdue(sent: datetime, answered: bool, escalated: bool, now: datetime, timeout: timedelta = DEFAULT_ACK_TIMEOUT) -> bool:
    """True when an alert the partner has not answered is due to escalate (once)."""
    return not answered and not escalated and now - sent >= timeout
