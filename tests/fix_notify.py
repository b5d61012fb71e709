"""Telephony for tests: an SMSC speaking SMPP on a free port, simulated family phones
(baresip user agents that answer and press keys), and a notifier wired to both on a fake
clock."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from kernel.clock import FakeClock
from kernel.db import connect
from notify.baresip import BaresipCaller
from notify.notifier import Notifier
from notify.outcomes import RetryPolicy
from notify.smpp import SmppEndpoint, SmppSender
from simulators.phone import FamilyPhone
from simulators.smsc import FakeSmsc, serve
from watchpost.notify_service import doctor_answers

needs_baresip = pytest.mark.skipif(shutil.which("baresip") is None or shutil.which("espeak-ng") is None,
                                   reason="voice tests need baresip and espeak-ng (scripts/telephony.sh install)")


@pytest.fixture
def smsc() -> Iterator[tuple[FakeSmsc, int]]:
    """A running test SMSC and its port."""
    state = FakeSmsc()
    server = serve(state)
    yield state, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def family_phones() -> Iterator[Callable[..., FamilyPhone]]:
    """Start simulated family phones: `family_phones("answer", key="1")`."""
    phones: list[FamilyPhone] = []

    def start(behaviour: str = "answer", **kwargs: object) -> FamilyPhone:
        phone = FamilyPhone(behaviour, **kwargs)  # type: ignore[arg-type]
        phones.append(phone)
        return phone

    yield start
    for phone in phones:
        phone.close()


@contextlib.contextmanager
def notifier_for(database_url: str, clock: FakeClock, *, smsc_port: int | None, phonebook: dict[str, str] | None,
                 lease_s: float = 150.0, ring_timeout_s: float = 4.0, max_calls: int = 4,
                 policy: RetryPolicy | None = None) -> Iterator[Notifier]:
    @contextlib.contextmanager
    def connections() -> Iterator[psycopg.Connection]:
        with connect(database_url, application_name="watchpost-notify") as conn:
            yield conn

    holder: list[Notifier] = []
    sms = None
    if smsc_port is not None:
        sms = SmppSender(SmppEndpoint("127.0.0.1", smsc_port, "watchpost", "secret"), sender="Watchpost",
                         on_report=lambda ref, ok, detail: holder[0].delivery_report(ref, ok, detail), submit_timeout_s=3)
    voice = None
    if phonebook is not None:
        voice = BaresipCaller(binary="baresip", lines=max_calls, domain="invalid", phonebook=phonebook, ring_timeout_s=ring_timeout_s)
    notifier = Notifier(connections, clock, sms=sms, voice=voice, family_url="http://watchpost.test/family",
                        first_aid_url="http://watchpost.test/first-aid", doctor_answers=doctor_answers,
                        policy=policy or RetryPolicy(max_attempts=2, base_s=5), batch=50, max_calls=max_calls, lease_s=lease_s)
    holder.append(notifier)
    try:
        yield notifier
    finally:
        notifier.wait_for_calls(30)
        notifier.close()
        if voice is not None:
            voice.close()
        if sms is not None:
            sms.close()


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
