-- Migration 0014: dispatch on real geography and the right service
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- The river and canal lines of the loaded road network, as segments: a scene or a unit is
-- snapped onto the nearest road it can reach without crossing one (dispatch/snapping.py).
CREATE TABLE IF NOT EXISTS road_water (
    segment     integer PRIMARY KEY,
    lat1        double precision NOT NULL,
    lon1        double precision NOT NULL,
    lat2        double precision NOT NULL,
    lon2        double precision NOT NULL
);

-- Fire-and-rescue crews are units like ambulances; their stations, and the gas company a gas
-- incident is handed to, are facilities.
ALTER TABLE units DROP CONSTRAINT IF EXISTS units_kind_check;
ALTER TABLE units ADD CONSTRAINT units_kind_check CHECK (kind IN ('ambulance', 'river_patrol', 'fire'));
ALTER TABLE facilities DROP CONSTRAINT IF EXISTS facilities_kind_check;
ALTER TABLE facilities ADD CONSTRAINT facilities_kind_check
    CHECK (kind IN ('emergency_centre', 'ambulance_station', 'first_aid_post', 'hospital', 'patrol_base',
                    'fire_station', 'gas_company'));

-- A fire or gas incident where someone is hurt, or the person does not answer, gets an
-- ambulance as a companion incident: its own queue place and unit, linked to the first.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS parent_incident_id text REFERENCES incidents;
CREATE UNIQUE INDEX IF NOT EXISTS incidents_one_companion_idx ON incidents (parent_incident_id)
    WHERE parent_incident_id IS NOT NULL;

-- The coverage the available ambulances gave, sampled whenever a unit's status changed (one
-- row per unit.updated event, whichever dispatcher heard it first): the shift report's daily
-- coverage is these shares weighted by how long each stood.
CREATE TABLE IF NOT EXISTS coverage_samples (
    event_id        bigint PRIMARY KEY,
    at              timestamptz NOT NULL,
    within_8        real NOT NULL,      -- share of villages within 8 minutes of an available ambulance
    within_12       real NOT NULL,
    within_15       real NOT NULL,
    uncovered_towns text[] NOT NULL
);
CREATE INDEX IF NOT EXISTS coverage_samples_at_idx ON coverage_samples (at);
