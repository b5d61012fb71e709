"""The trend charts in a real browser: with data written straight into the database, each
chart is opened and its drawn data (uPlot instance in window.__wpCharts), class bands,
thresholds and markers are checked; screenshots go to test-artifacts/e2e/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import watch
from tests.e2e.test_console import sign_in
from tests.integration.test_trends import PERSON, STATION, seed_trends

pytestmark = pytest.mark.slow


def chart(page, key: str) -> dict:
    return page.evaluate(
        """(key) => { const u = window.__wpCharts[key]; if (!u) return null;
             return { series: u.series.map((s) => s.label || null), data: u.data, wp: u.wp || null,
                      canvas: !!u.root.querySelector('canvas'), width: u.width }; }""",
        key,
    )


def test_console_station_person_and_service_charts(browser, shot, page_errors, jiashan_url: str, start_api) -> None:
    seed_trends(jiashan_url)
    api = start_api(jiashan_url)
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    watch(page, page_errors)
    page.goto(f"{api.base}/console")
    sign_in(page, "op1")
    expect(page.locator("#conn")).to_have_attribute("data-state", "connected", timeout=10_000)

    # Station: a click on its map marker opens the panel.
    marker = page.locator(f'[data-station="{STATION}"]')
    expect(marker).to_be_attached(timeout=10_000)
    marker.dispatch_event("click")
    expect(page.locator("#chart-station canvas")).to_be_visible(timeout=10_000)
    page.wait_for_function("() => window.__wpCharts.station && window.__wpCharts.station.wp.range === '24h'")
    c = chart(page, "station")
    assert c["canvas"] and len(c["data"]) == 6 and len(c["data"][0]) == 24  # avg, min, max, flagged, over range
    assert sum(v is not None for v in c["data"][1]) >= 23  # the avg line
    assert [b[0] for b in c["wp"]["bands"]] == ["I", "II", "III", "IV", "V", "劣V"]
    assert c["wp"]["target_limit"] == 1.0 and len(c["wp"]["episodes"]) == 1
    shot(page, "station-24h")

    page.locator('#chart-controls [data-range="30d"]').click()
    page.wait_for_function("() => window.__wpCharts.station && window.__wpCharts.station.wp.range === '30d'")
    c = chart(page, "station")
    assert len(c["data"][0]) == 60 and any(v for v in c["data"][4])  # flagged buckets drawn as points
    shot(page, "station-30d")

    page.select_option("#chart-param", "do_mg_l")
    page.wait_for_function("() => window.__wpCharts.station && window.__wpCharts.station.wp.param === 'do_mg_l'")
    c = chart(page, "station")
    assert c["wp"]["limits"]["kind"] == "floor" and c["wp"]["bands"][0] == ["I", 7.5, None]
    shot(page, "station-do-30d")

    # Person: from JavaScript as the alarm row's 📈 button does.
    page.evaluate(f"WPCharts.openPerson('{PERSON}')")
    page.wait_for_function("() => window.__wpCharts['person.hr'] && window.__wpCharts['person.spo2']")
    hr, spo2 = chart(page, "person.hr"), chart(page, "person.spo2")
    assert len(hr["data"][0]) == 96 and max(v for v in hr["data"][3] if v is not None) > 130
    assert hr["wp"]["thresholds"]["hr_high_bpm"] == 130 and [a["type"] for a in hr["wp"]["alarms"]] == ["hr_high"]
    assert sum(v is not None for v in spo2["data"][1]) >= 95
    assert page.locator("#chart-body .home-strip .cell").count() == 144
    assert page.locator("#chart-body .home-strip .cell.l1, #chart-body .home-strip .cell.l2, #chart-body .home-strip .cell.l3").count() > 100
    shot(page, "person-24h")

    # Service dashboard from the top bar.
    page.click("#open-service")
    page.wait_for_function("() => window.__wpCharts['service.dispatch'] && window.__wpCharts['service.response']")
    d = chart(page, "service.dispatch")
    assert sum(d["data"][1]) == 3 and d["wp"]["target"] == 180
    assert sum(chart(page, "service.response")["data"][1]) == 3
    expect(page.locator(".svc-kpis b").first).to_have_text("67 %")
    shot(page, "service")
    assert not page_errors, page_errors


def test_family_page_trends(browser, shot, page_errors, jiashan_url: str, start_api) -> None:
    seed_trends(jiashan_url)
    api = start_api(jiashan_url)
    page = browser.new_page(viewport={"width": 480, "height": 1400})
    watch(page, page_errors)
    page.goto(f"{api.base}/family")
    sign_in(page, "fam-0001-1")
    key = f"family.{PERSON}.hr"
    page.wait_for_function(f"() => window.__wpCharts['{key}']", timeout=15_000)
    hr = chart(page, key)
    assert hr["canvas"] and len(hr["data"][0]) == 96 and hr["wp"]["thresholds"]["hr_low_bpm"] == 40
    expect(page.locator(f'[data-trend-person="{PERSON}"] .home-strip .cell')).to_have_count(144)
    shot(page, "family-24h", full_page=True)
    page.locator(f'[data-trend-person="{PERSON}"] [data-range="7d"]').click()
    page.wait_for_function(f"() => window.__wpCharts['{key}'] && window.__wpCharts['{key}'].wp.range === '7d'")
    assert len(chart(page, key)["data"][0]) == 84
    shot(page, "family-7d", full_page=True)
    # Only the linked relative: one trend card.
    assert page.locator("[data-trend-person]").count() == 1
    assert not page_errors, page_errors


def test_the_console_shows_a_stations_daily_and_monthly_class_and_what_it_covers(browser, shot, page_errors, jiashan_url: str, start_api) -> None:
    from datetime import UTC, datetime, timedelta, timezone

    import psycopg

    cst = timezone(timedelta(hours=8))
    today = datetime.now(UTC).astimezone(cst).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    with psycopg.connect(jiashan_url) as conn:
        # Yesterday NH3-N of class V for two hours, TP in maintenance; today class I.
        for at, nh3n in [(yesterday + timedelta(hours=10), 1.8), (yesterday + timedelta(hours=11), 1.7), (today, 0.1)]:
            conn.execute("INSERT INTO station_averages (station_id, period, period_start, nh3n_mg_l, nh3n_mg_l_flag, do_mg_l, do_mg_l_flag, "
                         "tp_mg_l, tp_mg_l_flag) VALUES (%s, 'hour', %s, %s, 'N', 7.6, 'N', 0.9, 'M')", (STATION, at, nh3n))
    api = start_api(jiashan_url)
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    watch(page, page_errors)
    page.goto(f"{api.base}/console")
    sign_in(page, "op1")
    marker = page.locator(f'[data-station="{STATION}"]')
    expect(marker).to_be_attached(timeout=10_000)
    marker.dispatch_event("click")

    day = page.locator(f'#station-classes tr[data-period="{yesterday.date().isoformat()}"]')
    expect(day.locator(".cls")).to_have_text("V", timeout=10_000)
    expect(day).to_have_class("worse")  # worse than its target class III
    expect(day.locator(".covers")).to_have_text("溶解氧, 氨氮")  # TP in maintenance is left out
    expect(page.locator(f'#station-classes tr[data-period="{today.date().isoformat()}"] .cls')).to_have_text("I")
    shot(page, "station-daily-class")

    page.locator('#station-classes [data-class-period="month"]').click()
    months = page.locator("#station-classes table[data-period='month'] tbody tr")
    expect(months.first).to_be_visible(timeout=10_000)
    assert months.count() == len({yesterday.strftime("%Y-%m"), today.strftime("%Y-%m")})
    assert not page_errors, page_errors
