"""The simulated county: its road network (size, connectivity, rivers crossed only at
bridges, real detours) and its registry (valid, inside the county, as DOMAIN.md says)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy.spatial import cKDTree

from dispatch.eta import eta_from, eta_to
from dispatch.geometry import haversine_m, segments_cross
from dispatch.roads import ROAD_CLASSES
from simulators.jiashan_geo import region_layers, rivers_geojson, towns_geojson
from simulators.jiashan_registry import generate_registry, main
from simulators.jiashan_roads import build_jiashan_network
from watchpost.registry import read_document, validate


@pytest.fixture(scope="session")
def registry(geojson_path):
    return generate_registry(geojson_path=geojson_path)


def points_of(doc):
    for section in ("facilities", "stations", "persons"):
        for item in doc[section]:
            yield section, item


# -- the road network ---------------------------------------------------------------------


def test_the_synthetic_county_has_at_least_ten_thousand_road_nodes_all_inside_it(jiashan):
    graph = jiashan.graph
    assert graph.n_nodes >= 10_000
    assert jiashan.geography.contains(graph.lat, graph.lon).all()
    classes = Counter(ROAD_CLASSES[c] for c in graph.road_class)
    assert set(classes) == set(ROAD_CLASSES) - {
        "service"
    }  # village grid, streets, main roads, expressways


def test_every_facility_and_unit_base_snaps_to_a_road_from_which_all_others_are_reachable(
    jiashan, registry
):
    graph = jiashan.graph
    lat = [f["lat"] for f in registry["facilities"]]
    lon = [f["lon"] for f in registry["facilities"]]
    nodes, dist = graph.snap_many(lat, lon)
    assert dist.max() < 300.0
    bases = {u["base_facility_id"] for u in registry["units"]}
    assert bases <= {f["facility_id"] for f in registry["facilities"]}
    # To and from one facility reaches every other: they are all in one strongly connected part.
    assert np.isfinite(eta_to(graph, int(nodes[0])).seconds[nodes]).all()
    assert np.isfinite(eta_from(graph, int(nodes[0]))[nodes]).all()


def test_a_river_without_a_bridge_nearby_forces_a_long_detour(jiashan):
    graph, geo = jiashan.graph, jiashan.geography
    top_speed = graph.max_speed_kmh / 3.6
    worst = (0.0, 0.0, 0.0)
    for river in geo.rivers:
        xy = np.column_stack(geo.projection.to_xy(river.lat, river.lon))
        inside = geo.contains(river.lat, river.lon)
        for i in range(20, len(xy) - 20, 40):  # every ~2 km along the river
            if not inside[i]:
                continue
            tangent = xy[i + 1] - xy[i - 1]
            normal = np.array([-tangent[1], tangent[0]]) / np.hypot(*tangent)
            banks = np.array([xy[i] + 120 * normal, xy[i] - 120 * normal])
            (a, b), _ = graph.snap_many(*geo.projection.to_latlon(banks[:, 0], banks[:, 1]))
            straight = float(haversine_m(graph.lat[a], graph.lon[a], graph.lat[b], graph.lon[b]))
            if 1.0 < straight < 300.0:
                road = float(eta_to(graph, int(b)).seconds[a])
                worst = max(worst, (road / (straight / top_speed), road, straight))
    ratio, road_s, straight_m = worst
    assert road_s > 300.0 and ratio > 30, (
        f"best detour found: {road_s:.0f} s by road for {straight_m:.0f} m"
    )


def test_roads_cross_rivers_only_on_bridges(jiashan):
    graph, geo = jiashan.graph, jiashan.geography
    x, y = geo.projection.to_xy(graph.lat, graph.lon)
    a = np.column_stack([x[graph.edge_from], y[graph.edge_from]])
    b = np.column_stack([x[graph.edge_to], y[graph.edge_to]])
    tree = cKDTree((a + b) / 2)
    reach = float(np.hypot(*(b - a).T).max()) / 2 + 30.0
    crossing = np.zeros(graph.n_edges, dtype=bool)
    for river in geo.rivers:
        r = np.column_stack(geo.projection.to_xy(river.lat, river.lon))
        for k, edges in enumerate(tree.query_ball_point((r[:-1] + r[1:]) / 2, reach)):
            e = np.asarray(edges, dtype=np.int64)
            hit = segments_cross(
                a[e, 0], a[e, 1], b[e, 0], b[e, 1], r[k, 0], r[k, 1], r[k + 1, 0], r[k + 1, 1]
            )
            crossing[e[hit]] = True
    assert crossing.any()
    assert np.array_equal(crossing, jiashan.is_bridge)
    main_road = np.isin(
        graph.road_class, [ROAD_CLASSES.index(c) for c in ("motorway", "trunk", "primary")]
    )
    assert jiashan.is_bridge[main_road].any() and not jiashan.is_bridge.all()


def test_the_network_is_the_same_for_the_same_seed_and_differs_for_another(jiashan, geojson_path):
    again = build_jiashan_network(geojson_path)
    np.testing.assert_array_equal(again.graph.lat, jiashan.graph.lat)
    np.testing.assert_array_equal(again.graph.edge_to, jiashan.graph.edge_to)
    other = build_jiashan_network(geojson_path, seed=7)
    assert other.graph.n_nodes != jiashan.graph.n_nodes or not np.array_equal(
        other.graph.lat, jiashan.graph.lat
    )


def test_the_map_layers_are_geojson_inside_the_county(jiashan):
    geo = jiashan.geography
    rivers = rivers_geojson(geo)
    assert len(rivers["features"]) == len(geo.rivers)
    for feature in rivers["features"]:
        coords = np.array([p for line in feature["geometry"]["coordinates"] for p in line])
        assert geo.contains(coords[:, 1], coords[:, 0]).all()
    towns = towns_geojson(geo)
    kinds = Counter((f["geometry"]["type"], f["properties"]["feature"]) for f in towns["features"])
    assert kinds == {("Point", "centre"): 9, ("MultiPolygon", "boundary"): 9}
    for f in towns["features"]:
        if f["geometry"]["type"] == "Point":
            lon, lat = f["geometry"]["coordinates"]
            assert geo.contains(lat, lon).all()


def test_the_region_layers_are_the_region_file_the_towns_and_the_rivers(geojson_path):
    layers = region_layers(geojson_path)
    assert set(layers) == {"boundary", "towns", "rivers"}
    boundary = layers["boundary"]["features"]
    assert len(boundary) > 1  # the county and its neighbours
    assert [f["properties"]["adcode"] for f in boundary if f["properties"].get("home")] == [330421]
    assert all(layer["type"] == "FeatureCollection" for layer in layers.values())


# -- the registry -------------------------------------------------------------------------


def test_the_generated_registry_is_valid(registry):
    assert validate(registry) == []


def test_every_point_of_the_registry_is_inside_the_county(jiashan, registry):
    items = list(points_of(registry))
    inside = jiashan.geography.contains([i["lat"] for _, i in items], [i["lon"] for _, i in items])
    assert [
        f"{s} {i.get('facility_id') or i.get('station_id') or i.get('person_id')}"
        for (s, i), ok in zip(items, inside, strict=True)
        if not ok
    ] == []


def test_the_registry_has_the_county_emergency_system_of_domain_md(registry):
    facilities = Counter(f["kind"] for f in registry["facilities"])
    assert facilities == {
        "emergency_centre": 1,
        "ambulance_station": 9,
        "patrol_base": 9,
        "hospital": 5,
        "first_aid_post": 100,
        "fire_station": 4,
        "gas_company": 1,
    }
    units = Counter(u["kind"] for u in registry["units"])
    assert 20 <= units["ambulance"] <= 24 and units["river_patrol"] == 9 and units["fire"] == 5
    assert "西塘消防救援站" in next(f["name"] for f in registry["facilities"] if f["facility_id"] == "FS-XITANG")
    per_base = Counter(u["base_facility_id"] for u in registry["units"] if u["kind"] == "ambulance")
    assert per_base.most_common(1)[0][0] == "EC-JIASHAN"
    assert len(registry["stations"]) == 30


def test_cross_border_stations_belong_to_the_real_partner_districts(registry):
    partners = {p["partner_id"]: p["adcode"] for p in registry["partners"]}
    assert partners == {"qingpu": 310118, "jinshan": 310116, "wujiang": 320509}
    border = Counter(s["partner_id"] for s in registry["stations"] if s.get("partner_id"))
    assert set(border) == set(partners)
    assert any(
        s["name"].startswith("Taipu River") and s.get("partner_id") == "qingpu"
        for s in registry["stations"]
    )


def test_every_real_cross_border_section_has_its_station_on_its_river_at_its_partners_border(registry, geojson_path):
    from simulators.jiashan_geo import load_geography
    from simulators.jiashan_registry import CROSS_BORDER_SECTIONS

    geo = load_geography(geojson_path)
    for (river, partner), section in CROSS_BORDER_SECTIONS.items():
        [station] = [s for s in registry["stations"] if section in s["name"]]
        assert station["name"].startswith(river) and station["partner_id"] == partner
        assert station["category"] == "cross_border"
        neighbour, dist = geo.nearest_neighbour(station["lat"], station["lon"])
        assert neighbour.partner_id == partner and dist < 1500.0  # by the partner's border
    # 丁栅港, 坟头港 and 枫泾塘 among them, each leaving for Shanghai
    assert {r for r, _ in CROSS_BORDER_SECTIONS} >= {"Dingzha Gang", "Fentou Gang", "Fengjing Tang"}


def test_each_person_has_home_sensors_and_one_or_two_family_members_in_order(geojson_path):
    doc = generate_registry(37, seed=5, geojson_path=geojson_path)
    assert len(doc["persons"]) == 37
    links: dict[str, list[int]] = {}
    for user in doc["users"]:
        assert "password" not in user and "password_hash" not in user
        for link in user.get("persons", []):
            assert user["role"] == "family"
            links.setdefault(link["person_id"], []).append(link["position"])
    for person in doc["persons"]:
        kinds = [s["kind"] for s in person["home_sensors"]]
        assert "motion" in kinds and set(kinds) <= {
            "motion",
            "door",
            "bed",
            "smoke",
            "gas",
            "water_leak",
        }
        assert sorted(links[person["person_id"]]) in ([1], [1, 2])
    assert Counter(u["role"] for u in doc["users"] if u["role"] != "family") == {
        "operator": 4,
        "dispatcher": 3,
        "admin": 1,
        "first_aid": sum(1 for f in doc["facilities"] if f["kind"] == "first_aid_post"),
    }
    posts = {f["facility_id"]: f for f in doc["facilities"] if f["kind"] == "first_aid_post"}
    doctors = [u for u in doc["users"] if u["role"] == "first_aid"]
    assert sorted(u["scope_id"] for u in doctors) == sorted(posts)  # one village doctor per post
    assert all(u["username"] == f"doc-{u['scope_id']}" and posts[u["scope_id"]]["duty_phone"].startswith("+86573")
               for u in doctors)
    assert validate(doc) == []


def test_the_registry_is_the_same_for_the_same_seed(geojson_path):
    assert generate_registry(20, seed=1, geojson_path=geojson_path) == generate_registry(
        20, seed=1, geojson_path=geojson_path
    )
    assert generate_registry(20, seed=1, geojson_path=geojson_path) != generate_registry(
        20, seed=2, geojson_path=geojson_path
    )


def test_main_writes_a_yaml_file_the_registry_loader_reads(tmp_path, geojson_path):
    out = tmp_path / "jiashan.yaml"
    main(["--out", str(out), "--persons", "3", "--geojson", str(geojson_path)])
    doc = read_document(out)
    assert validate(doc) == [] and len(doc["persons"]) == 3
