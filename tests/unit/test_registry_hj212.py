"""A station's HJ 212 MN in the registry, and the PW derived for it (never written down)."""

from __future__ import annotations

from ingest.hj212 import Frame, build_segment
from ingest.hj212_gateway import derived_station_password
from watchpost.registry import validate

MN = "33042100WS00010000000001"


def station(**fields: object) -> dict:
    return {"station_id": "WS-001", "name": "s", "lat": 30.9, "lon": 120.9, **fields}


def test_a_station_may_name_its_mn_and_how_its_pw_is_set() -> None:
    assert validate({"stations": [station(hj212_mn=MN), station(station_id="WS-002", hj212_mn="X2", hj212_password="keep")]}) == []


def test_a_bad_or_shared_mn_or_an_unknown_pw_mode_is_refused_by_station() -> None:
    assert validate({"stations": [station(hj212_mn="MN;1")]}) == ["stations[0].hj212_mn: must be 1-27 characters, none of ; = & , or blank"]
    shared = validate({"stations": [station(hj212_mn=MN), station(station_id="WS-002", hj212_mn=MN)]})
    assert shared == [f"stations[{i}].hj212_mn: {MN!r} is the MN of more than one station" for i in (0, 1)]
    [mode] = validate({"stations": [station(hj212_mn=MN, hj212_password="123456")]})
    assert mode.startswith("stations[0].hj212_password: must be one of derived, keep")
    assert validate({"stations": [station(hj212_password="keep")]}) == ["stations[0].hj212_password: needs hj212_mn"]


def test_a_derived_pw_is_one_a_logger_can_send_and_is_the_stations_own() -> None:
    secret = b"deployment secret"
    pw = derived_station_password(secret, MN)
    assert len(pw) == 9 and pw == derived_station_password(secret, MN)
    build_segment(Frame(st="21", cn="2011", pw=pw, mn=MN))  # raises for a PW HJ 212 cannot carry
    assert pw != derived_station_password(secret, "33042100WS00020000000001")
    assert pw != derived_station_password(b"another deployment", MN)
