-- Watchpost's database schema, GENERATED from migrations/ by `watchpost db schema > schema.sql`:
-- do not edit. To change the schema, add a migrations/NNNN_name.sql and regenerate.
--
-- `watchpost db migrate` applies the migrations below in order, each in its own
-- transaction with its record in schema_migrations; a fresh database gets them all. Read
-- together they are the current schema: each table is created by one migration and may
-- be changed by later ones (see watchpost/migrations.py and docs/operations.md).
--
-- table                created in, then changed by
-- access_log           0005
-- alarm_audit          0002
-- alarms               0002, 0009
-- alerts               0011
-- assignments          0004, 0017
-- cap_alerts           0004, 0015
-- coverage_samples     0014
-- dead_letters         0001
-- device_presence      0001
-- dispatch_audit       0004
-- escalations          0002
-- events               0002
-- facilities           0001, 0014, 0017, 0019, 0022
-- family_links         0001, 0012
-- first_responses      0017
-- home_events          0001
-- home_sensors         0001
-- incident_alarms      0002, 0009
-- incidents            0002, 0004, 0009, 0014, 0018
-- login_failures       0010
-- notifications        0012, 0019
-- partners             0001, 0015, 0020, 0022
-- patient_reports      0017
-- pending_events       0016
-- person_locations     0009
-- persons              0001, 0013, 0017, 0022
-- receipts             0009
-- region_layers        0008
-- registry_version     0003, 0022
-- retention_policies   0001
-- road_edges           0004
-- road_nodes           0004
-- road_water           0014
-- rule_state           0002, 0023
-- secret_fingerprints  0021
-- station_averages     0015, 0020
-- stations             0001, 0007, 0015, 0022
-- unit_positions       0001
-- unit_state           0004
-- unit_status_reports  0001
-- units                0001, 0014, 0022
-- unsent_orders        0021
-- users                0001, 0010, 0012, 0017, 0022
-- water_hourly         0001
-- water_readings       0001
-- wearable_readings    0001

-- ==== schema_migrations (created by `watchpost db migrate` itself) ====
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    checksum    text NOT NULL           -- sha256 of the migration file as applied
);

-- ==== 0001_release_1 ====
-- Migration 0001: release 1 (commit 4441f86), the baseline: that release's whole schema.
-- A fresh database starts here and applies every later migration in order; a database
-- without schema_migrations that already has the registry tables was built before
-- versioning and is recorded as being at this version (see watchpost/migrations.py).

-- Requires TimescaleDB >= 2.19 (the Apache-2 edition is enough; see docs/storage.md).

CREATE EXTENSION IF NOT EXISTS timescaledb;

-- ---------------------------------------------------------------------------------------
-- Registry (reference data, loaded by `watchpost registry load`)
-- ---------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS partners (
    partner_id   text PRIMARY KEY,
    name         text NOT NULL,
    adcode       integer
);

CREATE TABLE IF NOT EXISTS stations (
    station_id          text PRIMARY KEY,
    name                text NOT NULL,
    lat                 double precision NOT NULL,
    lon                 double precision NOT NULL,
    town                text,
    water_body          text NOT NULL DEFAULT 'river' CHECK (water_body IN ('river', 'lake')),
    target_class        smallint NOT NULL DEFAULT 3 CHECK (target_class BETWEEN 1 AND 5),
    partner_id          text REFERENCES partners,
    report_interval_s   integer NOT NULL DEFAULT 60 CHECK (report_interval_s > 0),
    thresholds          jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS persons (
    person_id           text PRIMARY KEY,
    name                text NOT NULL,
    lat                 double precision NOT NULL,
    lon                 double precision NOT NULL,
    address             text,
    town                text,
    village             text,
    report_interval_s   integer NOT NULL DEFAULT 60 CHECK (report_interval_s > 0),
    thresholds          jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS home_sensors (
    person_id   text NOT NULL REFERENCES persons ON DELETE CASCADE,
    sensor_id   text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('motion', 'door', 'smoke', 'gas', 'water_leak', 'bed', 'temperature')),
    PRIMARY KEY (person_id, sensor_id)
);

CREATE TABLE IF NOT EXISTS facilities (
    facility_id text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('emergency_centre', 'ambulance_station', 'first_aid_post', 'hospital', 'patrol_base')),
    name        text NOT NULL,
    town        text,
    village     text,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL
);

CREATE TABLE IF NOT EXISTS units (
    unit_id             text PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('ambulance', 'river_patrol')),
    name                text NOT NULL,
    base_facility_id    text REFERENCES facilities,
    town                text,
    report_interval_s   integer NOT NULL DEFAULT 5 CHECK (report_interval_s > 0)
);

CREATE TABLE IF NOT EXISTS users (
    username        text PRIMARY KEY,
    display_name    text NOT NULL,
    role            text NOT NULL CHECK (role IN ('operator', 'dispatcher', 'family', 'admin')),
    password_hash   text            -- NULL: cannot log in until a password is set
);

-- A family member's link to the elderly person they look after; `position` orders the
-- escalation chain.
CREATE TABLE IF NOT EXISTS family_links (
    username        text NOT NULL REFERENCES users ON DELETE CASCADE,
    person_id       text NOT NULL REFERENCES persons ON DELETE CASCADE,
    position        smallint NOT NULL DEFAULT 1,
    ack_timeout_s   integer NOT NULL DEFAULT 120,
    PRIMARY KEY (username, person_id)
);

-- ---------------------------------------------------------------------------------------
-- Telemetry: one hypertable per stream. The time column is the device's measurement time;
-- the unique key (device, time) makes a redelivered message a no-op.
-- ---------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS water_readings (
    station_id      text NOT NULL,
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    seq             bigint,
    flag            char(1) NOT NULL DEFAULT 'N',
    temp_c          double precision,
    ph              double precision,
    do_mg_l         double precision,
    codmn_mg_l      double precision,
    cod_mg_l        double precision,
    nh3n_mg_l       double precision,
    tp_mg_l         double precision,
    tn_mg_l         double precision,
    turbidity_ntu   double precision,
    cond_us_cm      double precision,
    UNIQUE (station_id, ts)
);
SELECT create_hypertable('water_readings', by_range('ts', INTERVAL '7 days'), if_not_exists => TRUE);

CREATE TABLE IF NOT EXISTS wearable_readings (
    person_id       text NOT NULL,
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    seq             bigint,
    hr_bpm          real,
    spo2_pct        real,
    skin_temp_c     real,
    steps           integer,
    battery_pct     real,
    lat             double precision,
    lon             double precision,
    fall            boolean,
    sos             boolean,
    cancel          boolean,
    UNIQUE (person_id, ts)
);
SELECT create_hypertable('wearable_readings', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE);

CREATE TABLE IF NOT EXISTS home_events (
    person_id       text NOT NULL,
    sensor_id       text NOT NULL,
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    seq             bigint,
    kind            text NOT NULL,
    value_bool      boolean,
    value_num       double precision,
    UNIQUE (person_id, sensor_id, ts)
);
SELECT create_hypertable('home_events', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE);

CREATE TABLE IF NOT EXISTS unit_positions (
    unit_id         text NOT NULL,
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    seq             bigint,
    lat             double precision NOT NULL,
    lon             double precision NOT NULL,
    speed_kmh       real,
    heading_deg     real,
    UNIQUE (unit_id, ts)
);
SELECT create_hypertable('unit_positions', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE);

CREATE TABLE IF NOT EXISTS unit_status_reports (
    unit_id         text NOT NULL,
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    seq             bigint,
    status          text NOT NULL,
    incident_id     text,
    UNIQUE (unit_id, ts)
);
SELECT create_hypertable('unit_status_reports', by_range('ts', INTERVAL '7 days'), if_not_exists => TRUE);

-- The latest retained online flag of each device. A state, not a history: replaying the
-- same flag changes nothing, so redelivery is harmless here too.
CREATE TABLE IF NOT EXISTS device_presence (
    device_kind     text NOT NULL,
    device_id       text NOT NULL,
    online          boolean NOT NULL,
    changed_at      timestamptz NOT NULL,
    PRIMARY KEY (device_kind, device_id)
);

-- Every message that could not be stored as a reading, with a machine-readable reason.
CREATE TABLE IF NOT EXISTS dead_letters (
    received_at     timestamptz NOT NULL,
    topic           text NOT NULL,
    payload         bytea NOT NULL,
    reason          text NOT NULL,
    detail          text NOT NULL
);
SELECT create_hypertable('dead_letters', by_range('received_at', INTERVAL '7 days'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS dead_letters_reason_idx ON dead_letters (reason, received_at DESC);

-- ---------------------------------------------------------------------------------------
-- Hourly water-quality rollup, maintained by ingest in the same transaction as the raw
-- rows it summarises (so it is never stale and never double-counts a redelivery). Only
-- normal (flag N) data is summed. Averages: sum_x / n_x.
-- ---------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS water_hourly (
    station_id  text NOT NULL,
    bucket      timestamptz NOT NULL,
    readings    integer NOT NULL DEFAULT 0,   -- all readings, flagged ones included
    flagged     integer NOT NULL DEFAULT 0,
    n_temp_c integer NOT NULL DEFAULT 0, sum_temp_c double precision, min_temp_c double precision, max_temp_c double precision,
    n_ph integer NOT NULL DEFAULT 0, sum_ph double precision, min_ph double precision, max_ph double precision,
    n_do_mg_l integer NOT NULL DEFAULT 0, sum_do_mg_l double precision, min_do_mg_l double precision, max_do_mg_l double precision,
    n_codmn_mg_l integer NOT NULL DEFAULT 0, sum_codmn_mg_l double precision, min_codmn_mg_l double precision, max_codmn_mg_l double precision,
    n_cod_mg_l integer NOT NULL DEFAULT 0, sum_cod_mg_l double precision, min_cod_mg_l double precision, max_cod_mg_l double precision,
    n_nh3n_mg_l integer NOT NULL DEFAULT 0, sum_nh3n_mg_l double precision, min_nh3n_mg_l double precision, max_nh3n_mg_l double precision,
    n_tp_mg_l integer NOT NULL DEFAULT 0, sum_tp_mg_l double precision, min_tp_mg_l double precision, max_tp_mg_l double precision,
    n_tn_mg_l integer NOT NULL DEFAULT 0, sum_tn_mg_l double precision, min_tn_mg_l double precision, max_tn_mg_l double precision,
    n_turbidity_ntu integer NOT NULL DEFAULT 0, sum_turbidity_ntu double precision, min_turbidity_ntu double precision, max_turbidity_ntu double precision,
    n_cond_us_cm integer NOT NULL DEFAULT 0, sum_cond_us_cm double precision, min_cond_us_cm double precision, max_cond_us_cm double precision,
    PRIMARY KEY (station_id, bucket)
);

-- ---------------------------------------------------------------------------------------
-- Retention: ingest's maintenance loop drops chunks older than `keep`. Defaults below;
-- an operator changes them with UPDATE, and migrate never overwrites a changed value.
-- ---------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS retention_policies (
    hypertable  text PRIMARY KEY,
    keep        interval NOT NULL CHECK (keep >= INTERVAL '1 day')
);
INSERT INTO retention_policies (hypertable, keep) VALUES
    ('water_readings',      INTERVAL '5 years'),   -- environmental record; hourly rollup is kept forever
    ('wearable_readings',   INTERVAL '180 days'),  -- health data: kept no longer than care needs
    ('home_events',         INTERVAL '180 days'),
    ('unit_positions',      INTERVAL '90 days'),
    ('unit_status_reports', INTERVAL '2 years'),   -- response-time audits
    ('dead_letters',        INTERVAL '30 days')
ON CONFLICT (hypertable) DO NOTHING;

-- ==== 0002_alarms ====
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

-- ==== 0003_registry_version ====
-- Migration 0003, from commit ed6a0c8: registry version, so processes re-read the registry only when it changed
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- Bumped by every registry load, so running processes re-read the registry only when it
-- changed (reading it for 20,000 persons is not free).
CREATE TABLE IF NOT EXISTS registry_version (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version     bigint NOT NULL DEFAULT 0,
    loaded_at   timestamptz
);
INSERT INTO registry_version (singleton) VALUES (true) ON CONFLICT DO NOTHING;

-- ==== 0004_dispatch ====
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

-- ==== 0005_access_log ====
-- Migration 0005, from commit ac8a09e: access log of health-data reads
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- Every read of a person's health data by the control room (privacy: DOMAIN.md).
CREATE TABLE IF NOT EXISTS access_log (
    at          timestamptz NOT NULL,
    username    text NOT NULL,
    person_id   text NOT NULL,
    what        text NOT NULL
);
CREATE INDEX IF NOT EXISTS access_log_person_idx ON access_log (person_id, at DESC);

-- ==== 0006_event_retention ====
-- Migration 0006, from commit 0ff4315: retention for the event stream.
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.
-- Like schema.sql, it never overwrites a value an operator has changed.

INSERT INTO retention_policies (hypertable, keep) VALUES
    ('events',              INTERVAL '90 days')    -- the websocket catch-up stream; alarms and audits stay
ON CONFLICT (hypertable) DO NOTHING;

-- ==== 0007_hj212_stations ====
-- Migration 0007, from commit 189f2df: HJ 212 station credentials
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- HJ 212 stations: the MN their data collector sends and a keyed digest of their PW
-- (HMAC-SHA256 under $WATCHPOST_HOME/hj212-secret). Served once both are set
-- (`watchpost hj212-station`).
ALTER TABLE stations ADD COLUMN IF NOT EXISTS hj212_mn text UNIQUE
    CHECK (hj212_mn ~ '^[^;=&,[:space:]]{1,27}$');
ALTER TABLE stations ADD COLUMN IF NOT EXISTS hj212_password_digest text
    CHECK (hj212_password_digest ~ '^[0-9a-f]{64}$');

-- ==== 0008_region_layers ====
-- Migration 0008: the console map's region layers
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- The base map's scenery, one GeoJSON FeatureCollection per layer (`boundary`, `rivers`,
-- `towns`), loaded with `watchpost region load` (or with the simulated county by
-- `watchpost roads load --synthetic-jiashan`). The roads are drawn from road_edges.
CREATE TABLE IF NOT EXISTS region_layers (
    name        text PRIMARY KEY,
    geojson     jsonb NOT NULL,
    source      text,
    loaded_at   timestamptz
);

-- ==== 0009_incident_location ====
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

-- ==== 0010_revocable_tokens_and_login_throttle ====
-- Migration 0010: revocable login tokens and a login throttle shared by every API process
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- Every login token carries the user's token_version; a request or an open websocket whose
-- token names an older version (or a user who no longer exists) is refused. The trigger
-- bumps it whenever the role or the password changes, by whichever path (the registry,
-- `watchpost user set-password`, plain SQL), so demoting a user or resetting a stolen
-- password ends their sessions at once.
ALTER TABLE users ADD COLUMN IF NOT EXISTS token_version integer NOT NULL DEFAULT 1;

CREATE OR REPLACE FUNCTION users_bump_token_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.role IS DISTINCT FROM OLD.role OR NEW.password_hash IS DISTINCT FROM OLD.password_hash THEN
        NEW.token_version := OLD.token_version + 1;
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS users_token_version ON users;
CREATE TRIGGER users_token_version BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_bump_token_version();

-- Failed logins, per (username, client address) and per address alone (username ''): each
-- failure past the free attempts doubles the wait before the next attempt is heard. A row
-- is forgotten once quiet for the throttle's memory; a successful login clears only its
-- own (username, address) row, never the address's; `watchpost user unlock NAME` clears
-- a user's rows.
CREATE TABLE IF NOT EXISTS login_failures (
    username        text NOT NULL,
    address         text NOT NULL,
    failures        integer NOT NULL,
    last_failed_at  timestamptz NOT NULL,
    blocked_until   timestamptz NOT NULL,
    PRIMARY KEY (username, address)
);

-- ==== 0011_alert_lane ====
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

-- ==== 0012_notifications ====
-- Migration 0012: family contacts off the page — SMS and voice calls
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- A family member's phone (E.164, personal data: masked in logs, access-logged when the
-- control room reads it) and, per person they look after, the channels that reach them.
ALTER TABLE users ADD COLUMN IF NOT EXISTS phone text;
ALTER TABLE family_links ADD COLUMN IF NOT EXISTS channels text[] NOT NULL DEFAULT '{app}';
ALTER TABLE family_links ADD COLUMN IF NOT EXISTS voice_after_s integer NOT NULL DEFAULT 60;

-- Every message an escalation step sends, one row per alarm, contact and channel: the
-- notifier claims due rows (FOR UPDATE SKIP LOCKED) under a lease, so a crashed notifier's
-- call is retried once the lease passes, never twice in a burst.
CREATE TABLE IF NOT EXISTS notifications (
    notification_id bigserial PRIMARY KEY,
    alarm_id        bigint NOT NULL REFERENCES alarms,
    person_id       text NOT NULL,
    username        text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('app', 'sms', 'voice')),
    step            integer NOT NULL,
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN (
                        'queued', 'sending', 'ringing', 'answered', 'acked', 'no_answer', 'busy', 'rejected',
                        'failed', 'accepted', 'delivered', 'cancelled', 'expired')),
    attempt         integer NOT NULL DEFAULT 0,     -- attempts started
    due_at          timestamptz NOT NULL,           -- when the next attempt may start
    expires_at      timestamptz,                    -- the step's deadline: not worth sending after
    lease_until     timestamptz,                    -- a claimed row is its notifier's until then
    provider_ref    text,                           -- the SMSC's message id, the call's id
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}',    -- the last outcome, keypad, error
    UNIQUE (alarm_id, username, channel)
);
CREATE INDEX IF NOT EXISTS notifications_due_idx ON notifications (due_at) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS notifications_leased_idx ON notifications (lease_until) WHERE state IN ('sending', 'ringing', 'answered');
CREATE INDEX IF NOT EXISTS notifications_ref_idx ON notifications (provider_ref) WHERE provider_ref IS NOT NULL;

-- ==== 0013_person_name_pinyin ====
-- Migration 0013: a person's name in pinyin, for the English view
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- The console and the family page are Chinese; the English view shows the pinyin when the
-- registry gives it, else the name as written.
ALTER TABLE persons ADD COLUMN IF NOT EXISTS name_pinyin text;

-- ==== 0014_geography_and_fire ====
-- Migration 0014: dispatch on real geography and the right service
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- The river and canal lines of the loaded road network, as segments: a scene or a unit is
-- snapped onto the nearest road it can reach without crossing one (dispatch/snapping.py).
CREATE TABLE IF NOT EXISTS road_water (
    segment     integer PRIMARY KEY,
    lat1        double precision NOT NULL,
    lon1        double precision NOT NULL,
    lat2        double precision NOT NULL,
    lon2        double precision NOT NULL
);

-- Fire-and-rescue crews are units like ambulances; their stations, and the gas company a gas
-- incident is handed to, are facilities.
ALTER TABLE units DROP CONSTRAINT IF EXISTS units_kind_check;
ALTER TABLE units ADD CONSTRAINT units_kind_check CHECK (kind IN ('ambulance', 'river_patrol', 'fire'));
ALTER TABLE facilities DROP CONSTRAINT IF EXISTS facilities_kind_check;
ALTER TABLE facilities ADD CONSTRAINT facilities_kind_check
    CHECK (kind IN ('emergency_centre', 'ambulance_station', 'first_aid_post', 'hospital', 'patrol_base',
                    'fire_station', 'gas_company'));

-- A fire or gas incident where someone is hurt, or the person does not answer, gets an
-- ambulance as a companion incident: its own queue place and unit, linked to the first.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS parent_incident_id text REFERENCES incidents;
CREATE UNIQUE INDEX IF NOT EXISTS incidents_one_companion_idx ON incidents (parent_incident_id)
    WHERE parent_incident_id IS NOT NULL;

-- The coverage the available ambulances gave, sampled whenever a unit's status changed (one
-- row per unit.updated event, whichever dispatcher heard it first): the shift report's daily
-- coverage is these shares weighted by how long each stood.
CREATE TABLE IF NOT EXISTS coverage_samples (
    event_id        bigint PRIMARY KEY,
    at              timestamptz NOT NULL,
    within_8        real NOT NULL,      -- share of villages within 8 minutes of an available ambulance
    within_12       real NOT NULL,
    within_15       real NOT NULL,
    uncovered_towns text[] NOT NULL
);
CREATE INDEX IF NOT EXISTS coverage_samples_at_idx ON coverage_samples (at);

-- ==== 0015_station_averages ====
-- Migration 0015: a water station's own averages, as it uploads them
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- HJ 212 minute, hour and day data (CN 2051 / 2061 / 2031): the station's average over the
-- period, with the minimum and maximum where it sent them and each parameter's own data
-- flag (N F M S D C T B; NULL where the parameter was not sent). Keyed by (station,
-- period, period start), apart from `water_readings`: an hourly average stamped 10:00 is
-- not a real-time reading of 10:00:00, and a resent upload is a no-op.
-- chla_ug_l is chlorophyll-a (µg/L, HJ 212 w01016), which lakes need for their trophic
-- state index; real-time telemetry does not carry it.
CREATE TABLE IF NOT EXISTS station_averages (
    station_id          text NOT NULL,
    period              text NOT NULL CHECK (period IN ('minute', 'hour', 'day')),
    period_start        timestamptz NOT NULL,
    received_at         timestamptz NOT NULL DEFAULT now(),
    temp_c              double precision,
    temp_c_min          double precision,
    temp_c_max          double precision,
    temp_c_flag         char(1),
    ph                  double precision,
    ph_min              double precision,
    ph_max              double precision,
    ph_flag             char(1),
    do_mg_l             double precision,
    do_mg_l_min         double precision,
    do_mg_l_max         double precision,
    do_mg_l_flag        char(1),
    codmn_mg_l          double precision,
    codmn_mg_l_min      double precision,
    codmn_mg_l_max      double precision,
    codmn_mg_l_flag     char(1),
    cod_mg_l            double precision,
    cod_mg_l_min        double precision,
    cod_mg_l_max        double precision,
    cod_mg_l_flag       char(1),
    nh3n_mg_l           double precision,
    nh3n_mg_l_min       double precision,
    nh3n_mg_l_max       double precision,
    nh3n_mg_l_flag      char(1),
    tp_mg_l             double precision,
    tp_mg_l_min         double precision,
    tp_mg_l_max         double precision,
    tp_mg_l_flag        char(1),
    tn_mg_l             double precision,
    tn_mg_l_min         double precision,
    tn_mg_l_max         double precision,
    tn_mg_l_flag        char(1),
    turbidity_ntu       double precision,
    turbidity_ntu_min   double precision,
    turbidity_ntu_max   double precision,
    turbidity_ntu_flag  char(1),
    cond_us_cm          double precision,
    cond_us_cm_min      double precision,
    cond_us_cm_max      double precision,
    cond_us_cm_flag     char(1),
    chla_ug_l           double precision,
    chla_ug_l_min       double precision,
    chla_ug_l_max       double precision,
    chla_ug_l_flag      char(1),
    UNIQUE (station_id, period, period_start)
);
SELECT create_hypertable('station_averages', by_range('period_start', INTERVAL '30 days'), if_not_exists => TRUE);

-- Kept as long as the real-time record it stands beside.
INSERT INTO retention_policies (hypertable, keep) VALUES ('station_averages', INTERVAL '5 years')
ON CONFLICT (hypertable) DO NOTHING;

-- Station categories: which monitoring network a station belongs to. A cross-border section
-- has a partner jurisdiction (stations.partner_id) that shares its alarms.
ALTER TABLE stations ADD COLUMN IF NOT EXISTS category text
    CHECK (category IN ('national', 'provincial', 'county', 'cross_border'));

-- The partner's duty contact (who an unanswered alert escalates to) and how long an alert
-- may wait for the partner's CAP Ack before it does.
ALTER TABLE partners ADD COLUMN IF NOT EXISTS duty_contact text;
ALTER TABLE partners ADD COLUMN IF NOT EXISTS ack_timeout_s integer NOT NULL DEFAULT 600 CHECK (ack_timeout_s > 0);

-- The partner's answer to each Alert (CAP Ack: accepted, Error: refused), who sent it and
-- when; and when an unanswered Alert was escalated to the partner's duty contact.
ALTER TABLE cap_alerts ADD COLUMN IF NOT EXISTS answer text CHECK (answer IN ('Ack', 'Error'));
ALTER TABLE cap_alerts ADD COLUMN IF NOT EXISTS answered_at timestamptz;
ALTER TABLE cap_alerts ADD COLUMN IF NOT EXISTS answered_by text;
ALTER TABLE cap_alerts ADD COLUMN IF NOT EXISTS answer_note text;
ALTER TABLE cap_alerts ADD COLUMN IF NOT EXISTS escalated_at timestamptz;
CREATE INDEX IF NOT EXISTS cap_alerts_unanswered_idx ON cap_alerts (sent)
    WHERE msg_type = 'Alert' AND answered_at IS NULL AND escalated_at IS NULL;

-- ==== 0016_events_ordered_at_commit ====
-- Migration 0016: events take their id at commit, so no writer waits for another's whole
-- transaction
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- `emit` writes an event here, without a lock. A deferred trigger moves it into `events` as
-- the transaction commits: it takes the events lock, gives the event its id, deletes the
-- pending row and NOTIFYs listeners. The lock is held from the commit's first event to the
-- end of the commit only, so ids still increase in commit order (a reader resuming "after
-- id N" misses nothing committed later) while an ingest batch that raises alarms no longer
-- holds every other writer — an SOS among them — for the rest of the batch.
-- Unlogged: a pending row never outlives its transaction, so there is nothing to recover.
CREATE UNLOGGED TABLE IF NOT EXISTS pending_events (
    ts          timestamptz NOT NULL,
    type        text NOT NULL,
    person_id   text,
    data        jsonb NOT NULL,
    notice      text NOT NULL               -- the NOTIFY payload without its leading "id" member
);

CREATE OR REPLACE FUNCTION publish_pending_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('watchpost-events'));
    INSERT INTO events (ts, type, person_id, data) VALUES (NEW.ts, NEW.type, NEW.person_id, NEW.data)
        RETURNING event_id INTO new_id;
    DELETE FROM pending_events WHERE ctid = NEW.ctid;
    PERFORM pg_notify('watchpost_events', '{"id":' || new_id || ',' || substr(NEW.notice, 2));
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS pending_events_publish ON pending_events;
CREATE CONSTRAINT TRIGGER pending_events_publish AFTER INSERT ON pending_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION publish_pending_event();

-- ==== 0017_three_tiers ====
-- Migration 0017: the three tiers: village doctors, hospitals and crews as users
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- The three tiers log in as users scoped to what they serve: a `first_aid` user to their
-- first-aid post, a `hospital` user to their hospital, a `crew` user to their unit. The
-- scope is a registry id (a facility or a unit); the API and the websockets give such a
-- user only the incidents that name it.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('operator', 'dispatcher', 'family', 'admin', 'first_aid', 'hospital', 'crew'));
ALTER TABLE users ADD COLUMN IF NOT EXISTS scope_id text;
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_scope_check;
ALTER TABLE users ADD CONSTRAINT users_scope_check
    CHECK ((role IN ('first_aid', 'hospital', 'crew')) = (scope_id IS NOT NULL));

-- What a first responder needs to know before reaching the person.
ALTER TABLE persons ADD COLUMN IF NOT EXISTS conditions text[] NOT NULL DEFAULT '{}';
ALTER TABLE persons ADD COLUMN IF NOT EXISTS medications text[] NOT NULL DEFAULT '{}';

-- The village doctor sent ahead of the ambulance: one per incident, decided at assignment.
-- `answer` stays NULL until the doctor accepts or declines; past `answer_by` an unanswered
-- alert counts as no answer (nothing waits on it).
CREATE TABLE IF NOT EXISTS first_responses (
    incident_id     text PRIMARY KEY REFERENCES incidents,
    post_id         text NOT NULL,
    alerted_at      timestamptz NOT NULL,
    answer_by       timestamptz NOT NULL,
    post_eta_s      real NOT NULL,          -- the post to the scene by road
    unit_eta_s      real,                   -- the ambulance's ETA when the doctor was alerted
    answer          text CHECK (answer IN ('accepted', 'declined', 'no_answer')),
    answered_at     timestamptz,
    on_scene_at     timestamptz,
    note            text CHECK (length(note) <= 500),
    note_at         timestamptz
);
CREATE INDEX IF NOT EXISTS first_responses_post_idx ON first_responses (post_id, alerted_at DESC);

-- A hospital's emergency department may say it cannot take more patients; incidents are
-- then sent to the next capable hospital.
ALTER TABLE facilities ADD COLUMN IF NOT EXISTS no_capacity boolean NOT NULL DEFAULT false;
ALTER TABLE facilities ADD COLUMN IF NOT EXISTS no_capacity_since timestamptz;

-- The hand-over: when the unit reported `at_hospital`.
ALTER TABLE assignments ADD COLUMN IF NOT EXISTS handed_over_at timestamptz;

-- The crew's observations during transport (`{root}/unit/{unit_id}/patient`), stored as
-- received, for the receiving hospital's board.
CREATE TABLE IF NOT EXISTS patient_reports (
    unit_id         text NOT NULL,
    ts              timestamptz NOT NULL,
    incident_id     text,
    hr_bpm          real,
    spo2_pct        real,
    resp_rate       real,
    sys_bp          real,
    dia_bp          real,
    temp_c          real,
    gcs             smallint CHECK (gcs BETWEEN 3 AND 15),
    consciousness   text CHECK (consciousness IN ('alert', 'voice', 'pain', 'unresponsive')),
    suspected       text,
    note            text,
    PRIMARY KEY (unit_id, ts)
);
CREATE INDEX IF NOT EXISTS patient_reports_incident_idx ON patient_reports (incident_id, ts DESC);

-- ==== 0018_untrusted_fix_and_verification ====
-- A person's fix far outside the service region is not trusted: which fix an incident passed
-- over ('alert_fix' or 'recent_fix'), for the console and the audit.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS untrusted_fix text
    CHECK (untrusted_fix IN ('alert_fix', 'recent_fix'));

-- The verification call at a fire or gas incident in a person's home: by `verify_by` the
-- control room records whether the person answered (`ok`), someone is hurt (`hurt`), or
-- nobody answered (`no_answer`); past it with nothing recorded the dispatcher records
-- `no_answer` itself. `hurt` and `no_answer` send an ambulance as well.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS verify_by timestamptz;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS verification text CHECK (verification IN ('ok', 'hurt', 'no_answer'));
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS verified_at timestamptz;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS verified_by text;
CREATE INDEX IF NOT EXISTS incidents_unverified_idx ON incidents (verify_by)
    WHERE verify_by IS NOT NULL AND verification IS NULL;

-- ==== 0019_first_responder_calls ====
-- Migration 0019: the village doctor reached by SMS and call, not only on the page
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- A first-aid post's duty phone (E.164): the village doctor on duty carries it, so the
-- post's alert is texted and, unanswered, rung to it.
ALTER TABLE facilities ADD COLUMN IF NOT EXISTS duty_phone text;

-- A notification is about an alarm (a family contact) or an incident (a first-aid post's
-- doctor alerted as first responder), never both. The post's rows are addressed to the
-- post (`username` holds its facility id) and queued with the alert, in its transaction.
ALTER TABLE notifications ALTER COLUMN alarm_id DROP NOT NULL;
ALTER TABLE notifications ALTER COLUMN person_id DROP NOT NULL;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS incident_id text REFERENCES incidents;
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_about_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_about_check CHECK ((alarm_id IS NULL) <> (incident_id IS NULL));
CREATE UNIQUE INDEX IF NOT EXISTS notifications_incident_idx ON notifications (incident_id, username, channel)
    WHERE incident_id IS NOT NULL;
-- Keypad 2 on the doctor's call: declined, as on the page.
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_state_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_state_check CHECK (state IN (
    'queued', 'sending', 'ringing', 'answered', 'acked', 'declined', 'no_answer', 'busy', 'rejected',
    'failed', 'accepted', 'delivered', 'cancelled', 'expired'));

-- ==== 0020_transparency_and_partner_phones ====
-- Migration 0020: lakes' transparency, and the partner's duty phone
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- Transparency (Secchi depth SD, m) in a station's own averages, as the other parameters:
-- the average, minimum and maximum where sent, and its own data flag. Lakes and reservoirs
-- need it for the trophic state index; real-time telemetry does not carry it.
ALTER TABLE station_averages ADD COLUMN IF NOT EXISTS sd_m double precision;
ALTER TABLE station_averages ADD COLUMN IF NOT EXISTS sd_m_min double precision;
ALTER TABLE station_averages ADD COLUMN IF NOT EXISTS sd_m_max double precision;
ALTER TABLE station_averages ADD COLUMN IF NOT EXISTS sd_m_flag char(1);

-- The phone (E.164) of the partner's duty contact: an alert the partner leaves unanswered
-- is texted and rung there, besides being shown on the console.
ALTER TABLE partners ADD COLUMN IF NOT EXISTS duty_phone text;

-- ==== 0021_unsent_orders_and_secret_fingerprints ====
-- Migration 0021: orders waiting for the broker; fingerprints of the deployment's secrets
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- An order a dispatcher gave by hand in the console (an assignment or a move-up), written
-- here before the API hands it to the broker and deleted once the broker has it. While the
-- broker is down it stays, and the API sends it when the broker is back, if it still stands
-- (the unit still has that incident): a committed order is never left unpublished. One per
-- unit: a newer order for the unit replaces an unsent older one.
CREATE TABLE IF NOT EXISTS unsent_orders (
    unit_id         text PRIMARY KEY REFERENCES units ON DELETE CASCADE,
    topic           text NOT NULL,
    payload         jsonb NOT NULL,
    incident_id     text,                   -- NULL for a move-up (relocation)
    committed_at    timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0
);

-- A fingerprint (HMAC of a fixed label, not the secret) of each deployment secret in
-- $WATCHPOST_HOME the database's data was derived from: device passwords from mqtt-secret,
-- HJ 212 password digests from hj212-secret. A process that finds the secret file missing,
-- or a different one, while the database holds a fingerprint refuses to create or use it:
-- a mistyped home directory must not silently mint new passwords.
CREATE TABLE IF NOT EXISTS secret_fingerprints (
    name            text PRIMARY KEY,       -- the file's name: mqtt-secret, hj212-secret
    fingerprint     text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);

-- ==== 0022_registry_retirement ====
-- A registry sync retires the records a county's file no longer lists instead of deleting
-- them: their readings, alarms, incidents and audit keep the ids they name. A retired unit
-- is never dispatched, a retired person's or station's device is refused by ingest, a
-- retired user cannot log in, a retired facility is no unit's base nor a hand-off.
ALTER TABLE persons ADD COLUMN IF NOT EXISTS retired_at timestamptz;
ALTER TABLE stations ADD COLUMN IF NOT EXISTS retired_at timestamptz;
ALTER TABLE units ADD COLUMN IF NOT EXISTS retired_at timestamptz;
ALTER TABLE facilities ADD COLUMN IF NOT EXISTS retired_at timestamptz;
ALTER TABLE partners ADD COLUMN IF NOT EXISTS retired_at timestamptz;
ALTER TABLE users ADD COLUMN IF NOT EXISTS retired_at timestamptz;

-- The registry last loaded is the simulated demo county's (`demo: true` in its file): a real
-- county's registry is then not loaded beside it unless the operator says so.
ALTER TABLE registry_version ADD COLUMN IF NOT EXISTS demo boolean NOT NULL DEFAULT false;

-- The road network's version, bumped by every `watchpost roads load`: a dispatcher or API
-- process that routed on an older one reads the new network before its next route.
ALTER TABLE registry_version ADD COLUMN IF NOT EXISTS roads_version bigint NOT NULL DEFAULT 0;
ALTER TABLE registry_version ADD COLUMN IF NOT EXISTS roads_loaded_at timestamptz;

-- ==== 0023_rule_state_json ====
-- The rules' states are written by ingest thousands of times a second and read back whole;
-- the database never searches inside them (the console reads a station's alarms and last
-- time by key). `json` keeps the document as written, checking only that it is JSON, where
-- `jsonb` took it apart into its binary form on every write and rebuilt the text on every
-- read: a third of the time the database spent saving states.
ALTER TABLE rule_state ALTER COLUMN state TYPE json USING state::json;
