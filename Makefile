# The two commands a newcomer needs:
#   make up     start everything (services included) and run Watchpost in the foreground
#   make test   run the whole test suite against real services
.PHONY: up test down bench

up:
	scripts/services.sh up
	set -a && . ./.env.local && set +a && exec .venv/bin/watchpost run --simulate demo

test:
	scripts/services.sh test-deps
	scripts/services.sh up
	.venv/bin/python -m mypy
	set -a && . ./.env.local && set +a && .venv/bin/python -m pytest $(PYTEST_ARGS)

down:
	scripts/services.sh down

bench:
	scripts/services.sh up
	set -a && . ./.env.local && set +a && cd bench && for b in ingest alarm_latency alert_latency dispatch dispatch_eta notify; do ../.venv/bin/python $$b.py || exit 1; done
