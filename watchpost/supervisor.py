"""Runs a few child processes, restarts one that dies, stops them all on request."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

# A child that keeps dying is restarted at most this often, so a crash loop (a bad
# configuration, a database that is down) does not spin the machine.
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
# The alert lane is never backed off past a second: a person pressing SOS cannot wait for a
# crash loop to cool down (its second consumer covers the gap, this bounds it).
QUICK_RESTART_BACKOFF_S = (0.0, 0.2, 0.5, 0.8)
POLL_S = 0.2
# After this long up, a child counts as healthy again and its backoff starts over.
HEALTHY_AFTER_S = 60.0
STOP_TIMEOUT_S = 20.0


def restart_delay(failures: int, *, quick: bool = False) -> float:
    """How long to wait before restarting a child that has died `failures` times in a row."""
    steps = QUICK_RESTART_BACKOFF_S if quick else RESTART_BACKOFF_S
    return steps[min(failures, len(steps) - 1)]


class Supervisor:
    def __init__(
        self, commands: dict[str, list[str]], quick_restart: frozenset[str] | set[str] = frozenset(),
        niceness: Mapping[str, int] | None = None,
    ) -> None:
        self._commands = commands
        self._quick = frozenset(quick_restart)
        # Bulk work (ingest, the simulator) runs at a lower scheduling priority, so that on a
        # busy box the alert lane, the dispatcher and the API get a core first.
        self._niceness = dict(niceness or {})
        self._stopping = threading.Event()
        self._children: dict[str, subprocess.Popen] = {}

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> int:
        failures = dict.fromkeys(self._commands, 0)
        started_at: dict[str, float] = {}
        next_start = dict.fromkeys(self._commands, 0.0)
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                for name, command in self._commands.items():
                    child = self._children.get(name)
                    if child is not None and child.poll() is None:
                        if now - started_at[name] > HEALTHY_AFTER_S:
                            failures[name] = 0
                        continue
                    if child is not None:
                        delay = restart_delay(failures[name], quick=name in self._quick)
                        log.error("%s exited with %s; restarting in %.1f s", name, child.returncode, delay)
                        failures[name] += 1
                        next_start[name] = now + delay
                        del self._children[name]
                    if now >= next_start[name]:
                        self._children[name] = subprocess.Popen(command)
                        self._lower_priority(name, self._children[name].pid)
                        started_at[name] = now
                        log.info("started %s (pid %d)", name, self._children[name].pid)
                self._stopping.wait(POLL_S)
        finally:
            self._stop_children()
        return 0

    def _lower_priority(self, name: str, pid: int) -> None:
        niceness = self._niceness.get(name, 0)
        if niceness <= 0:
            return
        try:
            os.setpriority(os.PRIO_PROCESS, pid, niceness)
        except OSError as exc:  # the child may already be gone; it is restarted as usual
            log.warning("could not lower the priority of %s: %s", name, exc)

    def _stop_children(self) -> None:
        for child in self._children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for name, child in self._children.items():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("%s did not stop in %.0f s; killing it", name, STOP_TIMEOUT_S)
                child.kill()
                child.wait()
