-- Migration 0002, from commit cc7ebfc: rule state, alarms, escalation, incidents, the event stream
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- ---------------------------------------------------------------------------------------
-- Detection rules, alarms, escalation, events
-- ---------------------------------------------------------------------------------------

-- Each rule source's state (a station, a person, a device), committed in the same
-- transaction as the readings that changed it. `next_deadline` is when its timers next
-- need a tick: timers live here, not in memory, so they survive any restart.
CREATE TABLE IF NOT EXISTS rule_state (
    source_key      text PRIMARY KEY,           -- 'station:WS-001', 'person:P-1', 'device:elder:P-1'
    state           jsonb NOT NULL,
    next_deadline   timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS rule_state_deadline_idx ON rule_state (next_deadline) WHERE next_deadline IS NOT NULL;

CREATE TABLE IF NOT EXISTS alarms (
    alarm_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_kind     text NOT NULL CHECK (source_kind IN ('station', 'person', 'device')),
    source_id       text NOT NULL,
    alarm_type      text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
    emergency       boolean NOT NULL DEFAULT false,
    state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'acked', 'cleared')),
    person_id       text,                       -- whose alarm it is, for family access
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    repeat_count    integer NOT NULL DEFAULT 1,
    acked_at        timestamptz,
    acked_by        text,
    cleared_at      timestamptz,
    cleared_by      text,
    control_room    boolean NOT NULL DEFAULT false,  -- the control room has been called in
    detail          jsonb NOT NULL DEFAULT '{}'
);
-- At most one open (active or acknowledged) alarm per source and type, by construction:
-- a concurrent second raise hits this index and becomes a repeat.
CREATE UNIQUE INDEX IF NOT EXISTS alarms_one_open_idx ON alarms (source_kind, source_id, alarm_type) WHERE state <> 'cleared';
CREATE INDEX IF NOT EXISTS alarms_state_idx ON alarms (state, first_seen DESC);
CREATE INDEX IF NOT EXISTS alarms_person_idx ON alarms (person_id, first_seen DESC) WHERE person_id IS NOT NULL;

-- Every alarm transition, with who or what caused it.
CREATE TABLE IF NOT EXISTS alarm_audit (
    alarm_id    bigint NOT NULL REFERENCES alarms,
    at          timestamptz NOT NULL,
    action      text NOT NULL,                  -- raised, repeated, escalated, acked, cleared, resolved
    actor       text NOT NULL,                  -- 'rule:<type>', 'timer', or a username
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS alarm_audit_alarm_idx ON alarm_audit (alarm_id, at);

-- Escalation of a person's alarm along their family contacts, then to the control room.
CREATE TABLE IF NOT EXISTS escalations (
    alarm_id        bigint PRIMARY KEY REFERENCES alarms,
    person_id       text NOT NULL,
    step            integer NOT NULL DEFAULT 0, -- index into the person's family chain
    notified        text NOT NULL,              -- 'family:<username>' or 'control_room'
    next_at         timestamptz,                -- NULL: nothing more to do
    acked_by        text
);
CREATE INDEX IF NOT EXISTS escalations_due_idx ON escalations (next_at) WHERE next_at IS NOT NULL;

CREATE SEQUENCE IF NOT EXISTS incident_seq;
CREATE TABLE IF NOT EXISTS incidents (
    incident_id     text PRIMARY KEY DEFAULT 'INC-' || lpad(nextval('incident_seq')::text, 6, '0'),
    kind            text NOT NULL,              -- medical, fire, water
    priority        smallint NOT NULL CHECK (priority BETWEEN 1 AND 4),  -- 1 is the most urgent
    state           text NOT NULL DEFAULT 'new'
                    CHECK (state IN ('new', 'dispatched', 'on_scene', 'transporting', 'closed', 'cancelled')),
    lat             double precision,
    lon             double precision,
    person_id       text,
    station_id      text,
    description     text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    created_by      text NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- One open emergency per person: a second emergency alarm joins the open incident.
CREATE UNIQUE INDEX IF NOT EXISTS incidents_one_open_per_person_idx ON incidents (person_id)
    WHERE person_id IS NOT NULL AND state NOT IN ('closed', 'cancelled');

CREATE TABLE IF NOT EXISTS incident_alarms (
    incident_id text NOT NULL REFERENCES incidents,
    alarm_id    bigint NOT NULL REFERENCES alarms,
    PRIMARY KEY (incident_id, alarm_id)
);

-- The durable event stream behind the websockets: every alarm and incident transition.
-- Writers take an advisory lock before inserting, so ids are assigned in commit order and a
-- reader resuming after id N never misses an event committed later with a smaller id.
CREATE TABLE IF NOT EXISTS events (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts          timestamptz NOT NULL,
    type        text NOT NULL CHECK (type IN ('alarm.raised', 'alarm.updated', 'alarm.cleared',
                                              'incident.created', 'incident.updated', 'unit.updated', 'water.status')),
    person_id   text,                           -- set when the event is about a person (family access)
    data        jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS events_person_idx ON events (person_id, event_id) WHERE person_id IS NOT NULL;
