# The two commands a newcomer needs:
#   make up     start everything (services included) and run Watchpost in the foreground
#   make test   run the whole test suite against real services
.PHONY: up test down bench

up:
	scripts/services.sh up
	set -a && . ./.env.local && set +a && exec .venv/bin/watchpost ingest

test:
	scripts/services.sh up
	set -a && . ./.env.local && set +a && .venv/bin/python -m pytest $(PYTEST_ARGS)

down:
	scripts/services.sh down

bench:
	scripts/services.sh up
	set -a && . ./.env.local && set +a && .venv/bin/python bench/ingest.py
