"""The shift report's daily coverage: samples weighted by how long each stood."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.report import daily_coverage

DAY = datetime(2026, 12, 1, tzinfo=UTC)


def sample(hours: float, share: float) -> dict:
    return {"at": DAY + timedelta(hours=hours), "within_8": share / 2, "within_12": share * 0.8, "within_15": share,
            "uncovered_towns": []}


def test_each_sample_counts_for_as_long_as_it_stood_and_the_one_before_the_day_from_midnight():
    samples = [sample(-3, 1.0), sample(6, 0.5), sample(12, 0.9)]
    c = daily_coverage(samples, DAY, DAY + timedelta(days=1))
    assert c["within_15"] == pytest.approx((6 * 1.0 + 6 * 0.5 + 12 * 0.9) / 24)
    assert c["worst_within_15"] == 0.5 and c["hours"] == pytest.approx(24)


def test_no_samples_no_figure():
    assert daily_coverage([], DAY, DAY + timedelta(days=1)) is None
