"""The pages of a county other than the simulated demo, in a real browser: titles from its
region settings in both languages, and the map opened on it and framed by its boundary."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import watch
from tests.e2e.test_console import sign_in
from tests.fix_second_county import SECOND_REGION_ENV

pytestmark = pytest.mark.slow

DEMO_COUNTY = re.compile("嘉善|jiashan", re.IGNORECASE)
# The second county's boundary (tests/fixtures/second_county/boundary.geojson), as a box.
LAT, LON = (26.25, 26.58), (107.96, 108.30)


def test_the_pages_are_titled_by_the_county_and_the_map_opens_on_it(
    browser, shot, page_errors, second_county_url: str, start_api
) -> None:
    api = start_api(second_county_url, env=SECOND_REGION_ENV)
    page = browser.new_page(viewport={"width": 1400, "height": 850})
    watch(page, page_errors)
    page.goto(f"{api.base}/console")
    expect(page.locator("#login-view h1")).to_have_text("雷山应急指挥 · 值班台")
    expect(page).to_have_title("雷山应急指挥 · 值班台")
    shot(page, "login")

    sign_in(page, "disp-ls")
    # Drawn and framed: the loaded boundary's home area is the map's.
    page.wait_for_function("() => window.__wp.state.map && window.__wp.state.homeBounds", timeout=10_000)
    expect(page.locator("#map-message")).to_be_hidden(timeout=10_000)
    centre = page.evaluate("(() => { const c = window.__wp.state.map.getCenter(); return [c.lat, c.lng]; })()")
    assert LAT[0] < centre[0] < LAT[1] and LON[0] < centre[1] < LON[1], centre
    expect(page.locator("#map .leaflet-pane svg path").first).to_be_attached()
    shot(page, "console")
    assert DEMO_COUNTY.search(page.content()) is None

    page.locator(".lang-toggle:visible").first.click()
    expect(page).to_have_title("Leishan Emergency Control Room")

    tier = browser.new_page(viewport={"width": 420, "height": 800})
    watch(tier, page_errors)
    tier.goto(f"{api.base}/first-aid")
    expect(tier.locator("header h1")).to_have_text(re.compile("^(雷山守望 · 村卫生室|Watchpost · First-aid post)$"))
    assert DEMO_COUNTY.search(tier.content()) is None
    assert page_errors == []
