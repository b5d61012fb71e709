"""The coverage layer and the move-up, in a real browser on the simulated county: villages
coloured by how soon an available ambulance reaches them, and an uncovered town's move-up
accepted with one click. The picture in docs/dispatch.md is saved by this test."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import watch
from tests.e2e.test_console import sign_in
from tests.fix_wait import wait_for

pytestmark = pytest.mark.slow

DOCS_PICTURE = Path(__file__).resolve().parents[2] / "docs" / "coverage-layer.png"


def test_the_console_shows_coverage_and_a_move_up_is_accepted_with_one_click(
    browser, shot, page_errors, jiashan_url: str, jiashan_registry: dict, start_api,
) -> None:
    # Taozhuang's and Xitang's ambulances are out of service: the north is short of cover.
    north = [u["unit_id"] for u in jiashan_registry["units"] if u["kind"] == "ambulance" and u["town"] in ("Taozhuang", "Xitang")]
    with psycopg.connect(jiashan_url) as conn:
        for unit_id in north:
            conn.execute("INSERT INTO unit_state (unit_id, status) VALUES (%s, 'out_of_service') "
                         "ON CONFLICT (unit_id) DO UPDATE SET status = 'out_of_service'", (unit_id,))
    api = start_api(jiashan_url)

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    watch(page, page_errors)
    page.goto(f"{api.base}/console")
    sign_in(page, "disp1")
    expect(page.locator("#map-message")).to_be_hidden(timeout=15_000)
    expect(page.locator("path.coverage-site").first).to_be_attached(timeout=15_000)
    assert page.locator("path.coverage-site").count() == sum(f["kind"] == "first_aid_post" for f in jiashan_registry["facilities"])
    assert page.locator("path.coverage-site.band-0").count() > 0
    move_up = page.locator("#move-up")
    expect(move_up).to_be_visible(timeout=10_000)
    unit_id = move_up.get_attribute("data-unit-id")
    facility_id = move_up.get_attribute("data-facility-id")
    assert unit_id not in north and facility_id.startswith("ST-")
    picture = shot(page, "coverage-layer")
    shutil.copyfile(picture, DOCS_PICTURE)

    page.click("#move-up-accept")

    def relocations() -> list:
        with psycopg.connect(jiashan_url) as conn:
            return conn.execute("SELECT detail FROM dispatch_audit WHERE action = 'relocate' AND unit_id = %s", (unit_id,)).fetchall()

    wait_for(lambda: relocations(), timeout=10)
    [(detail,)] = relocations()
    assert detail["facility_id"] == facility_id
    shot(page, "move-up-accepted")
    assert page_errors == []
