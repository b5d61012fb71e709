"""The HJ 212 gateway: a TCP server for automatic water-monitoring stations that speak
HJ 212-2017, republishing their real-time uploads (CN 2011) on
`{root}/water/{station_id}/telemetry` and their own minute, hour and day averages (CN 2051 /
2061 / 2031) on `{root}/water/{station_id}/averages`, as the gateway's broker account, so that
ingest stores and grades them on its normal path: real-time values as water telemetry, the
averages in their own table keyed (station, period, period start).

Delivery: an upload is acknowledged (9014, when its Flag asks) only after the broker has
acknowledged the publish (QoS 1). An upload that could not be published gets no reply, so
the station sends it again; ingest's unique keys store a resent reading or average once.

One asyncio TaskGroup with named tasks: `hj212-mqtt` keeps the broker connection (reconnect
with jittered exponential backoff) and one `hj212-station-<peer>` task per TCP connection.
Bad frames are counted in `rejections` by reason and logged; they never end the server, and
only a connection that sends nothing but rejections for a long run is closed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import aiomqtt
import orjson

from ingest.hj212 import (
    DATA_CNS,
    MAX_DATA_LENGTH,
    Frame,
    FrameDecoder,
    FrameError,
    Reason,
    UnmappableFrame,
    average_payload,
    data_ack,
    water_payload,
)
from ingest.hj212_session import (
    CN_TIME_CALIBRATION_REQUEST,
    STATION_ANSWERS,
    ClockWatch,
    PacketAssembler,
    ReassemblyError,
    SessionLimits,
    joined,
    refuse,
    set_time,
)
from kernel.settings import MqttEndpoint
from kernel.topics import Topics

log = logging.getLogger(__name__)

AVERAGE_CNS = frozenset({"2051", "2061", "2031"})

# Backoff bounds for reconnecting to the broker.
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.5, 30.0
# Station ids become a topic level: no MQTT wildcard or separator may reach the topic.
_STATION_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class GatewayRejection(StrEnum):
    """Rejections the gateway adds to the protocol's (`ingest.hj212.Reason`)."""

    UNKNOWN_MN = "unknown_mn"  # no station in the registry has this MN
    BAD_PASSWORD = "bad_password"  # PW is not the station's
    PUBLISH_FAILED = "publish_failed"  # the broker did not take it in time: not acked, resent
    CONNECTION_LIMIT = "connection_limit"  # a connection over max_connections, closed at once
    ADDRESS_LIMIT = "address_limit"  # over max_connections_per_address from one address, closed at once
    LOGIN_TIMEOUT = "login_timeout"  # no frame signed by a registered station within login_timeout_s
    LOCKED_OUT = "locked_out"  # from an address, or for an MN, locked out after wrong passwords
    INTERNAL_ERROR = "internal_error"  # a bug, logged with its traceback; the connection closes
    SPLIT_INCOMPLETE = "split_incomplete"  # a split upload dropped before all its packets came


@dataclass(frozen=True, slots=True)
class StationCredential:
    station_id: str
    # password_digest(secret, MN, PW): the registry keeps no station password in clear.
    password_digest: str


def password_digest(secret: bytes, mn: str, password: str) -> str:
    """HMAC-SHA256 of MN and PW under the deployment's HJ 212 secret. A keyed hash, not a slow
    one: HJ 212 passwords are short, so the secret (kept out of the database) is what
    protects them, and every frame is checked without costing the gateway any CPU."""
    return hmac.new(secret, f"hj212\0{mn}\0{password}".encode(), hashlib.sha256).hexdigest()


# HJ 212 allows a PW of up to 9 characters, none of ; = & , or blank.
STATION_PASSWORD_LENGTH = 9


def derived_station_password(deployment_secret: bytes, mn: str) -> str:
    """A station's PW derived from the deployment's secret, as device passwords are: the
    registry names the MN, the data logger is configured with this PW, and no PW is written
    anywhere in clear. URL-safe base64: letters, digits, '-' and '_', all allowed in a PW."""
    digest = hmac.new(deployment_secret, f"hj212-station\0{mn}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:STATION_PASSWORD_LENGTH]


@dataclass(frozen=True, slots=True)
class GatewayLimits:
    max_connections: int = 1000
    # Bytes read per call; the stream's own buffer holds at most twice this before TCP
    # pushes back, and the decoder at most one frame.
    read_chunk_bytes: int = 4096
    # A station that sends only hourly data keeps its connection between two uploads.
    idle_timeout_s: float = 3900.0
    # How long an upload waits for the broker (a reconnect, the PUBACK) before it is given
    # up unacknowledged; stations wait some seconds for the reply before resending.
    publish_timeout_s: float = 10.0
    max_data_length: int = MAX_DATA_LENGTH
    # A connection that sends nothing a registered station signed for this many times in a
    # row (garbage, wrong passwords) is closed; a real station reconnects.
    max_rejections_in_a_row: int = 50
    # A new connection must send a frame with a registered MN and its PW within this time,
    # or it is closed: idle unauthenticated sockets cannot fill the listener.
    login_timeout_s: float = 10.0
    # Open connections from one address (a station needs one; a NAT of a few stations some).
    max_connections_per_address: int = 16
    # After this many wrong passwords in a row, from one address or for one MN, further
    # frames are refused unchecked for lockout_base_s, doubling with each further failure up
    # to lockout_max_s. An MN's lockout spares the addresses it last signed correctly from,
    # so a brute force against a station does not lock the station itself out.
    lockout_after_failures: int = 5
    lockout_base_s: float = 1.0
    lockout_max_s: float = 300.0


class Lockout:
    """Wrong-password backoff by key (an address, an MN), on a monotonic clock."""

    def __init__(self, limits: GatewayLimits, now: Callable[[], float]) -> None:
        self._limits = limits
        self._now = now
        self._failures: dict[str, int] = {}
        self._until: dict[str, float] = {}

    def locked(self, key: str) -> bool:
        return self._until.get(key, 0.0) > self._now()

    def failed(self, key: str) -> None:
        n = self._failures[key] = self._failures.get(key, 0) + 1
        over = n - self._limits.lockout_after_failures
        if over >= 0:
            delay = min(self._limits.lockout_base_s * 2 ** min(over, 30), self._limits.lockout_max_s)
            self._until[key] = self._now() + delay

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
        self._until.pop(key, None)


class Hj212Gateway:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        mqtt: MqttEndpoint,
        topic_root: str,
        stations: Mapping[str, StationCredential],
        password_secret: bytes,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        client_id: str = "watchpost-hj212-1",
        limits: GatewayLimits = GatewayLimits(),
        monotonic: Callable[[], float] = time.monotonic,
        session: SessionLimits = SessionLimits(),
    ) -> None:
        self._stations = _checked(stations)
        self._host = host
        self._port = port
        self._mqtt = mqtt
        self._topics = Topics(topic_root)
        self._secret = password_secret
        self._clock = clock
        self._client_id = client_id
        self._limits = limits
        self._lockout = Lockout(limits, monotonic)
        self._monotonic = monotonic
        self._session = session
        self._clock_watch = ClockWatch(session)
        self._per_address: Counter[str] = Counter()
        # MN → the addresses a station last signed correctly from (spared by the MN's lockout).
        self._good_hosts: dict[str, set[str]] = {}
        self._client: aiomqtt.Client | None = None
        self._broker_up = asyncio.Event()
        self._tasks: asyncio.TaskGroup | None = None
        self._station_tasks: set[asyncio.Task[None]] = set()
        # For the caller's metrics: rejected frames and connections by reason.
        self.rejections: Counter[str] = Counter()
        self.published = 0
        self.averages_received = 0  # CN 2051/2061/2031 uploads from registered stations
        self.averages_published = 0  # ... of them republished on the averages topic
        self.acks_sent = 0
        self.split_uploads = 0  # split uploads reassembled
        self.times_set = 0  # CN 1012 sent: on a station's request (1013) or for a drifting clock
        self.commands_refused = 0  # 9011 QnRtn=2 for a command the platform does not carry out
        self.connections = 0
        self.last_upload: dict[str, datetime] = {}  # station id → clock() at its last publish
        self.port: int | None = None  # the bound port, once listening (port=0 picks one)
        self.ready = asyncio.Event()  # listening and connected to the broker

    def update_stations(self, stations: Mapping[str, StationCredential]) -> None:
        """Replace the MN → station mapping (a registry refresh); open connections keep
        going and their next frame is checked against the new mapping."""
        self._stations = _checked(stations)

    def snapshot(self) -> dict[str, Any]:
        """Counters as plain values, safe to read from a metrics thread."""
        return {
            "rejections": dict(self.rejections),
            "published": self.published,
            "averages_received": self.averages_received,
            "averages_published": self.averages_published,
            "acks_sent": self.acks_sent,
            "split_uploads": self.split_uploads,
            "times_set": self.times_set,
            "commands_refused": self.commands_refused,
            "connections": self.connections,
        }

    async def serve(self, stop: asyncio.Event) -> None:
        """Listen until `stop` is set, then close every connection."""
        server: asyncio.Server | None = None
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            tasks.create_task(self._mqtt_loop(stop), name="hj212-mqtt")
            server = await asyncio.start_server(
                self._accept, self._host, self._port, limit=self._limits.read_chunk_bytes
            )
            self.port = server.sockets[0].getsockname()[1]
            log.info("HJ 212 gateway listening on %s:%d for %d stations", self._host, self.port, len(self._stations))
            self._update_ready()
            try:
                await stop.wait()
            finally:
                self.ready.clear()
                server.close()
                for task in list(self._station_tasks):
                    task.cancel()
        await server.wait_closed()

    def _update_ready(self) -> None:
        if self.port is not None and self._broker_up.is_set():
            self.ready.set()
        else:
            self.ready.clear()

    # --- the broker -------------------------------------------------------------------------

    async def _mqtt_loop(self, stop: asyncio.Event) -> None:
        delay = RECONNECT_MIN_S
        while not stop.is_set():
            try:
                async with aiomqtt.Client(
                    self._mqtt.host, self._mqtt.port,
                    username=self._mqtt.username, password=self._mqtt.password,
                    identifier=self._client_id, protocol=aiomqtt.ProtocolVersion.V5,
                    tls_context=self._mqtt.ssl_context(),
                ) as client:
                    # One publish in flight per connected station is the normal case (each
                    # waits for its PUBACK before the station's frame is answered), not the
                    # backlog aiomqtt's default threshold of 10 warns about.
                    client.pending_calls_threshold = self._limits.max_connections
                    self._client = client
                    self._broker_up.set()
                    self._update_ready()
                    delay = RECONNECT_MIN_S
                    log.info("HJ 212 gateway connected to the broker")
                    try:
                        await self._until_stopped_or_disconnected(client, stop)
                    finally:
                        self._client = None
                        self._broker_up.clear()
                        self._update_ready()
            except aiomqtt.MqttError as exc:
                log.warning("broker connection lost (%s); reconnecting in %.1f s", exc, delay)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay * random.uniform(0.5, 1.0)):
                        await stop.wait()
                delay = min(delay * 2, RECONNECT_MAX_S)

    @staticmethod
    async def _until_stopped_or_disconnected(client: aiomqtt.Client, stop: asyncio.Event) -> None:
        # The gateway subscribes to nothing, so the message iterator only ever ends, with
        # MqttError, when the connection is lost: that is the disconnect signal.
        lost = asyncio.create_task(client.messages.__anext__(), name="hj212-mqtt-watch")
        stopped = asyncio.create_task(stop.wait(), name="hj212-mqtt-stop")
        try:
            await asyncio.wait((lost, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            stopped.cancel()
        if lost.done() and not lost.cancelled():
            lost.result()

    async def _publish(self, station_id: str, topic: str, payload: dict[str, Any]) -> bool:
        body = orjson.dumps(payload)
        try:
            async with asyncio.timeout(self._limits.publish_timeout_s):
                while (client := self._client) is None:
                    await self._broker_up.wait()
                # Returns on the PUBACK. (aiomqtt 2.5 does not pass on its MQTT v5 reason
                # code; the gateway account's ACL covers every water telemetry topic and
                # station ids are checked to be one topic level, so no refusal is expected.)
                await client.publish(topic, body, qos=1, timeout=math.inf)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.warning("could not publish for %s (%s); the station will resend", station_id, exc or "timed out")
            return False
        return True

    # --- stations ---------------------------------------------------------------------------

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        host = _host(writer)
        if self.connections >= self._limits.max_connections:
            self._reject(GatewayRejection.CONNECTION_LIMIT, peer, f"{self.connections} connections open")
            writer.close()
            return
        if self._per_address[host] >= self._limits.max_connections_per_address:
            self._reject(GatewayRejection.ADDRESS_LIMIT, peer, f"{self._per_address[host]} connections open from {host}")
            writer.close()
            return
        try:
            assert self._tasks is not None  # the server starts inside serve's TaskGroup
            task = self._tasks.create_task(self._station(reader, writer, peer), name=f"hj212-station-{peer}")
        except RuntimeError:  # the gateway is stopping
            writer.close()
            return
        self.connections += 1
        self._per_address[host] += 1
        self._station_tasks.add(task)
        task.add_done_callback(self._station_tasks.discard)

    async def _station(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
        decoder = FrameDecoder(max_data_length=self._limits.max_data_length)
        assembler = PacketAssembler(self._session)
        rejected_in_a_row = 0
        host = _host(writer)
        loop = asyncio.get_running_loop()
        # Until a registered station signs a frame, the whole connection has login_timeout_s.
        login_deadline: float | None = loop.time() + self._limits.login_timeout_s
        log.info("HJ 212 connection from %s", peer)
        try:
            while True:
                wait_s = self._limits.idle_timeout_s if login_deadline is None else login_deadline - loop.time()
                try:
                    async with asyncio.timeout(max(wait_s, 0.0)):
                        data = await reader.read(self._limits.read_chunk_bytes)
                except TimeoutError:
                    if login_deadline is not None:
                        self._reject(GatewayRejection.LOGIN_TIMEOUT, peer, f"no signed frame in {self._limits.login_timeout_s:g} s")
                    else:
                        log.info("closing HJ 212 connection from %s: idle for %.0f s", peer, self._limits.idle_timeout_s)
                    return
                if not data:
                    return
                if assembler.expire(self._monotonic()):
                    self._reject(GatewayRejection.SPLIT_INCOMPLETE, peer, "split upload not complete in time; the station resends")
                for event in decoder.feed(data):
                    signed = await self._on_frame(event, writer, peer, host, assembler)
                    if signed:
                        login_deadline = None
                    rejected_in_a_row = 0 if signed else rejected_in_a_row + 1
                    if rejected_in_a_row >= self._limits.max_rejections_in_a_row:
                        log.warning("closing HJ 212 connection from %s after %d rejections in a row", peer, rejected_in_a_row)
                        return
        except (ConnectionError, OSError) as exc:
            log.info("HJ 212 connection from %s lost: %s", peer, exc)
        except Exception:
            # A bug: loud in the log and the counters, but it ends this connection only.
            self.rejections[str(GatewayRejection.INTERNAL_ERROR)] += 1
            log.exception("HJ 212 connection from %s failed", peer)
        finally:
            self.connections -= 1
            self._per_address[host] -= 1
            if self._per_address[host] <= 0:
                del self._per_address[host]
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _on_frame(
        self, event: Frame | FrameError, writer: asyncio.StreamWriter, peer: str, host: str, assembler: PacketAssembler
    ) -> bool:
        """Handle one decoded frame. True when a registered station signed it (right MN
        and PW), whatever became of it."""
        if isinstance(event, FrameError):
            self._reject(event.reason, peer, event.detail)
            return False
        frame = event
        address_key, mn_key = f"address {host}", f"MN {frame.mn}"
        if self._lockout.locked(address_key) or (
            self._lockout.locked(mn_key) and host not in self._good_hosts.get(frame.mn, ())
        ):
            self._reject(GatewayRejection.LOCKED_OUT, peer, f"MN {frame.mn!r} from {host}: locked out after wrong passwords")
            return False
        credential = self._stations.get(frame.mn)
        if credential is None:
            # An unknown MN counts against the address as a wrong password would.
            self._lockout.failed(address_key)
            self._reject(GatewayRejection.UNKNOWN_MN, peer, f"MN {frame.mn!r} is not registered")
            return False
        # Constant-time comparison of keyed digests: the timing tells nothing of the PW.
        if not hmac.compare_digest(password_digest(self._secret, frame.mn, frame.pw), credential.password_digest):
            self._lockout.failed(address_key)
            self._lockout.failed(mn_key)
            self._reject(GatewayRejection.BAD_PASSWORD, peer, f"wrong PW for MN {frame.mn}")
            return False
        self._lockout.succeeded(address_key)
        good = self._good_hosts.setdefault(frame.mn, set())
        if host not in good:
            if len(good) >= 4:  # the last few addresses; a station moves rarely
                good.pop()
            good.add(host)
        return await self._on_signed(frame, credential, writer, peer, assembler)

    async def _on_signed(
        self, frame: Frame, credential: StationCredential, writer: asyncio.StreamWriter, peer: str, assembler: PacketAssembler
    ) -> bool:
        """A frame a registered station signed: session commands, then data uploads."""
        if frame.cn in STATION_ANSWERS:
            return True  # the station's answer to our set-time: nothing is due
        if self._clock_watch.should_set(frame, self._clock(), self._monotonic()):
            await self._send(writer, set_time(frame, self._clock()))
            self.times_set += 1
            log.info("told HJ 212 station %s the time (CN %s, QN %s)", frame.mn, frame.cn, frame.qn)
        if frame.cn == CN_TIME_CALIBRATION_REQUEST:
            return True
        if frame.cn not in DATA_CNS:
            if frame.wants_ack:
                await self._send(writer, refuse(frame))
                self.commands_refused += 1
            self._reject(Reason.UNKNOWN_CN, peer, f"MN {frame.mn} CN {frame.cn}: not a command Watchpost carries out")
            return True
        packets = [frame]
        if frame.pnum is not None and frame.pnum > 1:
            try:
                complete = assembler.add(frame, self._monotonic())
            except ReassemblyError as exc:
                self._reject(Reason.SPLIT_PACKET, peer, f"MN {frame.mn} QN {frame.qn}: {exc}")
                return True
            if complete is None:
                return True  # acknowledged with the whole upload, once stored
            packets = complete
            frame = joined(complete)
            self.split_uploads += 1
        averages = frame.cn in AVERAGE_CNS
        if averages:
            # A station's own averages go on a topic of their own: an average stamped on the
            # hour is not a real-time reading of that second and must not take its key
            # (station, ts) nor reach the real-time rules as a live reading.
            self.averages_received += 1
        try:
            payload = average_payload(frame) if averages else water_payload(frame)
        except UnmappableFrame as exc:
            # Not acknowledged: the reply says "stored", and this was not.
            self._reject(exc.reason, peer, f"MN {frame.mn} QN {frame.qn}: {exc.detail}")
            return True
        station_id = credential.station_id
        topic = self._topics.water_averages(station_id) if averages else self._topics.water_telemetry(station_id)
        if not await self._publish(station_id, topic, payload):
            self._reject(GatewayRejection.PUBLISH_FAILED, peer, f"MN {frame.mn} QN {frame.qn}")
            return True
        if averages:
            self.averages_published += 1
        else:
            self.published += 1
        self.last_upload[station_id] = self._clock()
        for packet in packets:  # each packet that asked for a reply gets one
            await self._acknowledge(packet, writer)
        return True

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        async with asyncio.timeout(self._limits.publish_timeout_s):
            await writer.drain()

    async def _acknowledge(self, frame: Frame, writer: asyncio.StreamWriter) -> None:
        if frame.wants_ack:
            writer.write(data_ack(frame))
            async with asyncio.timeout(self._limits.publish_timeout_s):
                await writer.drain()
            self.acks_sent += 1

    def _reject(self, reason: str, peer: str, detail: str) -> None:
        self.rejections[str(reason)] += 1
        log.warning("rejected HJ 212 input from %s: %s: %s", peer, reason, detail)


def _checked(stations: Mapping[str, StationCredential]) -> dict[str, StationCredential]:
    for mn, credential in stations.items():
        if not _STATION_ID.fullmatch(credential.station_id):
            raise ValueError(f"station id {credential.station_id!r} of MN {mn!r} cannot be a topic level")
    return dict(stations)


def _host(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    return str(address[0]) if isinstance(address, tuple) and address else str(address)


def _peer(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)
