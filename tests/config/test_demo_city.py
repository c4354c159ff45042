from __future__ import annotations

import json
import time
from collections import Counter
from datetime import date

import pytest

from config import demo_city
from config.demo_city import (
    DAPENG_CODE,
    GEOJSON_PATH,
    REFERENCE_DATE,
    DemoSubject,
    city_boundary,
    district_shapes,
    generate_subjects,
    id_check_digit,
    in_district_shape,
    is_valid_id_number,
    load_divisions,
    point_in_city,
)
from config.privacy import mask_id_number, mask_name, mask_phone

DISTRICT_NAMES = {
    "440303": "罗湖区",
    "440304": "福田区",
    "440305": "南山区",
    "440306": "宝安区",
    "440307": "龙岗区",
    "440308": "盐田区",
    "440309": "龙华区",
    "440310": "坪山区",
    "440311": "光明区",
    DAPENG_CODE: "大鹏新区",
}

STREETS_PER_DISTRICT = {
    "440303": 10,
    "440304": 11,
    "440305": 9,
    "440306": 11,
    "440307": 11,
    "440308": 5,
    "440309": 6,
    "440310": 7,
    "440311": 6,
    DAPENG_CODE: 3,
}


@pytest.fixture(scope="module")
def subjects() -> list[DemoSubject]:
    return generate_subjects()


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


# --- divisions ------------------------------------------------------------------------------


def test_ten_districts_with_their_names_in_official_order() -> None:
    districts, _ = load_divisions()
    assert [(d.code, d.name) for d in districts] == list(DISTRICT_NAMES.items())
    assert [d.short_name for d in districts] == [
        "罗湖", "福田", "南山", "宝安", "龙岗", "盐田", "龙华", "坪山", "光明", "大鹏",
    ]  # fmt: skip


def test_street_counts_per_district() -> None:
    _, streets = load_divisions()
    assert len(streets) == 79
    assert len({s.code for s in streets}) == 79
    assert Counter(s.district_code for s in streets) == STREETS_PER_DISTRICT
    assert sum(1 for s in streets if not s.is_special_zone) == 74
    assert sorted(s.name for s in streets if s.is_special_zone) == sorted(
        [
            "福田保税区",
            "前海合作区",
            "深圳市宝安国际机场",
            "深圳盐田综合保税区",
            "深圳坪山综合保税区",
        ]
    )


def test_dapeng_streets_moved_from_longgang() -> None:
    _, streets = load_divisions()
    dapeng = [s for s in streets if s.district_code == DAPENG_CODE]
    assert [(s.code, s.name) for s in dapeng] == [
        ("440307009", "葵涌街道"),
        ("440307010", "大鹏街道"),
        ("440307011", "南澳街道"),
    ]
    longgang = {s.name for s in streets if s.district_code == "440307"}
    assert longgang.isdisjoint({"葵涌街道", "大鹏街道", "南澳街道"})
    assert {"布吉街道", "坂田街道", "龙城街道"} <= longgang


def test_the_csv_stays_the_official_division() -> None:
    lines = demo_city.DIVISIONS_CSV.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "district_code,district_name,street_code,street_name"
    assert len(lines) == 80
    assert "440307,龙岗区,440307010,大鹏街道" in lines
    assert {line.split(",")[0] for line in lines[1:]} == set(DISTRICT_NAMES) - {DAPENG_CODE}


def test_load_divisions_returns_fresh_lists() -> None:
    districts, streets = load_divisions()
    districts.clear()
    streets.clear()
    assert len(load_divisions()[0]) == 10


# --- shapes ---------------------------------------------------------------------------------


def test_geojson_has_eight_district_shapes() -> None:
    data = json.loads(GEOJSON_PATH.read_text(encoding="utf-8"))
    names = sorted(f["properties"]["name"] for f in data["features"])
    assert names == sorted(
        ["罗湖区", "福田区", "南山区", "宝安区", "龙岗区", "盐田区", "坪山区", "龙华区"]
    )
    districts, _ = load_divisions()
    assert {d.name for d in districts if not d.has_shape} == {"光明区", "大鹏新区"}
    assert set(district_shapes()) == {d.code for d in districts if d.has_shape}


def test_every_centre_is_inside_its_shape_and_the_city() -> None:
    districts, _ = load_divisions()
    for d in districts:
        assert in_district_shape(d.code, d.center_lon, d.center_lat), d.name
        assert point_in_city(d.center_lon, d.center_lat), d.name


def test_shapeless_districts_are_inside_their_hosts() -> None:
    districts, _ = load_divisions()
    by_name = {d.name: d for d in districts}
    baoan, longgang = district_shapes()["440306"], district_shapes()["440307"]
    guangming, dapeng = by_name["光明区"], by_name["大鹏新区"]
    index = demo_city._RingIndex
    assert any(index(r).contains(guangming.center_lon, guangming.center_lat) for r in baoan)
    assert any(index(r).contains(dapeng.center_lon, dapeng.center_lat) for r in longgang)


def test_city_boundary_is_lon_lat_rings() -> None:
    rings = city_boundary()
    assert len(rings) == 13
    for ring in rings:
        assert ring[0] == ring[-1]
        assert all(113.7 < lon < 114.7 and 22.3 < lat < 22.9 for lon, lat in ring)


@pytest.mark.parametrize(
    ("place", "lat", "lon"),
    [
        ("Hong Kong", 22.30, 114.17),
        ("Dongguan", 23.02, 113.75),
        ("Huizhou", 23.11, 114.42),
        ("Macau", 22.19, 113.54),
        ("Hong Kong, Sheung Shui", 22.50, 114.13),
    ],
)
def test_points_outside_the_city(place: str, lat: float, lon: float) -> None:
    assert not point_in_city(lon, lat), place


@pytest.mark.parametrize(
    ("place", "lat", "lon"),
    [
        ("Futian CBD", 22.5333, 114.0550),
        ("Shenzhen Bao'an airport", 22.6393, 113.8107),
        ("Guangming", 22.7486, 113.9360),
        ("Nan'ao, Dapeng", 22.5310, 114.4750),
        ("Buji, Longgang", 22.6030, 114.1170),
    ],
)
def test_points_inside_the_city(place: str, lat: float, lon: float) -> None:
    assert point_in_city(lon, lat), place


def test_ring_index_matches_plain_ray_casting() -> None:
    def plain(ring: list[tuple[float, float]], lon: float, lat: float) -> bool:
        inside = False
        for i in range(len(ring)):
            (x1, y1), (x2, y2) = ring[i - 1], ring[i]
            if (y1 > lat) != (y2 > lat) and lon < (x2 - x1) * (lat - y1) / (y2 - y1) + x1:
                inside = not inside
        return inside

    ring = max(city_boundary(), key=len)
    index = demo_city._RingIndex(ring)
    min_lon, max_lon = min(p[0] for p in ring), max(p[0] for p in ring)
    min_lat, max_lat = min(p[1] for p in ring), max(p[1] for p in ring)
    steps = 60
    for i in range(steps + 1):
        for j in range(steps + 1):
            lon = min_lon + (max_lon - min_lon) * i / steps + 1e-7
            lat = min_lat + (max_lat - min_lat) * j / steps + 1e-7
            assert index.contains(lon, lat) == plain(ring, lon, lat), (lon, lat)


def test_point_in_city_is_fast_enough(subjects: list[DemoSubject]) -> None:
    points = [(s.home_lon, s.home_lat) for s in subjects] * 5
    started = time.perf_counter()
    for lon, lat in points:
        point_in_city(lon, lat)
    rate = len(points) / (time.perf_counter() - started)
    assert rate > 10_000


# --- subjects -------------------------------------------------------------------------------


def test_two_thousand_deterministic_subjects(subjects: list[DemoSubject]) -> None:
    assert len(subjects) == 2000
    assert generate_subjects() == subjects
    assert generate_subjects(seed=1) != subjects
    assert generate_subjects(10, seed=7) == generate_subjects(10, seed=7)
    assert generate_subjects(0) == []
    assert len({s.key for s in subjects}) == 2000


def test_id_numbers_are_valid_and_synthetic(subjects: list[DemoSubject]) -> None:
    _, streets = load_divisions()
    official_district = {s.code: s.code[:6] for s in streets}
    assert len({s.id_number for s in subjects}) == 2000
    for s in subjects:
        n = s.id_number
        assert is_valid_id_number(n), n
        assert n.startswith("4403")
        assert n[:6] == official_district[s.street_code]
        assert n[14] == "9"
        assert int(n[16]) % 2 == (1 if s.gender == "male" else 0)
        birth = date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
        assert 18 <= _age(birth, REFERENCE_DATE) <= 70


def test_check_digit() -> None:
    # The worked example of GB 11643-1999.
    assert id_check_digit("11010519491231002") == "X"
    assert is_valid_id_number("11010519491231002X")
    assert not is_valid_id_number("110105194912310021")
    assert not is_valid_id_number("11010519491331002X")
    with pytest.raises(ValueError):
        id_check_digit("1234")


def test_phones_are_synthetic_and_unique(subjects: list[DemoSubject]) -> None:
    assert len({s.phone for s in subjects}) == 2000
    assert all(len(s.phone) == 11 and s.phone.startswith("1700") for s in subjects)
    assert all(s.phone.isdigit() for s in subjects)


def test_level_distribution(subjects: list[DemoSubject]) -> None:
    assert Counter(s.level for s in subjects) == {"strict": 300, "normal": 1200, "lenient": 500}
    first_hundred = Counter(s.level for s in subjects[:100])
    assert 5 <= first_hundred["strict"] <= 30


def test_names_are_plausible(subjects: list[DemoSubject]) -> None:
    assert all(2 <= len(s.name) <= 4 for s in subjects)
    assert all("\u4e00" <= ch <= "\u9fff" for s in subjects for ch in s.name)
    surnames = Counter(s.name[0] for s in subjects)
    assert {"王", "李", "张", "刘", "陈"} <= {name for name, _ in surnames.most_common(8)}
    assert not {s.name for s in subjects} & demo_city._FAMOUS
    genders = Counter(s.gender for s in subjects)
    assert set(genders) == {"male", "female"}
    assert 0.75 < genders["male"] / 2000 < 0.95


def test_subjects_spread_over_all_regular_streets(subjects: list[DemoSubject]) -> None:
    districts, streets = load_divisions()
    street_by_code = {s.code: s for s in streets}
    used = {s.street_code for s in subjects}
    assert used == {s.code for s in streets if not s.is_special_zone}
    per_district = Counter(street_by_code[s.street_code].district_code for s in subjects)
    assert set(per_district) == {d.code for d in districts}
    big = ["440304", "440305", "440306", "440307", "440309"]
    small = ["440303", "440308", "440310", "440311", DAPENG_CODE]
    assert min(per_district[c] for c in big) > max(per_district[c] for c in small)


def test_all_homes_inside_the_city_and_near_their_district(subjects: list[DemoSubject]) -> None:
    _, streets = load_divisions()
    district_of = {s.code: s.district_code for s in streets}
    centres = {d.code: d for d in load_divisions()[0]}
    for s in subjects:
        assert point_in_city(s.home_lon, s.home_lat), s
        code = district_of[s.street_code]
        assert in_district_shape(code, s.home_lon, s.home_lat), s
        centre = centres[code]
        assert abs(s.home_lat - centre.center_lat) < 0.05
        assert abs(s.home_lon - centre.center_lon) < 0.05


def test_subjects_are_frozen(subjects: list[DemoSubject]) -> None:
    with pytest.raises(AttributeError):
        subjects[0].name = "x"  # type: ignore[misc]


# --- masking --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("张三丰", "张*丰"),
        ("欧阳娜娜", "欧**娜"),
        ("王", "*"),
        ("", ""),
        (" 李四 ", "李*"),
        ("欧阳", "欧*"),
        ("欧阳明", "欧*明"),
        ("司马建国", "司**国"),
        ("诸葛明", "诸*明"),
        ("上官婉清", "上**清"),
        ("司徒", "司*"),
        ("司徒志强", "司**强"),
        ("买买提·艾力", "买****力"),
    ],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_masked_names_hide_all_but_two_characters(subjects: list[DemoSubject]) -> None:
    for s in subjects:
        masked = mask_name(s.name)
        assert len(masked) == len(s.name)
        assert sum(ch != "*" for ch in masked) <= 2


@pytest.mark.parametrize(
    ("id_number", "masked"),
    [
        ("440301199001011234", "4403**********1234"),
        ("44030119900101123X", "4403**********123X"),
        ("440301900101123", "4403*******1123"),
        ("12345", "*****"),
        ("", ""),
    ],
)
def test_mask_id_number(id_number: str, masked: str) -> None:
    assert mask_id_number(id_number) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("17000001234", "170****1234"),
        ("170-0000-1234", "170****1234"),
        ("170 0000 1234", "170****1234"),
        ("1234567", "*******"),
        ("", ""),
    ],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked
