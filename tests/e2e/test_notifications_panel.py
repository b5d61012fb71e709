"""The console's family-notification panel in a real browser: a fall's SMS and call to the
first contact appear as they happen — sent, delivered, ringing, answered, "on the way" —
with the number masked; the village doctor's SMS to a first-aid post's duty phone appears too,
named by the post."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from kernel.clock import FakeClock
from tests.e2e.conftest import watch
from tests.e2e.test_console import sign_in
from tests.fix_notify import needs_baresip, notifier_for, now_utc
from tests.integration.test_first_responder_calls import DUTY_PHONE, POST, alert_the_post
from tests.integration.test_notifications import DAUGHTER, fall, family

pytestmark = pytest.mark.slow


@needs_baresip
def test_the_console_shows_who_was_texted_and_called_and_what_came_of_it(
    browser, shot, page_errors, database_url: str, smsc, family_phones, start_api,
) -> None:
    _, port = smsc
    family(database_url)
    phone = family_phones("answer", key="1", key_after_s=1.5)
    api = start_api(database_url)
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    watch(page, page_errors)
    page.goto(f"{api.base}/console")
    sign_in(page, "op1")
    expect(page.locator("#conn")).to_have_attribute("data-state", "connected", timeout=10_000)
    expect(page.locator("#notify-empty")).to_be_visible()

    clock = FakeClock(now_utc())
    fall(database_url, clock)
    with notifier_for(database_url, clock, smsc_port=port, phonebook={DAUGHTER: phone.uri}) as notifier:
        notifier.run_pass()
        sms = page.locator('#notify-list .notify-body[data-channel="sms"]')
        expect(sms).to_have_attribute("data-state", "accepted", timeout=5_000)
        notifier.run_pass()  # the delivery report
        expect(sms).to_have_attribute("data-state", "delivered", timeout=5_000)
        shot(page, "sms-delivered")
        clock.advance(30)
        notifier.run_pass()
        call = page.locator('#notify-list .notify-body[data-channel="voice"]')
        expect(call).to_have_attribute("data-state", "answered", timeout=10_000)
        shot(page, "call-answered")
        notifier.wait_for_calls(20)
    expect(call).to_have_attribute("data-state", "acked", timeout=5_000)
    row = page.locator("#notify-list li", has=page.locator('.notify-body[data-channel="voice"]'))
    expect(row).to_contain_text("fam1")
    expect(row).to_contain_text("*" * (len(DAUGHTER) - 4) + DAUGHTER[-4:])
    assert DAUGHTER not in page.content()
    expect(page.locator('#alarm-queue li[data-type="fall"]')).to_contain_text("fam1")
    shot(page, "call-acked")
    assert page_errors == []


def test_the_console_shows_the_village_doctors_sms_by_post_not_by_person(
    browser, page_errors, database_url: str, smsc, start_api,
) -> None:
    _, port = smsc
    api = start_api(database_url)
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    watch(page, page_errors)
    page.goto(f"{api.base}/console")
    sign_in(page, "op1")
    expect(page.locator("#conn")).to_have_attribute("data-state", "connected", timeout=10_000)

    clock = FakeClock(now_utc())
    incident_id = alert_the_post(database_url, clock.now())
    with notifier_for(database_url, clock, smsc_port=port, phonebook=None) as notifier:
        notifier.run_pass()
    row = page.locator("#notify-list li.notify-post")
    expect(row.locator('.notify-body[data-channel="sms"]')).to_have_attribute("data-state", "accepted", timeout=5_000)
    expect(row).to_contain_text(f"{incident_id} → 村卫生室 {POST}")
    expect(row).to_contain_text("*" * (len(DUTY_PHONE) - 4) + DUTY_PHONE[-4:])
    assert DUTY_PHONE not in page.content()
    assert page_errors == []
