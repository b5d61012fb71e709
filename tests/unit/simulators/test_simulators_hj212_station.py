"""The simulated HJ 212 station: what it uploads when, per-parameter flags, analysers on
demand during a spill, and a clock kept by the platform's set-time in a replay."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from ingest.hj212 import CST, decode_frame
from ingest.hj212_session import set_time
from simulators.county import Station
from simulators.hj212_station import ANALYSER_CODES, PROBE_CODES, StationProtocol
from simulators.simclock import LOCAL_TZ
from simulators.water import WaterStationModel, Weather, river_class

DAY = 86400.0
MIDNIGHT = datetime(2026, 7, 20, 0, 0, tzinfo=LOCAL_TZ).timestamp()
NAMES = {code: name for name, code in {**PROBE_CODES, **ANALYSER_CODES}.items()}


def station(seed: int = 3, offset_s: float = 0.0, asks: bool = True) -> StationProtocol:
    weather = Weather(random.Random(seed), MIDNIGHT - DAY, MIDNIGHT + 3 * DAY)
    weather.episodes.clear()
    model = WaterStationModel(Station("WS-001", 30.95, 120.99, 3, "river", "qingpu", 60.0), random.Random(seed), MIDNIGHT - DAY, weather)
    model.maintenance.clear()
    return StationProtocol(model, "33042100WS00010000000001", "pw", clock_offset_s=offset_s, asks_calibration=asks)


def hour(s: StationProtocol, start: float) -> dict[str, tuple[float, str]]:
    frame = decode_frame(s.hour_upload(start))
    assert frame.cn == "2061" and frame.cp.data_time == datetime.fromtimestamp(start, CST)
    return {NAMES[p.code]: (p.avg, p.flag) for p in frame.cp.pollutants}


def graded(upload: dict[str, tuple[float, str]]) -> int:
    return river_class({n: v for n, (v, _) in upload.items() if n in ANALYSER_CODES}, "river")


def test_the_analysers_report_every_four_hours_and_each_hour_carries_the_latest_result() -> None:
    s = station()
    hours = [hour(s, MIDNIGHT + h * 3600) for h in range(8)]
    nh3n = [h["nh3n_mg_l"][0] for h in hours]
    # 00:00-03:00 carry the 00:00 cycle's result, 04:00-07:00 the 04:00 one (finished within the hour ending 04:59).
    assert len(set(nh3n[:3])) == 1 and len(set(nh3n[4:7])) == 1
    assert all(flag == "N" for h in hours for _, flag in h.values())
    assert all(graded(h) <= 3 for h in hours)


def test_a_spill_that_takes_the_oxygen_runs_the_analysers_at_the_hours_end() -> None:
    s = station()
    s.model.add_pollution(MIDNIGHT + 3600 + 600, 6 * 3600, peak_class=5)
    before = hour(s, MIDNIGHT)
    spilled = hour(s, MIDNIGHT + 3600)  # 01:00-02:00, no 4-hour cycle ends in it
    assert graded(before) <= 3
    assert graded(spilled) == 5, spilled
    # Intensified: the next hours carry fresh results, not the 00:00 cycle's.
    assert graded(hour(s, MIDNIGHT + 2 * 3600)) == 5


def test_an_analyser_fault_flags_only_its_own_parameter() -> None:
    s = station()
    s.faults.append(("tp_mg_l", MIDNIGHT + 1800, MIDNIGHT + 5 * 3600))
    upload = hour(s, MIDNIGHT + 3600)
    assert upload["tp_mg_l"][1] == "D"
    assert {flag for name, (_, flag) in upload.items() if name != "tp_mg_l"} == {"N"}


def test_a_visit_flags_everything_m_and_the_hour_after_it_the_analysers_c() -> None:
    s = station()
    s.model.add_maintenance(MIDNIGHT + 10 * 3600, 3600)
    during = hour(s, MIDNIGHT + 10 * 3600)
    after = hour(s, MIDNIGHT + 11 * 3600)
    later = hour(s, MIDNIGHT + 13 * 3600)
    assert {flag for _, flag in during.values()} == {"M"}
    assert {after[n][1] for n in ANALYSER_CODES} == {"C"} and {after[n][1] for n in PROBE_CODES} == {"N"}
    assert {flag for _, flag in later.values()} == {"N"}


def test_a_cycle_that_ends_during_a_visit_keeps_the_last_river_sample() -> None:
    s = station()
    s.model.add_pollution(MIDNIGHT - DAY, 3 * DAY, peak_class=5)  # the river stays dirty
    hour(s, MIDNIGHT + 3 * 3600)
    s.model.add_maintenance(MIDNIGHT + 4 * 3600 - 600, 1200)  # the 04:00 cycle ends in the visit
    after = hour(s, MIDNIGHT + 5 * 3600)
    assert graded(after) == 5  # not the blank the analyser ran meanwhile


def test_what_is_due_on_the_minute_the_hour_the_day_and_calibration() -> None:
    s = station()
    first = s.due(MIDNIGHT + 60, first=True)
    assert [k for k, _ in first] == ["hj212_calibration", "hj212_minute"]
    assert [k for k, _ in s.due(MIDNIGHT + 3600)] == ["hj212_minute", "hj212_hour"]
    assert [k for k, _ in s.due(MIDNIGHT + 1800)] == ["hj212_calibration", "hj212_minute"]  # 00:30 daily
    assert [k for k, _ in s.due(MIDNIGHT + DAY)] == ["hj212_minute", "hj212_hour", "hj212_day"]
    quiet = station(asks=False)
    assert [k for k, _ in quiet.due(MIDNIGHT + 60, first=True)] == ["hj212_minute"]


def test_the_daily_upload_is_stamped_at_local_midnight_with_the_probes_range() -> None:
    s = station()
    frame = decode_frame(s.day_upload(MIDNIGHT))
    assert frame.cn == "2031" and frame.cp.data_time == datetime.fromtimestamp(MIDNIGHT, CST)
    by = {NAMES[p.code]: p for p in frame.cp.pollutants}
    assert set(by) == set(PROBE_CODES) | set(ANALYSER_CODES)
    assert by["do_mg_l"].min is not None and by["do_mg_l"].min <= by["do_mg_l"].avg <= by["do_mg_l"].max


def test_in_a_replay_a_set_time_corrects_the_stations_own_error_only() -> None:
    s = station(offset_s=300.0)  # five minutes fast
    replayed = MIDNIGHT + 3600  # the station's true (simulated) time
    wall = replayed + 2 * 3600  # the platform's clock, two hours on
    # The gateway's own answer to the station's calibration request, on the wall clock.
    told = set_time(decode_frame(s.calibration_request(replayed)), datetime.fromtimestamp(wall, UTC))
    assert s.apply_set_time(decode_frame(told), wall, station_now=replayed)
    assert abs(s.station_time(replayed).timestamp() - replayed) < 1.0


def test_a_station_that_sends_real_time_data_sends_its_probes_every_five_minutes() -> None:
    s = station()
    s.sends_realtime = True
    assert [k for k, _ in s.due(MIDNIGHT + 300)] == ["hj212_minute", "hj212_realtime"]
    assert [k for k, _ in s.due(MIDNIGHT + 360)] == ["hj212_minute"]
    frame = decode_frame(s.realtime_upload(MIDNIGHT + 300))
    assert frame.cn == "2011" and {NAMES[p.code] for p in frame.cp.pollutants if p.rtd is not None} == set(PROBE_CODES)


def test_a_frame_for_an_unreachable_gateway_is_counted_unsent() -> None:
    import queue
    import socket

    from simulators.hj212_link import StationLinks

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    links = StationLinks("127.0.0.1", port, queue.Queue())
    assert not links.send("WS-001", station().minute_upload(MIDNIGHT))
    assert links.totals() == {"unsent": 1, "unacknowledged": 0}
