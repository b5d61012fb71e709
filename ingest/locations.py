"""Each person's latest wearable fix, kept once per batch, and the dispatcher told of the
fixes of persons who have an open incident (so it can move the incident to them).

Storage is ingest's; what a fix means for an incident is the dispatcher's. The notice is
`announce`d (not kept): the next fix supersedes it, and the dispatcher's sweep compares the
stored fixes with its open incidents, so a notice missed while it was away is not lost.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from ingest.readings import Reading, WearableReading
from kernel.events import EventType, announce

# One statement per batch: keep the newest fix per person, and return the ones that moved for
# persons with an open incident.
_UPSERT_SQL = """
WITH moved AS (
    INSERT INTO person_locations (person_id, lat, lon, fix_at)
    SELECT * FROM unnest(%s::text[], %s::float8[], %s::float8[], %s::timestamptz[])
    ON CONFLICT (person_id) DO UPDATE SET lat = excluded.lat, lon = excluded.lon, acc_m = NULL, fix_at = excluded.fix_at
    WHERE person_locations.fix_at < excluded.fix_at
    RETURNING person_id, lat, lon, acc_m, fix_at
)
SELECT m.person_id, m.lat, m.lon, m.acc_m, m.fix_at FROM moved m
WHERE EXISTS (SELECT 1 FROM incidents i WHERE i.person_id = m.person_id AND i.state NOT IN ('closed', 'cancelled'))
"""


def latest_fixes(readings: Iterable[Reading]) -> dict[str, WearableReading]:
    """The newest reading with a fix of each person in the batch."""
    latest: dict[str, WearableReading] = {}
    for r in readings:
        if isinstance(r, WearableReading) and r.lat is not None and r.lon is not None:
            seen = latest.get(r.person_id)
            if seen is None or r.ts > seen.ts:
                latest[r.person_id] = r
    return latest


def record_fixes(cur: psycopg.Cursor, readings: Iterable[Reading]) -> int:
    """Upsert the batch's fixes; announce `person.located` for those with an open incident.
    Returns how many were announced."""
    fixes = latest_fixes(readings)
    if not fixes:
        return 0
    ordered = list(fixes.values())
    cur.execute(
        _UPSERT_SQL,
        ([r.person_id for r in ordered], [r.lat for r in ordered], [r.lon for r in ordered], [r.ts for r in ordered]),
    )
    moved = cur.fetchall()
    for person_id, lat, lon, acc_m, fix_at in moved:
        announce(cur, EventType.PERSON_LOCATED, person_id,
                 {"person_id": person_id, "lat": lat, "lon": lon, "acc_m": acc_m, "fix_at": fix_at.isoformat()}, fix_at)
    return len(moved)
