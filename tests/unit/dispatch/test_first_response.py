"""The village doctor's alert: when the post goes, and what becomes of its answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.first_response import (
    Answer,
    ResponseError,
    answer_state,
    arrival_lead_s,
    check_answer,
    check_on_scene,
    should_alert_post,
)

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_a_post_clearly_nearer_than_the_ambulance_is_alerted() -> None:
    verdict = should_alert_post("FA-1", 240.0, 900.0, margin_s=120.0)
    assert verdict.alert and verdict.post_id == "FA-1"
    assert "margin 120" in verdict.reason


def test_a_post_ahead_by_less_than_the_margin_is_not_alerted() -> None:
    assert not should_alert_post("FA-1", 800.0, 900.0, margin_s=120.0).alert


def test_no_reachable_post_alerts_nobody() -> None:
    verdict = should_alert_post(None, None, 900.0)
    assert not verdict.alert and "no first-aid post" in verdict.reason


def test_without_an_ambulance_eta_the_post_is_the_first_help() -> None:
    assert should_alert_post("FA-1", 600.0, None).alert


@given(st.floats(0, 1e5), st.floats(0, 1e5), st.floats(0, 600))
def test_the_post_is_alerted_exactly_when_it_beats_the_ambulance_by_the_margin(post: float, unit: float, margin: float) -> None:
    assert should_alert_post("FA-1", post, unit, margin_s=margin).alert == (post < unit - margin)


def test_an_unanswered_alert_waits_until_its_time_then_is_no_answer() -> None:
    by = T0 + timedelta(seconds=90)
    assert answer_state(None, by, T0) == "waiting"
    assert answer_state(None, by, by) == "no_answer"
    assert answer_state("accepted", by, by + timedelta(hours=1)) == "accepted"


def test_a_doctor_cannot_answer_the_same_way_twice_nor_claim_no_answer() -> None:
    by = T0 + timedelta(seconds=90)
    with pytest.raises(ResponseError, match="already accepted"):
        check_answer("accepted", by, Answer.ACCEPTED, T0)
    with pytest.raises(ResponseError, match="platform's verdict"):
        check_answer(None, by, Answer.NO_ANSWER, T0)


def test_a_late_accept_still_counts_and_an_accepting_doctor_may_decline() -> None:
    by = T0 + timedelta(seconds=90)
    assert check_answer("no_answer", by, Answer.ACCEPTED, by + timedelta(seconds=30)) is Answer.ACCEPTED
    assert check_answer("accepted", by, Answer.DECLINED, T0) is Answer.DECLINED
    with pytest.raises(ResponseError, match="declined"):
        check_answer("declined", by, Answer.ACCEPTED, by)


def test_only_an_accepted_alert_can_be_on_scene() -> None:
    check_on_scene("accepted")
    for answer in (None, "declined", "no_answer"):
        with pytest.raises(ResponseError):
            check_on_scene(answer)


def test_the_lead_is_how_long_before_the_ambulance_the_doctor_arrived() -> None:
    assert arrival_lead_s(T0, T0 + timedelta(minutes=7)) == 420.0
    assert arrival_lead_s(T0 + timedelta(minutes=2), T0) == -120.0
    assert arrival_lead_s(None, T0) is None


def test_the_shift_summary_counts_doctors_who_beat_the_ambulance_and_by_how_much() -> None:
    from dispatch.first_response import summarise

    m = timedelta(minutes=1)
    s = summarise([
        ("accepted", T0, T0 + 6 * m),  # 6 min ahead
        ("accepted", T0 + 3 * m, T0 + 1 * m),  # 2 min behind
        ("accepted", T0, None),  # the ambulance never reached the scene (treated by the doctor)
        ("declined", None, T0),
        ("no_answer", None, T0),
    ])
    assert (s.alerted, s.accepted, s.arrived, s.first, s.both_arrived) == (5, 3, 3, 2, 2)
    assert s.median_lead_s == 120.0 and s.mean_lead_s == 120.0
    assert s.ahead_median_s == s.ahead_p90_s == 360.0  # the one doctor ahead with an ambulance arriving too


def test_the_lead_of_doctors_ahead_has_a_median_and_a_nearest_rank_p90() -> None:
    from dispatch.first_response import summarise

    m = timedelta(minutes=1)
    s = summarise([("accepted", T0, T0 + k * m) for k in range(1, 11)] + [("accepted", T0 + m, T0)])
    assert (s.first, s.both_arrived) == (10, 11)
    assert s.ahead_median_s == 330.0 and s.ahead_p90_s == 540.0
