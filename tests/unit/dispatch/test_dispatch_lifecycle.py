"""Unit and incident lifecycles: the allowed paths, and clear refusals of the rest."""

from __future__ import annotations

import pytest

from dispatch.lifecycle import (
    INCIDENT_TRANSITIONS,
    UNIT_TRANSITIONS,
    IllegalTransition,
    IncidentStatus,
    UnitStatus,
    allowed_next,
    is_open,
    transition,
)

U, I = UnitStatus, IncidentStatus


def walk(start, *steps):
    state = start
    for step in steps:
        state = transition(state, step)
    return state


def test_a_unit_goes_round_the_full_cycle_back_to_available():
    assert (
        walk(
            U.AVAILABLE,
            "dispatched",
            "en_route",
            "on_scene",
            "transporting",
            "at_hospital",
            "returning",
            "available",
        )
        is U.AVAILABLE
    )


def test_an_incident_goes_from_new_to_closed():
    assert walk(I.NEW, "dispatched", "on_scene", "transporting", "closed") is I.CLOSED


@pytest.mark.parametrize("state", list(U))
def test_a_unit_can_go_out_of_service_from_any_state_and_comes_back_available(state):
    assert transition(state, U.OUT_OF_SERVICE) is U.OUT_OF_SERVICE
    assert transition(U.OUT_OF_SERVICE, U.AVAILABLE) is U.AVAILABLE


@pytest.mark.parametrize("state", [I.NEW, I.DISPATCHED, I.ON_SCENE, I.TRANSPORTING])
def test_an_open_incident_can_be_cancelled(state):
    assert is_open(state)
    assert transition(state, I.CANCELLED) is I.CANCELLED


def test_a_returning_unit_can_be_dispatched_again_for_a_top_priority_call():
    assert transition(U.RETURNING, U.DISPATCHED) is U.DISPATCHED


def test_an_illegal_unit_transition_says_what_was_expected_and_what_arrived():
    with pytest.raises(IllegalTransition) as err:
        transition(U.AVAILABLE, "on_scene")
    assert (
        str(err.value)
        == "unit cannot go from 'available' to 'on_scene': expected one of dispatched, out_of_service"
    )
    assert (err.value.current, err.value.new) == ("available", "on_scene")


def test_a_closed_incident_is_final():
    with pytest.raises(
        IllegalTransition,
        match=r"incident cannot go from 'closed' to 'dispatched': expected nothing \('closed' is final\)",
    ):
        transition(I.CLOSED, I.DISPATCHED)
    assert not is_open(I.CLOSED) and not is_open(I.CANCELLED)


def test_an_unknown_status_string_is_named_as_unknown():
    with pytest.raises(IllegalTransition, match="to unknown status 'parked'"):
        transition(U.EN_ROUTE, "parked")


def test_a_repeated_status_report_changes_nothing():
    assert transition(U.ON_SCENE, "on_scene") is U.ON_SCENE
    assert transition(I.CLOSED, "closed") is I.CLOSED


def test_every_transition_not_in_the_tables_is_refused():
    for table, states in ((UNIT_TRANSITIONS, list(U)), (INCIDENT_TRANSITIONS, list(I))):
        for current in states:
            assert allowed_next(current) == table[current]
            for new in states:
                if new is current or new in table[current]:
                    assert transition(current, new) is new
                else:
                    with pytest.raises(IllegalTransition):
                        transition(current, new)
