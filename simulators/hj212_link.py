"""The simulated HJ 212 stations' TCP connections to the gateway (`watchpost hj212`).

One connection per station, opened on its first frame and again after the gateway closed
it (a frame that finds the gateway unreachable is counted unsent; real loggers resend their
backlog later, which is not simulated), each read by a thread of its own that hands the gateway's replies back (9014 for an
upload, 1012 for a calibration request or a drifting clock). The simulation's thread only
writes. On a loopback gateway each station connects from an address of its own
(127.0.x.y), as stations on a network would: the gateway limits connections per address.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import socket
import threading
import time
from collections import Counter

from ingest.hj212 import DATA_CNS, Frame, FrameDecoder

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
FLUSH_POLL_S = 0.05


class StationLinks:
    def __init__(self, host: str, port: int, replies: queue.Queue[tuple[str, Frame, float]]) -> None:
        self.host, self.port = host, port
        self.replies = replies
        self._loopback = _is_loopback(host)
        self._links: dict[str, _Link] = {}
        self._address_of: dict[str, int] = {}  # station -> its loopback address's number
        self._unreachable: set[str] = set()
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()  # sent, acked, set_time, refused, unsent, connects

    def send(self, station_id: str, data: bytes) -> bool:
        """Write one frame on the station's connection (opening it if need be); False when
        the gateway cannot be reached: the frame is counted as unsent."""
        link = self._links.get(station_id)
        for attempt in (1, 2):
            if link is None or link.closed:
                try:
                    link = self._links[station_id] = _Link(self, station_id, self._source_address(station_id))
                except OSError as exc:
                    if station_id not in self._unreachable:  # once per outage, not per frame
                        log.warning("HJ 212 station %s cannot reach the gateway at %s:%d: %s", station_id, self.host, self.port, exc)
                        self._unreachable.add(station_id)
                    break
                self._unreachable.discard(station_id)
            try:
                link.sock.sendall(data)
            except OSError:
                link.close()
                continue
            with self._lock:
                self.counts["sent"] += 1
                if _cn(data) in DATA_CNS:
                    self.counts["awaiting_ack"] += 1
            return True
        with self._lock:
            self.counts["unsent"] += 1
        return False

    def flush(self, timeout: float) -> int:
        """Wait for the replies to what was sent; returns how many uploads have none."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._unacknowledged() > 0:
            time.sleep(FLUSH_POLL_S)
        return self._unacknowledged()

    def close(self) -> None:
        for link in list(self._links.values()):
            link.close()

    def totals(self) -> dict[str, int]:
        with self._lock:
            counts = dict(self.counts)
        counts.pop("awaiting_ack", None)
        counts["unacknowledged"] = self._unacknowledged()
        return counts

    def _unacknowledged(self) -> int:
        with self._lock:
            return self.counts["awaiting_ack"] - self.counts["acked"]

    def _received(self, station_id: str, frame: Frame) -> None:
        with self._lock:
            if frame.cn == "9014":
                self.counts["acked"] += 1
            elif frame.cn == "1012":
                self.counts["set_time"] += 1
            elif frame.cn == "9011":
                self.counts["refused"] += 1
        self.replies.put((station_id, frame, time.time()))

    def _source_address(self, station_id: str) -> str | None:
        if not self._loopback:
            return None
        n = self._address_of.setdefault(station_id, len(self._address_of))
        return f"127.0.{1 + n // 250}.{2 + n % 250}"


class _Link:
    def __init__(self, owner: StationLinks, station_id: str, source: str | None) -> None:
        self.owner, self.station_id = owner, station_id
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if source:
                self.sock.bind((source, 0))
            self.sock.settimeout(CONNECT_TIMEOUT_S)
            self.sock.connect((owner.host, owner.port))
            self.sock.settimeout(None)
        except OSError:
            self.sock.close()
            raise
        owner.counts["connects"] += 1
        self.closed = False
        self.reader = threading.Thread(target=self._read, name=f"hj212-{station_id}", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        decoder = FrameDecoder()
        try:
            while chunk := self.sock.recv(4096):
                for event in decoder.feed(chunk):
                    if isinstance(event, Frame):
                        self.owner._received(self.station_id, event)
        except OSError:
            pass
        finally:
            self.closed = True

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def _cn(data: bytes) -> str | None:
    at = data.find(b"CN=")
    return data[at + 3:at + 7].decode("ascii", "replace") if at >= 0 else None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False
