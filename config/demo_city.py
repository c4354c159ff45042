"""The demo city: Shenzhen's districts and streets, its outline, and synthetic subjects.

Pure Python and deterministic, so seeding, tests and benchmarks all see the same city. The
division data and the shapes are vendored files (``config/data/README.md`` and
``web/static/vendor/README.md`` say where they come from and what the demo changes).

Synthetic subjects are made to be recognisably fake while still passing format checks:

* ID numbers have a valid GB 11643 check digit, a real 4403xx region prefix and a birth date for
  an age of 18-70 on :data:`REFERENCE_DATE`, but their sequence code (positions 15-17) always
  starts with ``9`` (``9xy``, ``y`` odd for men, even for women).
* Phone numbers are all ``1700xxxxxxx`` (170-0xxx-xxxx).
* Names are drawn from common surnames and given-name characters; a blocklist keeps out
  well-known people.
"""

from __future__ import annotations

import bisect
import csv
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
DIVISIONS_CSV = _ROOT / "config" / "data" / "shenzhen_divisions.csv"
GEOJSON_PATH = _ROOT / "web" / "static" / "vendor" / "shenzhen-geojson" / "shenzhen.geojson"

CITY_CODE = "4403"
CITY_NAME = "深圳市"

DAPENG_CODE = "440399"
"""Demo-only district code for 大鹏新区, which has no official division code."""
DAPENG_NAME = "大鹏新区"
DAPENG_STREET_CODES = ("440307009", "440307010", "440307011")
"""葵涌, 大鹏, 南澳: officially under 龙岗区 (440307); the demo city moves them to 大鹏新区."""

GUANGMING_CODE = "440311"

SHAPE_HOSTS: dict[str, str] = {GUANGMING_CODE: "440306", DAPENG_CODE: "440307"}
"""District without a GeoJSON feature -> the district whose (older) shape contains it."""

REFERENCE_DATE = date(2026, 11, 25)
"""Ages of synthetic subjects are computed on this date, so output never depends on today."""

MIN_AGE = 18
MAX_AGE = 70

Ring = list[tuple[float, float]]
"""A closed polygon ring of ``(lon, lat)`` points."""


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"


LEVEL_SHARES: tuple[tuple[str, float], ...] = (
    ("strict", 0.15),
    ("normal", 0.60),
    ("lenient", 0.25),
)
"""Supervision levels (values of ``center.models.SupervisionLevel``) and their shares."""

MALE_SHARE = 0.85

_CENTRES: dict[str, tuple[float, float]] = {
    "440303": (22.548, 114.131),  # 罗湖
    "440304": (22.541, 114.055),  # 福田
    "440305": (22.533, 113.930),  # 南山
    "440306": (22.555, 113.883),  # 宝安
    "440307": (22.720, 114.247),  # 龙岗
    "440308": (22.557, 114.236),  # 盐田
    "440309": (22.657, 114.045),  # 龙华
    "440310": (22.690, 114.350),  # 坪山
    "440311": (22.749, 113.936),  # 光明
    DAPENG_CODE: (22.593, 114.478),
}

_POPULATION: dict[str, float] = {
    "440303": 114.4,
    "440304": 155.3,
    "440305": 179.6,
    "440306": 447.7,
    "440307": 397.9,
    "440308": 21.5,
    "440309": 252.9,
    "440310": 55.1,
    "440311": 109.6,
    DAPENG_CODE: 15.6,
}
"""2020 census residents in 万 (龙岗 without 大鹏); weights for spreading subjects."""

_JITTER_SIGMA_KM = 2.0
_JITTER_MAX_KM = 5.0
_KM_PER_DEG_LAT = 110.574


@dataclass(frozen=True, slots=True)
class DemoDistrict:
    code: str
    name: str
    center_lat: float
    center_lon: float
    has_shape: bool

    @property
    def short_name(self) -> str:
        """``罗湖`` for ``罗湖区``, ``大鹏`` for ``大鹏新区``: what fits on a wall-screen label."""
        for suffix in ("新区", "区"):
            if self.name.endswith(suffix):
                return self.name[: -len(suffix)]
        return self.name


@dataclass(frozen=True, slots=True)
class DemoStreet:
    code: str
    name: str
    district_code: str

    @property
    def is_special_zone(self) -> bool:
        """Bonded zones, 前海合作区 and the airport (codes ``xxxxxx4xx``) have no residents."""
        return self.code[6] == "4"


@dataclass(frozen=True, slots=True)
class DemoSubject:
    key: str
    name: str
    gender: str
    id_number: str
    phone: str
    level: str
    street_code: str
    home_lat: float
    home_lon: float


# --- divisions ------------------------------------------------------------------------------


@cache
def _divisions() -> tuple[tuple[DemoDistrict, ...], tuple[DemoStreet, ...]]:
    district_names: dict[str, str] = {}
    streets: list[DemoStreet] = []
    with DIVISIONS_CSV.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            district_code = row["district_code"]
            district_names.setdefault(district_code, row["district_name"])
            if row["street_code"] in DAPENG_STREET_CODES:
                district_code = DAPENG_CODE
            streets.append(DemoStreet(row["street_code"], row["street_name"], district_code))
    district_names[DAPENG_CODE] = DAPENG_NAME
    shaped = _feature_codes()
    districts = tuple(
        DemoDistrict(code, name, *_CENTRES[code], has_shape=code in shaped)
        for code, name in district_names.items()
    )
    return districts, tuple(streets)


def load_divisions() -> tuple[list[DemoDistrict], list[DemoStreet]]:
    """The 10 demo districts (official order, 大鹏新区 last) and their 79 streets.

    Streets include the five special zones; see :attr:`DemoStreet.is_special_zone`.
    """
    districts, streets = _divisions()
    return list(districts), list(streets)


# --- shapes ---------------------------------------------------------------------------------


@cache
def _geojson() -> dict[str, list[Ring]]:
    """Outer rings per feature id. The vendored shapes have no holes."""
    with GEOJSON_PATH.open(encoding="utf-8") as f:
        data = json.load(f)
    shapes: dict[str, list[Ring]] = {}
    for feature in data["features"]:
        geometry = feature["geometry"]
        polygons = (
            geometry["coordinates"]
            if geometry["type"] == "MultiPolygon"
            else [geometry["coordinates"]]
        )
        shapes[str(feature["id"])] = [
            [(float(lon), float(lat)) for lon, lat in polygon[0]] for polygon in polygons
        ]
    return shapes


def _feature_codes() -> frozenset[str]:
    return frozenset(_geojson())


def district_shapes() -> dict[str, list[Ring]]:
    """Outer rings of the 8 districts that have a GeoJSON feature, keyed by district code."""
    return {code: [list(ring) for ring in rings] for code, rings in _geojson().items()}


def city_boundary() -> list[Ring]:
    """The city as ``(lon, lat)`` rings: a point is in the city if it is inside any of them.

    These are the district outer rings, not a dissolved outline; 光明区 and 大鹏新区 lie inside
    the 宝安区 and 龙岗区 rings, so no extra polygon is needed for them.
    """
    return [list(ring) for rings in _geojson().values() for ring in rings]


class _RingIndex:
    """Ray casting over one ring, with edges bucketed into latitude bands.

    A horizontal ray at ``lat`` can only cross edges whose latitude span contains ``lat``, so
    only one band's edges are tested: ~30 instead of ~1,600 for the largest ring.
    """

    __slots__ = ("_band_height", "_bands", "max_lat", "max_lon", "min_lat", "min_lon")

    def __init__(self, ring: Sequence[tuple[float, float]], band_count: int = 0) -> None:
        lons = [p[0] for p in ring]
        lats = [p[1] for p in ring]
        self.min_lon, self.max_lon = min(lons), max(lons)
        self.min_lat, self.max_lat = min(lats), max(lats)
        n = len(ring)
        bands = band_count or max(1, n // 16)
        self._band_height = (self.max_lat - self.min_lat) / bands or 1.0
        self._bands: list[list[tuple[float, float, float, float]]] = [[] for _ in range(bands)]
        for i in range(n):
            x1, y1 = ring[i - 1]
            x2, y2 = ring[i]
            if y1 == y2:
                continue
            lo = self._band(min(y1, y2))
            hi = self._band(max(y1, y2))
            for b in range(lo, hi + 1):
                self._bands[b].append((x1, y1, x2, y2))

    def _band(self, lat: float) -> int:
        b = int((lat - self.min_lat) / self._band_height)
        return min(max(b, 0), len(self._bands) - 1)

    def contains(self, lon: float, lat: float) -> bool:
        if not (self.min_lon <= lon <= self.max_lon and self.min_lat <= lat <= self.max_lat):
            return False
        inside = False
        for x1, y1, x2, y2 in self._bands[self._band(lat)]:
            if (y1 > lat) != (y2 > lat) and lon < (x2 - x1) * (lat - y1) / (y2 - y1) + x1:
                inside = not inside
        return inside


@cache
def _city_index() -> tuple[tuple[float, float, float, float], tuple[_RingIndex, ...]]:
    rings = tuple(_RingIndex(ring) for ring in city_boundary())
    bbox = (
        min(r.min_lon for r in rings),
        min(r.min_lat for r in rings),
        max(r.max_lon for r in rings),
        max(r.max_lat for r in rings),
    )
    return bbox, rings


@cache
def _district_index() -> dict[str, tuple[_RingIndex, ...]]:
    return {code: tuple(_RingIndex(r) for r in rings) for code, rings in _geojson().items()}


def point_in_city(lon: float, lat: float) -> bool:
    """Whether ``(lon, lat)`` is inside Shenzhen (the alarm engine's out-of-bounds check)."""
    (min_lon, min_lat, max_lon, max_lat), rings = _city_index()
    if not (min_lon <= lon <= max_lon and min_lat <= lat <= max_lat):
        return False
    return any(ring.contains(lon, lat) for ring in rings)


def in_district_shape(district_code: str, lon: float, lat: float) -> bool:
    """Whether the point is inside the shape drawn for this district on the map.

    For 光明区 and 大鹏新区 that is their host's shape (:data:`SHAPE_HOSTS`), which is coarser
    than the real district.
    """
    rings = _district_index()[SHAPE_HOSTS.get(district_code, district_code)]
    return any(ring.contains(lon, lat) for ring in rings)


# --- synthetic ID numbers -------------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """GB 11643 check character for the first 17 digits of an ID number."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need 17 digits")
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def is_valid_id_number(id_number: str) -> bool:
    """Format, birth date and check digit of an 18-character ID number."""
    if len(id_number) != 18 or not id_number[:17].isdigit():
        return False
    try:
        date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return False
    return id_check_digit(id_number[:17]) == id_number[17].upper()


# --- synthetic names ------------------------------------------------------------------------

_SURNAMES_TOP: tuple[tuple[str, float], ...] = (
    ("王", 7.1), ("李", 7.0), ("张", 6.7), ("刘", 5.4), ("陈", 5.2), ("杨", 3.1), ("黄", 2.6),
    ("赵", 2.0), ("吴", 1.9), ("周", 1.7), ("徐", 1.3), ("孙", 1.2), ("马", 1.1), ("朱", 1.1),
    ("胡", 1.1), ("郭", 1.1), ("何", 1.0), ("林", 1.2), ("罗", 0.9), ("高", 0.9), ("郑", 0.9),
    ("梁", 0.9), ("谢", 0.8), ("宋", 0.7), ("唐", 0.7), ("许", 0.7), ("邓", 0.7), ("韩", 0.6),
    ("冯", 0.6), ("曹", 0.6), ("彭", 0.6), ("曾", 0.6), ("肖", 0.6), ("田", 0.5), ("董", 0.5),
    ("潘", 0.5), ("袁", 0.5), ("蔡", 0.5), ("蒋", 0.5), ("余", 0.5),
)  # fmt: skip
_SURNAMES_TAIL = (
    "于杜叶程魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶"
    "贺毛郝顾龚邵万覃武钱戴严欧莫孔向常汤康易乔赖文"
)
_SURNAMES_COMPOUND: tuple[tuple[str, float], ...] = (
    ("欧阳", 0.05), ("司徒", 0.03), ("上官", 0.01), ("司马", 0.01), ("诸葛", 0.01),
)  # fmt: skip

_SURNAMES: tuple[str, ...] = (
    *(s for s, _ in _SURNAMES_TOP),
    *_SURNAMES_TAIL,
    *(s for s, _ in _SURNAMES_COMPOUND),
)
_SURNAME_WEIGHTS: tuple[float, ...] = (
    *(w for _, w in _SURNAMES_TOP),
    *(0.45 * 0.975**i for i in range(len(_SURNAMES_TAIL))),
    *(w for _, w in _SURNAMES_COMPOUND),
)

_GIVEN_MALE = (
    "伟刚勇毅俊峰军平保东文辉力明永健世广志义兴良海山仁波宁贵福生龙元全国胜学祥才发成"
    "康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会群豪心邦承乐绍功松善厚庆磊民友裕河"
    "哲江超浩亮政谦奇之翰朗伯宏言若鸣朋斌梁栋维启克伦翔旭鹏泽晨辰士建家致树炎德行时泰"
    "盛雄琛钧冠策腾楠榕风航弘"
)
_GIVEN_FEMALE = (
    "秀娟英华慧巧美娜静淑惠珠翠雅芝玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹"
    "霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶"
    "怡婵雁蓓仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁"
    "欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔思丽"
)

_FAMOUS_NAMES = (
    "刘德华 张学友 郭富城 梁朝伟 周星驰 周润发 成龙 李小龙 李连杰 甄子丹 周杰伦 林俊杰 王力宏 "
    "王菲 那英 邓丽君 张国荣 梅艳芳 林青霞 张曼玉 章子怡 巩俐 赵薇 范冰冰 杨幂 刘亦菲 孙俪 "
    "黄晓明 邓超 胡歌 王宝强 张艺谋 陈凯歌 冯小刚 王家卫 李安 马云 马化腾 李彦宏 雷军 刘强东 "
    "任正非 王健林 许家印 董明珠 王石 李嘉诚 姚明 刘翔 李娜 郎朗 孙杨 朱婷 郭晶晶 张怡宁 王楠 "
    "丁宁 马龙 许海峰 邓亚萍 李宁 杨利伟 钟南山 屠呦呦 袁隆平 李强 李克强 王岐山 赵乐际 王沪宁 "
    "蔡奇 丁薛祥 韩正 汪洋 胡锦涛 江泽民 温家宝 朱镕基 李鹏 周恩来 毛泽东 邓小平 刘少奇 朱德 "
    "孙中山 蒋介石 王毅 李白 杜甫 白居易 苏轼 岳飞 曹操 刘备 关羽 张飞 诸葛亮 司马光 欧阳修 "
    "上官婉儿 司马迁 林心如 张柏芝 谢霆锋 陈奕迅 杨千嬅 容祖儿 古天乐 刘嘉玲 钟楚红 黎明 "
    "王俊凯 易烊千玺 王源 鹿晗 吴亦凡 杨紫 赵丽颖 迪丽热巴 杨洋 李易峰 吴京 沈腾 贾玲"
)
_FAMOUS = frozenset(_FAMOUS_NAMES.split())


def _weighted_surname(rng: random.Random, cumulative: list[float]) -> str:
    return _SURNAMES[bisect.bisect(cumulative, rng.random() * cumulative[-1])]


def _given_name(rng: random.Random, gender: Gender) -> str:
    pool = _GIVEN_MALE if gender is Gender.MALE else _GIVEN_FEMALE
    if rng.random() < 0.2:
        return rng.choice(pool)
    first, second = rng.sample(pool, 2)
    return first + second


# --- subjects -------------------------------------------------------------------------------


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Largest-remainder split of ``total`` proportional to ``weights``."""
    scale = total / sum(weights)
    exact = [w * scale for w in weights]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _home(rng: random.Random, district: DemoDistrict) -> tuple[float, float]:
    km_per_deg_lon = _KM_PER_DEG_LAT * math.cos(math.radians(district.center_lat))
    while True:
        dx = rng.gauss(0.0, _JITTER_SIGMA_KM)
        dy = rng.gauss(0.0, _JITTER_SIGMA_KM)
        if dx * dx + dy * dy > _JITTER_MAX_KM * _JITTER_MAX_KM:
            continue
        lat = round(district.center_lat + dy / _KM_PER_DEG_LAT, 6)
        lon = round(district.center_lon + dx / km_per_deg_lon, 6)
        if in_district_shape(district.code, lon, lat):
            return lat, lon


def _birth_date(rng: random.Random) -> date:
    latest = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - MIN_AGE)
    earliest = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - MAX_AGE - 1) + timedelta(days=1)
    span = (latest - earliest).days
    mode = (latest - REFERENCE_DATE.replace(year=REFERENCE_DATE.year - 35)).days
    return latest - timedelta(days=round(rng.triangular(0, span, mode)))


def generate_subjects(count: int = 2000, seed: int = 20261125) -> list[DemoSubject]:
    """``count`` synthetic subjects, identical for the same ``count`` and ``seed``.

    Districts get subjects in proportion to their population; within a district the regular
    streets share them evenly (every street gets some once ``count`` is in the hundreds).
    Levels are split exactly 15/60/25 % (largest remainder), then shuffled.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    rng = random.Random(seed)
    districts, streets = _divisions()
    by_code = {d.code: d for d in districts}

    street_slots: list[DemoStreet] = []
    per_district = _apportion(count, [_POPULATION[d.code] for d in districts])
    for district, n in zip(districts, per_district, strict=True):
        own = [s for s in streets if s.district_code == district.code and not s.is_special_zone]
        offset = rng.randrange(len(own))
        street_slots.extend(own[(offset + i) % len(own)] for i in range(n))
    rng.shuffle(street_slots)

    levels = [
        level
        for (level, _), n in zip(
            LEVEL_SHARES, _apportion(count, [s for _, s in LEVEL_SHARES]), strict=True
        )
        for _ in range(n)
    ]
    rng.shuffle(levels)

    cumulative: list[float] = []
    acc = 0.0
    for w in _SURNAME_WEIGHTS:
        acc += w
        cumulative.append(acc)

    used_ids: set[str] = set()
    used_phones: set[str] = set()
    subjects: list[DemoSubject] = []
    for i, (street, level) in enumerate(zip(street_slots, levels, strict=True)):
        gender = Gender.MALE if rng.random() < MALE_SHARE else Gender.FEMALE
        while True:
            name = _weighted_surname(rng, cumulative) + _given_name(rng, gender)
            if name not in _FAMOUS:
                break
        birth = _birth_date(rng)
        while True:
            parity = rng.randrange(5) * 2 + (1 if gender is Gender.MALE else 0)
            first17 = f"{street.code[:6]}{birth:%Y%m%d}9{rng.randrange(10)}{parity}"
            id_number = first17 + id_check_digit(first17)
            if id_number not in used_ids:
                used_ids.add(id_number)
                break
        while True:
            phone = f"1700{rng.randrange(10_000_000):07d}"
            if phone not in used_phones:
                used_phones.add(phone)
                break
        lat, lon = _home(rng, by_code[street.district_code])
        subjects.append(
            DemoSubject(
                key=f"demo-{i + 1:05d}",
                name=name,
                gender=gender.value,
                id_number=id_number,
                phone=phone,
                level=level,
                street_code=street.code,
                home_lat=lat,
                home_lon=lon,
            )
        )
    return subjects
