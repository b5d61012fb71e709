"""Watchpost: real-time monitoring and dispatch for Jiashan county's water, emergency and
elderly-care services. This package is the composition root: the `watchpost` command line,
the supervisor, the schema migrations and the registry loader. It wires the services
together and nothing imports it but the entry points, the tests and the benchmarks."""
