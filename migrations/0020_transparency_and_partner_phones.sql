-- Migration 0020: lakes' transparency, and the partner's duty phone
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- Transparency (Secchi depth SD, m) in a station's own averages, as the other parameters:
-- the average, minimum and maximum where sent, and its own data flag. Lakes and reservoirs
-- need it for the trophic state index; real-time telemetry does not carry it.
ALTER TABLE station_averages ADD COLUMN IF NOT EXISTS sd_m double precision;
ALTER TABLE station_averages ADD COLUMN IF NOT EXISTS sd_m_min double precision;
ALTER TABLE station_averages ADD COLUMN IF NOT EXISTS sd_m_max double precision;
ALTER TABLE station_averages ADD COLUMN IF NOT EXISTS sd_m_flag char(1);

-- The phone (E.164) of the partner's duty contact: an alert the partner leaves unanswered
-- is texted and rung there, besides being shown on the console.
ALTER TABLE partners ADD COLUMN IF NOT EXISTS duty_phone text;
