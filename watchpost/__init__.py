"""Watchpost: real-time monitoring and dispatch for a county's water, emergency and
elderly-care services (which county is configuration: the region settings). This package is
the composition root: the `watchpost` command line, the supervisor, the schema migrations
and the registry loader. It wires the services together and nothing imports it but the
entry points, the tests and the benchmarks."""
