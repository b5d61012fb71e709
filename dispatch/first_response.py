"""The village doctor as first responder: whether to alert the first-aid post, and what
became of the alert. Pure: times come in as arguments.

The county centre sends the nearest town's ambulance; the village first-aid post (村卫生室)
nearest the patient moves first aid forward. Alerting the post is worth it only when its
doctor gets there clearly before the ambulance: the post must be nearer by road than the
ambulance's ETA minus a margin (the doctor has to leave the surgery; the margin also keeps
a post from being pulled out for a gain of seconds). The answer is bounded: a doctor who
declines or does not answer within `answer_within_s` is "no answer", and nothing — the
ambulance, the console, the hospital — ever waits on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

# The doctor has to leave the surgery and find the house: two minutes of head start over
# the ambulance is the least that makes alerting the post worth it.
FIRST_RESPONDER_MARGIN_S = 120.0
# A village doctor sees the alert on their phone; 90 s is a generous time to answer it.
# Past it the alert stays on their page but counts as unanswered.
ANSWER_WITHIN_S = 90.0
# The post's duty phone is texted at once; an alert still unanswered this long after is rung
# (the doctor may be with a patient, the phone in a pocket: a call is hard to miss).
CALL_AFTER_S = 30.0
# A scoped user (village doctor, hospital, crew) keeps seeing an incident this long after
# it closed: the hospital's hand-over notes, the doctor's last note.
SCOPED_GRACE_S = 30 * 60.0


class Answer(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    NO_ANSWER = "no_answer"


class ResponseError(ValueError):
    """A first responder's step that their alert's state does not allow; says which and why."""


@dataclass(frozen=True, slots=True)
class FirstResponderVerdict:
    """Whether the post is alerted, and why (kept in the dispatch decision)."""

    alert: bool
    post_id: str | None
    post_eta_s: float | None
    unit_eta_s: float | None
    reason: str

    def to_json(self) -> dict[str, object]:
        return {"alert": self.alert, "post_id": self.post_id, "post_eta_s": _round(self.post_eta_s),
                "unit_eta_s": _round(self.unit_eta_s), "reason": self.reason}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def should_alert_post(
    post_id: str | None, post_eta_s: float | None, unit_eta_s: float | None, *, margin_s: float = FIRST_RESPONDER_MARGIN_S
) -> FirstResponderVerdict:
    """Alert the post when its doctor is nearer by road than the ambulance's ETA minus
    `margin_s`. No ambulance ETA (none could be sent) means the doctor goes whenever a post
    can reach the patient at all: they are the only help coming."""
    if post_id is None or post_eta_s is None:
        return FirstResponderVerdict(False, None, None, unit_eta_s, "no first-aid post reaches the scene by road")
    if unit_eta_s is None:
        return FirstResponderVerdict(True, post_id, post_eta_s, None, "no ambulance ETA: the post is the first help")
    if post_eta_s < unit_eta_s - margin_s:
        return FirstResponderVerdict(
            True, post_id, post_eta_s, unit_eta_s,
            f"post {post_eta_s:.0f} s < ambulance {unit_eta_s:.0f} s - margin {margin_s:.0f} s",
        )
    return FirstResponderVerdict(
        False, post_id, post_eta_s, unit_eta_s,
        f"post {post_eta_s:.0f} s is not ahead of ambulance {unit_eta_s:.0f} s by the margin {margin_s:.0f} s",
    )


def answer_state(answer: str | None, answer_by: datetime, now: datetime) -> str:
    """`waiting` until the doctor answers or the time runs out; then the answer, or
    `no_answer`."""
    if answer is not None:
        return answer
    return "waiting" if now < answer_by else Answer.NO_ANSWER.value


def check_answer(current: str | None, answer_by: datetime, new: Answer, now: datetime) -> Answer:
    """A doctor's accept/decline. A late accept still counts (the doctor is on their way
    after all: the console sees it); a doctor may decline after accepting (held up), not
    accept twice."""
    if new is Answer.NO_ANSWER:
        raise ResponseError("no_answer is the platform's verdict, not a doctor's answer")
    if current == new.value:
        raise ResponseError(f"already {current}")
    if current == Answer.DECLINED.value and new is Answer.ACCEPTED and now >= answer_by:
        raise ResponseError("declined, and the time to answer is over")
    return new


def check_on_scene(answer: str | None) -> None:
    if answer != Answer.ACCEPTED.value:
        raise ResponseError(f"only an accepted alert can be on scene (it is {answer or 'unanswered'})")


def arrival_lead_s(responder_on_scene: datetime | None, unit_on_scene: datetime | None) -> float | None:
    """By how much the first responder arrived before the ambulance (negative: after); None
    unless both arrived."""
    if responder_on_scene is None or unit_on_scene is None:
        return None
    return (unit_on_scene - responder_on_scene) / timedelta(seconds=1)


def visible_until(closed_at: datetime | None, grace_s: float = SCOPED_GRACE_S) -> datetime | None:
    """Until when a scoped user sees an incident: open, for ever; closed, for the grace."""
    return None if closed_at is None else closed_at + timedelta(seconds=grace_s)


@dataclass(frozen=True, slots=True)
class FirstResponderSummary:
    """How the village doctors did over a period, for the shift report."""

    alerted: int
    accepted: int
    arrived: int  # accepted and reported on scene
    first: int  # on scene before the ambulance (or with no ambulance on scene at all)
    both_arrived: int  # doctor and ambulance both on scene: the leads below are over these
    median_lead_s: float | None
    mean_lead_s: float | None
    # Over the incidents where the doctor was there first and the ambulance came too: by how
    # much the doctor was ahead, the median and the 90th percentile (nearest rank).
    ahead_median_s: float | None = None
    ahead_p90_s: float | None = None


def _median(xs: list[float]) -> float | None:
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def _p90(xs: list[float]) -> float | None:
    """Nearest rank: the smallest value at least 90 % of `xs` (sorted) do not exceed."""
    return xs[max(math.ceil(0.9 * len(xs)) - 1, 0)] if xs else None


def summarise(rows: list[tuple[str | None, datetime | None, datetime | None]]) -> FirstResponderSummary:
    """`rows`: (answer, doctor on scene, ambulance on scene) per alerted incident."""
    leads = sorted(lead for _, doc, unit in rows if (lead := arrival_lead_s(doc, unit)) is not None)
    ahead = [lead for lead in leads if lead > 0]
    arrived = [(doc, unit) for answer, doc, unit in rows if answer == Answer.ACCEPTED.value and doc is not None]
    first = sum(1 for doc, unit in arrived if unit is None or doc < unit)
    return FirstResponderSummary(
        alerted=len(rows), accepted=sum(1 for a, _, _ in rows if a == Answer.ACCEPTED.value), arrived=len(arrived),
        first=first, both_arrived=len(leads), median_lead_s=_median(leads), mean_lead_s=sum(leads) / len(leads) if leads else None,
        ahead_median_s=_median(ahead), ahead_p90_s=_p90(ahead),
    )
