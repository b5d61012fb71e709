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
