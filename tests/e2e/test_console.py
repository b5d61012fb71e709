"""The console and the family page in a real browser, against real processes: Mosquitto,
ingest, the dispatcher and the API on the simulated Jiashan county. What a person sees is
what is asserted (rows, markers, buttons), and each step is saved as a screenshot in
test-artifacts/e2e/."""

from __future__ import annotations

import re
import time

import orjson
import psycopg
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import watch
from tests.fix_api import TEST_PASSWORD
from tests.fix_broker import TEST_ROOT, Publisher
from tests.fix_wait import wait_for

pytestmark = pytest.mark.slow

# An alarm must be on the operator's screen this soon after the device published it.
ALARM_ON_SCREEN_S = 1.0


def publish(publisher: Publisher, topic: str, doc: dict) -> float:
    """Publish at QoS 1 and wait for the broker's PUBACK; returns the time of publishing."""
    at = time.time()
    publisher.wait_acked([publisher.publish(f"{TEST_ROOT}/{topic}", orjson.dumps(doc))], timeout=10)
    return at


def sign_in(page: Page, username: str) -> None:
    page.fill("#login-username", username)
    page.fill("#login-password", TEST_PASSWORD)
    page.click("#login-submit")


def psql_count(url: str, sql: str, *params: object) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchone()[0]


def marker_centre(page: Page, unit_id: str) -> tuple[float, float]:
    box = page.locator(f'.unit-icon[data-unit="{unit_id}"]').bounding_box()
    assert box is not None, f"no marker for {unit_id}"
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def test_operator_sees_acknowledges_and_reassigns(
    browser, shot, page_errors, publisher: Publisher, jiashan_url: str, jiashan_registry: dict,
    start_ingest, start_dispatcher, start_api,
) -> None:
    start_ingest(db_url=jiashan_url)
    start_dispatcher(jiashan_url)
    api = start_api(jiashan_url)
    person = jiashan_registry["persons"][0]

    page = browser.new_page(viewport={"width": 1600, "height": 900})
    watch(page, page_errors)
    page.goto(f"{api.base}/console")
    expect(page.locator("#login-form")).to_be_visible()
    shot(page, "login")

    # A dispatcher: a control-room user who may also assign (an operator may not).
    sign_in(page, "disp1")
    expect(page.locator("#conn")).to_have_attribute("data-state", "connected", timeout=10_000)
    expect(page.locator(".unit-icon[data-unit]").first).to_be_visible(timeout=10_000)
    expect(page.locator("#map-message")).to_be_hidden(timeout=10_000)  # the county is drawn
    expect(page.locator("#map .leaflet-pane svg path").first).to_be_attached()
    expect(page.locator("#alarm-empty")).to_be_visible()
    shot(page, "console-quiet")

    # --- an SOS from a wearable: on screen within a second, with banner and sound ------------
    published = publish(publisher, f"elder/{person['person_id']}/wearable",
                        {"ts": time.time(), "sos": True, "hr_bpm": 96, "battery_pct": 80})
    row = page.locator('#alarm-queue li[data-type="sos"]')
    expect(row).to_be_visible(timeout=5_000)
    seen_by_test = time.time() - published
    shown_at_ms = page.evaluate("() => Math.min(...Object.values(window.__wp.shownAt))")
    latency = shown_at_ms / 1000 - published
    print(f"\nSOS publish -> row in the console's alarm queue: {latency * 1000:.0f} ms "
          f"(seen by the test after {seen_by_test * 1000:.0f} ms)")
    assert latency < ALARM_ON_SCREEN_S, f"the SOS took {latency:.3f} s to reach the screen"
    expect(row).to_contain_text(person["name"])
    expect(row).to_have_class(re.compile(r"\bstate-active\b"))
    banner = page.locator("#critical-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(person["name"])
    assert page.evaluate("window.__wp.beeps") >= 1, "no audible cue for a critical alarm"
    shot(page, "sos-raised")

    # --- acknowledged from the queue ---------------------------------------------------------
    row.locator('button[data-act="ack"]').click()
    expect(row.locator(".acked")).to_contain_text("disp1", timeout=5_000)
    expect(row.locator('button[data-act="ack"]')).to_have_count(0)
    expect(banner).to_be_hidden()
    with api.client("disp1") as http:
        [alarm] = [a for a in http.get("/api/alarms").json() if a["alarm_type"] == "sos"]
    assert alarm["state"] == "acked" and alarm["acked_by"] == "disp1"
    shot(page, "sos-acked")

    # --- the SOS's incident, dispatched automatically to the nearest ambulance ---------------
    incident = page.locator("#incident-queue li").first
    expect(incident).to_be_visible(timeout=5_000)
    expect(incident).to_contain_text(person["name"])
    expect(incident).not_to_have_attribute("data-unit-id", "", timeout=10_000)
    first_unit = incident.get_attribute("data-unit-id")
    incident_id = incident.get_attribute("data-key")
    expect(page.locator(f'.inc-icon[data-incident="{incident_id}"]')).to_be_visible()
    shot(page, "incident-dispatched")

    # --- re-assigned from the ranked candidates to the next one ------------------------------
    incident.locator('button[data-act="assign"]').click()
    dialog = page.locator("#assign-dialog")
    expect(dialog).to_be_visible()
    candidates = dialog.locator("tr[data-unit-id]")
    expect(candidates.first).to_be_visible(timeout=15_000)
    expect(dialog.locator("#assign-rule")).not_to_be_empty()
    expect(candidates.first.locator("td.eta")).to_contain_text("分钟")  # ETA in minutes; Chinese by default
    ranked = [candidates.nth(i).get_attribute("data-unit-id") for i in range(candidates.count())]
    assert first_unit not in ranked, "the unit already on the incident is offered again"
    second = ranked[0]
    shot(page, "assign-dialog")
    candidates.first.locator("button[data-pick]").click()
    expect(dialog).to_be_hidden(timeout=10_000)
    expect(incident).to_have_attribute("data-unit-id", second, timeout=5_000)
    with api.client("disp1") as http:
        [current] = [i for i in http.get("/api/incidents", params={"state": "open"}).json() if i["incident_id"] == incident_id]
    assert current["unit_id"] == second
    shot(page, "reassigned")

    # --- the unit's GPS moves its marker -------------------------------------------------------
    marker = page.locator(f'.unit-icon[data-unit="{second}"]')
    expect(marker).to_be_visible()
    before = marker_centre(page, second)
    target = (person["lat"] + 0.012, person["lon"] - 0.015)
    publish(publisher, f"unit/{second}/gps", {"ts": time.time(), "lat": target[0], "lon": target[1], "speed_kmh": 48, "heading_deg": 120})
    moved_at = marker.locator("xpath=..")
    expect(moved_at).to_have_attribute("data-lat", str(target[0]), timeout=8_000)
    after = marker_centre(page, second)
    distance = ((after[0] - before[0]) ** 2 + (after[1] - before[1]) ** 2) ** 0.5
    assert distance > 10, f"the marker of {second} moved only {distance:.1f} px"
    shot(page, "unit-moved")

    # --- a call-taker's incident, located by a click on the map, then closed ----------------
    page.click("#new-incident")
    form = page.locator("#call-form")
    expect(form).to_be_visible()
    map_box = page.locator("#map").bounding_box()
    page.mouse.click(map_box["x"] + map_box["width"] * 0.45, map_box["y"] + map_box["height"] * 0.55)
    expect(page.locator("#call-lat")).not_to_have_value("")
    page.select_option("#call-priority", "2")
    page.fill("#call-description", "路人报告：老人在桥边摔倒")
    shot(page, "call-taker-form")
    page.click("#call-submit")
    expect(form).to_be_hidden(timeout=5_000)
    called = page.locator("#incident-queue li", has_text="路人报告")
    expect(called).to_be_visible(timeout=5_000)
    expect(called.locator(".badge")).to_have_text("P2")
    called_id = called.get_attribute("data-key")
    expect(page.locator(f'.inc-icon[data-incident="{called_id}"]')).to_be_visible()
    shot(page, "call-taker-incident")
    close = called.locator('button[data-act="close"]')
    close.click()
    expect(close).to_have_class(re.compile("confirming"))
    # The row is rewritten between the two clicks (another unit is assigned meanwhile): the
    # second click still closes the incident, it does not ask for confirmation again.
    with api.client("disp1") as http:
        busy = {called.get_attribute("data-unit-id"), first_unit, second}
        spare = next(u["unit_id"] for u in http.get("/api/units").json()
                     if u["kind"] == "ambulance" and u["status"] == "available" and u["unit_id"] not in busy)
        assert http.post(f"/api/incidents/{called_id}/assign", json={"unit_id": spare}).status_code in (200, 202)
    expect(called).to_have_attribute("data-unit-id", spare, timeout=5_000)
    expect(close).to_have_class(re.compile("confirming"))
    close.click()
    expect(page.locator(f'#incident-queue li[data-key="{called_id}"]')).to_have_count(0, timeout=5_000)
    expect(page.locator(f'.inc-icon[data-incident="{called_id}"]')).to_have_count(0)

    # --- the connection drops; what happens meanwhile arrives on reconnection -------------
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.context.set_offline(True)
    page.evaluate("window.__wp.socket().close(4000, 'test: connection lost')")
    conn = page.locator("#conn")
    expect(conn).to_have_attribute("data-state", "offline")
    expect(page.locator("#stale-note")).to_be_visible()
    other = jiashan_registry["persons"][1]
    publish(publisher, f"elder/{other['person_id']}/wearable", {"ts": time.time(), "battery_pct": 9})
    wait_for(lambda: psql_count(jiashan_url, "SELECT count(*) FROM alarms WHERE person_id = %s", other["person_id"]) > 0, timeout=10)
    expect(page.locator('#alarm-queue li[data-type="battery_low"]')).to_have_count(0)
    shot(page, "offline")
    page.context.set_offline(False)
    expect(conn).to_have_attribute("data-state", "connected", timeout=10_000)
    expect(page.locator('#alarm-queue li[data-type="battery_low"]')).to_be_visible(timeout=5_000)
    assert sockets and "last_event_id=" in sockets[-1], sockets
    shot(page, "reconnected")

    # English, for the record
    page.locator(".topbar .lang-toggle").click()
    expect(page.locator("#alarms-h")).to_contain_text("Alarms")
    shot(page, "english")

    assert not [e for e in page_errors if "pageerror" in e], page_errors


def test_family_sees_their_relative_and_nobody_else(
    browser, shot, page_errors, publisher: Publisher, jiashan_url: str, jiashan_registry: dict,
    start_ingest, start_api,
) -> None:
    start_ingest(db_url=jiashan_url)
    api = start_api(jiashan_url)
    theirs, other = jiashan_registry["persons"][0], jiashan_registry["persons"][1]
    family = next(u for u in jiashan_registry["users"] if u["role"] == "family" and u["persons"][0]["person_id"] == theirs["person_id"])
    assert not any(p["person_id"] == other["person_id"] for p in family["persons"])

    publish(publisher, f"elder/{theirs['person_id']}/wearable",
            {"ts": time.time() - 5, "hr_bpm": 72, "spo2_pct": 97, "skin_temp_c": 36.4, "steps": 1234, "battery_pct": 64})

    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=2)
    watch(page, page_errors)
    page.goto(f"{api.base}/family")
    shot(page, "login")
    sign_in(page, family["username"])
    card = page.locator(f'section.person[data-person="{theirs["person_id"]}"]')
    expect(card).to_be_visible(timeout=10_000)
    expect(card).to_contain_text(theirs["name"])
    expect(card.locator(".vitals")).to_contain_text("72")
    expect(page.locator("#conn")).to_have_attribute("data-state", "connected", timeout=10_000)
    shot(page, "relative")

    # Someone else's emergency first, committed before ours: it must never reach this page.
    publish(publisher, f"elder/{other['person_id']}/wearable", {"ts": time.time(), "sos": True})

    wait_for(lambda: psql_count(jiashan_url, "SELECT count(*) FROM alarms WHERE person_id = %s", other["person_id"]) > 0, timeout=10)
    publish(publisher, f"elder/{theirs['person_id']}/wearable", {"ts": time.time(), "sos": True})
    alert = page.locator(f'.alert[data-person="{theirs["person_id"]}"][data-type="sos"]')
    expect(alert).to_be_visible(timeout=5_000)
    expect(page.locator("#new-alert")).to_be_visible()
    assert page.locator(f'[data-person="{other["person_id"]}"]').count() == 0
    assert other["name"] not in page.inner_text("body")
    assert page.evaluate("window.__wp.beeps") >= 1
    shot(page, "alert")

    alert.locator("button.onway").click()
    expect(alert.locator(".acked")).to_be_visible(timeout=5_000)
    with api.client("op1") as http:
        [mine] = [a for a in http.get("/api/alarms").json() if a["person_id"] == theirs["person_id"]]
    assert mine["state"] == "acked" and mine["acked_by"] == family["username"]
    shot(page, "on-my-way")

    page.locator(".bar .lang-toggle").click()
    expect(alert).to_contain_text("SOS")
    shot(page, "english")
    assert not [e for e in page_errors if "pageerror" in e], page_errors
