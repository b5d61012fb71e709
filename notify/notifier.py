"""The notifier's loop: claim due notifications, send them, store what came of them.

SMS go out one after another on the loop's thread (an SMSC answers a submit in
milliseconds); voice calls run on a bounded pool, one thread per call in progress, since a
call lasts as long as the family member listens. Voice is claimed only for the pool's free
places, so a notification is never held under a lease while it waits for a line.

The notifier takes a clock and its channels as arguments (`SmsChannel`, `VoiceChannel`); the
composition root (watchpost/notify_service.py) wires SMPP or the HTTP webhook and the SIP
user agent.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import psycopg

from ingest.rules.escalation import Channel
from kernel.clock import Clock
from kernel.settings import RegionSettings
from notify import store
from notify.messages import (
    Sender,
    DoctorFacts,
    doctor_sms_text,
    doctor_voice_script,
    partner_sms_text,
    partner_voice_script,
    sms_text,
    voice_script,
)
from notify.outcomes import DOCTOR_MENU, FAMILY_MENU, Menu, Outcome, RetryPolicy, State

__all__ = ["Notifier", "NotifierHealth", "SmsChannel", "VoiceChannel", "Progress"]

log = logging.getLogger(__name__)

Progress = Callable[[State, str | None], None]  # a call's ringing / answered, with its id
Connections = Callable[[], AbstractContextManager[psycopg.Connection]]

# Delivery reports can overtake the submit's answer being stored: an unmatched one is tried
# again on later passes, this many times, before it is dropped with a warning.
_REPORT_TRIES = 20


class SmsChannel(Protocol):
    def send(self, phone: str, text: str) -> Outcome:
        """Submit one SMS; `accepted` with the SMSC's id, or `failed` with why."""
        ...


class VoiceChannel(Protocol):
    def call(self, phone: str, script: tuple[str, str], progress: Progress, menu: Menu = FAMILY_MENU) -> Outcome:
        """Place one call and speak `script` until one of the menu's final keys ends it or
        the call does; `progress` is told when it rings and when it is answered."""
        ...


def sender_of(region: RegionSettings) -> Sender:
    """The region's service name signs the SMS and opens the calls (docs/notifications.md)."""
    return Sender(region.app_name("zh"), region.app_name("en"), region.name_zh, region.name_en)


@dataclass
class NotifierHealth:
    """What /readyz reports: the channels' last results and the loop's last pass."""

    last_pass: datetime | None = None
    sms: str = "ok"
    voice: str = "ok"
    calls_in_progress: int = 0
    errors: dict[str, str] = field(default_factory=dict)


class Notifier:
    def __init__(
        self,
        connections: Connections,
        clock: Clock,
        *,
        sms: SmsChannel | None,
        voice: VoiceChannel | None,
        family_url: str,
        first_aid_url: str = "",
        doctor_answers: store.DoctorAnswer | None = None,
        sender: Sender | None = None,
        policy: RetryPolicy,
        batch: int,
        max_calls: int,
        lease_s: float,
    ) -> None:
        self._connections = connections
        self._clock = clock
        self._sms = sms
        self._voice = voice
        self._family_url = family_url
        self._first_aid_url = first_aid_url
        self._doctor_answers = doctor_answers
        # Who the messages are from: the SMS signature and the county; the demo's by default.
        self._sender = sender or sender_of(RegionSettings())
        self._policy = policy
        self._batch = batch
        self._max_calls = max_calls
        self._lease_s = lease_s
        self._calls = ThreadPoolExecutor(max_workers=max_calls, thread_name_prefix="call")
        self._in_progress: set[Future[None]] = set()
        self._reports: queue.SimpleQueue[tuple[str, bool, dict[str, Any], int]] = queue.SimpleQueue()
        self.health = NotifierHealth()

    # --- the loop --------------------------------------------------------------------------

    def run_pass(self) -> int:
        """One pass: delivery reports, then due SMS, then as many due calls as lines are
        free. Returns the number of notifications started."""
        self._record_reports()
        started = 0
        if self._sms is not None:
            started += self._send_sms()
        if self._voice is not None:
            started += self._place_calls()
        self.health.last_pass = self._clock.now()
        return started

    def wait_for_calls(self, timeout: float | None = None) -> None:
        """Let the calls in progress end (tests, and a clean stop)."""
        for f in list(self._in_progress):
            f.result(timeout)

    def close(self) -> None:
        self._calls.shutdown(wait=True, cancel_futures=False)

    def delivery_report(self, ref: str, delivered: bool, detail: dict[str, Any]) -> None:
        """The SMS channel's callback (any thread): stored on the loop's next pass."""
        self._reports.put((ref, delivered, detail, 0))

    # --- SMS -------------------------------------------------------------------------------

    def _send_sms(self) -> int:
        assert self._sms is not None
        with self._connections() as conn:
            jobs = self._claim(conn, Channel.SMS, self._batch)
            for job in jobs:
                outcome = self._sms.send(job.phone, self._sms_text(job)) if job.phone else _no_phone()
                self.health.sms = "ok" if outcome.state is not State.FAILED else f"failing: {outcome.detail.get('error')}"
                store.finish(conn, job, outcome, self._clock.now(), self._policy, self._doctor_answers)
        return len(jobs)

    def _sms_text(self, job: store.Job) -> str:
        if isinstance(job.facts, DoctorFacts):
            return doctor_sms_text(job.facts, f"{self._first_aid_url}?incident={job.incident_id}", self._sender)
        if job.partner_id is not None:  # the family page is not theirs: the SMS asks for the CAP answer
            return partner_sms_text(job.facts, self._sender)
        return sms_text(job.facts, f"{self._family_url}?alarm={job.alarm_id}", self._sender)

    def _record_reports(self) -> None:
        later = []
        with self._connections() as conn:
            while True:
                try:
                    ref, delivered, detail, tries = self._reports.get_nowait()
                except queue.Empty:
                    break
                if not store.delivery_report(conn, ref, delivered, self._clock.now(), detail):
                    if tries + 1 < _REPORT_TRIES:
                        later.append((ref, delivered, detail, tries + 1))
                    else:
                        log.warning("a delivery report matched no SMS", extra={"ref": ref})
        for item in later:
            self._reports.put(item)

    # --- voice ---------------------------------------------------------------------------

    def _place_calls(self) -> int:
        self._in_progress = {f for f in self._in_progress if not f.done()}
        free = self._max_calls - len(self._in_progress)
        self.health.calls_in_progress = len(self._in_progress)
        if free <= 0:
            return 0
        with self._connections() as conn:
            jobs = self._claim(conn, Channel.VOICE, min(free, self._batch))
        for job in jobs:
            self._in_progress.add(self._calls.submit(self._call, job))
        return len(jobs)

    def _call(self, job: store.Job) -> None:
        assert self._voice is not None
        try:
            with self._connections() as conn:

                def progress(state: State, ref: str | None) -> None:
                    store.progress(conn, job, state, self._clock.now(), ref=ref)

                if isinstance(job.facts, DoctorFacts):
                    script, menu = doctor_voice_script(job.facts, self._sender), DOCTOR_MENU
                elif job.partner_id is not None:  # 1 heard, 2 again, 9 our control room calls back
                    script, menu = partner_voice_script(job.facts, self._sender), FAMILY_MENU
                else:
                    script, menu = voice_script(job.facts, self._sender), FAMILY_MENU
                outcome = self._voice.call(job.phone, script, progress, menu) if job.phone else _no_phone()
                self.health.voice = "ok" if outcome.state is not State.FAILED else f"failing: {outcome.detail.get('error')}"
                store.finish(conn, job, outcome, self._clock.now(), self._policy, self._doctor_answers)
        except Exception:
            # The row stays claimed: it is tried again when its lease passes.
            log.exception("call %s failed", job.notification_id, extra={"alarm_id": job.alarm_id, "incident_id": job.incident_id})
            self.health.voice = "failing: the call crashed"

    def _claim(self, conn: psycopg.Connection, channel: Channel, limit: int) -> list[store.Job]:
        return store.claim(
            conn, self._clock.now(), channels=[channel], limit=limit, lease_s=self._lease_s,
            max_attempts=self._policy.max_attempts,
        )


def _no_phone() -> Outcome:
    return Outcome(State.FAILED, detail={"error": "no phone number in the registry"})


def run(notifier: Notifier, wake: threading.Event, stop: threading.Event, poll_interval_s: float) -> None:
    """Pass after pass until `stop`; `wake` (an alarm event heard) starts the next pass at
    once. A database outage is retried on the next pass."""
    while not stop.is_set():
        try:
            notifier.run_pass()
            notifier.health.errors.pop("database", None)
        except psycopg.OperationalError as exc:
            notifier.health.errors["database"] = str(exc).splitlines()[0] if str(exc) else "unreachable"
            log.warning("notifier pass failed: %s", exc)
        wake.wait(poll_interval_s)
        wake.clear()
