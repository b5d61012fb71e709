"""The MQTT topic scheme of the contract, in one place: every topic the platform, its devices,
crews and partners use is built and parsed here.

    {root}/water/{station_id}/telemetry         device → platform
    {root}/water/{station_id}/averages          HJ 212 gateway → platform (a project addition:
                                                a station's own minute/hour/day averages)
    {root}/elder/{person_id}/wearable           device → platform
    {root}/elder/{person_id}/home/{sensor_id}   device → platform
    {root}/elder/{person_id}/alert              device → platform (life-safety events)
    {root}/unit/{unit_id}/gps                   device → platform
    {root}/unit/{unit_id}/status                device → platform
    {root}/unit/{unit_id}/patient               device → platform (the crew's patient report)
    {root}/{kind}/{id}/online                   device → platform (retained presence)
    {root}/partner/{partner_id}/water-ack       partner → platform (CAP Ack/Error)
    {root}/unit/{unit_id}/order                 platform → crew
    {root}/elder/{person_id}/receipt            platform → device
    {root}/partner/{partner_id}/water-alert     platform → partner (CAP alert)

Pure: no MQTT library, no I/O. The builders take any string for an id, so the broker's ACL
can be written with the same builders and `+` or `%u` in place of an id.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ANY",
    "Channel",
    "Kind",
    "TopicAddress",
    "Topics",
    "parse_topic",
    "shared",
]

# MQTT's single-level wildcard, for subscription filters and ACL lines.
ANY = "+"


class Kind(StrEnum):
    """The second level of every topic: who the topic is about."""

    WATER = "water"
    ELDER = "elder"
    UNIT = "unit"
    PARTNER = "partner"


class Channel(StrEnum):
    """The last level (the third, or `home` followed by a sensor id): what the topic carries."""

    TELEMETRY = "telemetry"
    AVERAGES = "averages"
    WEARABLE = "wearable"
    HOME = "home"
    ALERT = "alert"
    GPS = "gps"
    STATUS = "status"
    PATIENT = "patient"
    ONLINE = "online"
    WATER_ACK = "water-ack"
    ORDER = "order"
    RECEIPT = "receipt"
    WATER_ALERT = "water-alert"


# Which channels each kind has, and which of them the platform sends rather than receives.
_CHANNELS: dict[Kind, frozenset[Channel]] = {
    Kind.WATER: frozenset({Channel.TELEMETRY, Channel.AVERAGES, Channel.ONLINE}),
    Kind.ELDER: frozenset({Channel.WEARABLE, Channel.HOME, Channel.ALERT, Channel.ONLINE, Channel.RECEIPT}),
    Kind.UNIT: frozenset({Channel.GPS, Channel.STATUS, Channel.PATIENT, Channel.ONLINE, Channel.ORDER}),
    Kind.PARTNER: frozenset({Channel.WATER_ACK, Channel.WATER_ALERT}),
}
_FROM_PLATFORM = frozenset({Channel.ORDER, Channel.RECEIPT, Channel.WATER_ALERT})


@dataclass(frozen=True, slots=True)
class TopicAddress:
    """A topic of the contract, taken apart. `sensor_id` is set only for a home sensor."""

    kind: Kind
    id: str
    channel: Channel
    sensor_id: str | None = None

    @property
    def from_platform(self) -> bool:
        """True for what the platform publishes (orders, receipts, partner alerts)."""
        return self.channel in _FROM_PLATFORM


def parse_topic(topic: str, root: str) -> TopicAddress | None:
    """The address of a contract topic under `root`, or None for any other topic (outside the
    root, unknown kind or channel, a channel the kind does not have, an empty level)."""
    prefix = root + "/"
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix):].split("/")
    if len(parts) == 3:
        kind_, ident, channel_ = parts
        sensor_id = None
    elif len(parts) == 4 and parts[2] == Channel.HOME:
        kind_, ident, channel_, sensor_id = parts
        if not sensor_id:
            return None
    else:
        return None
    try:
        kind, channel = Kind(kind_), Channel(channel_)
    except ValueError:
        return None
    if not ident or channel not in _CHANNELS[kind] or (channel is Channel.HOME) != (sensor_id is not None):
        return None
    return TopicAddress(kind, ident, channel, sensor_id)


def shared(topic_filter: str, group: str) -> str:
    """A shared subscription (MQTT 5 `$share/{group}/…`), so that a group of consumers
    splits the messages; no group means an ordinary subscription."""
    return f"$share/{group}/{topic_filter}" if group else topic_filter


def share_group_offered(group: str, connack_properties: object) -> str:
    """The group to subscribe in: `group`, unless the broker's CONNACK said it has no shared
    subscriptions (MQTT 5's Shared Subscription Available = 0), and then none. RabbitMQ's
    MQTT plugin says so, yet accepts a `$share/…` filter and never delivers anything to it:
    a consumer that subscribed in its group anyway would hear nothing, alerts included. An
    MQTT 3.1.1 CONNACK has no properties; a broker that does not say is taken at its word."""
    if group and getattr(connack_properties, "SharedSubscriptionAvailable", 1) == 0:
        return ""
    return group


@dataclass(frozen=True, slots=True)
class Topics:
    """Builders of every topic under one root. An id may be `ANY` (`+`) for a subscription
    filter, or `%u` for a Mosquitto ACL pattern."""

    root: str

    # --- device → platform -----------------------------------------------------------------

    def water_telemetry(self, station_id: str) -> str:
        return f"{self.root}/{Kind.WATER}/{station_id}/{Channel.TELEMETRY}"

    def water_averages(self, station_id: str) -> str:
        """A station's own HJ 212 averages (minute, hour, day), as the gateway republishes
        them: a project addition beside the contract's telemetry topic."""
        return f"{self.root}/{Kind.WATER}/{station_id}/{Channel.AVERAGES}"

    def wearable(self, person_id: str) -> str:
        return f"{self.root}/{Kind.ELDER}/{person_id}/{Channel.WEARABLE}"

    def home(self, person_id: str, sensor_id: str) -> str:
        return f"{self.root}/{Kind.ELDER}/{person_id}/{Channel.HOME}/{sensor_id}"

    def alert(self, person_id: str) -> str:
        return f"{self.root}/{Kind.ELDER}/{person_id}/{Channel.ALERT}"

    def unit_gps(self, unit_id: str) -> str:
        return f"{self.root}/{Kind.UNIT}/{unit_id}/{Channel.GPS}"

    def unit_status(self, unit_id: str) -> str:
        return f"{self.root}/{Kind.UNIT}/{unit_id}/{Channel.STATUS}"

    def unit_patient(self, unit_id: str) -> str:
        return f"{self.root}/{Kind.UNIT}/{unit_id}/{Channel.PATIENT}"

    def online(self, kind: Kind | str, device_id: str) -> str:
        return f"{self.root}/{Kind(kind)}/{device_id}/{Channel.ONLINE}"

    def water_ack(self, partner_id: str) -> str:
        return f"{self.root}/{Kind.PARTNER}/{partner_id}/{Channel.WATER_ACK}"

    # --- platform → device, crew, partner --------------------------------------------------

    def order(self, unit_id: str) -> str:
        return f"{self.root}/{Kind.UNIT}/{unit_id}/{Channel.ORDER}"

    def receipt(self, person_id: str) -> str:
        return f"{self.root}/{Kind.ELDER}/{person_id}/{Channel.RECEIPT}"

    def water_alert(self, partner_id: str) -> str:
        return f"{self.root}/{Kind.PARTNER}/{partner_id}/{Channel.WATER_ALERT}"

    def of(self, address: TopicAddress) -> str:
        """The topic of an address: `parse_topic`'s inverse."""
        tail = f"/{address.sensor_id}" if address.sensor_id is not None else ""
        return f"{self.root}/{address.kind}/{address.id}/{address.channel}{tail}"

    # --- subscription filters --------------------------------------------------------------

    def everything(self) -> str:
        """Every topic under the root."""
        return f"{self.root}/#"

    def ingest_filters(self) -> list[str]:
        """What the ingest workers store: water topics, a person's wearable, home sensors and
        presence, and the units' reports. Unit orders and receipts are the platform's own
        messages, and alerts have their own lane (the alert consumers): neither is
        subscribed. Anything else under these filters that is not a stored stream is
        dead-lettered as an unknown topic."""
        return [
            f"{self.root}/{Kind.WATER}/#",
            self.wearable(ANY),
            self.home(ANY, ANY),
            self.online(Kind.ELDER, ANY),
            self.unit_gps(ANY),
            self.unit_status(ANY),
            self.unit_patient(ANY),
            self.online(Kind.UNIT, ANY),
        ]
