-- Migration 0016: events take their id at commit, so no writer waits for another's whole
-- transaction
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- `emit` writes an event here, without a lock. A deferred trigger moves it into `events` as
-- the transaction commits: it takes the events lock, gives the event its id, deletes the
-- pending row and NOTIFYs listeners. The lock is held from the commit's first event to the
-- end of the commit only, so ids still increase in commit order (a reader resuming "after
-- id N" misses nothing committed later) while an ingest batch that raises alarms no longer
-- holds every other writer — an SOS among them — for the rest of the batch.
-- Unlogged: a pending row never outlives its transaction, so there is nothing to recover.
CREATE UNLOGGED TABLE IF NOT EXISTS pending_events (
    ts          timestamptz NOT NULL,
    type        text NOT NULL,
    person_id   text,
    data        jsonb NOT NULL,
    notice      text NOT NULL               -- the NOTIFY payload without its leading "id" member
);

CREATE OR REPLACE FUNCTION publish_pending_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('watchpost-events'));
    INSERT INTO events (ts, type, person_id, data) VALUES (NEW.ts, NEW.type, NEW.person_id, NEW.data)
        RETURNING event_id INTO new_id;
    DELETE FROM pending_events WHERE ctid = NEW.ctid;
    PERFORM pg_notify('watchpost_events', '{"id":' || new_id || ',' || substr(NEW.notice, 2));
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS pending_events_publish ON pending_events;
CREATE CONSTRAINT TRIGGER pending_events_publish AFTER INSERT ON pending_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION publish_pending_event();
