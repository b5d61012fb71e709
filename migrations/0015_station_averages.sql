-- Migration 0015: a water station's own averages, as it uploads them
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- HJ 212 minute, hour and day data (CN 2051 / 2061 / 2031): the station's average over the
-- period, with the minimum and maximum where it sent them and each parameter's own data
-- flag (N F M S D C T B; NULL where the parameter was not sent). Keyed by (station,
-- period, period start), apart from `water_readings`: an hourly average stamped 10:00 is
-- not a real-time reading of 10:00:00, and a resent upload is a no-op.
-- chla_ug_l is chlorophyll-a (µg/L, HJ 212 w01016), which lakes need for their trophic
-- state index; real-time telemetry does not carry it.
CREATE TABLE IF NOT EXISTS station_averages (
    station_id          text NOT NULL,
    period              text NOT NULL CHECK (period IN ('minute', 'hour', 'day')),
    period_start        timestamptz NOT NULL,
    received_at         timestamptz NOT NULL DEFAULT now(),
    temp_c              double precision,
    temp_c_min          double precision,
    temp_c_max          double precision,
    temp_c_flag         char(1),
    ph                  double precision,
    ph_min              double precision,
    ph_max              double precision,
    ph_flag             char(1),
    do_mg_l             double precision,
    do_mg_l_min         double precision,
    do_mg_l_max         double precision,
    do_mg_l_flag        char(1),
    codmn_mg_l          double precision,
    codmn_mg_l_min      double precision,
    codmn_mg_l_max      double precision,
    codmn_mg_l_flag     char(1),
    cod_mg_l            double precision,
    cod_mg_l_min        double precision,
    cod_mg_l_max        double precision,
    cod_mg_l_flag       char(1),
    nh3n_mg_l           double precision,
    nh3n_mg_l_min       double precision,
    nh3n_mg_l_max       double precision,
    nh3n_mg_l_flag      char(1),
    tp_mg_l             double precision,
    tp_mg_l_min         double precision,
    tp_mg_l_max         double precision,
    tp_mg_l_flag        char(1),
    tn_mg_l             double precision,
    tn_mg_l_min         double precision,
    tn_mg_l_max         double precision,
    tn_mg_l_flag        char(1),
    turbidity_ntu       double precision,
    turbidity_ntu_min   double precision,
    turbidity_ntu_max   double precision,
    turbidity_ntu_flag  char(1),
    cond_us_cm          double precision,
    cond_us_cm_min      double precision,
    cond_us_cm_max      double precision,
    cond_us_cm_flag     char(1),
    chla_ug_l           double precision,
    chla_ug_l_min       double precision,
    chla_ug_l_max       double precision,
    chla_ug_l_flag      char(1),
    UNIQUE (station_id, period, period_start)
);
SELECT create_hypertable('station_averages', by_range('period_start', INTERVAL '30 days'), if_not_exists => TRUE);

-- Kept as long as the real-time record it stands beside.
INSERT INTO retention_policies (hypertable, keep) VALUES ('station_averages', INTERVAL '5 years')
ON CONFLICT (hypertable) DO NOTHING;

-- Station categories: which monitoring network a station belongs to. A cross-border section
-- has a partner jurisdiction (stations.partner_id) that shares its alarms.
ALTER TABLE stations ADD COLUMN IF NOT EXISTS category text
    CHECK (category IN ('national', 'provincial', 'county', 'cross_border'));

-- The partner's duty contact (who an unanswered alert escalates to) and how long an alert
-- may wait for the partner's CAP Ack before it does.
ALTER TABLE partners ADD COLUMN IF NOT EXISTS duty_contact text;
ALTER TABLE partners ADD COLUMN IF NOT EXISTS ack_timeout_s integer NOT NULL DEFAULT 600 CHECK (ack_timeout_s > 0);

-- The partner's answer to each Alert (CAP Ack: accepted, Error: refused), who sent it and
-- when; and when an unanswered Alert was escalated to the partner's duty contact.
ALTER TABLE cap_alerts ADD COLUMN IF NOT EXISTS answer text CHECK (answer IN ('Ack', 'Error'));
ALTER TABLE cap_alerts ADD COLUMN IF NOT EXISTS answered_at timestamptz;
ALTER TABLE cap_alerts ADD COLUMN IF NOT EXISTS answered_by text;
ALTER TABLE cap_alerts ADD COLUMN IF NOT EXISTS answer_note text;
ALTER TABLE cap_alerts ADD COLUMN IF NOT EXISTS escalated_at timestamptz;
CREATE INDEX IF NOT EXISTS cap_alerts_unanswered_idx ON cap_alerts (sent)
    WHERE msg_type = 'Alert' AND answered_at IS NULL AND escalated_at IS NULL;
