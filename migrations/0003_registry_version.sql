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

