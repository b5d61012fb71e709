"""The assignment policy, the pending queue, and the hospital and first-aid post choice."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from dispatch.assignment import (
    STALE_WIDEN_MAX_S,
    Facility,
    Incident,
    Priority,
    Unit,
    UnitStatus,
    choose_hospital,
    decide,
    nearest_first_aid_post,
    next_candidate,
    order_pending,
    redispatch_due,
)

NOW = datetime(2025, 6, 3, 8, 0, tzinfo=UTC)
FRESH = NOW - timedelta(seconds=5)
STALE = NOW - timedelta(seconds=90)


def unit(
    unit_id: str,
    status: UnitStatus = UnitStatus.AVAILABLE,
    *,
    gps_at=FRESH,
    kind="ambulance",
    node=0,
) -> Unit:
    return Unit(unit_id, kind, status, node, gps_at)


def incident(
    priority: Priority | str = Priority.P2, *, kind="ambulance", age_s=0, incident_id="I-1"
) -> Incident:
    return Incident(incident_id, Priority.parse(priority), NOW - timedelta(seconds=age_s), kind)


def test_the_nearest_available_unit_by_road_time_is_chosen():
    d = decide(
        incident(),
        [unit("AMB-01"), unit("AMB-02"), unit("AMB-03")],
        {"AMB-01": 300.0, "AMB-02": 120.0, "AMB-03": 200.0},
        NOW,
    )
    assert d.chosen.unit_id == "AMB-02"
    assert [c.unit_id for c in d.ranked] == ["AMB-02", "AMB-03", "AMB-01"]
    assert d.rule == "nearest available by road time"


def test_equal_etas_break_ties_by_unit_id_whatever_the_input_order():
    etas = {"AMB-07": 200.0, "AMB-03": 200.0, "AMB-05": 200.0}
    for order in (["AMB-07", "AMB-03", "AMB-05"], ["AMB-05", "AMB-07", "AMB-03"]):
        d = decide(incident(), [unit(u) for u in order], etas, NOW)
        assert [c.unit_id for c in d.ranked] == ["AMB-03", "AMB-05", "AMB-07"]


@pytest.mark.parametrize("priority", [Priority.P1, "echo", "delta", "1"])
def test_a_top_priority_call_takes_a_nearer_returning_unit(priority):
    units = [unit("AMB-01"), unit("AMB-02", UnitStatus.RETURNING)]
    d = decide(incident(priority), units, {"AMB-01": 600.0, "AMB-02": 90.0}, NOW)
    assert d.chosen.unit_id == "AMB-02"
    assert "returning" in d.rule and "priority 1" in d.rule


@pytest.mark.parametrize(
    "priority", [Priority.P2, Priority.P3, Priority.P4, "charlie", "bravo", "alpha"]
)
def test_a_lower_priority_call_leaves_returning_units_alone(priority):
    units = [unit("AMB-01"), unit("AMB-02", UnitStatus.RETURNING)]
    d = decide(incident(priority), units, {"AMB-01": 600.0, "AMB-02": 90.0}, NOW)
    assert d.chosen.unit_id == "AMB-01"
    assert [(e.unit_id, e.reason) for e in d.excluded] == [("AMB-02", "status returning")]


def test_a_stale_fix_away_from_base_widens_the_eta_by_its_age_instead_of_ranking_last():
    units = [unit("AMB-01", gps_at=STALE), unit("AMB-02"), unit("AMB-03", gps_at=None)]
    d = decide(incident(), units, {"AMB-01": 60.0, "AMB-02": 900.0, "AMB-03": 30.0}, NOW)
    assert [(c.unit_id, c.stale, c.widened_s) for c in d.ranked] == [
        ("AMB-01", True, pytest.approx(90.0)),
        ("AMB-02", False, 0.0),
        ("AMB-03", True, STALE_WIDEN_MAX_S),
    ]
    assert d.ranked[0].eta_s == pytest.approx(150.0)
    assert d.chosen.unit_id == "AMB-01"
    assert "widened by 90 s" in d.rule


def test_the_widening_stops_at_its_cap():
    old = NOW - timedelta(hours=3)
    d = decide(incident(), [unit("AMB-01", gps_at=old)], {"AMB-01": 60.0}, NOW)
    assert d.chosen.widened_s == STALE_WIDEN_MAX_S
    assert d.chosen.eta_s == pytest.approx(60.0 + STALE_WIDEN_MAX_S)


def test_a_unit_parked_at_its_base_is_there_whatever_its_fix_age():
    parked = Unit("AMB-01", "ambulance", UnitStatus.AVAILABLE, 0, NOW - timedelta(hours=5), at_base=True)
    d = decide(incident(), [parked, unit("AMB-02")], {"AMB-01": 200.0, "AMB-02": 400.0}, NOW)
    assert d.chosen.unit_id == "AMB-01"
    assert (d.chosen.stale, d.chosen.widened_s, d.chosen.at_base) == (False, 0.0, True)
    assert d.rule == "nearest available by road time"


def test_etas_equal_to_the_second_tie_break_on_unit_id():
    etas = {"AMB-09": 200.2, "AMB-02": 199.9, "AMB-05": 201.0}
    d = decide(incident(), [unit(u) for u in etas], etas, NOW)
    assert [c.unit_id for c in d.ranked] == ["AMB-02", "AMB-09", "AMB-05"]


def test_busy_unreachable_unlocated_and_wrong_kind_units_are_excluded_with_a_reason():
    units = [
        unit("AMB-01", UnitStatus.EN_ROUTE),
        unit("AMB-02"),
        unit("AMB-03", node=None),
        unit("AMB-04", UnitStatus.OUT_OF_SERVICE),
        unit("RP-01", kind="river_patrol"),
        unit("AMB-05"),
    ]
    d = decide(
        incident(),
        units,
        {"AMB-01": 10.0, "AMB-02": math.inf, "AMB-03": 10.0, "AMB-04": 5.0, "RP-01": 1.0},
        NOW,
    )
    assert d.chosen is None and d.ranked == ()
    assert d.rule == "no candidate: no eligible unit"
    assert {e.unit_id: e.reason for e in d.excluded} == {
        "AMB-01": "status en_route",
        "AMB-02": "unreachable by road",
        "AMB-03": "no position",
        "AMB-04": "status out_of_service",
        "AMB-05": "unreachable by road",
        "RP-01": "kind river_patrol, incident needs ambulance",
    }


def test_a_water_incident_goes_to_a_river_patrol():
    units = [unit("AMB-01"), unit("RP-01", kind="river_patrol"), unit("RP-02", kind="river_patrol")]
    d = decide(
        incident(kind="river_patrol"), units, {"AMB-01": 10.0, "RP-01": 400.0, "RP-02": 300.0}, NOW
    )
    assert d.chosen.unit_id == "RP-02"


def test_next_candidate_skips_every_unit_that_refused():
    units = [unit("AMB-01"), unit("AMB-02"), unit("AMB-03")]
    first = decide(incident(), units, {"AMB-01": 100.0, "AMB-02": 200.0, "AMB-03": 300.0}, NOW)
    later = NOW + timedelta(seconds=61)
    second = next_candidate(first, "AMB-01", later)
    assert second.chosen.unit_id == "AMB-02" and second.decided_at == later
    assert second.rule == "nearest available by road time after AMB-01 refused"
    third = next_candidate(second, "AMB-02", later)
    assert third.chosen.unit_id == "AMB-03" and third.refused == ("AMB-01", "AMB-02")
    last = next_candidate(third, "AMB-03", later)
    assert last.chosen is None and last.rule.startswith("no candidate: every eligible unit refused")


def test_re_dispatch_is_due_a_minute_after_dispatch_without_en_route():
    assert not redispatch_due(NOW, NOW + timedelta(seconds=59))
    assert redispatch_due(NOW, NOW + timedelta(seconds=60))


def test_a_decision_is_an_audit_record_that_serialises_to_json():
    d = decide(
        incident(), [unit("AMB-01"), unit("AMB-02", UnitStatus.DISPATCHED)], {"AMB-01": 99.94}, NOW
    )
    record = json.loads(json.dumps(d.to_json()))
    assert record["chosen"]["unit_id"] == "AMB-01" and record["chosen"]["eta_s"] == 99.9
    assert record["excluded"] == [{"unit_id": "AMB-02", "reason": "status dispatched"}]
    assert record["decided_at"] == NOW.isoformat() and record["priority"] == 2


def test_pending_incidents_are_served_most_urgent_first_then_longest_waiting():
    pending = [
        incident(Priority.P3, age_s=900, incident_id="I-a"),
        incident(Priority.P1, age_s=10, incident_id="I-b"),
        incident(Priority.P1, age_s=300, incident_id="I-c"),
        incident(Priority.P2, age_s=5, incident_id="I-d"),
        incident(Priority.P1, age_s=300, incident_id="I-0"),
    ]
    assert [i.incident_id for i in order_pending(pending)] == ["I-0", "I-c", "I-b", "I-d", "I-a"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("echo", 1),
        ("DELTA", 1),
        ("charlie", 2),
        ("bravo", 3),
        ("alpha", 4),
        ("omega", 4),
        ("E", 1),
        (2, 2),
        ("3", 3),
    ],
)
def test_priorities_accept_mpds_levels_and_numbers(raw, expected):
    assert Priority.parse(raw) == expected


@pytest.mark.parametrize("raw", [0, 5, "foxtrot", "", None])
def test_an_unknown_priority_is_rejected_with_the_accepted_forms(raw):
    with pytest.raises(ValueError, match="not 1-4 or an MPDS level"):
        Priority.parse(raw)


HOSPITALS = [
    Facility("HOSP-FIRST", 0, frozenset({"stroke", "pci"})),
    Facility("HOSP-TCM", 1),
    Facility("HC-XITANG", 2),
    Facility("HC-FAR", 3, frozenset({"stroke"})),
]


def test_the_receiving_hospital_is_the_nearest_by_road_time_from_the_scene():
    seconds = np.array([900.0, 400.0, 400.0, math.inf])
    choice = choose_hospital(HOSPITALS, seconds)
    assert (choice.facility_id, choice.eta_s) == ("HC-XITANG", 400.0)  # tie broken by id
    assert choice.rule == "nearest hospital by road time"


def test_a_capability_or_a_designated_hospital_overrides_nearness():
    seconds = np.array([900.0, 400.0, 300.0, 1200.0])
    assert choose_hospital(HOSPITALS, seconds, capability="stroke").facility_id == "HOSP-FIRST"
    assert choose_hospital(HOSPITALS, seconds, designated="HC-FAR").rule == "designated hospital"
    fallback = choose_hospital(HOSPITALS, seconds, capability="burns")
    assert fallback.facility_id == "HC-XITANG" and fallback.rule.startswith(
        "no reachable hospital with burns"
    )
    assert choose_hospital(HOSPITALS, np.full(4, math.inf)) is None


def test_the_first_aid_post_alerted_is_the_one_nearest_the_patient_by_road():
    posts = [Facility("FAP-001", 0), Facility("FAP-002", 1), Facility("FAP-003", 2)]
    choice = nearest_first_aid_post(posts, np.array([500.0, math.inf, 240.0]))
    assert (choice.facility_id, choice.eta_s) == ("FAP-003", 240.0)
    assert nearest_first_aid_post(posts, np.full(3, math.inf)) is None
