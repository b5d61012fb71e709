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
