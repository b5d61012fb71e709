"""A family member's phone for tests and the demo: a baresip SIP user agent that rings,
answers (or not), and presses a key — RFC 4733 digits, as a handset sends them.

`FamilyPhone(behaviour)` starts its own baresip on a free port; `uri` is where to call it.
Behaviours: "answer" (pick up after `answer_after_s`, press `key` `key_after_s` later),
"ignore" (let it ring), "reject" (486 Busy). Every incoming call is kept in `calls` with
the time it started ringing, so a test or the benchmark can see it. Run one alone with
`python -m simulators.phone --key 1`.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from notify.baresip import BaresipLine


@dataclass
class IncomingCall:
    rang_at: float  # time.monotonic()
    caller: str
    answered_at: float | None = None
    keys_sent: list[str] = field(default_factory=list)


class FamilyPhone:
    def __init__(self, behaviour: str = "answer", *, key: str = "1", answer_after_s: float = 0.5, key_after_s: float = 1.0,
                 binary: str = "baresip") -> None:
        if behaviour not in ("answer", "ignore", "reject"):
            raise ValueError(f"behaviour must be answer, ignore or reject, not {behaviour!r}")
        self.behaviour, self.key = behaviour, key
        self.answer_after_s, self.key_after_s = answer_after_s, key_after_s
        self.calls: list[IncomingCall] = []
        self._changed = threading.Condition()
        self._line = BaresipLine(binary, answer_mode="manual", with_keypad=True, user="family")
        self.uri = f"sip:family@127.0.0.1:{self._line.sip_port}"
        self._stop = threading.Event()
        threading.Thread(target=self._run, name="family-phone", daemon=True).start()

    def wait_for_calls(self, count: int, timeout: float = 20.0) -> list[IncomingCall]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.calls) >= count, timeout)
            return list(self.calls)

    def close(self) -> None:
        self._stop.set()
        self._line.close()

    def _run(self) -> None:
        events = self._line.control.events
        current: IncomingCall | None = None
        while not self._stop.is_set():
            try:
                event = events.get(timeout=0.2)
            except Exception:  # noqa: BLE001 - queue.Empty
                continue
            kind = event.get("type")
            if kind == "CALL_INCOMING":
                current = IncomingCall(time.monotonic(), str(event.get("peeruri", "")))
                with self._changed:
                    self.calls.append(current)
                    self._changed.notify_all()
                if self.behaviour == "reject":
                    self._line.control.command("hangup")
                elif self.behaviour == "answer":
                    threading.Thread(target=self._answer, args=(current,), daemon=True).start()
            elif kind == "CONTROL_CLOSED":
                return

    def _answer(self, call: IncomingCall) -> None:
        time.sleep(self.answer_after_s)
        self._line.control.command("accept")
        call.answered_at = time.monotonic()
        time.sleep(self.key_after_s)
        for key in self.key:
            self._line.press(key)
            call.keys_sent.append(key)
            time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description="a simulated family phone (baresip) that answers and presses a key")
    parser.add_argument("--behaviour", default="answer", choices=("answer", "ignore", "reject"))
    parser.add_argument("--key", default="1")
    parser.add_argument("--phonebook", type=Path, help="write {number: uri} for these numbers into this JSON file")
    parser.add_argument("numbers", nargs="*")
    args = parser.parse_args()
    phone = FamilyPhone(args.behaviour, key=args.key)
    if args.phonebook:
        import json

        args.phonebook.write_text(json.dumps({n: phone.uri for n in args.numbers}))
    print(f"family phone at {phone.uri} ({args.behaviour}, key {args.key})", flush=True)
    seen = 0
    while True:
        calls = phone.wait_for_calls(seen + 1, timeout=3600)
        for call in calls[seen:]:
            print(f"call from {call.caller}", flush=True)
        seen = len(calls)


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C of `make up` reaches every child: stop quietly
        pass
