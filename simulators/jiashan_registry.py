"""The simulated Jiashan registry: partners, facilities, water stations, elderly persons with
home sensors, units and users, in the document format `watchpost registry load` reads.

Deterministic for a seed. Everything is placed inside the county's outline (the project's schematic drawing) and on the
shared geography (simulators.jiashan_geo): stations sit on the rivers the road network must
bridge, cross-border stations where a river leaves for a partner district, village
first-aid posts and homes around ~100 villages. Names are synthetic.

    python -m simulators.jiashan_registry --out config/registry-jiashan.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dispatch.geometry import haversine_m
from simulators.jiashan_geo import JiashanGeography, load_geography

DEFAULT_SEED = 330421
DEFAULT_GEOJSON = Path(__file__).resolve().parent / "data" / "jiashan-region.geojson"

# One ambulance per 30,000 residents (DOMAIN.md) for ~650,000 people is 22; the county
# emergency centre keeps the largest share as the reserve that covers the seat.
CENTRE_AMBULANCES = 6
# fmt: off
STATION_AMBULANCES = {"weitang": 2, "luoxing": 2, "huimin": 2, "dayun": 2, "xitang": 2,
                      "taozhuang": 1, "yaozhuang": 2, "ganyao": 1, "tianning": 2}
HEALTH_CENTRE_TOWNS = ("taozhuang", "yaozhuang", "tianning")  # farthest from the county hospitals
# Fire-and-rescue stations (the fire service, 119) and their crews: the county seat's brigade
# and town stations such as 西塘消防救援站 in Xitang. Smoke and gas incidents go to them.
FIRE_STATIONS = {"weitang": 2, "xitang": 1, "yaozhuang": 1, "ganyao": 1}
WATER_STATIONS = 30
CROSS_BORDER_PER_PARTNER = 2
# The real cross-border monitoring sections on Jiashan's boundary (Taihu Basin Authority
# bulletins), by the simulated river and partner they sit on: a cross-border station found
# there carries the section's name, and every named section gets its station (the cap per
# partner applies to the unnamed crossings). 池家浜, a station rather than a river section,
# is not placed.
CROSS_BORDER_SECTIONS: dict[tuple[str, str], str] = {
    ("Taipu River", "qingpu"): "太浦河 东蔡大桥 Dongcai Bridge",
    ("Hongqi Tang", "jinshan"): "红旗塘 横港大桥 Henggang Bridge",
    ("Yuhui Tang", "qingpu"): "俞汇塘 俞汇北大桥 Yuhui North Bridge",
    ("Luxu Tang", "wujiang"): "芦墟塘 陶庄枢纽 Taozhuang Hub",
    ("Dingzha Gang", "qingpu"): "丁栅港 丁栅枢纽 Dingzha Hub",
    ("Fentou Gang", "jinshan"): "坟头港 大舜枢纽 Dashun Hub",
    ("Fengjing Tang", "jinshan"): "枫泾塘 枫南大桥 Fengnan Bridge",
}
# Subsets of home sensors, as (kind, probability); motion is always installed.
HOME_SENSOR_ODDS = (("motion", 1.0), ("door", 0.9), ("bed", 0.6), ("smoke", 0.8), ("gas", 0.5),
                    ("water_leak", 0.3))
STAFF = (("op", "operator", 4), ("disp", "dispatcher", 3), ("admin", "admin", 1))


def doctor_username(post_id: str) -> str:
    """The village doctor's login at a first-aid post: `doc-FAP-007`."""
    return f"doc-{post_id}"


def post_duty_phone(k: int) -> str:
    """Post k's duty phone: a Jiashan (0573) number, E.164."""
    return f"+86573840{k:05d}"

# Synthetic names: village names from water-country syllables (浜 creek, 荡 shallow lake,
# 圩 polder, 泾 channel…), people from common local surnames.
_VILLAGE_A = [("Dong", "东"), ("Xi", "西"), ("Nan", "南"), ("Bei", "北"), ("Xin", "新"), ("Da", "大"),
              ("Xiao", "小"), ("Shang", "上"), ("Qian", "前"), ("Hou", "后"), ("Jin", "金"), ("Yu", "渔"),
              ("Hong", "红"), ("Qing", "青"), ("Chang", "长"), ("Wang", "王"), ("Shen", "沈"),
              ("Lian", "联"), ("Sheng", "胜"), ("Hua", "华"), ("Fu", "富"), ("Feng", "丰"), ("Tai", "太"),
              ("Ma", "马"), ("Lu", "陆"), ("Heng", "横"), ("Shuang", "双"), ("Bai", "白")]
_VILLAGE_B = [("qiao", "桥"), ("bang", "浜"), ("dang", "荡"), ("wei", "圩"), ("jing", "泾"), ("tang", "塘"),
              ("gang", "港"), ("yang", "漾"), ("wan", "湾"), ("dun", "墩"), ("zhuang", "庄"), ("jia", "家"),
              ("xing", "星"), ("he", "河")]
_SURNAMES = [("Shen", "沈"), ("Wang", "王"), ("Zhu", "朱"), ("Xu", "徐"), ("Lu", "陆"), ("Gu", "顾"),
             ("Qian", "钱"), ("Zhang", "张"), ("Li", "李"), ("Chen", "陈"), ("Yao", "姚"), ("Zhou", "周"),
             ("Wu", "吴"), ("Jin", "金"), ("Sun", "孙"), ("Fei", "费"), ("Cao", "曹"), ("Yu", "俞"),
             ("Mo", "莫"), ("Tang", "唐")]
_ELDER_NAMES = [("Guiying", "桂英"), ("Xiuying", "秀英"), ("Amei", "阿妹"), ("Jianguo", "建国"),
                ("Genfa", "根发"), ("Ahua", "阿华"), ("Fugen", "福根"), ("Yulan", "玉兰"), ("Meifang", "美芳"),
                ("Genbao", "根宝"), ("Jinfa", "金发"), ("Shuzhen", "淑珍"), ("Guifang", "桂芳"),
                ("Asheng", "阿生"), ("Xiaomei", "小妹"), ("Huiying", "惠英"), ("Rongfa", "荣发"),
                ("Abao", "阿宝"), ("Caidi", "彩娣"), ("Miaogen", "妙根")]
_YOUNG_NAMES = [("Wei", "伟"), ("Jun", "军"), ("Lei", "磊"), ("Ting", "婷"), ("Jie", "杰"), ("Yan", "燕"),
                ("Hao", "浩"), ("Min", "敏"), ("Qiang", "强"), ("Li", "丽"), ("Fang", "芳"), ("Jing", "静"),
                ("Bin", "斌"), ("Hui", "慧")]
# Wearables of the county (simulators.profiles): most spot-sample vitals, at one of these
# intervals; the rest are continuous (clinical-grade bands). Drawn from an rng of their own.
SPOT_SHARE = 0.85
SPOT_INTERVALS_S = (300.0, 600.0, 600.0, 900.0, 1800.0)
# fmt: on


def generate_registry(
    persons: int = 200,
    *,
    seed: int = DEFAULT_SEED,
    geojson_path: Path = DEFAULT_GEOJSON,
    villages: int = 100,
) -> dict[str, Any]:
    geo = load_geography(geojson_path)
    rng = np.random.default_rng(seed)
    towns = {t.key: t for t in geo.towns}
    partners = [
        {
            "partner_id": n.partner_id,
            "name": f"{n.role.split(' (')[0]} ({n.name})",
            "adcode": n.adcode,
            # Who an unanswered water alert escalates to (the partner's environment duty desk).
            "duty_contact": f"{n.name} environment duty officer",
            # Their desk phone (simulated numbers): texted and rung when an alert waits too long.
            "duty_phone": f"+86{n.adcode}{k:04d}",
            "ack_timeout_s": 600,
        }
        for k, n in enumerate((n for n in geo.neighbours if n.partner_id), 1)
    ]

    facilities: list[dict[str, Any]] = []

    def facility(
        fid: str,
        kind: str,
        name: str,
        lat: float,
        lon: float,
        *,
        village: str | None = None,
        town: str | None = None,
    ) -> dict[str, Any]:
        # A town's station or patrol base belongs to the town it serves, wherever it stands.
        town = town or geo.towns[int(geo.town_index(lat, lon)[0])].name
        item = {
            "facility_id": fid,
            "kind": kind,
            "name": name,
            "town": town,
            "lat": round(lat, 6),
            "lon": round(lon, 6),
        }
        if village:
            item["village"] = village
        facilities.append(item)
        return item

    seat = towns["weitang"]
    facility(
        "EC-JIASHAN",
        "emergency_centre",
        "Jiashan County Emergency Medical Centre (嘉善县急救中心)",
        *_near(geo, rng, 30.8405, 120.9255, 100),
    )
    for t in geo.towns:
        facility(
            f"ST-{t.key.upper()}",
            "ambulance_station",
            f"{t.name} ambulance station",
            *_near(geo, rng, t.lat, t.lon, 300),
            town=t.name,
        )
    facility(
        "HOSP-FIRST",
        "hospital",
        "Jiashan First People's Hospital (嘉善县第一人民医院)",
        *_near(geo, rng, seat.lat - 0.004, seat.lon - 0.006, 100),
    )
    facility(
        "HOSP-TCM",
        "hospital",
        "Jiashan Hospital of Traditional Chinese Medicine (嘉善县中医医院)",
        *_near(geo, rng, towns["luoxing"].lat, towns["luoxing"].lon + 0.004, 100),
    )
    for key in HEALTH_CENTRE_TOWNS:
        t = towns[key]
        facility(
            f"HC-{key.upper()}",
            "hospital",
            f"{t.name} health centre ({t.name_zh}卫生院)",
            *_near(geo, rng, t.lat, t.lon, 300),
            town=t.name,
        )
    for t in geo.towns:
        # A river patrol needs a landing: its base is on the river nearest the town.
        lat, lon = _nearest_river_point(geo, t.lat, t.lon)
        facility(
            f"PB-{t.key.upper()}",
            "patrol_base",
            f"{t.name} river patrol base",
            lat,
            lon,
            town=t.name,
        )
    # Their own random stream, so adding the fire service moves no village, home or station.
    fire_rng = np.random.default_rng(seed + 119)
    for key in FIRE_STATIONS:
        t = towns[key]
        facility(
            f"FS-{key.upper()}",
            "fire_station",
            f"{t.name} fire-and-rescue station ({t.name_zh.removesuffix('镇').removesuffix('街道')}消防救援站)",
            *_near(geo, fire_rng, t.lat, t.lon, 400),
            town=t.name,
        )
    facility(
        "GAS-JIASHAN",
        "gas_company",
        "Jiashan gas company (嘉善县燃气公司), emergency line",
        *_near(geo, fire_rng, seat.lat + 0.004, seat.lon + 0.004, 100),
        town=seat.name,
    )
    village_sites = _villages(geo, rng, villages)
    for k, (name, zh, lat, lon) in enumerate(village_sites, 1):
        post = facility(
            f"FAP-{k:03d}",
            "first_aid_post",
            f"{name} village first-aid post ({zh}村卫生室)",
            lat,
            lon,
            village=name,
        )
        post["duty_phone"] = post_duty_phone(k)

    units: list[dict[str, Any]] = []
    town_of = {f["facility_id"]: f["town"] for f in facilities}
    bases = [("EC-JIASHAN", "County centre", CENTRE_AMBULANCES)]
    bases += [(f"ST-{k.upper()}", towns[k].name, n) for k, n in STATION_AMBULANCES.items()]
    for base, label, count in bases:
        for n in range(1, count + 1):
            units.append(
                {
                    "unit_id": f"AMB-{len(units) + 1:02d}",
                    "kind": "ambulance",
                    "name": f"{label} {n}",
                    "base_facility_id": base,
                    "town": town_of[base],
                }
            )
    for k, t in enumerate(geo.towns, 1):
        units.append(
            {
                "unit_id": f"RP-{k:02d}",
                "kind": "river_patrol",
                "name": f"{t.name} river patrol",
                "base_facility_id": f"PB-{t.key.upper()}",
                "town": t.name,
            }
        )

    for key, count in FIRE_STATIONS.items():
        for n in range(1, count + 1):
            units.append(
                {
                    "unit_id": f"FIRE-{sum(u['kind'] == 'fire' for u in units) + 1:02d}",
                    "kind": "fire",
                    "name": f"{towns[key].name} fire engine {n}",
                    "base_facility_id": f"FS-{key.upper()}",
                    "town": towns[key].name,
                }
            )

    stations = _stations(geo, rng, village_sites)
    people, users = _persons(geo, rng, persons, village_sites)
    for prefix, role, count in STAFF:
        users += [
            {"username": f"{prefix}{k}", "display_name": f"{role.title()} {k}", "role": role}
            for k in range(1, count + 1)
        ]
    # Each post's village doctor logs in to the post's page (the simulated doctors do).
    users += [
        {"username": doctor_username(f["facility_id"]), "display_name": f"Doctor of {f['facility_id']}", "role": "first_aid",
         "scope_id": f["facility_id"]}
        for f in facilities if f["kind"] == "first_aid_post"
    ]
    return {
        # The simulated county: `watchpost registry load` keeps a real county's registry
        # from being loaded beside it unless the operator asks (docs/registry.md).
        "demo": True,
        "partners": partners,
        "facilities": facilities,
        "stations": stations,
        "persons": people,
        "units": units,
        "users": users,
    }


def _near(
    geo: JiashanGeography, rng: np.random.Generator, lat: float, lon: float, spread_m: float
) -> tuple[float, float]:
    """A point within ~spread_m of (lat, lon), inside the county."""
    x0, y0 = geo.projection.to_xy(lat, lon)
    for _ in range(100):
        x, y = x0 + rng.normal(0, spread_m / 2), y0 + rng.normal(0, spread_m / 2)
        if geo.contains_xy(x, y)[0]:
            lat2, lon2 = geo.projection.to_latlon(x, y)
            return float(lat2), float(lon2)
    raise ValueError(f"no point inside the county near ({lat}, {lon})")


def _nearest_river_point(geo: JiashanGeography, lat: float, lon: float) -> tuple[float, float]:
    best = min(
        (
            (float(d.min()), r, int(d.argmin()))
            for r in geo.rivers
            for d in [
                np.where(geo.contains(r.lat, r.lon), haversine_m(lat, lon, r.lat, r.lon), np.inf)
            ]
        ),
        key=lambda p: p[0],
    )
    _, river, i = best
    return float(river.lat[i]), float(river.lon[i])


def _villages(
    geo: JiashanGeography, rng: np.random.Generator, count: int
) -> list[tuple[str, str, float, float]]:
    """`count` village centres spread over the county, clear of the town cores and at least
    ~1.2 km apart (Poisson-disc by rejection), with unique names."""
    lo = np.vstack(geo.rings_xy).min(axis=0)
    hi = np.vstack(geo.rings_xy).max(axis=0)
    placed: list[np.ndarray] = []
    min_gap = 1200.0
    while len(placed) < count:
        p = rng.uniform(lo, hi)
        if not geo.contains_xy(p[0], p[1])[0]:
            continue
        if np.min(np.hypot(*(geo.towns_xy - p).T) - [t.street_radius_m for t in geo.towns]) < 400.0:
            continue
        if placed and np.min(np.hypot(*(np.array(placed) - p).T)) < min_gap:
            min_gap *= 0.999  # never stall on a crowded map
            continue
        placed.append(p)
    names: set[str] = set()
    out = []
    for p in placed:
        while True:
            (a, a_zh), (b, b_zh) = (
                _VILLAGE_A[rng.integers(len(_VILLAGE_A))],
                _VILLAGE_B[rng.integers(len(_VILLAGE_B))],
            )
            if a + b not in names:
                break
        names.add(a + b)
        lat, lon = geo.projection.to_latlon(p[0], p[1])
        out.append((a + b, a_zh + b_zh, round(float(lat), 6), round(float(lon), 6)))
    return out


def _stations(
    geo: JiashanGeography, rng: np.random.Generator, villages: list[tuple[str, str, float, float]]
) -> list[dict[str, Any]]:
    """Cross-border stations where a river leaves for (or arrives from) a partner district,
    then the rest spread along the rivers by farthest-point sampling."""
    chosen: list[tuple[int, int, str | None]] = []  # (river, vertex, partner_id)
    per_partner: dict[str, int] = {}
    for r, river in enumerate(geo.rivers):
        inside = geo.contains(river.lat, river.lon)
        for edge in np.flatnonzero(inside[1:] != inside[:-1]):
            # ~500 m (10 vertices) inside the county from where the river crosses the border
            i = int(edge + 1 + 10 if inside[edge + 1] else edge - 10)
            if not (0 <= i < len(inside)) or not inside[i]:
                continue
            neighbour, dist = geo.nearest_neighbour(float(river.lat[edge]), float(river.lon[edge]))
            pid = neighbour.partner_id
            # One station per (partner, river): a meander crossing the border twice is one river.
            named = (river.name, pid) in CROSS_BORDER_SECTIONS if pid else False
            if (
                pid
                and dist < 1500.0
                and (named or per_partner.get(pid, 0) < CROSS_BORDER_PER_PARTNER)
                and not any(c[0] == r and c[2] == pid for c in chosen)
            ):
                per_partner[pid] = per_partner.get(pid, 0) + 1
                chosen.append((r, int(i), pid))
    candidates = [
        (r, i)
        for r, river in enumerate(geo.rivers)
        for i in np.flatnonzero(geo.contains(river.lat, river.lon))[5:-5:4]
    ]
    cand_xy = np.array(
        [geo.projection.to_xy(geo.rivers[r].lat[i], geo.rivers[r].lon[i]) for r, i in candidates]
    )
    taken = np.array(
        [geo.projection.to_xy(geo.rivers[r].lat[i], geo.rivers[r].lon[i]) for r, i, _ in chosen]
    )
    nearest = np.min(
        np.hypot(cand_xy[:, None, 0] - taken[None, :, 0], cand_xy[:, None, 1] - taken[None, :, 1]),
        axis=1,
    )
    while len(chosen) < WATER_STATIONS:
        k = int(np.argmax(nearest + rng.uniform(0, 50.0, len(nearest))))
        chosen.append((*candidates[k], None))
        nearest = np.minimum(nearest, np.hypot(*(cand_xy - cand_xy[k]).T))
    v_lat = np.array([v[2] for v in villages])
    v_lon = np.array([v[3] for v in villages])
    stations = []
    for n, (r, i, pid) in enumerate(chosen, 1):
        river = geo.rivers[r]
        lat, lon = float(river.lat[i]), float(river.lon[i])
        town = geo.towns[int(geo.town_index(lat, lon)[0])]
        if pid:
            section = CROSS_BORDER_SECTIONS.get((river.name, pid))
            place = f"{section} ({pid.title()} border)" if section else f"{pid.title()} border"
        else:
            place = villages[int(np.argmin(haversine_m(lat, lon, v_lat, v_lon)))][0]
        item: dict[str, Any] = {
            "station_id": f"WS-{n:03d}",
            "name": f"{river.name} at {place}",
            "lat": round(lat, 6),
            "lon": round(lon, 6),
            "town": town.name,
            "water_body": "river",
            # The Taipu river feeds Shanghai's Jinze drinking-water intake: held to class II.
            "target_class": 2 if river.name.startswith("Taipu") else 3,
        }
        item["category"] = "cross_border" if pid else "county"
        if pid or n % 2:
            # An automatic station (every cross-border section, half the county's sites) has
            # an HJ 212 data logger; the rest are probe buoys publishing JSON over MQTT. Its PW
            # is not written here: `registry load` derives it from the deployment's secret.
            item["hj212_mn"] = f"33042100WS{n:04d}0000000001"
        if pid:
            item["partner_id"] = pid
        stations.append(item)
    return stations


def _persons(
    geo: JiashanGeography,
    rng: np.random.Generator,
    count: int,
    villages: list[tuple[str, str, float, float]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    persons, family = [], []
    wear = np.random.default_rng([int(rng.integers(1 << 31)), 15])  # the wearables' own draws
    for k in range(1, count + 1):
        village, village_zh, vlat, vlon = villages[int(rng.integers(len(villages)))]
        lat, lon = _near(geo, rng, vlat, vlon, 500.0)
        surname, surname_zh = _SURNAMES[int(rng.integers(len(_SURNAMES)))]
        pid = f"P-{k:04d}"
        sensors = [kind for kind, odds in HOME_SENSOR_ODDS if rng.random() < odds]
        given, given_zh = _ELDER_NAMES[int(rng.integers(len(_ELDER_NAMES)))]
        town = geo.towns[int(geo.town_index(lat, lon)[0])]
        person: dict[str, Any] = {
            "person_id": pid,
            "name": surname_zh + given_zh,
            "name_pinyin": f"{surname} {given}",
            "lat": round(lat, 6),
            "lon": round(lon, 6),
            "address": f"嘉善县{town.name_zh}{village_zh}村{int(rng.integers(1, 120))}号",
            "town": town.name,
            "village": village,
            "home_sensors": [{"sensor_id": f"{kind}-1", "kind": kind} for kind in sensors],
        }
        odds = rng.random()
        thresholds: dict[str, Any] = {}
        if odds < 0.1:
            # Chronic lung disease: lives at 88-92 %, alarmed below 88, an emergency below 83.
            thresholds = {"spo2_low_pct": 88.0, "spo2_emergency_low_pct": 83.0}
        elif odds < 0.15:
            thresholds = {"hr_low_bpm": 35.0, "hr_emergency_low_bpm": 35.0}  # on beta-blockers
        if wear.random() < SPOT_SHARE:
            thresholds["vitals_sample_interval_s"] = SPOT_INTERVALS_S[int(wear.integers(len(SPOT_INTERVALS_S)))]
        if thresholds:
            person["thresholds"] = thresholds
        persons.append(person)
        for position in range(1, int(rng.integers(1, 3)) + 1):
            family.append(
                {
                    "username": f"fam-{k:04d}-{position}",
                    "display_name": surname_zh + _YOUNG_NAMES[int(rng.integers(len(_YOUNG_NAMES)))][1],
                    "role": "family",
                    # A made-up mainland mobile number per contact (the demo's simulated phones answer them all).
                    "phone": f"+86139{k:04d}{position:04d}",
                    "persons": [{"person_id": pid, "position": position, "ack_timeout_s": 120,
                                 "channels": ["app", "sms", "voice"], "voice_after_s": 60}],
                }
            )
    return persons, family


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="YAML file to write")
    parser.add_argument("--persons", type=int, default=200)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--geojson", type=Path, default=DEFAULT_GEOJSON, help="region boundaries (simulators/data)"
    )
    args = parser.parse_args(argv)
    doc = generate_registry(args.persons, seed=args.seed, geojson_path=args.geojson)
    header = f"# Simulated Jiashan registry: generated by simulators/jiashan_registry.py (seed {args.seed}); synthetic names.\n"
    args.out.write_text(
        header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
