"""Fault injection produces exactly the configured faults, each with the reason the platform
must give it."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from ingest.devices import DeviceDirectory
from ingest.parse import Limits, Reason, RejectedMessage, parse_message
from simulators.faults import (
    MALFORMED_KINDS,
    FaultConfigError,
    FaultInjector,
    FaultRates,
    Wire,
    disconnect_times,
    silent_spells,
)

T = 1_780_000_000.0
DEVICES = DeviceDirectory(
    stations=frozenset({"WS-001"}), persons=frozenset({"P-0001"}), units=frozenset({"AMB-01"}),
    home_sensors={("P-0001", "motion-1"): "motion", ("P-0001", "temp-1"): "temperature"},
)
SAMPLES = {
    "water": ("jiashan/water/WS-001/telemetry", {"ph": 7.2, "do_mg_l": 6.5, "flag": "N"}),
    "wearable": ("jiashan/elder/P-0001/wearable", {"hr_bpm": 70.0, "steps": 100, "battery_pct": 80.0}),
    "home": ("jiashan/elder/P-0001/home/motion-1", {"kind": "motion", "value": True}),
    "gps": ("jiashan/unit/AMB-01/gps", {"lat": 30.8, "lon": 120.9, "speed_kmh": 40.0, "heading_deg": 90.0}),
}


def message(kind: str, k: int) -> tuple[Wire, dict]:
    topic, body = SAMPLES[kind]
    payload = {"ts": T + k, **body, "seq": k}
    return Wire(topic, orjson.dumps(payload), False, kind, "device"), payload


def inject(rates: FaultRates, n: int = 4000, kinds=tuple(SAMPLES), critical: bool = False) -> list[Wire]:
    injector = FaultInjector(rates, random.Random(1))
    out = []
    for k in range(n):
        wire, payload = message(kinds[k % len(kinds)], k)
        out += injector.apply(wire, payload, T + k, critical)
    return out + injector.flush()


def platform_verdict(wire: Wire) -> str | None:
    try:
        parse_message(wire.topic, wire.payload, root="jiashan", devices=DEVICES, now=datetime.fromtimestamp(T + 5000, UTC), limits=Limits())
    except RejectedMessage as exc:
        return exc.reason.value
    return None


def test_without_faults_every_message_goes_through_untouched() -> None:
    out = inject(FaultRates())
    assert len(out) == 4000 and not [w for w in out if w.fault]


@pytest.mark.parametrize("variant", sorted(MALFORMED_KINDS))
def test_each_malformed_variant_is_rejected_by_the_platform_with_its_reason(variant: str) -> None:
    out = inject(FaultRates(malformed=0.2, malformed_kinds=(variant,)), n=800)
    bad = [w for w in out if w.fault]
    assert bad and {w.fault for w in bad} == {f"malformed:{variant}"}
    assert {w.reason for w in bad} == {MALFORMED_KINDS[variant]}
    assert Counter(platform_verdict(w) for w in bad) == Counter({MALFORMED_KINDS[variant]: len(bad)})
    assert all(platform_verdict(w) is None for w in out if not w.fault)


def test_the_reasons_are_the_platforms_dead_letter_reasons() -> None:
    assert set(MALFORMED_KINDS.values()) <= {r.value for r in Reason}


def test_out_of_range_on_a_home_sensor_only_hits_thermometers() -> None:
    injector = FaultInjector(FaultRates(malformed=1.0, malformed_kinds=("out_of_range",)), random.Random(1))
    wire, payload = message("home", 1)
    assert injector.apply(wire, payload, T, False) == [wire]  # a motion sensor has no range
    thermo = Wire("jiashan/elder/P-0001/home/temp-1", b"{}", False, "home", "device")
    [bad] = injector.apply(thermo, {"ts": T, "kind": "temperature", "value": 21.0}, T, False)
    assert platform_verdict(bad) == "out_of_range"


def test_configured_rates_give_only_the_configured_kinds_at_about_those_rates() -> None:
    out = inject(FaultRates(malformed=0.02, duplicate=0.03, malformed_kinds=("not_json", "unknown_field")), n=20000)
    faults = Counter(w.fault for w in out if w.fault)
    assert set(faults) == {"malformed:not_json", "malformed:unknown_field", "duplicate"}
    assert faults["duplicate"] == pytest.approx(600, rel=0.15)
    assert faults["malformed:not_json"] + faults["malformed:unknown_field"] == pytest.approx(400, rel=0.2)


def test_a_duplicate_is_the_same_bytes_twice_in_a_row() -> None:
    out = inject(FaultRates(duplicate=0.05), n=2000)
    for i, w in enumerate(out):
        if w.fault == "duplicate":
            assert out[i - 1].payload == w.payload and out[i - 1].topic == w.topic and out[i - 1].fault is None
    assert len(out) == 2000 + sum(w.fault == "duplicate" for w in out)


def test_an_out_of_order_message_comes_right_after_the_devices_next_one() -> None:
    out = inject(FaultRates(out_of_order=0.05), n=2000, kinds=("water",))
    late = [i for i, w in enumerate(out) if w.fault == "out_of_order"]
    assert late and len(out) == 2000
    for i in late:  # one device here: the message before is that device's next one
        assert orjson.loads(out[i].payload)["ts"] < orjson.loads(out[i - 1].payload)["ts"]


def test_scripted_and_crew_status_messages_are_never_tampered_with() -> None:
    rates = FaultRates(malformed=0.3, duplicate=0.3, out_of_order=0.3)
    assert not [w for w in inject(rates, n=500, critical=True) if w.fault]
    injector = FaultInjector(rates, random.Random(1))
    status = Wire("jiashan/unit/AMB-01/status", b'{"status":"en_route"}', False, "status", "unit/AMB-01")
    assert all(injector.apply(status, {}, T, False) == [status] for _ in range(200))


def test_silent_spells_and_disconnects_follow_their_rates() -> None:
    rates = FaultRates(silent_per_device_day=2.0, silent_s=(600, 900), disconnects_per_hour=3.0)
    spells = [s for k in range(200) for s in silent_spells(random.Random(k), rates, T, T + 86400)]
    assert len(spells) == pytest.approx(400, rel=0.15)
    assert all(600 <= b - a <= 900 for a, b in spells)
    assert len(disconnect_times(random.Random(1), rates, T, T + 100 * 3600)) == pytest.approx(300, rel=0.2)


def test_impossible_rates_are_refused() -> None:
    with pytest.raises(FaultConfigError):
        FaultRates(malformed=0.7, duplicate=0.5)
    with pytest.raises(FaultConfigError, match="no malformed variant"):
        FaultRates(malformed_kinds=("gibberish",))
