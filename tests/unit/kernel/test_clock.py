from datetime import UTC, datetime, timedelta, timezone

import pytest

from kernel.clock import Clock, FakeClock, SystemClock


def test_the_system_clock_reads_aware_utc_time_and_a_monotonic_clock():
    clock = SystemClock()
    before = datetime.now(UTC)
    now = clock.now()
    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)
    first = clock.monotonic()
    assert clock.monotonic() >= first


def test_both_clocks_satisfy_the_clock_protocol():
    assert isinstance(SystemClock(), Clock)
    assert isinstance(FakeClock(), Clock)


def test_a_fake_clock_stands_still_until_advanced():
    clock = FakeClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC), monotonic=100.0)
    assert clock.now() == clock.now() == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert clock.monotonic() == 100.0


def test_advancing_a_fake_clock_moves_wall_and_monotonic_time_together():
    clock = FakeClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    clock.advance(90)
    clock.advance(timedelta(minutes=1))
    assert clock.now() == datetime(2026, 12, 1, 8, 2, 30, tzinfo=UTC)
    assert clock.monotonic() == 150.0


def test_a_fake_clock_refuses_to_go_backwards_when_advanced():
    clock = FakeClock()
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


def test_setting_a_fake_clock_steps_wall_time_only():
    clock = FakeClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC), monotonic=5.0)
    clock.set(datetime(2000, 1, 1, tzinfo=UTC))
    assert clock.now() == datetime(2000, 1, 1, tzinfo=UTC)
    assert clock.monotonic() == 5.0


def test_a_fake_clock_reads_in_utc_whatever_zone_it_was_given():
    shanghai = timezone(timedelta(hours=8))
    clock = FakeClock(datetime(2026, 12, 1, 16, 0, tzinfo=shanghai))
    assert clock.now() == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)


def test_a_fake_clock_refuses_naive_times():
    with pytest.raises(ValueError, match="timezone"):
        FakeClock(datetime(2026, 12, 1, 8, 0))
    with pytest.raises(ValueError, match="timezone"):
        FakeClock().set(datetime(2026, 12, 1, 8, 0))


def test_an_unset_fake_clock_starts_at_a_fixed_time():
    assert FakeClock().now() == FakeClock().now() == FakeClock.DEFAULT_START
