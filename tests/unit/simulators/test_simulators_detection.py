"""The detection table: injected events against raised alarms."""

from __future__ import annotations

from simulators.detection import WEEK_S, Injected, Raised, detection_table

T = 1_780_000_000.0


def table(injected, raised, persons=10, duration_s=WEEK_S / 10):
    return detection_table(injected, raised, persons=persons, duration_s=duration_s, run_end=T + duration_s)


def test_an_sos_raised_for_its_person_is_detected_and_one_for_another_person_is_false() -> None:
    t = table([Injected("sos", "P-1", T, T + 60)], [Raised("sos", "P-2", T + 5)])
    assert t.missed_sos == 1 and t.detection_pct == 0.0
    assert t.false_alarms == {"sos": 1}
    t = table([Injected("sos", "P-1", T, T + 60)], [Raised("sos", "P-1", T + 5)])
    assert t.missed_sos == 0 and t.detection_pct == 100.0 and t.false_alarms == {}
    assert t.rows[0].latency_min is not None and t.rows[0].latency_min < 0.1


def test_an_uncancelled_fall_needs_the_emergency_and_its_first_alert_is_not_false() -> None:
    fall = Injected("fall", "P-1", T, T + 2700)
    t = table([fall], [Raised("fall", "P-1", T + 1), Raised("fall_uncancelled", "P-1", T + 62)])
    assert t.life_safety == (1, 1) and t.false_alarms == {}
    t = table([fall], [Raised("fall", "P-1", T + 1)])
    assert t.life_safety == (0, 1)


def test_vitals_the_watch_never_measured_are_listed_but_not_counted() -> None:
    t = table([Injected("spo2_low", "P-1", T, T + 300, observable=False)], [])
    [row] = t.rows
    assert (row.injected, row.unmeasured, row.missed) == (0, 1, 0) and t.detection_pct is None


def test_false_alarms_are_per_person_week_and_device_alarms_are_not_false() -> None:
    t = table([], [Raised("bed_exit_night", "P-3", T), Raised("device_silent", "P-3", T), Raised("battery_low", "P-4", T)])
    assert t.false_alarms == {"bed_exit_night": 1}
    assert t.person_weeks == 1.0 and t.false_per_person_week == 1.0
    assert "false alarms: 1" in t.format()


def test_an_accelerated_replay_sets_timer_alarms_apart_from_the_false_alarm_rate() -> None:
    raised = [Raised("inactivity", "P-3", T), Raised("bed_exit_night", "P-3", T), Raised("fall", "P-4", T)]
    live = table([], raised)
    assert live.false_alarms == {"inactivity": 1, "bed_exit_night": 1, "fall": 1}
    replay = detection_table([], raised, persons=10, duration_s=WEEK_S / 10, run_end=T, live=False)
    assert replay.false_alarms == {"fall": 1} and replay.replay_timer_alarms == {"inactivity": 1, "bed_exit_night": 1}
    assert "measured at 1× only" in replay.format()
