"""Watchpost for a county other than the simulated demo: a second county (tests/fixtures/
second_county: Leishan, Guizhou) loaded from scratch into an empty database with the
operator's commands (tests/fix_second_county.py), served and dispatched with its region
settings. The map, the pages, dispatch and the reports are that county's, and nothing names
the demo county."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import orjson
import psycopg
import pytest

from ingest.alarm_store import apply_transitions
from ingest.rules import Action, AlarmTransition, AlarmType, Severity, SourceKind
from tests.fix_second_county import SECOND_REGION, SECOND_REGION_ENV
from tests.fix_wait import wait_for

pytestmark = pytest.mark.slow

DEMO_COUNTY = re.compile("嘉善|jiashan", re.IGNORECASE)
# What the console, family and tier pages load; none may name a county.
PAGES = ["/console", "/family", "/first-aid", "/hospital", "/crew", "/static/i18n.js", "/static/console.js",
         "/static/family.js", "/static/tier.js"]


def no_demo_county(what: str, text: str) -> None:
    found = DEMO_COUNTY.search(text)
    assert found is None, f"{what} names the demo county: …{text[max(0, found.start() - 60):found.end() + 60]}…"


def test_a_second_county_loaded_from_scratch_is_the_one_mapped_dispatched_and_named(
    second_county_url: str, start_api, start_dispatcher, collect, tmp_path: Path
) -> None:
    url = second_county_url
    orders = collect("simulator", "unit/+/order")
    start_dispatcher(url, **{f"region__{k}": v for k, v in SECOND_REGION.items()})
    api = start_api(url, env=SECOND_REGION_ENV)
    seen: list[tuple[str, str]] = []

    # A water alarm at the county's station, for the public CAP feed.
    with psycopg.connect(url) as conn:
        now = datetime.now(UTC)
        apply_transitions(conn.cursor(), [AlarmTransition(Action.RAISE, SourceKind.STATION, "WS-LS01", AlarmType.WATER_CLASS_EXCEEDED,
                                                          Severity.MAJOR, now, detail={"class": 4})], now)

    # The pages, before anyone logs in: the county's titles and opening view from /api/region.
    with httpx.Client(base_url=api.base) as http:
        region = http.get("/api/region").json()
        seen += [(path, http.get(path).text) for path in PAGES]
        feed = http.get("/api/cap").text
        seen.append(("/api/cap", feed))
    ns = {"atom": "http://www.w3.org/2005/Atom", "cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    [alert] = ET.fromstring(feed).findall("atom:entry/atom:content/cap:alert", ns)
    assert alert.findtext("cap:sender", namespaces=ns) == "watchpost@leishan.example"
    assert alert.findtext("cap:info/cap:senderName", namespaces=ns) == "Leishan water-quality monitoring (Watchpost)"
    assert ET.fromstring(feed).findtext("atom:id", namespaces=ns) == "urn:watchpost:522634:cap"
    assert region["name"] == {"zh": "雷山", "en": "Leishan"} and region["adcode"] == "522634"
    assert region["map"] == {"centre": {"lat": 26.44, "lon": 108.12}, "zoom": 10}
    assert region["strings"]["zh"]["console.title"] == "雷山应急指挥 · 值班台"
    seen.append(("/api/region", orjson.dumps(region).decode()))

    with api.client("disp-ls") as http:
        # The map: this county's roads (no footway), its boundary framed, its facilities.
        doc = http.get("/api/map").json()
        seen.append(("/api/map", orjson.dumps(doc).decode()))
        assert {f["properties"]["road_class"] for f in doc["roads"]["features"]} == {"secondary", "tertiary", "residential"}
        homes = [f["properties"]["name"] for f in doc["boundaries"]["features"] if f["properties"].get("home") is True]
        assert homes == ["雷山县"] and len(doc["boundaries"]["features"]) == 2
        assert {f["id"] for f in doc["facilities"]["features"]} == {"EC-LEISHAN", "H-LEISHAN", "ST-DANJIANG", "ST-XIJIANG", "FA-XIJIANG"}

        # A call in Xijiang: the ambulance stationed there, by the county's roads.
        created = http.post("/api/incidents", json={"lat": 26.5008, "lon": 108.1770, "kind": "medical", "priority": 1})
        assert created.status_code == 201, created.text
        incident_id = created.json()["incident_id"]
        [(_, topic, payload)] = orders.wait_for(1)
        order = orjson.loads(payload)
        assert topic.endswith("/unit/AMB-XJ1/order") and order["incident_id"] == incident_id
        assert order["hospital_id"] == "H-LEISHAN" and 0 < order["eta_s"] < 300
        # One in the county seat: Danjiang's, though Xijiang's is now busy anyway.
        http.post("/api/incidents", json={"lat": 26.3712, "lon": 108.0692, "kind": "medical", "priority": 2})
        [_, (_, topic, _)] = orders.wait_for(2)
        assert topic.endswith("/unit/AMB-DJ1/order")
        wait_for(lambda: {u["unit_id"]: u["status"] for u in http.get("/api/units").json()} ==
                 {"AMB-XJ1": "dispatched", "AMB-DJ1": "dispatched"})
        candidates = http.get(f"/api/incidents/{incident_id}/candidates").json()
        for path in ("/api/units", "/api/incidents", "/api/stations", "/api/persons", "/api/persons/P-LS01", "/api/alarms",
                     "/api/coverage", "/api/me"):
            r = http.get(path)
            assert r.status_code == 200, (path, r.text)
            seen.append((path, r.text))
        seen.append(("candidates", orjson.dumps(candidates).decode()))

    # The shift report is titled by the county's control room.
    from dashboard import report
    from kernel.settings import load_settings

    with psycopg.connect(url) as conn:
        day = conn.execute("SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date").fetchone()[0]
    html_path, _ = report.build(url, day, day, tmp_path, region=load_settings(SECOND_REGION_ENV).region, pdf=False)
    shift_report = html_path.read_text()
    assert "<h1>雷山应急指挥 · 值班报告" in shift_report and incident_id in shift_report
    seen.append(("shift report", shift_report))

    for what, text in seen:
        no_demo_county(what, text)
