-- A registry sync retires the records a county's file no longer lists instead of deleting
-- them: their readings, alarms, incidents and audit keep the ids they name. A retired unit
-- is never dispatched, a retired person's or station's device is refused by ingest, a
-- retired user cannot log in, a retired facility is no unit's base nor a hand-off.
ALTER TABLE persons ADD COLUMN IF NOT EXISTS retired_at timestamptz;
ALTER TABLE stations ADD COLUMN IF NOT EXISTS retired_at timestamptz;
ALTER TABLE units ADD COLUMN IF NOT EXISTS retired_at timestamptz;
ALTER TABLE facilities ADD COLUMN IF NOT EXISTS retired_at timestamptz;
ALTER TABLE partners ADD COLUMN IF NOT EXISTS retired_at timestamptz;
ALTER TABLE users ADD COLUMN IF NOT EXISTS retired_at timestamptz;

-- The registry last loaded is the simulated demo county's (`demo: true` in its file): a real
-- county's registry is then not loaded beside it unless the operator says so.
ALTER TABLE registry_version ADD COLUMN IF NOT EXISTS demo boolean NOT NULL DEFAULT false;

-- The road network's version, bumped by every `watchpost roads load`: a dispatcher or API
-- process that routed on an older one reads the new network before its next route.
ALTER TABLE registry_version ADD COLUMN IF NOT EXISTS roads_version bigint NOT NULL DEFAULT 0;
ALTER TABLE registry_version ADD COLUMN IF NOT EXISTS roads_loaded_at timestamptz;
