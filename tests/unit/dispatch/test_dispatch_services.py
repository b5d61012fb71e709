"""The right service: which unit kind an incident needs, who is handed it, when an
ambulance goes too, and the priorities per kind."""

from __future__ import annotations

import pytest

from dispatch.incident_policy import (
    Verification,
    companion_for,
    companion_reason,
    handoffs_for,
    incident_for,
    needs_verification,
    unit_kind_for,
)


@pytest.mark.parametrize(
    ("alarm", "kind", "priority", "unit"),
    [("smoke", "fire", 1, "fire"), ("gas", "gas", 2, "fire"), ("sos", "medical", 1, "ambulance"),
     ("water_class_exceeded", "water", 3, "river_patrol")],
)
def test_each_alarm_opens_its_kind_at_its_priority_for_the_right_unit(alarm, kind, priority, unit):
    spec = incident_for(alarm, emergency=True, person_id="P-1")
    assert (spec.kind, spec.priority) == (kind, priority)
    assert unit_kind_for(spec.kind) == unit


def test_smoke_and_gas_are_never_sent_to_an_ambulance():
    assert {unit_kind_for(k) for k in ("fire", "gas")} == {"fire"}


def test_fire_is_handed_to_119_and_gas_to_119_and_the_gas_company():
    assert handoffs_for("fire") == ("fire_service_119",)
    assert handoffs_for("gas") == ("fire_service_119", "gas_company")
    assert handoffs_for("medical") == () and handoffs_for("water") == ()


@pytest.mark.parametrize("reason", ["hurt", "no_answer"])
def test_someone_hurt_or_not_answering_adds_a_priority_1_ambulance(reason):
    for kind in ("fire", "gas"):
        spec = companion_for(kind, reason)
        assert (spec.kind, spec.priority, unit_kind_for(spec.kind)) == ("medical", 1, "ambulance")
    assert companion_for("medical", reason) is None


def test_an_unknown_reason_for_an_ambulance_is_refused_with_the_accepted_ones():
    with pytest.raises(ValueError, match="hurt, no_answer"):
        companion_for("fire", "bored")


def test_an_alarm_is_the_same_exceedance_only_while_the_other_record_of_its_parameter_is_raised() -> None:
    from dispatch.incident_policy import LinkedAlarm, same_exceedance

    real_time_nh3n = LinkedAlarm("water_class_exceeded", "nh3n_mg_l", raised=True)
    assert same_exceedance("water_hourly_exceeded", "nh3n_mg_l", [real_time_nh3n])
    assert not same_exceedance("water_hourly_exceeded", "tp_mg_l", [real_time_nh3n])  # another parameter
    assert not same_exceedance("water_hourly_exceeded", "nh3n_mg_l", [LinkedAlarm("water_class_exceeded", "nh3n_mg_l", raised=False)])
    assert not same_exceedance("water_class_exceeded", "nh3n_mg_l", [real_time_nh3n])  # a new run of the same rule
    assert not same_exceedance("water_hourly_exceeded", None, [real_time_nh3n])
    assert not same_exceedance("sos", "nh3n_mg_l", [real_time_nh3n])


def test_only_a_fire_or_gas_incident_at_a_persons_home_is_verified_by_a_call():
    assert needs_verification("fire", "P-1") and needs_verification("gas", "P-1")
    assert not needs_verification("fire", None)  # a caller's report: the caller is on the line
    assert not needs_verification("medical", "P-1") and not needs_verification("water", None)


@pytest.mark.parametrize(("outcome", "reason"), [(Verification.OK, None), (Verification.HURT, "hurt"),
                                                 (Verification.NO_ANSWER, "no_answer")])
def test_an_answer_unhurt_keeps_the_fire_crew_alone_and_anything_else_adds_the_ambulance(outcome, reason):
    assert companion_reason(outcome) == reason
    if reason is not None:
        assert companion_for("fire", reason) is not None
