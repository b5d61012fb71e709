"""Where a person's incident is placed: the alert's fix, else a recent fix, else home — and
never at a fix far outside the service region."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dispatch.incident_policy import RECENT_FIX_WINDOW, Fix, LocationSource, Placement, place

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
HOME = Fix(30.84, 120.92, None, None)
MARKET = Fix(30.85, 120.93, 15.0, NOW - timedelta(minutes=1))
NULL_ISLAND = Fix(0.0, 0.0, 5.0, NOW)


def in_county(fix: Fix) -> bool:
    return 30.5 < fix.lat < 31.2 and 120.6 < fix.lon < 121.2


def test_the_alerts_own_fix_wins_when_it_is_in_the_region():
    assert place(MARKET, None, HOME, NOW, in_region=in_county) == Placement(MARKET, LocationSource.ALERT_FIX)


def test_an_alert_fix_outside_the_region_is_passed_over_for_a_recent_fix_and_named():
    placed = place(NULL_ISLAND, MARKET, HOME, NOW, in_region=in_county)
    assert (placed.fix, placed.source, placed.untrusted) == (MARKET, LocationSource.RECENT_FIX, LocationSource.ALERT_FIX)


def test_with_no_trusted_fix_help_goes_home_and_the_first_fix_passed_over_is_named():
    stale_far = Fix(0.0, 0.0, None, NOW - timedelta(minutes=2))
    placed = place(NULL_ISLAND, stale_far, HOME, NOW, in_region=in_county)
    assert (placed.fix, placed.source, placed.untrusted) == (HOME, LocationSource.HOME, LocationSource.ALERT_FIX)
    placed = place(None, stale_far, HOME, NOW, in_region=in_county)
    assert (placed.source, placed.untrusted) == (LocationSource.HOME, LocationSource.RECENT_FIX)


def test_an_old_fix_is_not_recent_and_names_nothing():
    old = Fix(0.0, 0.0, None, NOW - RECENT_FIX_WINDOW - timedelta(seconds=1))
    placed = place(None, old, HOME, NOW, in_region=in_county)
    assert (placed.source, placed.untrusted) == (LocationSource.HOME, None)


def test_without_a_region_every_fix_is_taken():
    assert place(NULL_ISLAND, None, HOME, NOW).source is LocationSource.ALERT_FIX

