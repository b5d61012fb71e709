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
