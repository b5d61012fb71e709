from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.rules.gb3838 import (
    CLASSIFIED_PARAMETERS,
    WaterBody,
    WaterClass,
    class_limit,
    classify,
    classify_parameter,
)

RIVER, LAKE = WaterBody.RIVER, WaterBody.LAKE
CEILING_PARAMETERS = ("codmn_mg_l", "cod_mg_l", "nh3n_mg_l", "tp_mg_l", "tn_mg_l")


@pytest.mark.parametrize(
    ("parameter", "value", "body", "expected"),
    [
        ("nh3n_mg_l", 1.0, RIVER, WaterClass.III),
        ("nh3n_mg_l", 1.0001, RIVER, WaterClass.IV),
        ("nh3n_mg_l", 0.15, RIVER, WaterClass.I),
        ("nh3n_mg_l", 2.0, RIVER, WaterClass.V),
        ("nh3n_mg_l", 2.01, RIVER, WaterClass.BELOW_V),
        ("codmn_mg_l", 6.0, RIVER, WaterClass.III),
        ("codmn_mg_l", 15.0, RIVER, WaterClass.V),
        ("cod_mg_l", 20.0, RIVER, WaterClass.III),
        ("cod_mg_l", 40.5, RIVER, WaterClass.BELOW_V),
        ("do_mg_l", 7.5, RIVER, WaterClass.I),
        ("do_mg_l", 5.0, RIVER, WaterClass.III),
        ("do_mg_l", 4.99, RIVER, WaterClass.IV),
        ("do_mg_l", 2.0, RIVER, WaterClass.V),
        ("do_mg_l", 1.99, RIVER, WaterClass.BELOW_V),
        ("tp_mg_l", 0.2, RIVER, WaterClass.III),
        ("tp_mg_l", 0.05, LAKE, WaterClass.III),
        ("tn_mg_l", 1.0, LAKE, WaterClass.III),
    ],
)
def test_a_value_exactly_at_a_class_limit_is_in_that_class(parameter, value, body, expected):
    assert classify_parameter(parameter, value, body) is expected


@pytest.mark.parametrize(("ph", "expected"), [(6.0, 1), (9.0, 1), (7.4, 1), (5.99, 6), (9.01, 6)])
def test_ph_outside_six_to_nine_is_worse_than_class_five(ph, expected):
    assert classify_parameter("ph", ph, RIVER) == expected


def test_cod_of_15_is_class_one_because_classes_one_and_two_share_the_limit():
    assert classify_parameter("cod_mg_l", 15.0, RIVER) is WaterClass.I
    assert classify_parameter("cod_mg_l", 15.1, RIVER) is WaterClass.III


def test_total_phosphorus_uses_the_stricter_column_for_lakes():
    assert classify_parameter("tp_mg_l", 0.1, RIVER) is WaterClass.II
    assert classify_parameter("tp_mg_l", 0.1, LAKE) is WaterClass.IV


def test_total_nitrogen_is_graded_only_for_lakes_and_reservoirs():
    assert classify_parameter("tn_mg_l", 5.0, RIVER) is None
    assert classify_parameter("tn_mg_l", 5.0, LAKE) is WaterClass.BELOW_V
    assert WaterBody("reservoir") is LAKE


def test_ungraded_parameters_have_no_class():
    for parameter in ("temp_c", "turbidity_ntu", "cond_us_cm"):
        assert classify_parameter(parameter, 1e6, RIVER) is None


def test_station_class_is_its_worst_parameter():
    graded = classify({"ph": 7.2, "do_mg_l": 6.5, "nh3n_mg_l": 1.2, "tp_mg_l": 0.15}, RIVER)
    assert graded is not None
    assert graded.water_class is WaterClass.IV
    assert (graded.worst_parameter, graded.value) == ("nh3n_mg_l", 1.2)
    assert graded.per_parameter["do_mg_l"] is WaterClass.II


def test_ties_for_worst_parameter_are_broken_in_a_fixed_order():
    graded = classify({"tp_mg_l": 0.3, "nh3n_mg_l": 1.5}, RIVER)
    assert graded is not None and graded.worst_parameter == "nh3n_mg_l"


def test_a_reading_without_graded_parameters_has_no_class():
    assert classify({"temp_c": 21.0, "tn_mg_l": 9.0}, RIVER) is None


def test_below_v_is_class_six_and_labelled_lie_v():
    assert int(WaterClass.BELOW_V) == 6
    assert WaterClass.BELOW_V.label == "劣V"
    assert WaterClass("劣V") is WaterClass.BELOW_V
    assert WaterClass("III") is WaterClass.III is WaterClass(3)


def test_class_limit_reports_the_bound_of_the_target_class():
    assert class_limit("nh3n_mg_l", WaterClass.III, RIVER) == 1.0
    assert class_limit("do_mg_l", WaterClass.III, RIVER) == 5.0
    assert class_limit("ph", WaterClass.III, RIVER) == [6.0, 9.0]
    assert class_limit("tp_mg_l", WaterClass.III, LAKE) == 0.05


concentrations = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)
bodies = st.sampled_from(list(WaterBody))


@given(st.sampled_from(CEILING_PARAMETERS), concentrations, concentrations, bodies)
def test_a_higher_concentration_never_yields_a_better_class(parameter, a, b, body):
    low, high = sorted((a, b))
    graded_low = classify_parameter(parameter, low, body)
    graded_high = classify_parameter(parameter, high, body)
    if graded_low is not None:
        assert graded_high is not None and graded_high >= graded_low


@given(concentrations, concentrations)
def test_less_dissolved_oxygen_never_yields_a_better_class(a, b):
    low, high = sorted((a, b))
    assert classify_parameter("do_mg_l", low, RIVER) >= classify_parameter("do_mg_l", high, RIVER)


@given(
    st.dictionaries(st.sampled_from(CLASSIFIED_PARAMETERS), concentrations, min_size=1),
    st.sampled_from(CEILING_PARAMETERS),
    st.floats(min_value=0.0, max_value=50.0, allow_nan=False),
    bodies,
)
def test_worsening_one_parameter_never_improves_the_station_class(values, parameter, extra, body):
    before = classify(values, body)
    worse = {**values, parameter: values.get(parameter, 0.0) + extra}
    after = classify(worse, body)
    if before is not None:
        assert after is not None and after.water_class >= before.water_class
