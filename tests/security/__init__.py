"""Attacks on the platform, against the real API, database and broker."""
