"""`python -m simulators …`: the same as `watchpost simulate …`."""

import sys

from simulators.cli import simulate

raise SystemExit(simulate(sys.argv[1:]))
