-- Migration 0009: where the person is, the dispatcher's incident sweep, receipts to the device
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- Each person's latest wearable fix, upserted by ingest once per batch. The dispatcher moves
-- an open incident to a newer fix and places a new one at a recent fix.
CREATE TABLE IF NOT EXISTS person_locations (
    person_id   text PRIMARY KEY,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    acc_m       real,
    fix_at      timestamptz NOT NULL        -- the device's measurement time of the fix
);

-- Where an incident is and why there: the alert's own fix, a recent wearable fix, or the home
-- address; the fix's accuracy (NULL: unknown) and its time (NULL: the home address).
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS location_source text
    CHECK (location_source IN ('alert_fix', 'recent_fix', 'home', 'station', 'caller'));
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS location_acc_m real;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS location_at timestamptz;

-- The dispatcher's sweep looks for open incident-opening alarms without an incident: both
-- sides of that anti-join stay small and indexed.
CREATE INDEX IF NOT EXISTS alarms_open_incident_kinds_idx ON alarms (alarm_id)
    WHERE state <> 'cleared' AND (emergency OR alarm_type = 'water_class_exceeded');
CREATE INDEX IF NOT EXISTS incident_alarms_alarm_idx ON incident_alarms (alarm_id);

-- Receipts the platform sent to a wearer's device after `received`, one per alarm and state:
-- of several dispatchers only the one whose insert succeeds publishes it.
CREATE TABLE IF NOT EXISTS receipts (
    alarm_id    bigint NOT NULL REFERENCES alarms,
    state       text NOT NULL CHECK (state IN ('family_notified', 'help_dispatched', 'cancelled')),
    person_id   text NOT NULL,
    event_id    text NOT NULL,
    sent_at     timestamptz NOT NULL,
    PRIMARY KEY (alarm_id, state)
);
