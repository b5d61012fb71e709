-- Migration 0004, from commit 3987076: dispatch: road network, unit state, assignments, audit, CAP alerts
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- ---------------------------------------------------------------------------------------
-- Dispatch: road network, units' live state, assignments, decisions
-- ---------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS road_nodes (
    node    integer PRIMARY KEY,
    lat     double precision NOT NULL,
    lon     double precision NOT NULL
);

CREATE TABLE IF NOT EXISTS road_edges (
    edge_from   integer NOT NULL,
    edge_to     integer NOT NULL,
    length_m    real NOT NULL CHECK (length_m >= 0),
    road_class  text NOT NULL,
    speed_kmh   real NOT NULL CHECK (speed_kmh > 0)
);

-- Each unit's live state as the dispatcher knows it (rebuilt from here after a restart).
CREATE TABLE IF NOT EXISTS unit_state (
    unit_id     text PRIMARY KEY REFERENCES units ON DELETE CASCADE,
    status      text NOT NULL DEFAULT 'available'
                CHECK (status IN ('available', 'dispatched', 'en_route', 'on_scene', 'transporting',
                                  'at_hospital', 'returning', 'out_of_service')),
    incident_id text,
    lat         double precision,
    lon         double precision,
    gps_at      timestamptz,
    status_at   timestamptz NOT NULL DEFAULT now()
);

-- A unit sent to an incident. The partial unique indexes make double-booking impossible
-- whatever the number of dispatchers: one open assignment per unit and per incident.
CREATE TABLE IF NOT EXISTS assignments (
    assignment_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id     text NOT NULL REFERENCES incidents,
    unit_id         text NOT NULL REFERENCES units,
    state           text NOT NULL DEFAULT 'ordered'
                    CHECK (state IN ('ordered', 'en_route', 'on_scene', 'transporting', 'at_hospital',
                                     'done', 'refused', 'stood_down')),
    ordered_at      timestamptz NOT NULL,
    eta_s           real,
    hospital_id     text,
    first_aid_post_id text,
    created_by      text NOT NULL,
    decision        jsonb NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX IF NOT EXISTS assignments_one_open_per_unit_idx ON assignments (unit_id)
    WHERE state IN ('ordered', 'en_route', 'on_scene', 'transporting', 'at_hospital');
CREATE UNIQUE INDEX IF NOT EXISTS assignments_one_open_per_incident_idx ON assignments (incident_id)
    WHERE state IN ('ordered', 'en_route', 'on_scene', 'transporting', 'at_hospital');

-- Every dispatch decision and lifecycle step, accepted or rejected, with who/what/why.
CREATE TABLE IF NOT EXISTS dispatch_audit (
    at          timestamptz NOT NULL,
    incident_id text,
    unit_id     text,
    action      text NOT NULL,      -- assigned, queued, refused, transition, rejected_transition, closed, ...
    actor       text NOT NULL,      -- 'dispatcher', a username, 'unit:<id>'
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS dispatch_audit_incident_idx ON dispatch_audit (incident_id, at);

ALTER TABLE incidents ADD COLUMN IF NOT EXISTS alarm_id bigint;
-- Water incidents' closed loop: patrol → discover → supervise → close out.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS loop_stage text
    CHECK (loop_stage IN ('assigned', 'in_progress', 'verified', 'closed'));
CREATE UNIQUE INDEX IF NOT EXISTS incidents_one_open_per_station_idx ON incidents (station_id)
    WHERE station_id IS NOT NULL AND state NOT IN ('closed', 'cancelled');

-- CAP 1.2 documents sent to cross-border partners, one per alarm event; the event id as key
-- makes sure that of several dispatchers exactly one sends each.
CREATE TABLE IF NOT EXISTS cap_alerts (
    event_id    bigint PRIMARY KEY,
    alarm_id    bigint NOT NULL REFERENCES alarms,
    partner_id  text NOT NULL,
    msg_type    text NOT NULL CHECK (msg_type IN ('Alert', 'Update', 'Cancel')),
    identifier  text NOT NULL,
    sent        timestamptz NOT NULL,
    document    text NOT NULL
);
CREATE INDEX IF NOT EXISTS cap_alerts_alarm_idx ON cap_alerts (alarm_id, sent);

-- Set while an incident waits with no unit to send, so the control room is told once.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS queued boolean NOT NULL DEFAULT false;
-- Device time of the crew's latest status report: every dispatcher hears every report, and
-- one older than this (already applied by another) is skipped.
ALTER TABLE unit_state ADD COLUMN IF NOT EXISTS report_ts timestamptz;
