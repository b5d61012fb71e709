"""Device simulators that make a whole county's MQTT traffic for tests and demos."""
