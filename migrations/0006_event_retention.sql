-- Migration 0006, from commit 0ff4315: retention for the event stream.
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.
-- Like schema.sql, it never overwrites a value an operator has changed.

INSERT INTO retention_policies (hypertable, keep) VALUES
    ('events',              INTERVAL '90 days')    -- the websocket catch-up stream; alarms and audits stay
ON CONFLICT (hypertable) DO NOTHING;
