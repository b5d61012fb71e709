-- Migration 0007, from commit 189f2df: HJ 212 station credentials
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- HJ 212 stations: the MN their data collector sends and a keyed digest of their PW
-- (HMAC-SHA256 under $WATCHPOST_HOME/hj212-secret). Served once both are set
-- (`watchpost hj212-station`).
ALTER TABLE stations ADD COLUMN IF NOT EXISTS hj212_mn text UNIQUE
    CHECK (hj212_mn ~ '^[^;=&,[:space:]]{1,27}$');
ALTER TABLE stations ADD COLUMN IF NOT EXISTS hj212_password_digest text
    CHECK (hj212_password_digest ~ '^[0-9a-f]{64}$');
