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
