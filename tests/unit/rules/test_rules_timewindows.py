from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from ingest.rules import ConfigError, DailyWindow
from ingest.rules.timewindows import (
    accumulated_deadline,
    contiguous_deadline,
    deadline_in_same_occurrence,
    resolve_timezone,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = DailyWindow(time(7), time(22))
NIGHT = DailyWindow(time(22), time(6))


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 6, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.mark.parametrize(
    ("hour", "minute", "inside"),
    [(21, 59, False), (22, 0, True), (23, 59, True), (0, 0, True), (5, 59, True), (6, 0, False)],
)
def test_a_night_window_across_midnight_contains_both_sides_of_midnight(hour, minute, inside):
    assert NIGHT.contains(SHANGHAI, local(3, hour, minute)) is inside


def test_equal_start_and_end_means_all_day():
    always = DailyWindow(time(0), time(0))
    assert always.all_day and always.contains(SHANGHAI, local(3, 13))


def test_accumulating_time_pauses_outside_the_window():
    # 21:00 -> 22:00 is one hour; the count resumes at 07:00 and reaches 4 h at 10:00.
    deadline = accumulated_deadline(DAY, SHANGHAI, local(3, 21), timedelta(hours=4))
    assert deadline == local(4, 10)


def test_accumulating_from_inside_quiet_hours_starts_when_the_window_opens():
    assert accumulated_deadline(DAY, SHANGHAI, local(4, 2), timedelta(hours=4)) == local(4, 11)


def test_accumulating_across_midnight_in_a_window_that_crosses_it():
    evening_shift = DailyWindow(time(20), time(4))
    deadline = accumulated_deadline(evening_shift, SHANGHAI, local(3, 23), timedelta(hours=4))
    assert deadline == local(4, 3)


def test_contiguous_stretch_interrupted_by_the_window_end_starts_over():
    # Opened at 05:59: only one minute before 06:00, so the next chance is 22:02.
    deadline = contiguous_deadline(NIGHT, SHANGHAI, local(4, 5, 59), timedelta(minutes=2))
    assert deadline == local(4, 22, 2)


def test_episode_deadline_requires_the_start_inside_the_window_and_the_end_before_it_closes():
    half_hour = timedelta(minutes=30)
    assert deadline_in_same_occurrence(NIGHT, SHANGHAI, local(3, 23, 50), half_hour) == local(
        4, 0, 20
    )
    assert deadline_in_same_occurrence(NIGHT, SHANGHAI, local(4, 5, 50), half_hour) is None
    assert deadline_in_same_occurrence(NIGHT, SHANGHAI, local(3, 21, 50), half_hour) is None


def test_a_window_occurrence_ending_exactly_at_the_deadline_still_counts():
    half_hour = timedelta(minutes=30)
    assert deadline_in_same_occurrence(NIGHT, SHANGHAI, local(4, 5, 30), half_hour) == local(4, 6)


def test_windows_parse_from_text_or_mapping():
    assert DailyWindow.parse("22:00-06:00") == NIGHT
    assert DailyWindow.parse({"start": "07:00", "end": "22:00"}) == DAY
    assert NIGHT.to_text() == "22:00-06:00"
    with pytest.raises(ConfigError, match="HH:MM-HH:MM"):
        DailyWindow.parse("22:00")


def test_time_zones_are_iana_names_or_fixed_offsets():
    assert resolve_timezone("+08:00").utcoffset(None) == timedelta(hours=8)
    assert resolve_timezone("UTC-03:30").utcoffset(None) == -timedelta(hours=3, minutes=30)
    assert resolve_timezone("Asia/Shanghai") == SHANGHAI
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        resolve_timezone("Mars/Olympus")
