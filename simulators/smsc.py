"""A small SMSC for tests and the demo: it speaks SMPP 3.4 over TCP (bind_transceiver,
submit_sm, deliver_sm delivery receipts, enquire_link, unbind), joins concatenated parts by
their UDH and keeps every message it took, so a test can read what the family's phone would
show. Run it alone with `python -m simulators.smsc --port 2775 [--log FILE]`.

Not a production component; the platform's side is notify.smpp with smpplib.
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BIND_TRANSCEIVER, BIND_TRANSMITTER, BIND_RECEIVER = 0x09, 0x02, 0x01
SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK, GENERIC_NACK = 0x04, 0x05, 0x06, 0x15, 0x80000000
RESP = 0x80000000
ESME_ROK, ESME_RSYSERR, ESME_RINVCMDID = 0x00, 0x08, 0x03


@dataclass
class SmsReceived:
    """A whole message as the handset shows it."""

    destination: str
    source: str
    text: str
    parts: int
    message_ids: list[str]
    at: float


@dataclass
class FakeSmsc:
    """The SMSC's state: messages taken, and switches a test flips."""

    received: list[SmsReceived] = field(default_factory=list)
    submits: list[float] = field(default_factory=list)  # time.monotonic() of each accepted submit_sm
    refuse: bool = False  # answer submit_sm with ESME_RSYSERR (a broken SMSC)
    report: str = "DELIVRD"  # the delivery receipt's stat (empty: send none)
    log_path: Path | None = None
    _pending: dict[tuple[str, int], dict[int, bytes]] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[SmsReceived]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def take(self, dest: str, source: str, esm_class: int, coding: int, body: bytes) -> str:
        message_id = f"{next(self._ids):08x}"
        with self._lock:
            self.submits.append(time.monotonic())
            if esm_class & 0x40 and len(body) >= 6 and body[0] == 0x05:
                ref, total, seq = body[3], body[4], body[5]
                parts = self._pending.setdefault((dest, ref), {})
                parts[seq] = body[6:]
                ids = self._pending.setdefault((dest, -ref - 1), {})
                ids[seq] = message_id.encode()
                if len(parts) < total:
                    return message_id
                payload = b"".join(parts[i] for i in sorted(parts))
                message_ids = [ids[i].decode() for i in sorted(ids)]
                del self._pending[(dest, ref)], self._pending[(dest, -ref - 1)]
                count = total
            else:
                payload, message_ids, count = body, [message_id], 1
            text = payload.decode("utf-16-be") if coding == 8 else payload.decode("latin-1")
            sms = SmsReceived(dest, source, text, count, message_ids, time.time())
        with self._changed:
            self.received.append(sms)
            self._changed.notify_all()
        if self.log_path is not None:
            with self.log_path.open("a") as f:
                # The number is personal data: the log keeps its last four digits.
                f.write(json.dumps({"to": "*" * max(len(dest) - 4, 0) + dest[-4:], "text": text}, ensure_ascii=False) + "\n")
        return message_id


def _cstr(body: bytes, at: int) -> tuple[bytes, int]:
    end = body.index(b"\0", at)
    return body[at:end], end + 1


def _pdu(command: int, status: int, sequence: int, body: bytes = b"") -> bytes:
    return struct.pack(">LLLL", 16 + len(body), command, status, sequence) + body


class _Session(socketserver.BaseRequestHandler):
    smsc: FakeSmsc

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        out_seq = itertools.count(1)
        send_lock = threading.Lock()

        def send(data: bytes) -> None:
            with send_lock:
                sock.sendall(data)

        try:
            while True:
                header = _read(sock, 16)
                if header is None:
                    return
                length, command, _status, sequence = struct.unpack(">LLLL", header)
                body = _read(sock, length - 16) or b""
                if command in (BIND_TRANSCEIVER, BIND_TRANSMITTER, BIND_RECEIVER):
                    send(_pdu(command | RESP, ESME_ROK, sequence, b"watchpost-test-smsc\0"))
                elif command == SUBMIT_SM:
                    self._submit(body, sequence, send, out_seq)
                elif command == ENQUIRE_LINK:
                    send(_pdu(ENQUIRE_LINK | RESP, ESME_ROK, sequence))
                elif command == UNBIND:
                    send(_pdu(UNBIND | RESP, ESME_ROK, sequence))
                    return
                elif command & RESP:
                    continue  # deliver_sm_resp and the like
                else:
                    send(_pdu(GENERIC_NACK, ESME_RINVCMDID, sequence))
        except OSError:
            return

    def _submit(self, body: bytes, sequence: int, send: object, out_seq: itertools.count) -> None:
        assert callable(send)
        _service, at = _cstr(body, 0)
        at += 2
        source, at = _cstr(body, at)
        at += 2
        dest, at = _cstr(body, at)
        esm_class = body[at]
        at += 3
        _sched, at = _cstr(body, at)
        _validity, at = _cstr(body, at)
        registered, coding = body[at], body[at + 2]
        sm_length = body[at + 4]
        short = body[at + 5: at + 5 + sm_length]
        if self.smsc.refuse:
            send(_pdu(SUBMIT_SM | RESP, ESME_RSYSERR, sequence, b"\0"))
            return
        message_id = self.smsc.take(dest.decode(), source.decode(), esm_class, coding, short)
        send(_pdu(SUBMIT_SM | RESP, ESME_ROK, sequence, message_id.encode() + b"\0"))
        if registered & 0x01 and self.smsc.report:
            stamp = time.strftime("%y%m%d%H%M")
            text = (f"id:{message_id} sub:001 dlvrd:001 submit date:{stamp} done date:{stamp} "
                    f"stat:{self.smsc.report} err:000 text:").encode()
            receipt = (b"\0" + bytes((1, 1)) + dest + b"\0" + bytes((5, 0)) + source + b"\0"
                       + bytes((0x04, 0, 0)) + b"\0\0" + bytes((0, 0, 0, 0)) + bytes((len(text),)) + text)
            send(_pdu(DELIVER_SM, ESME_ROK, next(out_seq), receipt))


def _read(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class SmscServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(smsc: FakeSmsc, host: str = "127.0.0.1", port: int = 0) -> SmscServer:
    """Start the SMSC on a thread; `server.server_address` says where it listens."""
    handler = type("Session", (_Session,), {"smsc": smsc})
    server = SmscServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="fake-smsc", daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="a test SMSC speaking SMPP 3.4")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2775)
    parser.add_argument("--log", type=Path, help="append each message received as a JSON line")
    args = parser.parse_args()
    server = serve(FakeSmsc(log_path=args.log), args.host, args.port)
    host, port = server.server_address[:2]
    print(f"test SMSC listening on {host!s}:{port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C of `make up` reaches every child: stop quietly
        pass
