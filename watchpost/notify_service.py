"""`watchpost notify`: the notifier process, wired from the settings — SMS over SMPP (or the
HTTP webhook), voice calls through the SIP user agent, the database, the event stream that
wakes it, and its /healthz, /readyz and /metrics."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from datetime import datetime

import psycopg
from prometheus_client import CollectorRegistry, Gauge

from kernel.clock import SystemClock
from kernel.db import connect
from kernel.events import EVENTS_CHANNEL
from kernel.health import serve_health
from kernel.settings import Settings
from notify import store
from notify.notifier import Notifier, SmsChannel, VoiceChannel, run, sender_of
from notify.outcomes import RetryPolicy

log = logging.getLogger(__name__)

APPLICATION_NAME = "watchpost-notify"


def build_notifier(settings: Settings, *, voice: VoiceChannel | None = None, sms: SmsChannel | None = None) -> Notifier:
    """The notifier with the channels the settings name (or the ones given, for tests and
    the benchmark)."""
    cfg = settings.notify

    @contextlib.contextmanager
    def connections() -> Iterator[psycopg.Connection]:
        with connect(settings.database_url, application_name=APPLICATION_NAME) as conn:
            yield conn

    holder: list[Notifier] = []  # the SMSC's delivery reports go to the notifier built below
    if sms is None and cfg.smpp_url:
        from notify.smpp import SmppEndpoint, SmppSender

        sms = SmppSender(SmppEndpoint.parse(cfg.smpp_url), sender=cfg.sms_sender,
                         on_report=lambda ref, ok, detail: holder[0].delivery_report(ref, ok, detail))
    elif sms is None and cfg.sms_webhook_url:
        from notify.webhook import WebhookSender

        sms = WebhookSender(cfg.sms_webhook_url, token=cfg.sms_webhook_token)
    if voice is None and cfg.sip_agent:
        from notify.baresip import BaresipCaller

        caller = BaresipCaller.from_settings(cfg)
        caller.start_lines()
        voice = caller
    notifier = Notifier(
        connections, SystemClock(), sms=sms, voice=voice, family_url=cfg.family_url, first_aid_url=cfg.first_aid_url,
        doctor_answers=doctor_answers, sender=sender_of(settings.region),
        policy=RetryPolicy(max_attempts=cfg.max_attempts, base_s=cfg.retry_base_s),
        batch=cfg.batch, max_calls=cfg.max_calls, lease_s=cfg.lease_s,
    )
    holder.append(notifier)
    return notifier


def doctor_answers(conn: psycopg.Connection, incident_id: str, post_id: str, accepted: bool, actor: str,
                   now: datetime) -> str | None:
    """Keypad 1 or 2 on a village doctor's call: the dispatcher's own step, exactly as the
    page's buttons take it (audited, announced to the console and the crew). None when it
    was taken, else why not (already answered on the page, the answer time over…)."""
    from dispatch import tier_store
    from dispatch.first_response import Answer, ResponseError

    try:
        tier_store.answer(conn, incident_id, post_id, Answer.ACCEPTED if accepted else Answer.DECLINED, actor, now)
    except (ResponseError, tier_store.NotFound) as exc:
        return str(exc)
    return None


def wake_on_alarm_events(database_url: str, wake: threading.Event, stop: threading.Event) -> None:
    """Every alarm event may carry a step's notifications, a village doctor's alert its
    post's SMS: start a pass at once. Without the stream the notifier still polls."""
    while not stop.is_set():
        try:
            with psycopg.connect(database_url, autocommit=True, application_name=APPLICATION_NAME) as conn:
                conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                while not stop.is_set():
                    for note in conn.notifies(timeout=1.0):
                        if '"alarm.' in note.payload or '"first_response"' in note.payload:
                            wake.set()
        except psycopg.OperationalError as exc:
            log.warning("event stream lost (%s); polling meanwhile", exc)
            stop.wait(2.0)


def run_notifier(settings: Settings, *, metrics_port: int | None = None) -> None:
    """Run until SIGTERM or Ctrl-C."""
    notifier = build_notifier(settings)
    stop, wake = threading.Event(), threading.Event()
    registry = CollectorRegistry()
    in_progress = Gauge("watchpost_notify_calls_in_progress", "voice calls in progress", registry=registry)
    in_progress.set_function(lambda: notifier.health.calls_in_progress)

    def readiness() -> dict[str, str]:
        checks = {"sms": notifier.health.sms, "voice": notifier.health.voice, **notifier.health.errors}
        try:
            with connect(settings.database_url, application_name=APPLICATION_NAME) as conn:
                summary = store.summary(conn, SystemClock().now())
            checks["database"] = "ok"
            checks["overdue"] = "ok" if not summary.get("overdue") else f"{summary['overdue']} notifications overdue"
        except psycopg.OperationalError as exc:
            checks["database"] = f"unreachable: {exc}"
        return checks

    port = settings.metrics_port if metrics_port is None else metrics_port
    if port:
        serve_health(port, registry, readiness)
    threading.Thread(target=wake_on_alarm_events, args=(settings.database_url, wake, stop), name="wake", daemon=True).start()
    def stopping(*_: object) -> None:
        stop.set()
        wake.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stopping)
    log.info("notifier running (sms: %s, voice: %s)", bool(settings.notify.smpp_url or settings.notify.sms_webhook_url),
             bool(settings.notify.sip_agent))
    try:
        run(notifier, wake, stop, settings.notify.poll_interval_s)
    finally:
        notifier.close()
