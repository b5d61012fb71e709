"""The platform's side of the detection table: the person and device alarms raised during a
run, read from its database once it has caught up."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from .detection import CLOCK_SLACK_S, DetectionTable, Raised, detection_table

POLL_S = 1.0
QUIET_POLLS = 3  # the platform has caught up when the alarms stop changing for this long
# ... and no person timer is due within the fall's "I'm OK" window and this margin: the window
# runs on the platform's clock after the alert arrived, also when the run itself is over.
PENDING_MARGIN_S = 30.0


def detection_of_run(
    sim: Any, database_url: str, *, settle_s: float, stop: threading.Event, live: bool, cancel_window_s: float = 60.0
) -> DetectionTable:
    """Wait (at most `settle_s`) until the alarms stop changing, then match them against what
    `sim` (a finished simulators.engine.Simulation) injected."""
    persons = sum(1 for d in sim.devices if d.kind == "elder")
    with psycopg.connect(database_url, autocommit=True) as conn:
        deadline = time.monotonic() + settle_s
        previous, quiet = None, 0
        while time.monotonic() < deadline and not stop.is_set():
            seen = conn.execute("SELECT count(*), max(last_seen) FROM alarms").fetchone()
            pending = conn.execute(
                "SELECT count(*) FROM rule_state WHERE source_key LIKE 'person:%%' "
                "AND next_deadline < now() + make_interval(secs => %s)",
                (cancel_window_s + PENDING_MARGIN_S,),
            ).fetchone()
            quiet = quiet + 1 if seen == previous and pending == (0,) else 0
            if quiet >= QUIET_POLLS:
                break
            previous = seen
            time.sleep(POLL_S)
        rows = conn.execute(
            # An alert whose clock the platform distrusted is stamped with its receive time; the
            # device's own time says when it happened (an accelerated run is hours behind).
            "SELECT alarm_type, source_kind, source_id, person_id, "
            "extract(epoch FROM CASE WHEN detail ? 'device_ts' THEN (detail->>'device_ts')::timestamptz ELSE first_seen END) "
            "FROM alarms "
            "WHERE source_kind IN ('person', 'device') AND first_seen >= to_timestamp(%s)",
            (sim.start - CLOCK_SLACK_S,),
        ).fetchall()
    raised = [Raised(alarm_type, who, float(at)) for alarm_type, kind, source, person, at in rows if (who := _person_of(kind, source, person))]
    return detection_table(
        sim.injected(), raised, persons=persons, duration_s=sim.now - sim.start, run_end=sim.now, live=live
    )


def _person_of(kind: str, source_id: str, person_id: str | None) -> str | None:
    if kind == "person":
        return person_id or source_id
    # A device alarm: "elder:P-0001" (the wearable) or "elder:P-0001/home/door-1".
    if source_id.startswith("elder:"):
        return source_id.removeprefix("elder:").split("/")[0]
    return None
