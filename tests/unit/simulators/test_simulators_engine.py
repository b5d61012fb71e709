"""The simulation engine and its runner, without a broker."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import orjson
import pytest

from simulators.engine import WILL_DELAY_S, Control, Simulation
from simulators.faults import Wire
from simulators.runner import DryRun, Runner
from simulators.scenario import parse_scenario
from simulators.summary import percentile

START = datetime(2026, 5, 10, 2, 0, tzinfo=UTC).timestamp()  # 10:00 in Jiashan


def simulation(county, roads, explicit_presence: bool = True, **scenario) -> Simulation:
    doc = {"seed": 3, "duration": "1h", **scenario}
    return Simulation(county, parse_scenario(doc), start=START, root="jiashan", roads=roads, explicit_presence=explicit_presence)


def everything(sim: Simulation) -> list[Wire | Control]:
    out = list(sim.opening())
    while sim.now < sim.end:
        out += sim.advance(sim.now + 300)
    return out + sim.finish()


def wires(items) -> list[Wire]:
    return [w for w in items if isinstance(w, Wire)]


def test_a_run_is_the_same_for_the_same_seed_and_start(county, roads) -> None:
    faults = {"malformed": 0.01, "duplicate": 0.01, "out_of_order": 0.01}
    a = wires(everything(simulation(county, roads, faults=faults)))
    b = wires(everything(simulation(county, roads, faults=faults)))
    assert a == b
    c = wires(everything(simulation(county, roads, faults=faults, seed=4)))
    assert c != a


def test_every_stream_has_rising_measurement_times_and_sequence_numbers(county, roads) -> None:
    streams: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for w in wires(everything(simulation(county, roads))):
        if w.kind != "online":
            doc = orjson.loads(w.payload)
            ts = datetime.fromisoformat(doc["ts"]).timestamp() if isinstance(doc["ts"], str) else doc["ts"]
            streams[w.topic].append((ts, doc["seq"]))
    assert len(streams) > 100
    for topic, stamps in streams.items():
        assert stamps == sorted(stamps) and len({ts for ts, _ in stamps}) == len(stamps), topic
        assert [seq for _, seq in stamps] == list(range(1, len(stamps) + 1)), topic


def test_each_device_announces_itself_online_at_the_start(county, roads) -> None:
    sim = simulation(county, roads)
    opening = sim.opening()
    assert len(opening) == county.device_count
    assert all(w.retain and w.payload == b"1" and w.topic.endswith("/online") for w in opening)
    assert simulation(county, roads, explicit_presence=False).opening() == []


def test_a_silent_device_sends_nothing_and_its_will_shows_until_it_is_back(county, roads) -> None:
    pid = county.persons[2].person_id
    sim = simulation(county, roads, events=[{"at": 10, "kind": "silent", "device": pid, "duration": "20m"}])
    online = f"jiashan/elder/{pid}/online"

    def flags(until: float) -> list[bytes]:
        out = []
        while sim.now < until:  # advance returns at most a batch at a time
            out += [w.payload for w in wires(sim.advance(until)) if w.topic == online]
        return out

    assert flags(START + 600 + WILL_DELAY_S - 1) == []
    assert flags(START + 600 + WILL_DELAY_S + 1) == [b"0"]  # the broker's will, after the keepalive
    assert flags(START + 1800 + 1) == [b"1"]
    quiet = [w for w in everything(simulation(county, roads, events=[{"at": 10, "kind": "silent", "device": pid, "duration": "20m"}]))
             if isinstance(w, Wire) and w.device == f"elder/{pid}" and w.kind != "online" and START + 600 <= _ts(w) < START + 1800]
    assert quiet == []


def test_with_connections_per_device_silence_is_a_control_for_the_connection(county, roads) -> None:
    pid = county.persons[2].person_id
    items = everything(simulation(county, roads, explicit_presence=False, events=[{"at": 10, "kind": "silent", "device": pid}]))
    controls = [c for c in items if isinstance(c, Control)]
    assert [(c.action, c.device) for c in controls] == [("silence", f"elder/{pid}"), ("resume", f"elder/{pid}")]
    assert not [w for w in wires(items) if w.kind == "online"]


def test_an_order_is_matched_to_the_scripted_emergency_where_it_happened(county, roads) -> None:
    target = county.persons[4]
    sim = simulation(county, roads, events=[{"at": 5, "kind": "sos", "person": target.person_id}])
    while sim.now < START + 600:  # advance hands out at most `limit` messages a call
        sim.advance(START + 600)
    order = {"incident_id": "INC-9", "priority": 1, "lat": target.lat, "lon": target.lon, "address": "x", "eta_s": 420.0, "hospital_id": "HOSP-TCM"}
    record = sim.receive_order("AMB-02", orjson.dumps(order))
    assert record is not None and record.trigger == START + 300 and record.trigger_kind == "sos"
    assert record.dispatch_wait_min == pytest.approx(5.0)
    everything(sim)
    assert list(record.statuses)[:2] == ["en_route", "on_scene"] and record.response_min > 0
    assert sim.receive_order("AMB-02", orjson.dumps(order)) is None  # the same order again
    assert sim.receive_order("AMB-02", b"{") is None and sim.unusable_orders == 1


def test_a_pollution_trigger_is_when_the_station_first_reads_worse_than_its_target(county, roads) -> None:
    station = next(s for s in county.stations if s.partner_id)
    sim = simulation(county, roads, events=[{"at": 10, "kind": "pollution", "station": station.station_id, "duration": "30m"}])
    everything(sim)
    [trigger] = sim.book.triggers
    assert START + 600 < trigger.t < START + 600 + 15 * 60


def test_events_after_the_end_of_the_run_are_left_out_and_counted_by_kind(county, roads) -> None:
    sim = simulation(county, roads, events=[
        {"at": 5, "kind": "fall", "cancelled": True}, {"at": 6, "kind": "fall"}, {"at": 90, "kind": "sos"},
    ])
    assert dict(sim.scripted) == {"fall (cancelled)": 1, "fall (not cancelled)": 1}


def test_the_runner_publishes_everything_and_sums_it_up(county, roads) -> None:
    sim = simulation(county, roads, faults={"malformed": 0.02, "duplicate": 0.01}, events=[{"at": 5, "kind": "sos", "person": county.persons[0].person_id}])
    dry = DryRun()
    runner = Runner(sim, dry, acceleration=0, scenario="test", seed=3)
    p = county.persons[0]
    runner.orders.put(("AMB-03", orjson.dumps({"incident_id": "INC-1", "lat": p.lat, "lon": p.lon})))
    summary = runner.run()
    assert summary.messages_total == dry.acked == summary.publish_acked
    assert sum(summary.expected_dead_letters.values()) == sum(n for k, n in summary.faults.items() if k.startswith("malformed"))
    assert summary.sim_end == sim.end and summary.scripted == {"sos": 1}
    assert len(summary.orders) == 1 and summary.orders[0].statuses["en_route"] >= START
    text = summary.format()
    assert "INC-1 → AMB-03" in text and "dead letters to expect" in text
    assert summary.as_dict()["orders"][0]["incident_id"] == "INC-1"


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 90) is None
    assert percentile(range(1, 11), 90) == 9
    assert percentile([5.0], 50) == 5.0


def _ts(w: Wire) -> float:
    ts = orjson.loads(w.payload)["ts"]
    return datetime.fromisoformat(ts).timestamp() if isinstance(ts, str) else ts


def test_a_crew_moved_up_drives_to_the_standby_point_and_stays_available(county, roads) -> None:
    sim = simulation(county, roads, events=[])
    station = next(f for f in county.facilities.values() if f.kind == "ambulance_station")
    order = {"kind": "relocate", "order_id": "relocate-AMB-02-1", "facility_id": station.facility_id, "lat": station.lat, "lon": station.lon}
    sim.receive_order("AMB-02", orjson.dumps(order))
    statuses = []
    while sim.now < START + 3600:
        statuses += [orjson.loads(w.payload).get("status") for w in sim.advance(START + 3600) if getattr(w, "topic", "").endswith("AMB-02/status")]
    assert statuses == []  # available throughout: no status reports
    model = sim.devices[sim.index[("unit", "AMB-02")]].model
    assert model.parked == pytest.approx((station.lat, station.lon), abs=0.003)


def test_with_hj212_stations_the_automatic_stations_send_frames_and_the_buoys_json(county, roads) -> None:
    from ingest.hj212 import decode_frame
    from simulators.engine import StationFrame

    sim = simulation(county, roads, devices={"stations": "hj212"})
    items = everything(sim)
    frames = [i for i in items if isinstance(i, StationFrame)]
    with_mn = {s.station_id for s in county.stations if s.hj212_mn}
    assert with_mn and {f.station_id for f in frames} == with_mn
    json_stations = {w.topic.split("/")[2] for w in wires(items) if w.kind == "water"}
    assert json_stations == {s.station_id for s in county.stations} - with_mn
    # No presence on the broker for a logger on TCP; a minute frame each minute, an hour upload at 11:00.
    assert not any(w.kind == "online" and w.device in {f"water/{s}" for s in with_mn} for w in wires(items))
    per_station = [f for f in frames if f.station_id == min(with_mn)]
    assert sum(f.kind == "hj212_minute" for f in per_station) == 60
    assert [decode_frame(f.data).cn for f in per_station if f.kind == "hj212_hour"] == ["2061"]
    # A scripted spill reaches the model behind the protocol.
    station = next(s for s in county.stations if s.hj212_mn and s.partner_id)
    spilled = simulation(county, roads, devices={"stations": "hj212"},
                         events=[{"at": "0m", "kind": "pollution", "station": station.station_id, "duration": "2h"}])
    assert spilled.devices[spilled.index[("water", station.station_id)]].model.model.pollution


def test_an_inactivity_shorter_than_the_persons_threshold_by_the_runs_end_is_unmeasured(county, roads) -> None:
    person = county.persons[0].person_id
    sim = simulation(county, roads, events=[{"at": "0m", "kind": "inactivity", "person": person, "duration": "5h"}])
    everything(sim)  # one hour: the platform's 4-hour threshold cannot have run out
    [event] = [e for e in sim.injected() if e.kind == "inactivity"]
    assert not event.observable
    sim.now = sim.start + 4 * 3600 + 60  # as a run of more than four hours would end
    [event] = [e for e in sim.injected() if e.kind == "inactivity"]
    assert event.observable
