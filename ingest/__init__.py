"""MQTT → TimescaleDB ingest: validation (pure), batching, durable storage, dead letters."""
