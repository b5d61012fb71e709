from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from ingest.readings import WaterReading
from ingest.rules import (
    Action,
    AlarmType,
    AnomalyConfig,
    Severity,
    WaterConfig,
    WaterState,
    evaluate_water,
)
from ingest.rules.anomaly import ParameterHistory, binomial_cdf, observe

T0 = datetime(2025, 6, 3, 0, 0, tzinfo=UTC)
# Anomaly rule on conductivity alone (ungraded, so the class rule stays quiet).
COND = WaterConfig.from_mapping({"anomaly": {"parameters": ["cond_us_cm"]}})


def run(values, state=None, flag="N", start=0):
    state = state or WaterState("WS01")
    transitions = []
    for i, value in enumerate(values, start=start):
        r = WaterReading("WS01", T0 + timedelta(minutes=i), {"cond_us_cm": value}, flag=flag)
        state, emitted = evaluate_water(state, COND, r, r.ts)
        transitions.extend(emitted)
    return state, transitions


def noisy(n, level=500.0, sigma=3.0, seed=1):
    rng = random.Random(seed)
    return [rng.gauss(level, sigma) for _ in range(n)]


def test_binomial_cdf_matches_known_values():
    assert binomial_cdf(6, 8, 0.5) == pytest.approx(0.96484375)
    assert binomial_cdf(5, 8, 0.5) == pytest.approx(0.85546875)
    assert binomial_cdf(8, 8, 0.5) == pytest.approx(1.0)


def test_normal_noise_raises_no_anomaly():
    _, transitions = run(noisy(300))
    assert transitions == []


def test_a_perfectly_flat_line_with_one_digit_flicker_raises_no_anomaly():
    # Without a std floor the flicker would be infinitely many sigmas from a flat history.
    values = [500.0] * 40 + [501.0, 500.0, 501.0, 501.0, 500.0, 501.0, 501.0, 501.0]
    _, transitions = run(values)
    assert transitions == []


def test_a_single_spike_raises_no_anomaly():
    _, transitions = run([*noisy(40), 900.0, *noisy(20, seed=2)])
    assert transitions == []


def test_a_sustained_shift_raises_a_minor_water_anomaly_naming_the_parameter():
    _, transitions = run(noisy(40) + noisy(10, level=650.0, seed=3))
    raised = transitions[0]
    assert raised.action is Action.RAISE
    assert raised.alarm_type is AlarmType.WATER_ANOMALY and raised.severity is Severity.MINOR
    assert raised.detail["parameters"] == ["cond_us_cm"]
    assert raised.detail["triggered"][0]["parameter"] == "cond_us_cm"
    # The 6th outlier of 8 is the first to make P exceed 0.95.
    assert raised.at == T0 + timedelta(minutes=45)


def test_the_anomaly_clears_once_the_baseline_has_relearnt_the_new_level():
    _, transitions = run(noisy(40) + noisy(60, level=650.0, seed=3))
    assert [t.action for t in transitions] == [Action.RAISE, Action.CLEAR]


def test_flagged_values_never_enter_the_history():
    state, _ = run(noisy(40))
    state_after, transitions = run([5000.0] * 20, state=state, flag="T", start=40)
    assert transitions == [] and state_after == state


def test_nothing_is_judged_before_min_history_values():
    history, judgement = ParameterHistory(), None
    config = AnomalyConfig()
    for value in [1.0] * (config.min_history - 1) + [1000.0]:
        history, judgement = observe(history, "cond_us_cm", value, config)
    assert judgement is not None and judgement.outlier is False and judgement.mean is None
    assert history.outliers == ()


def test_history_stays_bounded():
    state, _ = run(noisy(500))
    history = state.histories["cond_us_cm"]
    assert len(history.values) == 30 and len(history.outliers) == 8


def test_outliers_outside_an_event_are_kept_out_of_the_baseline():
    state, _ = run(noisy(40))
    before = state.histories["cond_us_cm"].values
    state, _ = run([900.0], state=state, start=40)
    assert state.histories["cond_us_cm"].values == before


def test_overriding_one_std_floor_keeps_the_others():
    config = AnomalyConfig.from_mapping({"std_floors": {"ph": 0.2}})
    assert config.std_floors["ph"] == 0.2
    assert config.std_floors["cond_us_cm"] == 5.0
    assert config.std_floor("cond_us_cm", 10_000.0) == pytest.approx(100.0)
    assert not math.isnan(config.std_floor("unknown", 0.0))
