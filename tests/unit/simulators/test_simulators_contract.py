"""The simulator speaks the contract: every message it makes passes the platform's own
validation, except the faults it injects on purpose, which fail with the expected reason."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import orjson

from ingest.alerts import AlertLimits, RejectedAlert, parse_alert
from ingest.parse import Limits, RejectedMessage, parse_message
from ingest.readings import WaterReading
from simulators.county import device_directory
from simulators.engine import Control, Simulation
from simulators.faults import MALFORMED_KINDS
from simulators.scenario import parse_scenario

START = datetime(2026, 5, 10, 1, 0, tzinfo=UTC).timestamp()  # 09:00 in Jiashan
SCENARIO = {
    "seed": 11,
    "duration": "2h",
    "faults": {"malformed": 0.01, "duplicate": 0.01, "out_of_order": 0.01, "silent_per_device_day": 3, "disconnects_per_hour": 2},
    "events": [
        {"at": 5, "kind": "fall", "cancelled": True},
        {"at": 10, "kind": "fall"},
        {"at": 15, "kind": "sos"},
        {"at": 20, "kind": "pollution", "station": "cross-border", "duration": "40m", "peak_class": 6},
        {"at": 25, "kind": "smoke"},
        {"at": 30, "kind": "gas"},
        {"at": 35, "kind": "water_leak"},
        {"at": 40, "kind": "heart_rate_high"},
        {"at": 45, "kind": "heart_rate_low"},
        {"at": 50, "kind": "spo2_low"},
        {"at": 0, "kind": "inactivity"},
        {"at": 60, "kind": "maintenance", "station": "random"},
        {"at": 30, "kind": "rain"},
        {"at": 70, "kind": "silent", "device": "random"},
    ],
}


def order_for(person, incident: str, hospital: str | None) -> bytes:
    return orjson.dumps({"incident_id": incident, "priority": 1, "lat": person.lat, "lon": person.lon, "address": "x", "eta_s": 300.0, "hospital_id": hospital, "first_aid_post_id": None})


def test_thousands_of_simulated_messages_pass_validation_and_faults_fail_with_their_reason(county, roads) -> None:
    sim = Simulation(county, parse_scenario(SCENARIO), start=START, root="jiashan", roads=roads)
    devices = device_directory(county)
    verdicts: Counter[tuple[str | None, str | None]] = Counter()
    kinds: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    wires = [(w, START) for w in sim.opening()]
    t = START
    while t < sim.end:
        t += 60
        if t == START + 1200:  # two crews get orders: the GPS of moving units is checked too
            sim.receive_order("AMB-01", order_for(county.persons[0], "INC-1", "HOSP-FIRST"))
            sim.receive_order("RP-01", order_for(county.persons[1], "INC-2", None))
        wires += [(w, t) for w in sim.advance(t) if not isinstance(w, Control)]
    wires += [(w, t) for w in sim.finish()]
    for wire, now in wires:
        kinds[wire.kind] += 1
        if wire.kind == "alert":  # the alert lane's own validation
            try:
                parse_alert(wire.topic, wire.payload, root="jiashan", devices=devices, now=datetime.fromtimestamp(now, UTC), limits=AlertLimits())
                verdicts[(wire.reason, None)] += 1
            except RejectedAlert as exc:
                verdicts[(wire.reason, exc.reason.value)] += 1
            continue
        try:
            readings = parse_message(wire.topic, wire.payload, root="jiashan", devices=devices, now=datetime.fromtimestamp(now, UTC), limits=Limits())
            verdicts[(wire.reason, None)] += 1
            flags.update(r.flag for r in readings if isinstance(r, WaterReading))
        except RejectedMessage as exc:
            verdicts[(wire.reason, exc.reason.value)] += 1
    assert sum(kinds.values()) > 20_000
    assert set(kinds) == {"water", "wearable", "alert", "home", "gps", "status", "online"}
    assert kinds["alert"] >= 4  # fall and "I'm OK", a fall, an SOS
    wrong = {k: n for k, n in verdicts.items() if k[0] != k[1]}
    assert wrong == {}, "messages the platform judged otherwise than expected: (expected, got) -> count"
    assert {reason for reason, _ in verdicts if reason} == set(MALFORMED_KINDS.values())
    assert flags["M"] > 0 and flags["N"] > 1000
    assert kinds["status"] >= 8  # both runs: en_route … available
