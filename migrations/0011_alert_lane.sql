-- Migration 0011: the life-safety alert lane
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- Every alert taken from `{root}/elder/{person_id}/alert`, keyed by the device's own event
-- id: a device repeats an unanswered alert until it sees its `received` receipt, and a
-- repeat finds its row here (and the alarm it raised) instead of raising a second alarm.
CREATE TABLE IF NOT EXISTS alerts (
    person_id       text NOT NULL,
    event_id        text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 64),
    type            text NOT NULL CHECK (type IN ('sos', 'fall', 'cancel', 'smoke', 'gas', 'water_leak')),
    ts              timestamptz NOT NULL,       -- the time in force (receive time if clock_suspect)
    device_ts       timestamptz,                -- the device's own time, as sent
    clock_suspect   boolean NOT NULL,
    received_at     timestamptz NOT NULL,
    lat             double precision,
    lon             double precision,
    acc_m           real,
    sensor_id       text,
    alarm_id        bigint REFERENCES alarms,   -- the alarm it raised, joined or cancelled
    repeats         integer NOT NULL DEFAULT 0, -- retries received after the first
    PRIMARY KEY (person_id, event_id)
);
CREATE INDEX IF NOT EXISTS alerts_received_idx ON alerts (received_at DESC);
CREATE INDEX IF NOT EXISTS alerts_alarm_idx ON alerts (alarm_id) WHERE alarm_id IS NOT NULL;
