"""The three tiers' pages in a real browser, through one incident of the county: the village
doctor accepts on their phone and reaches the patient first, the crew drives it on its
tablet (through a dropped connection), the receiving hospital watches it come and records
the hand-over, the family sees that a doctor and an ambulance are coming — and the other
post and the other hospital see nothing. Screenshots go to test-artifacts/e2e/ (docs/tiers.md)."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import watch
from tests.fix_api import TEST_PASSWORD
from tests.fix_wait import wait_for
from tests.integration.test_tiers import county, rows  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
TABLET = {"viewport": {"width": 1024, "height": 768}, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


def sign_in(page: Page, base: str, path: str, username: str) -> None:
    page.goto(f"{base}{path}")
    page.fill("#login-username", username)
    page.fill("#login-password", TEST_PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#conn")).to_have_attribute("data-state", "connected", timeout=10_000)


def test_the_three_tiers_serve_one_incident_end_to_end(browser, shot, page_errors, county, start_ingest, jiashan_registry) -> None:
    api, url, incident_id, unit = county["api"], county["url"], county["incident_id"], county["unit"]
    start_ingest(db_url=url)  # the crew's patient reports are stored by ingest, like a terminal's own
    person = next(p for p in jiashan_registry["persons"] if p["person_id"] == county["person"])

    # The village doctor: the alert on their phone, with what they need to know.
    doc = browser.new_context(**PHONE).new_page()
    watch(doc, page_errors)
    sign_in(doc, api.base, "/first-aid", "doc")
    card = doc.locator(f'[data-incident="{incident_id}"]')
    expect(card).to_be_visible(timeout=10_000)
    expect(card.locator("[data-person]")).to_have_text(person["name"])
    expect(card.locator("[data-medications]")).to_contain_text("warfarin")
    expect(card.locator("[data-responder]")).to_have_attribute("data-responder", "waiting")
    shot(doc, "first-aid-alert")

    # Another post's doctor sees nothing.
    other = browser.new_context(**PHONE).new_page()
    sign_in(other, api.base, "/first-aid", "doc2")
    expect(other.locator("#none")).to_be_visible(timeout=10_000)
    assert person["name"] not in other.inner_text("body")
    other.context.close()

    # The family: a doctor and an ambulance on their way.
    family_user = next(u["username"] for u in jiashan_registry["users"]
                       if u["role"] == "family" and any(p["person_id"] == person["person_id"] for p in u.get("persons", [])))
    family = browser.new_context(**PHONE).new_page()
    watch(family, page_errors)
    family.goto(f"{api.base}/family")
    family.fill("#login-username", family_user)
    family.fill("#login-password", TEST_PASSWORD)
    family.click("#login-submit")

    card.locator('[data-act="accept"]').click()
    expect(card.locator("[data-responder]")).to_have_attribute("data-responder", "accepted", timeout=5_000)
    # The control room sees the doctor's answer on the incident.
    console = browser.new_context(**DESKTOP).new_page()
    watch(console, page_errors)
    sign_in(console, api.base, "/console", "op1")
    expect(console.locator('[data-responder="accepted"]')).to_be_visible(timeout=10_000)
    shot(console, "console-doctor-accepted")
    console.context.close()
    help_line = family.locator(f'section.person[data-person="{person["person_id"]}"] [data-help]')
    expect(help_line).to_be_visible(timeout=10_000)
    expect(help_line).to_contain_text("村医")
    shot(family, "family-help-coming")

    # The crew: the order, the route, the doctor's note; statuses queued through a dropped link.
    crew = browser.new_context(**TABLET)
    crew_page = crew.new_page()
    watch(crew_page, page_errors)
    sign_in(crew_page, api.base, "/crew", "crew")
    crew_card = crew_page.locator(f'[data-incident="{incident_id}"]')
    expect(crew_card).to_be_visible(timeout=10_000)
    wait_for(lambda: int(crew_page.locator("#map").get_attribute("data-route") or 0) > 1, timeout=10, what="route on the map")
    crew_page.click('[data-status="en_route"]')
    wait_for(lambda: rows(url, "SELECT status FROM unit_state WHERE unit_id = %s", unit)[0]["status"] == "en_route", what="en_route")

    card.locator('[data-act="on-scene"]').click()
    card.locator('input[name="text"]').fill("conscious, breathing, bleeding controlled")
    card.locator(".note-form button").click()
    expect(crew_card.locator("[data-note-text]")).to_contain_text("bleeding controlled", timeout=10_000)
    shot(doc, "first-aid-on-scene")

    crew.set_offline(True)
    crew_page.click('[data-status="on_scene"]')
    expect(crew_page.locator("#pending")).to_have_attribute("data-count", "1")
    shot(crew_page, "crew-offline-pending")
    time.sleep(0.5)
    assert rows(url, "SELECT status FROM unit_state WHERE unit_id = %s", unit)[0]["status"] == "en_route"
    crew.set_offline(False)
    crew_page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(crew_page.locator("#pending")).to_have_attribute("data-count", "0", timeout=10_000)
    wait_for(lambda: rows(url, "SELECT status FROM unit_state WHERE unit_id = %s", unit)[0]["status"] == "on_scene", what="on_scene")

    crew_card.locator('input[name="gcs"]').fill("14")
    crew_card.locator('input[name="spo2_pct"]').fill("93")
    crew_card.locator('input[name="suspected"]').fill("hip fracture")
    crew_card.locator(".report-form button").click()
    wait_for(lambda: rows(url, "SELECT 1 FROM patient_reports WHERE incident_id = %s", incident_id), what="patient report stored")
    crew_page.click('[data-status="transporting"]')
    expect(crew_page.locator("[data-unit-status]")).to_have_attribute("data-unit-status", "transporting", timeout=10_000)
    shot(crew_page, "crew-transporting")

    # The hospital: the patient coming, the crew's report; the other hospital sees nothing.
    er = browser.new_context(**DESKTOP).new_page()
    watch(er, page_errors)
    sign_in(er, api.base, "/hospital", "er")
    er_card = er.locator(f'[data-incident="{incident_id}"]')
    expect(er_card).to_be_visible(timeout=10_000)
    expect(er_card.locator("[data-reports]")).to_contain_text("hip fracture", timeout=10_000)
    expect(er_card.locator("[data-eta]")).not_to_be_empty()
    shot(er, "hospital-incoming")
    er2 = browser.new_context(**DESKTOP).new_page()
    sign_in(er2, api.base, "/hospital", "er2")
    expect(er2.locator("#none")).to_be_visible(timeout=10_000)
    er2.context.close()

    crew_page.click('[data-status="at_hospital"]')
    expect(er_card.locator("[data-eta]")).to_contain_text("交接", timeout=10_000)
    shot(er, "hospital-handed-over")
    assert rows(url, "SELECT handed_over_at FROM assignments WHERE incident_id = %s", incident_id)[0]["handed_over_at"]
    assert not [e for e in page_errors if "pageerror" in e], page_errors
