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
