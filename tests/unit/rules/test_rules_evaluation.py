"""Grading a station's own averages by the 2011 evaluation method, and the hourly rule."""

from __future__ import annotations

import math

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from ingest.readings import AveragePeriod, AverageValue, StationAverage
from ingest.rules import Action, AlarmType, Severity, WaterClass, WaterConfig, WaterState
from ingest.rules.evaluation import TrophicState, grade, trophic_level_index
from ingest.rules.gb3838 import WaterBody
from ingest.rules.water import evaluate_average
from ingest.rules._codec import encode_state

H0 = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)


def v(avg: float, flag: str = "N") -> AverageValue:
    return AverageValue(avg, flag=flag)


# --- grading -----------------------------------------------------------------------------


def test_the_class_is_the_worst_parameter_and_says_what_it_covers() -> None:
    g = grade({"ph": v(7.4), "do_mg_l": v(6.5), "nh3n_mg_l": v(1.3), "tp_mg_l": v(0.15)}, WaterBody.RIVER)
    assert (g.water_class, g.worst_parameter, g.at_least) == (WaterClass.IV, "nh3n_mg_l", False)
    assert g.covers == ("ph", "do_mg_l", "nh3n_mg_l", "tp_mg_l")


def test_a_tp_analyser_in_maintenance_leaves_out_tp_alone() -> None:
    g = grade({"nh3n_mg_l": v(0.4), "tp_mg_l": v(0.9, "M")}, WaterBody.RIVER)
    assert (g.water_class, g.covers, g.left_out) == (WaterClass.II, ("nh3n_mg_l",), {"tp_mg_l": "M"})


@pytest.mark.parametrize("flag", list("FMSDCB"))
def test_every_flag_but_n_and_t_leaves_out_its_own_parameter(flag: str) -> None:
    g = grade({"nh3n_mg_l": v(5.0, flag), "codmn_mg_l": v(3.0)}, WaterBody.RIVER)
    assert (g.water_class, g.left_out) == (WaterClass.II, {"nh3n_mg_l": flag})


def test_over_range_nh3n_is_at_least_its_value_and_grades_as_exceeding() -> None:
    g = grade({"nh3n_mg_l": v(2.0, "T"), "codmn_mg_l": v(3.0)}, WaterBody.RIVER)
    assert (g.water_class, g.worst_parameter, g.at_least) == (WaterClass.V, "nh3n_mg_l", True)


def test_over_range_ph_within_the_range_says_nothing() -> None:
    g = grade({"ph": v(8.5, "T"), "codmn_mg_l": v(3.0)}, WaterBody.RIVER)
    assert (g.water_class, g.left_out) == (WaterClass.II, {"ph": "over_range_inconclusive"})


def test_lake_tn_is_evaluated_apart_from_the_class() -> None:
    g = grade({"tn_mg_l": v(2.4), "tp_mg_l": v(0.04), "codmn_mg_l": v(3.5)}, WaterBody.LAKE)
    assert (g.water_class, g.tn_class, g.left_out["tn_mg_l"]) == (WaterClass.III, WaterClass.BELOW_V, "reference")
    assert "tn_mg_l" not in g.covers


def test_river_tn_is_not_graded() -> None:
    assert grade({"tn_mg_l": v(5.0)}, WaterBody.RIVER).water_class is None


def test_a_taihu_plain_lake_with_much_chlorophyll_is_eutrophic() -> None:
    values = {"chla_ug_l": v(40.0), "tp_mg_l": v(0.12), "tn_mg_l": v(2.2), "codmn_mg_l": v(5.5)}
    g = grade(values, WaterBody.LAKE)
    assert g.tli is not None and 60 < g.tli <= 70
    assert g.trophic_state is TrophicState.MIDDLE_EUTROPHIC


def test_the_trophic_index_needs_chlorophyll_a() -> None:
    assert trophic_level_index({"tp_mg_l": v(0.1), "tn_mg_l": v(2.0)}) is None


def test_the_trophic_index_of_chlorophyll_alone_is_its_own_tli() -> None:
    # TLI(chla) = 10 (2.5 + 1.086 ln chla): 1 µg/L gives 25.
    assert trophic_level_index({"chla_ug_l": v(1.0)}) == pytest.approx(25.0)


def test_transparency_where_measured_joins_the_trophic_index_with_its_weight() -> None:
    # The 2011 method: TLI(SD) = 10 (5.118 − 1.94 ln SD), weight r² = 0.83² against chlorophyll-a's 1.
    chla, sd = 10.0, 0.5
    tli_chla = 10 * (2.5 + 1.086 * math.log(chla))
    tli_sd = 10 * (5.118 - 1.94 * math.log(sd))
    expected = (tli_chla + 0.83**2 * tli_sd) / (1 + 0.83**2)
    g = grade({"chla_ug_l": v(chla), "sd_m": v(sd)}, WaterBody.LAKE)
    assert g.tli == pytest.approx(expected)
    assert g.tli_covers == ("chla_ug_l", "sd_m") and g.to_json()["tli_covers"] == ["chla_ug_l", "sd_m"]


def test_a_murkier_lake_is_more_eutrophic_and_a_flagged_transparency_is_left_out() -> None:
    clear = trophic_level_index({"chla_ug_l": v(10.0), "sd_m": v(1.5)})
    murky = trophic_level_index({"chla_ug_l": v(10.0), "sd_m": v(0.3)})
    assert clear is not None and murky is not None and murky > clear
    flagged = grade({"chla_ug_l": v(10.0), "sd_m": AverageValue(0.3, flag="M")}, WaterBody.LAKE)
    assert flagged.tli == pytest.approx(trophic_level_index({"chla_ug_l": v(10.0)})) and flagged.tli_covers == ("chla_ug_l",)


def test_a_river_has_no_trophic_index_whatever_it_measures() -> None:
    g = grade({"chla_ug_l": v(10.0), "sd_m": v(0.5), "nh3n_mg_l": v(0.4)}, WaterBody.RIVER)
    assert g.tli is None and g.tli_covers == ()


# --- the hourly rule ---------------------------------------------------------------------


def hour(n: int, values: dict[str, AverageValue], period: AveragePeriod = AveragePeriod.HOUR) -> StationAverage:
    return StationAverage("WS01", period, H0 + timedelta(hours=n), values)


def run(averages, config=WaterConfig(), state=None):
    state = state or WaterState("WS01")
    transitions = []
    for a in averages:
        state, out = evaluate_average(state, config, a, a.ts + timedelta(hours=1, minutes=5))
        transitions.extend(out)
    return state, transitions


def test_a_t_flagged_nh3n_spill_for_three_hours_raises_the_hourly_alarm() -> None:
    spill = {"nh3n_mg_l": v(2.0, "T"), "codmn_mg_l": v(4.5)}
    _, out = run([hour(0, spill), hour(1, spill)])
    assert out == []
    _, out = run([hour(0, spill), hour(1, spill), hour(2, spill)])
    [raised] = out
    assert (raised.action, raised.alarm_type, raised.severity) == (Action.RAISE, AlarmType.WATER_HOURLY_EXCEEDED, Severity.MAJOR)
    assert raised.detail["parameter"] == "nh3n_mg_l" and raised.detail["at_least"] is True
    assert raised.detail["hours"] == 3 and raised.detail["covers"] == ["codmn_mg_l", "nh3n_mg_l"]


def test_four_hourly_analyser_results_persist_over_hours_not_over_uploads() -> None:
    bad = {"nh3n_mg_l": v(1.6)}
    _, out = run([hour(0, bad), hour(4, bad)])
    assert [t.action for t in out] == [Action.RAISE]


def test_the_hours_are_configurable_per_station() -> None:
    _, out = run([hour(0, {"nh3n_mg_l": v(1.6)})], WaterConfig(hourly_raise_hours=1))
    assert [t.action for t in out] == [Action.RAISE]


def test_a_maintenance_flag_neither_raises_nor_clears() -> None:
    bad, maint = {"nh3n_mg_l": v(1.6)}, {"nh3n_mg_l": v(9.0, "M")}
    state, out = run([hour(0, bad), hour(1, maint), hour(2, maint), hour(3, maint)])
    assert out == [] and state.hours_worse_since == H0


def test_compliant_hours_clear_it_after_the_clear_hours() -> None:
    bad, good = {"nh3n_mg_l": v(1.6)}, {"nh3n_mg_l": v(0.4)}
    _, out = run([hour(0, bad), hour(1, bad), hour(2, bad), hour(3, good), hour(4, good), hour(5, good)])
    assert [t.action for t in out] == [Action.RAISE, Action.CLEAR]


def test_minute_and_day_averages_and_repeated_hours_change_nothing() -> None:
    bad = {"nh3n_mg_l": v(1.6)}
    state, _ = run([hour(0, bad)])
    assert run([hour(0, bad), hour(0, bad)])[0] == state
    assert run([hour(1, bad, AveragePeriod.DAY), hour(2, bad, AveragePeriod.MINUTE)], state=state)[0] == state


def test_the_hourly_state_round_trips_and_reads_states_stored_before_it() -> None:
    state, _ = run([hour(0, {"nh3n_mg_l": v(1.6)})])
    assert WaterState.from_json(orjson.loads(encode_state(state))) == state
    old = orjson.loads(encode_state(state))
    for key in ("hour_last", "hours_worse_since", "hours_better_since"):
        del old[key]
    assert WaterState.from_json(old).hour_last is None
