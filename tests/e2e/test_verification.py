"""The console at a fire in a person's home and at an SOS from a fix far outside the county:
the verification call's answer recorded with one click (an injury adds an ambulance), and a
fix that was not trusted said so on the incident."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from playwright.sync_api import expect

from ingest.alarm_store import apply_transitions
from ingest.rules import Action, AlarmTransition, AlarmType, Severity, SourceKind
from tests.e2e.conftest import watch
from tests.e2e.test_console import sign_in

pytestmark = pytest.mark.slow


def raise_alarm(url: str, person_id: str, alarm_type: AlarmType, detail: dict) -> None:
    t = AlarmTransition(Action.RAISE, SourceKind.PERSON, person_id, alarm_type, Severity.CRITICAL, datetime.now(UTC),
                        emergency=True, detail=detail)
    with psycopg.connect(url) as conn:
        apply_transitions(conn.cursor(), [t], datetime.now(UTC))


def test_the_dispatcher_records_the_verification_call_and_sees_an_untrusted_fix(
    browser, shot, page_errors, jiashan_url: str, jiashan_registry: dict, start_dispatcher, start_api,
) -> None:
    start_dispatcher(jiashan_url, dispatch__verify_answer_s="600")
    api = start_api(jiashan_url)
    resident, walker = jiashan_registry["persons"][0], jiashan_registry["persons"][1]
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    watch(page, page_errors)
    page.goto(f"{api.base}/console")
    sign_in(page, "disp1")
    expect(page.locator("#conn")).to_have_attribute("data-state", "connected", timeout=10_000)

    raise_alarm(jiashan_url, resident["person_id"], AlarmType.SMOKE, {"sensor_id": "smoke-1"})
    fire = page.locator("#incident-queue li.incident", has_text=resident["name"])
    expect(fire.locator(".verification.pending")).to_be_visible(timeout=10_000)
    shot(page, "fire-awaiting-verification")
    fire.locator('button[data-act="verify"][data-outcome="hurt"]').click()
    expect(fire.locator('.verification[data-verification="hurt"]')).to_be_visible(timeout=5_000)
    expect(page.locator("#incident-queue li.incident", has_text=f"ambulance for {fire.get_attribute('data-key')}")).to_be_visible(timeout=10_000)
    shot(page, "fire-someone-hurt-ambulance-added")

    raise_alarm(jiashan_url, walker["person_id"], AlarmType.SOS, {"lat": 0.0, "lon": 0.0, "acc_m": 8.0, "event_id": "far-1"})
    sos = page.locator("#incident-queue li.incident", has_text=walker["name"])
    expect(sos.locator('.untrusted-fix[data-untrusted="alert_fix"]')).to_be_visible(timeout=10_000)
    shot(page, "sos-fix-outside-region")
    assert not page_errors, page_errors
