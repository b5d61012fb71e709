-- Migration 0008: the console map's region layers
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- The base map's scenery, one GeoJSON FeatureCollection per layer (`boundary`, `rivers`,
-- `towns`), loaded with `watchpost region load` (or with the simulated county by
-- `watchpost roads load --synthetic-jiashan`). The roads are drawn from road_edges.
CREATE TABLE IF NOT EXISTS region_layers (
    name        text PRIMARY KEY,
    geojson     jsonb NOT NULL,
    source      text,
    loaded_at   timestamptz
);
