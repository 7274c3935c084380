"""Place cells as people type them, judged by cpca (the oracle) and by the product.

Each case names one real division drawn from the divisions seed (``Case.meant``: province, city,
district, as the product writes them) and types it the way lead files do: in 省份 / 城市 / 区县 columns or
in a 地址 cell, with full or short names, a leading 中国, a postcode or a 地址： label, commas and spaces,
a district named like its city, an autonomous prefecture's short name, a county-level city without 市,
a municipality in the city column, a district without 区/县, a street named after a city.

``expected`` is cpca's verdict (``cpca.transform`` on the cells joined in the order 省份 城市 区县 地址) in
the product's shape: a municipality is its own city (cpca: 市辖区 / 县), a county-level city a province
administers directly is a city (cpca: 省直辖县级行政区划 + the city), NaN is None. ``deliberate`` names the
entry of places_differences.yaml a disagreement falls under.
"""

from __future__ import annotations

import csv
import random
import re
import warnings
from collections import defaultdict
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # cpca imports pkg_resources, which warns
    import cpca

from tests.reference import Case, weighted_cases

FIELD = "places"
ORACLE = f"cpca {cpca.__version__}"
SEED = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "cn_divisions.csv"
ALIASES = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "cn_division_aliases.csv"
MUNICIPALITIES = ("北京市", "上海市", "天津市", "重庆市")
STREET_WORDS = r"[东西南北中]?(?:路|街|巷|弄|号|胡同|大道|大街|道(?:[0-9号]|$))"


# --- the divisions -------------------------------------------------------------------------------------

def _divisions() -> list[dict]:
    with SEED.open(encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r["province"] not in ("台湾省", "香港特别行政区", "澳门特别行政区")]


DIVISIONS = _divisions()
BY_NAME = {(r["level"], r["name"]): r for r in DIVISIONS}
PROVINCES = [r for r in DIVISIONS if r["level"] == "province"]
CITIES = [r for r in DIVISIONS if r["level"] == "city"]
DISTRICTS = [r for r in DIVISIONS if r["level"] == "district"]
PROVINCE = {r["name"]: r for r in PROVINCES}
CITY = {r["name"]: r for r in CITIES}
DISTRICTS_BY_NAME = defaultdict(list)
for _r in DISTRICTS:
    DISTRICTS_BY_NAME[_r["name"]].append(_r)
NON_MUNICIPAL_DISTRICTS = [r for r in DISTRICTS if r["city"] not in MUNICIPALITIES]
AMBIGUOUS_DISTRICTS = [r for r in DISTRICTS if len(DISTRICTS_BY_NAME[r["name"]]) > 1]
UNIQUE_DISTRICTS = [r for r in DISTRICTS if len(DISTRICTS_BY_NAME[r["name"]]) == 1]
# County-level cities (昆山市) whose short name no other division of their province goes by.
_SHORT_IN_PROVINCE = defaultdict(int)
for _r in DIVISIONS:
    _SHORT_IN_PROVINCE[(_r["province"], _r["short_name"])] += 1
COUNTY_CITIES = [r for r in DISTRICTS if r["name"].endswith("市") and r["city"] not in MUNICIPALITIES
                 and _SHORT_IN_PROVINCE[(r["province"], r["short_name"])] == 1]
# Districts named like their city: 东营市东营区, 荆州市荆州区 (and 吉林省吉林市, a city named like its province).
SAME_NAME_DISTRICTS = [r for r in DISTRICTS if r["short_name"] == CITY.get(r["city"], {}).get("short_name")]
SAME_NAME_CITIES = [r for r in CITIES if r["short_name"] == PROVINCE[r["province"]]["short_name"]]
PREFECTURES = [r for r in CITIES if r["name"].endswith(("自治州", "地区", "盟"))]


def _prefecture_aliases() -> dict[str, list[str]]:
    by_code = {r["adcode"]: r["name"] for r in CITIES}
    out = defaultdict(list)
    with ALIASES.open(encoding="utf-8") as f:
        for a in csv.DictReader(f):
            if a["adcode"] in by_code:
                out[by_code[a["adcode"]]].append(a["alias"])
    return out


PREFECTURE_ALIASES = _prefecture_aliases()


def _district(rng: random.Random, pool: list[dict] | None = None) -> dict:
    """A district, an urban one (…区) three times as likely as a county: leads come mostly from cities."""
    pool = DISTRICTS if pool is None else pool
    return rng.choices(pool, [3 if r["name"].endswith("区") else 1 for r in pool])[0]


def meant_of(row: dict) -> tuple[str | None, str | None, str | None]:
    if row["level"] == "province":
        return (row["name"], row["name"] if row["name"] in MUNICIPALITIES else None, None)
    if row["level"] == "city":
        return (row["province"], row["name"], None)
    return (row["province"], row["city"], row["name"])


# --- the oracle ----------------------------------------------------------------------------------------

def oracle(cells: dict) -> tuple[str | None, str | None, str | None]:
    """cpca's verdict on the cells joined in column order, in the product's shape."""
    text = "".join(cells.get(h) or "" for h in ("省份", "城市", "区县", "地址"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = cpca.transform([text])
    province, city, district = (None if v != v or v is None else v for v in frame.iloc[0][["省", "市", "区"]])
    if city in ("市辖区", "县"):
        city = province
    if city in ("省直辖县级行政区划", "自治区直辖县级行政区划"):
        city, district = district, None
    if province in MUNICIPALITIES and city is None:
        city = province
    return (province, city, district)


# --- what people type ----------------------------------------------------------------------------------

STREETS = ["人民路", "建设路", "解放路", "中山路", "长江路", "文化路", "科技园路", "世纪大道", "工业大道", "胜利街",
           "光明路", "幸福路", "朝阳路", "青年路", "发展大道", "新华路", "和平路", "滨河路", "创业路", "学府路"]
TAILS = ["", "", "", "3栋201", "A座1203室", "12楼", "创业园2期", "科技大厦5层", "1单元502"]


def _street(rng: random.Random) -> str:
    return f"{rng.choice(STREETS)}{rng.randint(1, 999)}号{rng.choice(TAILS)}"


def _province_text(rng, province: str, full: float = 0.6) -> str:
    return province if rng.random() < full else PROVINCE[province]["short_name"]


def _city_text(rng, city: str, full: float = 0.6) -> str:
    return city if rng.random() < full or city not in CITY else CITY[city]["short_name"]


def _district_prefix(rng, d: dict, province: float, city: float) -> str:
    """A district written under its parents, each kept with the given probability (full or short)."""
    parts = []
    if d["city"] in MUNICIPALITIES:
        if rng.random() < max(province, city):
            parts.append(_province_text(rng, d["province"]))
    else:
        if rng.random() < province:
            parts.append(_province_text(rng, d["province"]))
        if rng.random() < city or not parts:
            parts.append(_city_text(rng, d["city"]))
    return "".join(parts) + d["name"]


def _full(rng):
    d = _district(rng)
    return meant_of(d), {"地址": _district_prefix(rng, d, 1, 1) + _street(rng)}


def _short_names(rng):
    d = _district(rng)
    prefix = (PROVINCE[d["province"]]["short_name"]
              + ("" if d["city"] in MUNICIPALITIES else CITY[d["city"]]["short_name"]))
    return meant_of(d), {"地址": prefix + d["name"] + _street(rng)}


def _no_province(rng):
    d = _district(rng, NON_MUNICIPAL_DISTRICTS if rng.random() < 0.9 else DISTRICTS)
    return meant_of(d), {"地址": _district_prefix(rng, d, 0, 1) + _street(rng)}


def _china_prefix(rng):
    d = _district(rng)
    prefix = rng.choice(["中国", "中国 ", "中国·", "中华人民共和国", "中国（大陆）", "China "])
    return meant_of(d), {"地址": prefix + _district_prefix(rng, d, 0.9, 0.9) + _street(rng)}


def _postcode(rng):
    d = _district(rng)
    code = f"{rng.randint(10, 86)}{rng.randint(0, 9999):04d}"
    prefix = rng.choice([f"{code} ", f"{code}", f"（{code}）", f"邮编：{code} ", f"{code}，"])
    return meant_of(d), {"地址": prefix + _district_prefix(rng, d, 0.9, 0.9) + _street(rng)}


def _label(rng):
    d = _district(rng)
    prefix = rng.choice(["地址：", "地址:", "详细地址：", "联系地址: ", "公司地址：", "地址 ", "地址：中国"])
    return meant_of(d), {"地址": prefix + _district_prefix(rng, d, 0.9, 0.9) + _street(rng)}


def _separators(rng):
    d = _district(rng, NON_MUNICIPAL_DISTRICTS)
    sep = rng.choice([",", "，", " ", "  ", "、", "/", " - ", "，"])
    parts = [_province_text(rng, d["province"], 0.8), _city_text(rng, d["city"], 0.8), d["name"], _street(rng)]
    return meant_of(d), {"地址": sep.join(parts)}


def _same_name(rng):
    if rng.random() < 0.7:
        d = rng.choice(SAME_NAME_DISTRICTS)
        text = rng.choice([d["city"], _province_text(rng, d["province"]) + d["city"]]) + d["name"]
        return meant_of(d), {"地址": text + rng.choice(["", _street(rng)])}
    c = rng.choice(SAME_NAME_CITIES)
    text = rng.choice([c["province"] + c["name"], c["province"] + c["short_name"] + "市"])
    return meant_of(c), {"地址": text + rng.choice(["", _street(rng)])}


def _prefecture(rng):
    c = rng.choice(PREFECTURES)
    ds = [r for r in DISTRICTS if r["city"] == c["name"]]
    d = rng.choice(ds)
    names = [c["name"], c["short_name"], *PREFECTURE_ALIASES.get(c["name"], [])]
    roll = rng.random()
    if roll < 0.5:  # 凉山州宁南县, 延边朝鲜族自治州延吉市
        return meant_of(d), {"地址": rng.choice(names) + d["name"] + _street(rng)}
    if roll < 0.75:  # 吉林延吉市: the province, then the county, the prefecture left out
        return meant_of(d), {"地址": _province_text(rng, d["province"], 0.3) + d["name"] + _street(rng)}
    # the prefecture alone, by a short name or alias (巴音郭楞, 凉山州), maybe in the city column
    name = rng.choice(names[1:])
    return meant_of(c), rng.choice([{"地址": name}, {"城市": name}, {"省份": c["province"], "城市": name}])


def _county_city(rng):
    d = rng.choice(COUNTY_CITIES)
    province = _province_text(rng, d["province"], 0.3)
    text = rng.choice([province + d["short_name"], province + d["name"], province + d["short_name"] + _street(rng)])
    return meant_of(d), {"地址": text}


def _municipality_city_column(rng):
    d = rng.choice([r for r in DISTRICTS if r["city"] in MUNICIPALITIES])
    city = rng.choice([d["city"], PROVINCE[d["city"]]["short_name"]])
    roll = rng.random()
    if roll < 0.3:
        return meant_of(PROVINCE[d["city"]]), {"城市": city}
    if roll < 0.6:
        return meant_of(d), {"城市": city, "区县": d["name"]}
    return meant_of(d), {"城市": city, "地址": d["name"] + _street(rng)}


def _district_short(rng):
    # 广东深圳南山, 北京怀柔: the district without 区/县, after its parent
    d = rng.choice([r for r in DISTRICTS if r["short_name"] != r["name"] and r["name"][-1] in "区县"
                    and _SHORT_IN_PROVINCE[(r["province"], r["short_name"])] == 1])
    if d["city"] in MUNICIPALITIES:
        prefix = PROVINCE[d["province"]]["short_name"]
    else:
        prefix = rng.choice(["", _province_text(rng, d["province"], 0.3)]) + _city_text(rng, d["city"], 0.3)
    return meant_of(d), {"地址": prefix + d["short_name"] + rng.choice(["", " " + _street(rng)])}


def _street_named_after_a_place(rng):
    c = rng.choice([r for r in CITIES if r["name"].endswith("市")])
    street = c["short_name"] + rng.choice(["路", "东路", "西路", "南路", "北路", "中路", "大街", "大道", "街"])
    number = f"{rng.randint(1, 999)}号{rng.choice(TAILS)}"
    if rng.random() < 0.4:  # the street alone: no place is named
        return (None, None, None), {"地址": street + number}
    d = _district(rng)
    return meant_of(d), {"地址": _district_prefix(rng, d, 0.7, 0.9) + street + number}


def _columns(rng):
    d = _district(rng)
    province = _province_text(rng, d["province"])
    city = d["city"] if d["city"] in MUNICIPALITIES else _city_text(rng, d["city"])
    roll = rng.random()
    if roll < 0.4:
        return meant_of(d), {"省份": province, "城市": city, "区县": d["name"]}
    if roll < 0.6:
        return meant_of(d), {"城市": city, "区县": d["name"]}
    if roll < 0.8:
        c = BY_NAME[("city", d["city"])] if d["city"] not in MUNICIPALITIES else PROVINCE[d["city"]]
        return meant_of(c), {"省份": province, "城市": city}
    return meant_of(PROVINCE[d["province"]]), {"省份": province}


def _columns_and_address(rng):
    d = _district(rng)
    province = _province_text(rng, d["province"])
    city = d["city"] if d["city"] in MUNICIPALITIES else _city_text(rng, d["city"])
    roll = rng.random()
    if roll < 0.35:  # the parents in columns, the district in the address
        return meant_of(d), {"省份": province, "城市": city, "地址": d["name"] + _street(rng)}
    if roll < 0.6:  # the city column, then the whole address again
        return meant_of(d), {"城市": city, "地址": _district_prefix(rng, d, 0.8, 1) + _street(rng)}
    if roll < 0.8:  # every column and a street
        return meant_of(d), {"省份": province, "城市": city, "区县": d["name"], "地址": _street(rng)}
    return meant_of(d), {"城市": city, "地址": d["name"] + _street(rng)}


def _district_only(rng):
    d = rng.choice(UNIQUE_DISTRICTS if rng.random() < 0.7 else AMBIGUOUS_DISTRICTS)
    return meant_of(d), {"地址": d["name"] + _street(rng)}


def _city_only(rng):
    c = rng.choice(CITIES)
    return meant_of(c), {"地址": _city_text(rng, c["name"], 0.7) + _street(rng)}


def _province_only(rng):
    p = rng.choice(PROVINCES)
    return meant_of(p), rng.choice([{"地址": _province_text(rng, p["name"]) + _street(rng)},
                                    {"省份": _province_text(rng, p["name"])}])


# (kind, weight): mostly full addresses with dressing, each issue-9 form a few percent.
KINDS = [
    (_full, 18), (_short_names, 8), (_no_province, 8), (_china_prefix, 5), (_postcode, 5), (_label, 5),
    (_separators, 5), (_same_name, 4), (_prefecture, 3), (_county_city, 4), (_municipality_city_column, 4),
    (_district_short, 1.5), (_street_named_after_a_place, 2), (_columns, 8), (_columns_and_address, 6),
    (_district_only, 3), (_city_only, 4), (_province_only, 2),
]


def cases(seed: int, n: int) -> list[Case]:
    return weighted_cases("places", seed, n, KINDS, lambda meant, cells: (cells, oracle(cells)))


# --- the product ---------------------------------------------------------------------------------------

def product(row: dict | None) -> tuple[str | None, str | None, str | None] | None:
    return (row["province"], row["city"], row["district"]) if row is not None else None


# --- deliberate differences ----------------------------------------------------------------------------

def _text(case: Case) -> str:
    return "".join(case.cells.get(h) or "" for h in ("省份", "城市", "区县", "地址"))


def _depth(place: tuple) -> int:
    return sum(v is not None for v in place)


def _above(got: tuple, other: tuple) -> bool:
    """``got`` is ``other`` cut short: the same place down to where it stops, and it stops higher."""
    depth = _depth(got)
    return all(v is None for v in got[depth:]) and got[:depth] == other[:depth] and depth < _depth(other)


def _spans(text: str, names: list[str]) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for name in names if name for m in re.finditer(re.escape(name), text)]


def _names(level: str, name: str | None) -> list[str]:
    row = BY_NAME.get((level, name)) or (PROVINCE.get(name) if level == "city" else None)
    return [name, row["short_name"]] if row else [name]


def deliberate(case: Case, got: tuple | None) -> str | None:
    """The places_differences.yaml entry that explains why ``got`` is not ``case.expected``, or None (a defect).
    Each entry holds only where the product gives what the person meant, or cpca's guess cut short."""
    expected, meant, text = case.expected, case.meant, _text(case)
    if got is None or not (got == meant or _above(got, expected)):
        return None
    # cpca's table names Chongqing's counties 县: it reads any 县 as Chongqing (梅县区) or loses 新县 to it.
    if got == meant and "县" in text and ((expected[0] == "重庆市" != meant[0] and "重庆" not in text)
                                         or (meant[2] in ("新县", "和县", "道县") and expected[2] is None)):
        return "county-placeholder"
    if got == meant and (_above(expected, got) or _depth(expected) == 0):
        # The product reads a name cpca does not know.
        if meant[2] and _depth(expected) < 3 and meant[2] not in text:
            return "district-short-name"
        if meant[1] and _depth(expected) < 2 and meant[1] not in text:
            return "prefecture-short-name"
        return None
    # 海南 is a province and a prefecture of Qinghai (海南州): cpca takes the province and drops the county
    # that follows (共和县); the product reads the county, which makes 海南 the prefecture.
    if (got == meant and meant[1] in CITY and expected[0] in PROVINCE and expected[0] != meant[0]
            and CITY[meant[1]]["short_name"] == PROVINCE[expected[0]]["short_name"]):
        return "province-name-shared-by-a-prefecture"
    deepest = next(i for i in (2, 1, 0) if expected[i])
    level = ("province", "city", "district")[deepest]
    cpca_name = expected[deepest]
    cpca_names = _names(level, cpca_name)
    cpca_spans = _spans(text, cpca_names)
    street = re.compile("(?:" + "|".join(re.escape(n) for n in cpca_names) + ")" + STREET_WORDS)
    # cpca reads a street (长春路, 中山路, 南京东路) as the place it is named after.
    if cpca_spans and all(street.match(text, s) for s, _ in cpca_spans):
        return "street-named-after-a-place"
    # cpca reads a name inside or across the names meant (五大连池市: 大连; 陕西安康: 西安).
    meant_spans = _spans(text, [n for lv, v in zip(("province", "city", "district"), meant) for n in _names(lv, v)])
    if got == meant and cpca_spans and all(any(s < me and ms < e and (s, e) != (ms, me) for ms, me in meant_spans)
                                           for s, e in cpca_spans):
        return "name-read-inside-another"
    # cpca reads a prefecture's short name (文山, 玉树州) as its seat, the county-level city of that name.
    if (level == "district" and expected[1] in CITY and got[:2] == expected[:2] and cpca_name not in text
            and BY_NAME[("district", cpca_name)]["short_name"] == CITY[expected[1]]["short_name"]):
        return "prefecture-read-as-its-seat"
    # cpca takes the first of the districts of one name; the product keeps only what they have in common.
    if level == "district" and len(DISTRICTS_BY_NAME[cpca_name]) > 1 and _above(got, expected):
        depth = _depth(got)
        common = [meant_of(r) for r in DISTRICTS_BY_NAME[cpca_name] if meant_of(r)[:depth] == got[:depth]]
        if len({c[depth] for c in common}) > 1 \
                and not any(n in text for n in _names(("province", "city")[depth], expected[depth])):
            return "ambiguous-district-without-parent"
    return None
