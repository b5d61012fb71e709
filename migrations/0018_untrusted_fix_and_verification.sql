-- A person's fix far outside the service region is not trusted: which fix an incident passed
-- over ('alert_fix' or 'recent_fix'), for the console and the audit.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS untrusted_fix text
    CHECK (untrusted_fix IN ('alert_fix', 'recent_fix'));

-- The verification call at a fire or gas incident in a person's home: by `verify_by` the
-- control room records whether the person answered (`ok`), someone is hurt (`hurt`), or
-- nobody answered (`no_answer`); past it with nothing recorded the dispatcher records
-- `no_answer` itself. `hurt` and `no_answer` send an ambulance as well.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS verify_by timestamptz;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS verification text CHECK (verification IN ('ok', 'hurt', 'no_answer'));
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS verified_at timestamptz;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS verified_by text;
CREATE INDEX IF NOT EXISTS incidents_unverified_idx ON incidents (verify_by)
    WHERE verify_by IS NOT NULL AND verification IS NULL;
