"""The open/closed sets and release rules derived from the lifecycle table, and the response
targets."""

from __future__ import annotations

from dispatch import targets
from dispatch.lifecycle import (
    CLOSED_INCIDENT,
    OPEN_INCIDENT,
    IncidentStatus,
    UnitStatus,
    is_open,
    reachable_from,
    released,
    values,
)

I, U = IncidentStatus, UnitStatus


def test_the_closed_incident_states_are_the_final_ones_and_every_other_is_open() -> None:
    assert CLOSED_INCIDENT == {I.CLOSED, I.CANCELLED}
    assert OPEN_INCIDENT == {I.NEW, I.DISPATCHED, I.ON_SCENE, I.TRANSPORTING}
    assert all(is_open(s) for s in OPEN_INCIDENT) and not any(is_open(s) for s in CLOSED_INCIDENT)


def test_a_state_set_goes_to_sql_as_a_sorted_list_of_values() -> None:
    assert values(CLOSED_INCIDENT) == ["cancelled", "closed"]


def test_a_unit_may_be_dispatched_only_when_available_or_returning() -> None:
    assert reachable_from(U.DISPATCHED) == {U.AVAILABLE, U.RETURNING}


def test_a_released_unit_goes_back_to_available_before_setting_off_and_returns_once_on_the_road() -> None:
    assert released(U.DISPATCHED) is U.AVAILABLE
    assert released(U.EN_ROUTE) is U.RETURNING
    assert released(U.ON_SCENE) is U.RETURNING
    assert released(U.AT_HOSPITAL) is U.AVAILABLE


def test_a_unit_carrying_a_patient_or_out_of_service_is_not_released() -> None:
    assert released(U.TRANSPORTING) is None
    assert released(U.OUT_OF_SERVICE) is None


def test_the_response_targets_keep_their_figures_and_sources() -> None:
    assert (targets.DISPATCH.seconds, targets.DISPATCH.share) == (180, 0.95)
    assert (targets.RESPONSE.seconds, targets.RESPONSE.share) == (480, 0.90)
    assert targets.TURNOUT.seconds == 60 and "NFPA 1710" in targets.RESPONSE.source
    assert targets.RESPONSE.met_by(480) and not targets.RESPONSE.met_by(480.1)
