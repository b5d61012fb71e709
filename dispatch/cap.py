"""CAP 1.2 (OASIS Common Alerting Protocol) documents for water alarms at cross-border
stations, shared with the partner district. Pure: the alarm and station come in, XML goes
out. A raise is an Alert, a repeat or escalation an Update, a clear a Cancel; Update and
Cancel reference the original alert, as CAP requires. The second alarm of one exceedance
(the hourly rule's after the real-time one's, attached to the same incident) is an Update
of the first alarm's Alert, not an Alert of its own (`plan_message`). Who sends them (`CapSender`) is the
deployment's: the region settings name it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"

_SEVERITY = {"critical": "Severe", "major": "Moderate", "minor": "Minor", "warning": "Minor"}
_MSG_TYPE = {"alarm.raised": "Alert", "alarm.updated": "Update", "alarm.cleared": "Cancel"}
# A circle of this radius (km) around the station: the stretch of river the alert is about.
AREA_RADIUS_KM = 2.0


@dataclass(frozen=True, slots=True)
class CapSender:
    """The county's CAP identity: `address` is the `sender` every alert carries and every
    partner's Ack references; `name` the `senderName` people read."""

    address: str
    name: str


@dataclass(frozen=True, slots=True)
class StationInfo:
    station_id: str
    name: str
    lat: float
    lon: float
    partner_id: str | None


def identifier(alarm_id: int, sequence: int) -> str:
    return f"watchpost-water-{alarm_id}-{sequence}"


@dataclass(frozen=True, slots=True)
class SentFirst:
    """An alarm's first document to the partner (sequence 0): what later ones reference."""

    alarm_id: int
    sent: datetime


@dataclass(frozen=True, slots=True)
class CapPlan:
    """What to send for one alarm event: the message type, the document's number within its
    alarm, and the first document it references (None for an Alert)."""

    msg_type: str
    sequence: int
    references: SentFirst | None


def plan_message(event_type: str, *, own_first: SentFirst | None, own_sent: int, exceedance_alert: SentFirst | None) -> CapPlan | None:
    """Alert or Update, referencing what. `own_first` is this alarm's first document and
    `own_sent` how many it has sent; `exceedance_alert` the live Alert (not yet cancelled) of
    another alarm on the same incident, i.e. of the same exceedance. None: send nothing.

    A raise whose exceedance the partner already has an Alert for is an Update of that
    Alert: the partner sees one spill once, and answers (or is escalated to) once, since only
    Alerts wait for an answer. Everything later about an alarm references its own first
    document, as before: its clear cancels what it sent, not its sibling's Alert."""
    msg_type = _MSG_TYPE[event_type]
    if own_first is not None:
        return CapPlan(msg_type, own_sent, None if msg_type == "Alert" else own_first)
    if msg_type != "Alert":
        return None  # nothing was sent for this alarm: no Update or Cancel either
    if exceedance_alert is not None:
        return CapPlan("Update", 0, exceedance_alert)
    return CapPlan("Alert", 0, None)


def _ts(value: datetime) -> str:
    # CAP: seconds and an explicit offset, never "Z"; UTC is written "-00:00".
    text = value.isoformat(timespec="seconds")
    return text[:-6] + "-00:00" if text.endswith("+00:00") else text


def water_alert(
    *, sender: CapSender, event_type: str, alarm: Mapping[str, Any], station: StationInfo, sent: datetime, sequence: int, first_sent: datetime | None,
    public: bool = False, msg_type: str | None = None, references_alarm_id: int | None = None,
) -> str:
    """One CAP document. `sequence` numbers the documents of one alarm (0 for the Alert);
    `first_sent` is when the referenced first document went out, referenced by Update and
    Cancel; it is the alarm's own unless `references_alarm_id` names another alarm's.
    `msg_type` overrides the event's own (an Update for a raise, see `plan_message`). A
    partner's copy is Restricted and addressed to the partner; the public feed's is Public."""
    element = alert_element(
        sender=sender, event_type=event_type, alarm=alarm, station=station, sent=sent, sequence=sequence, first_sent=first_sent, public=public,
        msg_type=msg_type, references_alarm_id=references_alarm_id,
    )
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element, encoding="unicode")


def alert_element(
    *, sender: CapSender, event_type: str, alarm: Mapping[str, Any], station: StationInfo, sent: datetime, sequence: int, first_sent: datetime | None,
    public: bool = False, msg_type: str | None = None, references_alarm_id: int | None = None,
) -> ET.Element:
    msg_type = msg_type or _MSG_TYPE[event_type]
    root = ET.Element("alert", xmlns=CAP_NS)
    header = [
        ("identifier", identifier(alarm["alarm_id"], sequence)),
        ("sender", sender.address),
        ("sent", _ts(sent)),
        ("status", "Actual"),
        ("msgType", msg_type),
    ]
    if public:
        header.append(("scope", "Public"))
    else:
        header += [
            ("scope", "Restricted"),
            ("restriction", f"Cross-border water-quality partners: {station.partner_id}"),
            ("addresses", station.partner_id or ""),
        ]
    for tag, text in header:
        ET.SubElement(root, tag).text = text
    if msg_type != "Alert" and first_sent is not None:
        referenced = alarm["alarm_id"] if references_alarm_id is None else references_alarm_id
        ET.SubElement(root, "references").text = f"{sender.address},{identifier(referenced, 0)},{_ts(first_sent)}"
    info = ET.SubElement(root, "info")
    detail = alarm.get("detail") or {}
    for tag, text in (
        ("language", "zh-CN"),
        ("category", "Env"),
        ("event", "Water quality anomaly" if alarm["alarm_type"] == "water_anomaly" else "Water quality exceedance"),
        ("responseType", "Monitor" if msg_type != "Cancel" else "AllClear"),
        ("urgency", "Expected" if msg_type != "Cancel" else "Past"),
        ("severity", _SEVERITY.get(alarm["severity"], "Unknown")),
        ("certainty", "Observed"),
        ("senderName", sender.name),
        ("headline", f"{station.name}: {alarm['alarm_type'].replace('_', ' ')}"),
        ("description", _description(alarm, detail, msg_type)),
    ):
        ET.SubElement(info, tag).text = text
    for name, value in (("station_id", station.station_id), ("alarm_id", str(alarm["alarm_id"]))):
        param = ET.SubElement(info, "parameter")
        ET.SubElement(param, "valueName").text = name
        ET.SubElement(param, "value").text = value
    area = ET.SubElement(info, "area")
    ET.SubElement(area, "areaDesc").text = f"{station.name} ({station.station_id})"
    ET.SubElement(area, "circle").text = f"{station.lat:.5f},{station.lon:.5f} {AREA_RADIUS_KM}"
    return root


def _description(alarm: Mapping[str, Any], detail: Mapping[str, Any], msg_type: str) -> str:
    if msg_type == "Cancel":
        return "Water quality is back within the station's target class."
    parts = [f"{k}={v}" for k, v in sorted(detail.items()) if isinstance(v, str | int | float)]
    return f"Alarm {alarm['alarm_id']} at {alarm['first_seen']}; " + ", ".join(parts)
