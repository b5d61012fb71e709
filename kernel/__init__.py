"""The shared ground of every Watchpost process: settings and endpoints, the database
connection, broker accounts, logging, health, the event stream, the topic scheme and the
clock. The kernel imports no other project package; ingest, dispatch, the dashboard, the
simulators and the `watchpost` composition root all import it."""
