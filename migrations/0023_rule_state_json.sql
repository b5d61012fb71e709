-- The rules' states are written by ingest thousands of times a second and read back whole;
-- the database never searches inside them (the console reads a station's alarms and last
-- time by key). `json` keeps the document as written, checking only that it is JSON, where
-- `jsonb` took it apart into its binary form on every write and rebuilt the text on every
-- read: a third of the time the database spent saving states.
ALTER TABLE rule_state ALTER COLUMN state TYPE json USING state::json;
