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
