"""Watchpost: real-time monitoring and dispatch for Jiashan county's water, emergency and
elderly-care services. This package holds what every process shares: settings, the
database schema and registry, and the `watchpost` command line."""
