"""Voice calls through baresip, a SIP user agent (Debian's `baresip-core`), driven over its
ctrl_tcp interface (JSON in netstrings).

Each line is one baresip process with its own SIP port and control socket, so a call's
prompt (its audio source) is its own; `BaresipCaller` keeps `max_calls` lines and places
each call on a free one. A call: the prompt is set as the line's source, the number dialled
(`sip:{number}@{domain}`, or the phone book's URI), and baresip's events become the
outcome — 180 Ringing, 200 OK, RFC 4733 keypad digits (1 on my way, 2 repeat, 9 call the
control room), and the SIP status of a call that ended unanswered (486 busy, 603
rejected, 408/480 or our own ring timeout: no answer). Answered without a key until the
prompt was played `max_plays` times counts as no answer (a voicemail), to be retried.
"""

from __future__ import annotations

import itertools
import logging
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from notify.notifier import Progress
from notify.outcomes import FAMILY_MENU, Menu, Outcome, State
from notify.prompts import PromptError, Prompts

__all__ = ["BaresipCaller", "BaresipLine", "NetstringClient", "free_port", "outcome_of_close"]

log = logging.getLogger(__name__)

_MODULES = Path("/usr/lib/baresip/modules")  # Debian's baresip-core
_START_ATTEMPTS = 3


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (SIP listens on both)."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


def outcome_of_close(reason: str) -> State:
    """The state of a call that ended before anyone answered, from baresip's close reason
    (e.g. "486 Busy Here", "Connection reset by peer")."""
    if "486" in reason or "600" in reason:
        return State.BUSY
    if "603" in reason or "403" in reason:
        return State.REJECTED
    if "408" in reason or "480" in reason or "487" in reason:
        return State.NO_ANSWER
    return State.FAILED


class NetstringClient:
    """baresip's ctrl_tcp: commands out, responses and events in, as netstrings."""

    def __init__(self, host: str, port: int, timeout_s: float = 5.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout_s)
        self._sock.settimeout(None)
        self.events: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._tokens = itertools.count(1)
        self._responses: dict[str, dict[str, Any]] = {}
        self._answered = threading.Condition()
        threading.Thread(target=self._read, name="baresip-ctrl", daemon=True).start()

    def command(self, command: str, params: str = "", timeout_s: float = 5.0) -> dict[str, Any]:
        token = f"t{next(self._tokens)}"
        body = orjson.dumps({"command": command, "params": params, "token": token})
        self._sock.sendall(str(len(body)).encode() + b":" + body + b",")
        with self._answered:
            if not self._answered.wait_for(lambda: token in self._responses, timeout_s):
                raise TimeoutError(f"baresip did not answer {command!r}")
            return self._responses.pop(token)

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    def _read(self) -> None:
        buffer = b""
        try:
            while chunk := self._sock.recv(65536):
                buffer += chunk
                while b":" in buffer:
                    size, rest = buffer.split(b":", 1)
                    length = int(size)
                    if len(rest) < length + 1:
                        break
                    message, buffer = orjson.loads(rest[:length]), rest[length + 1:]
                    if message.get("response"):
                        with self._answered:
                            self._responses[message.get("token", "")] = message
                            self._answered.notify_all()
                    else:
                        self.events.put(message)
        except OSError:
            pass
        self.events.put({"event": True, "type": "CONTROL_CLOSED"})


class BaresipLine:
    """One baresip process: one call at a time."""

    def __init__(self, binary: str, *, account: str = "", home: Path | None = None, answer_mode: str = "",
                 with_keypad: bool = False, user: str = "watchpost") -> None:
        self._home = home or Path(tempfile.mkdtemp(prefix="watchpost-line-"))
        _write_silence(self._home / "silence.wav")
        # Free ports are picked, then bound by baresip: another process may take one in
        # between (exit code 98), so a start is tried a few times with new ports.
        for attempt in range(_START_ATTEMPTS):
            try:
                self._start(binary, account, answer_mode, with_keypad, user)
                return
            except OSError:
                if attempt == _START_ATTEMPTS - 1:
                    raise

    def _start(self, binary: str, account: str, answer_mode: str, with_keypad: bool, user: str) -> None:
        self.sip_port = free_port()
        self.ctrl_port = _another_port(self.sip_port)
        # The console module takes key presses over UDP: how a simulated phone sends DTMF.
        self.keypad_port = _another_port(self.sip_port, self.ctrl_port) if with_keypad else None
        (self._home / "config").write_text(
            f"sip_listen 127.0.0.1:{self.sip_port}\n"
            f"module_path {_MODULES}\n"
            "module g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule ctrl_tcp.so\n"
            + (f"module cons.so\ncons_listen 127.0.0.1:{self.keypad_port}\n" if with_keypad else "")
            + "module_app account.so\nmodule_app menu.so\n"
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}\n"
            f"audio_source aufile,{self._home / 'silence.wav'}\naudio_player aubridge,nil\naudio_alert aubridge,nil\n"
        )
        aor = account or f"<sip:{user}@127.0.0.1:{self.sip_port}>;regint=0"
        if answer_mode:
            aor += f";answermode={answer_mode}"
        (self._home / "accounts").write_text(aor + "\n")
        self._process = subprocess.Popen(
            [binary, "-4", "-f", str(self._home)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        self.control = _connect_when_up(self.ctrl_port, self._process)

    def press(self, key: str) -> None:
        """Send a keypad digit in the call in progress (a line started `with_keypad`)."""
        assert self.keypad_port is not None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(key.encode(), ("127.0.0.1", self.keypad_port))

    def call(self, uri: str, prompt: Path, progress: Progress, *, ring_timeout_s: float, max_plays: int = 3,
             prompt_s: float = 15.0, menu: Menu = FAMILY_MENU) -> Outcome:
        while True:  # what is left of an earlier call
            try:
                self.control.events.get_nowait()
            except queue.Empty:
                break
        self.control.command("ausrc", f"aufile,{prompt}")
        answer = self.control.command("dial", uri)
        if not answer.get("ok"):
            return Outcome(State.FAILED, detail={"error": f"baresip could not dial: {answer.get('data')}"})
        started = time.monotonic()
        deadline = started + ring_timeout_s
        answered_at: float | None = None
        call_id: str | None = None
        plays = 1
        keys: list[str] = []
        while True:
            try:
                event = self.control.events.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                if answered_at is not None and plays < max_plays:
                    plays += 1
                    self.control.command("ausrc", f"aufile,{prompt}")
                    deadline = time.monotonic() + prompt_s
                    continue
                self.control.command("hangup")
                if answered_at is None:
                    return Outcome(State.NO_ANSWER, ref=call_id, detail={"ring_s": round(time.monotonic() - started, 1)})
                return Outcome(State.NO_ANSWER, ref=call_id, detail={"error": "answered, no key pressed", "plays": plays})
            kind = event.get("type")
            call_id = event.get("id") or call_id
            if kind == "CALL_RINGING":
                progress(State.RINGING, call_id)
            elif kind == "CALL_ESTABLISHED":
                answered_at = time.monotonic()
                deadline = answered_at + prompt_s
                progress(State.ANSWERED, call_id)
            elif kind == "CALL_DTMF_START":
                key = str(event.get("param", ""))
                keys.append(key)
                if key == menu.repeat:
                    self.control.command("ausrc", f"aufile,{prompt}")
                    deadline = time.monotonic() + prompt_s
                elif key in menu.final:
                    self.control.command("hangup")
                    return Outcome(State.ANSWERED, ref=call_id, keypad=tuple(keys),
                                   detail={"answer_s": round((answered_at or started) - started, 1)})
            elif kind == "CALL_CLOSED":
                reason = str(event.get("param", ""))
                if answered_at is None:
                    return Outcome(outcome_of_close(reason), ref=call_id, detail={"sip": reason})
                return Outcome(State.NO_ANSWER, ref=call_id, keypad=tuple(keys), detail={"error": "hung up without a key", "sip": reason})
            elif kind == "CONTROL_CLOSED":
                return Outcome(State.FAILED, ref=call_id, detail={"error": "the SIP user agent stopped"})

    def close(self) -> None:
        self.control.close()
        self._process.terminate()
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
        shutil.rmtree(self._home, ignore_errors=True)


class BaresipCaller:
    """The notifier's voice channel: `lines` baresip processes, started on first use."""

    def __init__(self, *, binary: str, lines: int, domain: str, account: str = "", phonebook: dict[str, str] | Path | None = None,
                 ring_timeout_s: float = 30.0, prompts: Prompts | None = None) -> None:
        self._binary = binary
        self._account = account
        self._domain = domain
        self._phonebook = phonebook
        self._ring_timeout_s = ring_timeout_s
        self._prompts = prompts or Prompts()
        self._count = lines
        self._free: queue.SimpleQueue[BaresipLine | None] = queue.SimpleQueue()
        for _ in range(lines):
            self._free.put(None)  # a line not started yet
        self._lines: list[BaresipLine] = []
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, cfg: Any) -> BaresipCaller:
        return cls(binary=cfg.sip_agent, lines=cfg.max_calls, domain=cfg.sip_domain, account=cfg.sip_account,
                   phonebook=Path(cfg.sip_phonebook) if cfg.sip_phonebook else None, ring_timeout_s=cfg.ring_timeout_s)

    def start_lines(self) -> None:
        """Start every line now rather than at its first call (a baresip start costs a few
        hundred milliseconds that an alarm should not wait for)."""
        for _ in range(self._count):
            line = self._free.get()
            try:
                if line is None:
                    line = BaresipLine(self._binary, account=self._account)
                    with self._lock:
                        self._lines.append(line)
            except OSError as exc:  # started again at its first call; /readyz shows calls failing
                log.warning("a SIP line did not start: %s", exc)
            finally:
                self._free.put(line)

    def uri(self, phone: str) -> str:
        """Where a number is called: the phone book's URI for it (or its "*" entry), else
        the trunk's domain. A phone book file is read at each call: the demo's simulated
        phones write it when they start."""
        book = self._phonebook
        if isinstance(book, Path):
            try:
                book = orjson.loads(book.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                book = {}
        entries = book or {}
        return entries.get(phone) or entries.get("*") or f"sip:{phone}@{self._domain}"

    def call(self, phone: str, script: tuple[str, str], progress: Progress, menu: Menu = FAMILY_MENU) -> Outcome:
        try:
            prompt = self._prompts.render(script)
        except PromptError as exc:
            return Outcome(State.FAILED, detail={"error": str(exc)})
        line = self._free.get()
        try:
            if line is None:
                line = BaresipLine(self._binary, account=self._account)
                with self._lock:
                    self._lines.append(line)
            return line.call(self.uri(phone), prompt, progress, ring_timeout_s=self._ring_timeout_s, menu=menu)
        except (OSError, TimeoutError) as exc:
            if line is not None:
                line.close()
                line = None  # started again on next use
            return Outcome(State.FAILED, detail={"error": f"SIP user agent: {exc}"})
        finally:
            self._free.put(line)

    def close(self) -> None:
        with self._lock:
            for line in self._lines:
                line.close()
            self._lines.clear()


def _connect_when_up(port: int, process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> NetstringClient:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return NetstringClient("127.0.0.1", port)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise OSError(f"baresip did not open its control socket on {port} (exit code {process.poll()})") from None
            time.sleep(0.05)


def _another_port(*taken: int) -> int:
    while (port := free_port()) in taken:
        pass
    return port


def _die_with_parent() -> None:
    """In the child, before exec: a line ends with the notifier that started it, even one
    killed outright, so no orphaned call goes on without anyone listening for its keys."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _write_silence(path: Path, seconds: float = 60.0) -> None:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * seconds))
