"""protocols/geo: datum conversions, the demo grids file (a gap-free, overlap-free tiling of
the org tree), the spatial index, boundary hysteresis under GPS noise, and track helpers."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.geo import (
    Area,
    Datum,
    GeoJSONError,
    GridIndex,
    GridTracker,
    HysteresisConfig,
    LatLon,
    Presence,
    TrackPoint,
    TransitionKind,
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    haversine_m,
    load_areas,
    out_of_china,
    parse_datum,
    path_length_m,
    simplify,
    summarize,
    time_outside_s,
    to_wgs84,
    track_feature,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from protocols.geo.shapes import METRES_PER_DEGREE, project_m, segment_distance

CONFIG = Path(__file__).resolve().parents[2] / "config"
GRIDS: dict[str, Any] = orjson.loads((CONFIG / "grids.geojson").read_bytes())
ORG: list[dict[str, str]] = orjson.loads((CONFIG / "org_tree.json").read_bytes())["nodes"]
AREAS = {a.path: a for a in load_areas(GRIDS)}
INDEX = GridIndex.from_geojson(GRIDS)
DISTRICT = AREAS["d01"]
ORIGIN = LatLon(30.63, 114.40)  # in the middle of the district

# --- datums ------------------------------------------------------------------------------

# Reference outputs published with wandergis/coordtransform for the input (39.915, 116.404).
REF_IN = (39.915, 116.404)


def close(a: tuple[float, float], b: tuple[float, float], tol: float) -> bool:
    return abs(a[0] - b[0]) <= tol and abs(a[1] - b[1]) <= tol


def test_forward_transforms_match_published_reference_values() -> None:
    assert close(wgs84_to_gcj02(*REF_IN), (39.91640428150164, 116.41024449916938), 1e-12)
    assert close(gcj02_to_bd09(*REF_IN), (39.92133699351021, 116.41036949371029), 1e-12)


def test_inverse_transforms_agree_with_the_published_approximations() -> None:
    # The published inverses are one-step approximations (errors up to ~1e-6°); ours iterate.
    assert close(bd09_to_gcj02(*REF_IN), (39.90865673957631, 116.39762729119315), 1e-6)
    assert close(gcj02_to_wgs84(*REF_IN), (39.91359571849836, 116.39775550083061), 1e-6)
    # Beijing railway station as published in GCJ-02 and BD-09 (5 decimals).
    assert close(gcj02_to_bd09(39.90245, 116.42703), (39.90851, 116.43351), 1e-5)


def test_gcj02_offset_in_wuhan_is_a_few_hundred_metres() -> None:
    here = ORIGIN
    shifted = LatLon(*wgs84_to_gcj02(*here))
    assert 100 < haversine_m(here, shifted) < 1000


@pytest.mark.parametrize(
    "point", [(51.5007, -0.1246), (40.6892, -74.0445), (-33.8568, 151.2153), (55.7539, 37.6208)]
)
def test_gcj02_is_the_identity_outside_china(point: tuple[float, float]) -> None:
    assert out_of_china(*point)
    assert wgs84_to_gcj02(*point) == point
    assert gcj02_to_wgs84(*point) == point
    assert to_wgs84(*point, Datum.GCJ02) == point
    assert close(bd09_to_wgs84(*wgs84_to_bd09(*point)), point, 1e-9)


def test_parse_datum_accepts_common_spellings() -> None:
    assert parse_datum("WGS-84") is Datum.WGS84
    assert parse_datum(" gcj_02 ") is Datum.GCJ02
    assert parse_datum("BD09") is Datum.BD09
    with pytest.raises(ValueError, match="unknown datum"):
        parse_datum("nad83")


# Away from the edges of the "inside China" box, where the standard transform is
# discontinuous and no inverse can be exact.
CHINA_POINTS = st.tuples(
    st.floats(min_value=18.0, max_value=53.5), st.floats(min_value=73.5, max_value=134.5)
)


@given(CHINA_POINTS)
def test_round_trips_inside_china(p: tuple[float, float]) -> None:
    assert close(gcj02_to_wgs84(*wgs84_to_gcj02(*p)), p, 1e-8)
    assert close(bd09_to_gcj02(*gcj02_to_bd09(*p)), p, 1e-8)
    assert close(bd09_to_wgs84(*wgs84_to_bd09(*p)), p, 1e-8)
    for datum in Datum:
        assert close(to_wgs84(*from_wgs84(*p, datum), datum), p, 1e-8)


@given(CHINA_POINTS)
def test_inverse_then_forward_is_exact_inside_china(p: tuple[float, float]) -> None:
    assert close(wgs84_to_gcj02(*gcj02_to_wgs84(*p)), p, 1e-8)
    assert close(gcj02_to_bd09(*bd09_to_gcj02(*p)), p, 1e-8)


# --- the demo grids file ------------------------------------------------------------------


def test_one_polygon_per_org_node_with_its_name_and_level() -> None:
    assert [f["properties"]["path"] for f in GRIDS["features"]] == [n["path"] for n in ORG]
    for node in ORG:
        area = AREAS[node["path"]]
        assert (area.name, area.level) == (node["name"], node["level"])
        assert len(area.polygons) == 1


def test_polygons_are_rfc7946_and_lie_in_qingshan() -> None:
    for area in AREAS.values():
        ring = area.polygons[0].exterior
        assert ring[0] == ring[-1]
        ref = ORIGIN
        pts = [project_m(LatLon(lat, lon), ref) for lon, lat in ring]
        signed = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(pts))
        assert signed > 0  # exterior rings are counter-clockwise
        box = area.bbox
        assert 30.59 < box.min_lat < box.max_lat < 30.67
        assert 114.35 < box.min_lon < box.max_lon < 114.45
    assert 5e5 < min(a.area_m2() for a in AREAS.values() if a.level == "grid") < 3e6


def children(path: str) -> list[Area]:
    depth = path.count(".") + 1
    return [a for p, a in AREAS.items() if p.startswith(path + ".") and p.count(".") == depth]


@pytest.mark.parametrize("parent", [n["path"] for n in ORG if n["level"] != "grid"])
def test_children_tile_their_parent(parent: str) -> None:
    """Equal areas plus every child vertex inside-or-on the parent: no gaps, no overlaps."""
    kids = children(parent)
    assert len(kids) in (3, 4)
    ref = ORIGIN

    def area_m2(a: Area) -> float:
        pts = [project_m(LatLon(lat, lon), ref) for lon, lat in a.polygons[0].exterior]
        return 0.5 * sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(pts))

    assert sum(area_m2(k) for k in kids) == pytest.approx(area_m2(AREAS[parent]), rel=1e-9)
    for kid in kids:
        for lon, lat in kid.polygons[0].exterior:
            point = LatLon(lat, lon)
            parent_area = AREAS[parent]
            assert parent_area.contains(point) or parent_area.boundary_distance_m(point) < 0.01


def brute_force_grids(point: LatLon) -> list[str]:
    return [p for p, a in AREAS.items() if a.level == "grid" and a.contains(point)]


def test_sampled_points_fall_in_exactly_one_grid_and_its_ancestors() -> None:
    box = DISTRICT.bbox
    steps = 90
    inside = 0
    for i, j in itertools.product(range(steps + 1), repeat=2):
        point = LatLon(
            box.min_lat - 0.002 + (box.max_lat - box.min_lat + 0.004) * i / steps,
            box.min_lon - 0.002 + (box.max_lon - box.min_lon + 0.004) * j / steps,
        )
        found = brute_force_grids(point)
        assert INDEX.locate(point) == (found[0] if found else None)
        if not DISTRICT.contains(point):
            assert found == []
            continue
        inside += 1
        assert len(found) == 1, point
        grid = found[0]
        assert AREAS[grid.rsplit(".", 1)[0]].contains(point)  # community
        assert AREAS[grid.rsplit(".", 2)[0]].contains(point)  # street
    assert inside > steps * steps // 2


@given(st.floats(30.595, 30.665), st.floats(114.355, 114.445))
def test_index_agrees_with_brute_force(lat: float, lon: float) -> None:
    point = LatLon(lat, lon)
    found = brute_force_grids(point)
    assert len(found) <= 1
    assert INDEX.locate(point) == (found[0] if found else None)
    assert (INDEX.locate(point) is not None) == DISTRICT.contains(point)


def test_index_lookups() -> None:
    assert len(INDEX) == 49 and INDEX.level == "grid" and "d01.s01" in INDEX
    assert INDEX.locate(LatLon(39.9, 116.4)) is None
    grid = INDEX.locate(ORIGIN)
    assert grid is not None and INDEX.contains(grid, ORIGIN)
    assert INDEX.contains("d01", ORIGIN)
    assert INDEX.signed_distance_m(grid, ORIGIN) < 0
    assert INDEX.signed_distance_m(grid, LatLon(30.70, 114.40)) > 4000
    with pytest.raises(KeyError):
        INDEX.contains("d09", ORIGIN)
    district_index = GridIndex(AREAS.values(), level="district")
    assert district_index.locate(ORIGIN) == "d01"


def square(half_m: float = 250.0, at: LatLon = ORIGIN) -> dict[str, Any]:
    dlat = half_m / METRES_PER_DEGREE
    dlon = dlat / math.cos(math.radians(at.lat))
    la, lo = at
    ring = [[lo - dlon, la - dlat], [lo + dlon, la - dlat], [lo + dlon, la + dlat]]
    ring += [[lo - dlon, la + dlat], [lo - dlon, la - dlat]]
    return {
        "type": "Feature",
        "properties": {"path": "x", "level": "grid"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def test_signed_distance_in_metres() -> None:
    area = load_areas({"type": "FeatureCollection", "features": [square()]})[0]
    east = LatLon(30.63, 114.40 + 260 / (METRES_PER_DEGREE * math.cos(math.radians(30.63))))
    assert area.signed_distance_m(east) == pytest.approx(10.0, abs=0.05)
    assert area.signed_distance_m(ORIGIN) == pytest.approx(-250.0, abs=0.05)
    assert segment_distance(0, 5, -1, 0, 1, 0) == 5 and segment_distance(3, 4, 0, 0, 0, 0) == 5


def test_multipolygons_and_holes() -> None:
    outer = square(300.0)["geometry"]["coordinates"][0]
    hole = list(reversed(square(100.0)["geometry"]["coordinates"][0]))
    far = square(100.0, LatLon(30.70, 114.50))["geometry"]["coordinates"]
    feature = {
        "type": "Feature",
        "properties": {"path": "m"},
        "geometry": {"type": "MultiPolygon", "coordinates": [[outer, hole], far]},
    }
    area = load_areas({"type": "FeatureCollection", "features": [feature]})[0]
    assert not area.contains(ORIGIN)  # in the hole
    assert area.contains(LatLon(30.632, 114.40))
    assert area.contains(LatLon(30.70, 114.50))
    assert area.area_m2() == pytest.approx(600**2 - 200**2 + 200**2, rel=0.01)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda fc: fc.update(type="Feature"),
        lambda fc: fc.update(features={}),
        lambda fc: fc["features"].append(fc["features"][0]),
        lambda fc: fc["features"][0].update(type="Geometry"),
        lambda fc: fc["features"][0]["properties"].pop("path"),
        lambda fc: fc["features"][0]["geometry"].update(type="LineString"),
        lambda fc: fc["features"][0].pop("geometry"),
        lambda fc: fc["features"][0]["geometry"]["coordinates"][0].pop(),
        lambda fc: fc["features"][0]["geometry"]["coordinates"][0][1].__setitem__(0, "x"),
        lambda fc: fc["features"][0]["geometry"]["coordinates"][0][1].__setitem__(0, math.nan),
        lambda fc: fc["features"][0]["geometry"]["coordinates"][0][1].__setitem__(1, 91.0),
        lambda fc: fc["features"][0]["geometry"]["coordinates"][0].__setitem__(1, [1]),
        lambda fc: fc["features"][0]["geometry"].update(coordinates=[]),
        lambda fc: fc["features"][0]["geometry"].update(type="MultiPolygon", coordinates=[]),
    ],
)
def test_bad_geojson_is_refused(mutate: Any) -> None:
    fc = {"type": "FeatureCollection", "features": [square()]}
    mutate(fc)
    with pytest.raises(GeoJSONError):
        GridIndex.from_geojson(fc)


def test_index_needs_areas_at_its_level() -> None:
    with pytest.raises(GeoJSONError):
        GridIndex(AREAS.values(), level="building")
    with pytest.raises(GeoJSONError):
        GridIndex([DISTRICT, DISTRICT])


# --- boundary hysteresis ---------------------------------------------------------------------

GRID = "d01.s02.c02.g01"
PING_S = 5.0
WALK_STEP_M = 7.0  # a brisk walk at 5 s pings


def offset(point: LatLon, north_m: float, east_m: float) -> LatLon:
    return LatLon(
        point.lat + north_m / METRES_PER_DEGREE,
        point.lon + east_m / (METRES_PER_DEGREE * math.cos(math.radians(point.lat))),
    )


def noisy_fixes(
    path: list[LatLon], sigma: float, rho: float, seed: int
) -> list[tuple[LatLon, float, float]]:
    """(fix, reported accuracy, time) for a walk along ``path``: per-axis Gaussian error with
    standard deviation ``sigma`` that wanders (AR(1) with correlation ``rho`` between pings),
    and an accuracy radius around 1.5 σ as phones report it."""
    rng = random.Random(seed)
    scale = math.sqrt(1 - rho * rho)
    en = ee = 0.0
    out = []
    for i, point in enumerate(path):
        en = rho * en + scale * rng.gauss(0, sigma)
        ee = rho * ee + scale * rng.gauss(0, sigma)
        acc = max(3.0, rng.gauss(1.5 * sigma, 0.3 * sigma))
        out.append((offset(point, en, ee), acc, 1_700_000_000.0 + i * PING_S))
    return out


def line(a: LatLon, b: LatLon, step_m: float = WALK_STEP_M) -> list[LatLon]:
    n = max(1, int(haversine_m(a, b) / step_m))
    return [
        LatLon(a.lat + (b.lat - a.lat) * k / n, a.lon + (b.lon - a.lon) * k / n) for k in range(n)
    ]


def perimeter_walk(area: Area) -> list[LatLon]:
    ring = [LatLon(lat, lon) for lon, lat in area.polygons[0].exterior]
    return [p for a, b in itertools.pairwise(ring) for p in line(a, b)]


def run(tracker: GridTracker, fixes: list[tuple[LatLon, float, float]]) -> list[Any]:
    return [t for fix in fixes if (t := tracker.observe(*fix)) is not None]


@pytest.mark.parametrize("sigma", [5.0, 8.0, 10.0])
@pytest.mark.parametrize("rho", [0.0, 0.9])
def test_walking_along_the_boundary_with_gps_noise_never_flaps(sigma: float, rho: float) -> None:
    area = AREAS[GRID]
    path = perimeter_walk(area)
    assert len(path) > 500  # about an hour of walking along all of the grid's edges
    for seed in range(4):
        fixes = noisy_fixes(path, sigma, rho, seed)
        assert run(GridTracker(area, state=Presence.INSIDE), fixes) == []
        assert run(GridTracker(area), fixes) == []


def centre(area: Area) -> LatLon:
    ring = area.polygons[0].exterior[:-1]
    point = LatLon(sum(y for _, y in ring) / len(ring), sum(x for x, _ in ring) / len(ring))
    assert area.signed_distance_m(point) < -300
    return point


@pytest.mark.parametrize("seed", range(5))
def test_leaving_and_coming_back_gives_exactly_one_event_each(seed: int) -> None:
    area = AREAS[GRID]
    home = centre(area)
    north = 0.0
    while area.signed_distance_m(offset(home, north, 0)) < 150:
        north += 10
    away = offset(home, north, 0)
    assert INDEX.locate(away) not in (None, GRID)  # out in the neighbouring grid
    path = [home] * 12 + line(home, away) + [away] * 24 + line(away, home) + [home] * 24
    tracker = GridTracker(area)
    events = run(tracker, noisy_fixes(path, 8.0, 0.9, seed))
    assert [e.kind for e in events] == [TransitionKind.LEFT, TransitionKind.ENTERED]
    left, entered = events
    assert left.path == GRID and left.since < left.time < entered.since < entered.time
    assert left.distance_m > 40 and entered.distance_m < -40
    assert tracker.state is Presence.INSIDE


def test_fixes_that_are_inaccurate_stale_or_bursty_do_not_confirm() -> None:
    area = AREAS[GRID]
    far = offset(centre(area), 5000, 0)
    tracker = GridTracker(area, state=Presence.INSIDE)
    assert run(tracker, [(far, 80.0, 100.0 + i * 5) for i in range(10)]) == []  # inaccurate
    assert tracker.observe(centre(area), 5.0, 50.0) is None
    assert run(tracker, [(far, 5.0, 50.0 - i) for i in range(10)]) == []  # not newer than seen
    assert tracker.observe(far, math.nan, 200.0) is None
    assert run(tracker, [(far, 5.0, 300.0 + i * 0.2) for i in range(5)]) == []  # a 1 s burst
    event = tracker.observe(far, 5.0, 310.0)
    assert event is not None and event.kind is TransitionKind.LEFT and event.since == 300.0


def test_first_state_is_adopted_silently_and_a_current_side_fix_resets_a_run() -> None:
    area = AREAS[GRID]
    home, far = centre(area), offset(centre(area), 5000, 0)
    tracker = GridTracker(area, config=HysteresisConfig(confirm_count=3, confirm_s=0))
    assert run(tracker, [(home, 5.0, t) for t in (1, 2, 3)]) == []
    assert tracker.state is Presence.INSIDE and tracker.path == GRID
    assert run(tracker, [(far, 5.0, 4), (far, 5.0, 5), (home, 5.0, 6), (far, 5.0, 7)]) == []
    assert tracker.state is Presence.INSIDE
    with pytest.raises(ValueError):
        HysteresisConfig(confirm_count=0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-200, 1500), st.floats(0, 60)), max_size=60))
def test_transitions_alternate_and_follow_the_state(moves: list[tuple[float, float]]) -> None:
    """Random fixes north of the grid's centre, inside and out: every transition reports the
    state change it causes, so they alternate and never repeat."""
    area = AREAS[GRID]
    home = centre(area)
    tracker = GridTracker(area, config=HysteresisConfig(confirm_count=2, confirm_s=0))
    previous = tracker.state
    for i, (north_m, acc) in enumerate(moves):
        event = tracker.observe(offset(home, north_m, 0), acc, float(i))
        if event is not None:
            expected = (
                TransitionKind.LEFT if previous is Presence.INSIDE else TransitionKind.ENTERED
            )
            assert event.kind is expected
        elif previous is not Presence.UNKNOWN:
            assert tracker.state is previous
        previous = tracker.state


def oracle(
    area: Area, config: HysteresisConfig, fixes: list[tuple[LatLon, float, float]]
) -> list[Any]:
    """The hysteresis rule written plainly, with the signed distance of every fix: vote
    outside past +margin, inside past -margin; a run of votes against the state confirms
    after confirm_count fixes spanning confirm_s; an ambiguous fix on the current side of a
    run, or a vote for the state, resets it."""
    state, run_to, count, since, last = Presence.UNKNOWN, None, 0, 0.0, -math.inf
    out = []
    for point, acc, time in fixes:
        if not 0 <= acc <= config.max_accuracy_m or time <= last:
            continue
        last = time
        distance = area.signed_distance_m(point)
        margin = max(acc, config.min_margin_m)
        vote = (Presence.OUTSIDE if distance > margin
                else Presence.INSIDE if distance < -margin else None)  # fmt: skip
        if vote is None:
            if (run_to is Presence.OUTSIDE and distance <= 0) or (
                run_to is Presence.INSIDE and distance >= 0
            ):
                run_to, count = None, 0
            continue
        if vote is state:
            run_to, count = None, 0
            continue
        if run_to is vote:
            count += 1
        else:
            run_to, count, since = vote, 1, time
        if count >= config.confirm_count and time - since >= config.confirm_s:
            if state is not Presence.UNKNOWN:
                out.append((vote, since, time))
            state, run_to, count = vote, None, 0
    return out


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-120, 120), st.floats(0, 40), st.floats(0.1, 8)), max_size=80),
    st.integers(1, 3),
)
def test_the_tracker_decides_as_the_plain_rule_does(
    moves: list[tuple[float, float, float]], confirm: int
) -> None:
    """The tracker skips the boundary distance when a fix cannot change anything; what it
    decides must still be what the plain rule (every distance computed) decides. Fixes hug
    the boundary, where the distance matters."""
    area = AREAS[GRID]
    home = centre(area)
    edge = 0.0
    while area.signed_distance_m(offset(home, edge, 0)) < 0:
        edge += 5
    config = HysteresisConfig(confirm_count=confirm, confirm_s=1.0)
    fixes, time = [], 0.0
    for north_m, acc, step in moves:
        time += step
        fixes.append((offset(home, edge + north_m, 0), acc, time))
    tracker = GridTracker(area, config=config)
    events = [(e.kind, e.since, e.time) for fix in fixes if (e := tracker.observe(*fix))]
    expected = [
        (TransitionKind.LEFT if vote is Presence.OUTSIDE else TransitionKind.ENTERED, a, b)
        for vote, a, b in oracle(area, config, fixes)
    ]
    assert events == expected


def test_a_clone_goes_on_alone() -> None:
    area = AREAS[GRID]
    home, far = centre(area), offset(centre(area), 5000, 0)
    tracker = GridTracker(area, config=HysteresisConfig(confirm_count=2, confirm_s=0))
    assert run(tracker, [(home, 5.0, 1), (home, 5.0, 2), (far, 5.0, 3)]) == []
    twin = tracker.clone()
    event = twin.observe(far, 5.0, 4)
    assert event is not None and event.kind is TransitionKind.LEFT and event.since == 3
    assert tracker.state is Presence.INSIDE and twin.state is Presence.OUTSIDE
    assert tracker.observe(far, 5.0, 4) is not None  # the original's pending run is its own
    assert twin.area is tracker.area


# --- tracks ------------------------------------------------------------------------------


def straight(n: int, step_m: float = 10.0, start: float = 0.0) -> list[TrackPoint]:
    origin = ORIGIN
    return [TrackPoint(*offset(origin, 0, i * step_m), start + i * PING_S) for i in range(n)]


def test_distances() -> None:
    a, b = LatLon(30.0, 114.0), LatLon(31.0, 114.0)
    assert haversine_m(a, b) == pytest.approx(METRES_PER_DEGREE, rel=1e-9)
    assert haversine_m(a, a) == 0 and haversine_m(a, b) == haversine_m(b, a)
    assert path_length_m(straight(11)) == pytest.approx(100.0, abs=0.01)
    assert path_length_m(straight(1)) == 0.0
    rng = random.Random(1)
    still = [offset(ORIGIN, rng.gauss(0, 3), rng.gauss(0, 3)) for _ in range(200)]
    assert path_length_m(still) > 500
    assert path_length_m(still, jitter_m=25) < 50


def test_simplify_keeps_shape_times_and_loops() -> None:
    track = straight(50)
    assert simplify(track, 1.0) == [track[0], track[-1]]
    assert simplify(track, 0) == track and simplify(track[:2], 5) == track[:2]
    origin = ORIGIN
    corners = [origin, offset(origin, 0, 200), offset(origin, 200, 200), offset(origin, 200, 0)]
    loop_points = [p for a, b in itertools.pairwise([*corners, origin]) for p in line(a, b)]
    loop_points.append(origin)
    loop = [TrackPoint(p.lat, p.lon, float(i)) for i, p in enumerate(loop_points)]
    kept = simplify(loop, 5.0)
    assert len(kept) == 5  # four corners and the return to the start
    assert {(p.lat, p.lon) for p in kept} == {(c.lat, c.lon) for c in corners}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-50, 50), st.floats(-50, 50)), min_size=0, max_size=80),
    st.floats(0.5, 40),
)
def test_simplified_track_stays_within_tolerance(steps: list[Any], tolerance: float) -> None:
    point, track = ORIGIN, []
    for i, (dn, de) in enumerate(steps):
        point = offset(point, dn, de)
        track.append(TrackPoint(point.lat, point.lon, float(i)))
    kept = simplify(track, tolerance)
    assert len(kept) == len(track) or (kept[0], kept[-1]) == (track[0], track[-1])
    indices = [track.index(p) for p in kept]
    assert indices == sorted(indices)  # a subsequence, times untouched
    if len(track) < 2:
        return
    ref = LatLon(track[0].lat, track[0].lon)
    xy = [project_m(LatLon(p.lat, p.lon), ref) for p in track]
    for lo, hi in itertools.pairwise(indices):
        for k in range(lo + 1, hi):
            assert segment_distance(*xy[k], *xy[lo], *xy[hi]) <= tolerance + 1e-6


def test_time_outside_the_grid() -> None:
    area = load_areas({"type": "FeatureCollection", "features": [square(100.0)]})[0]
    origin = ORIGIN
    out = offset(origin, 0, 500)
    track = [TrackPoint(*(out if 60 <= t < 120 else origin), float(t)) for t in range(0, 181, 5)]
    assert time_outside_s(track, area) == 60.0
    gap = [TrackPoint(*out, 0.0), TrackPoint(*out, 3600.0), TrackPoint(*origin, 3605.0)]
    assert time_outside_s(gap, area) == 3605.0
    assert time_outside_s(gap, area, max_gap_s=60) == 5.0
    summary = summarize(track, area=area)
    assert (summary.point_count, summary.duration_s, summary.time_outside_s) == (37, 180.0, 60.0)
    assert summarize([]).distance_m == 0 and summarize(track).time_outside_s is None


def test_track_feature_is_geojson_with_aligned_times() -> None:
    track = straight(100)
    feature = track_feature(track, tolerance_m=2.0, properties={"worker_id": "w1"})
    geometry, props = feature["geometry"], feature["properties"]
    assert feature["type"] == "Feature" and geometry["type"] == "LineString"
    assert geometry["coordinates"][0] == [round(track[0].lon, 6), round(track[0].lat, 6)]
    assert len(geometry["coordinates"]) == len(props["times"]) == props["simplified_count"] == 2
    assert props["times"] == [track[0].time, track[-1].time]
    assert props["point_count"] == 100 and props["worker_id"] == "w1"
    assert props["distance_m"] == pytest.approx(990.0, abs=0.1)
    assert props["duration_s"] == 495.0 and props["time_outside_s"] is None
    iso = track_feature(track[:3], times="iso")["properties"]["times"]
    assert iso[:2] == ["1970-01-01T00:00:00.000Z", "1970-01-01T00:00:05.000Z"]
    assert track_feature(track[:1])["geometry"]["type"] == "Point"
    assert track_feature([])["geometry"] is None
    orjson.dumps(feature)  # serialisable as is
    with pytest.raises(ValueError, match="sorted"):
        track_feature([track[1], track[0]])


def test_a_long_track_simplifies_quickly() -> None:
    rng = random.Random(7)
    point, track = ORIGIN, []
    for i in range(30_000):  # about 42 hours of 5 s pings
        point = offset(point, rng.gauss(0, 4), rng.gauss(0, 4))
        track.append(TrackPoint(point.lat, point.lon, i * PING_S))
    kept = simplify(track, 10.0)
    assert 2 <= len(kept) < len(track) // 2
