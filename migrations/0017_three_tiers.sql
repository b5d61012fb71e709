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
