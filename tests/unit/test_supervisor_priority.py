"""`watchpost run` starts bulk work (ingest, the simulator) at a lower scheduling priority
than the alert lane, so the lane gets a core first on a busy machine."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from tests.fix_wait import wait_for
from watchpost.supervisor import Supervisor

REPORT_NICENESS = "import os, sys, time; time.sleep(0.3); open(sys.argv[1], 'w').write(str(os.nice(0)))"


def test_children_named_for_it_run_at_the_lower_priority_and_the_others_do_not(tmp_path: Path) -> None:
    mine = os.nice(0)
    out = {name: tmp_path / name for name in ("ingest", "alerts-1")}
    supervisor = Supervisor(
        {name: [sys.executable, "-c", REPORT_NICENESS, str(path)] for name, path in out.items()},
        niceness={"ingest": 5},
    )
    runner = threading.Thread(target=supervisor.run)
    runner.start()
    try:
        wait_for(lambda: all(p.exists() and p.read_text() for p in out.values()), timeout=20)
    finally:
        supervisor.stop()
        runner.join(30)
    assert int(out["ingest"].read_text()) == min(mine + 5, 19)
    assert int(out["alerts-1"].read_text()) == mine
