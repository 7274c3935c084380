"""Regenerate the divisions seeds (dbt_project/seeds/cn_divisions.csv and cn_division_aliases.csv).

A maintainer's tool, never imported by the product at run time. The source is the adcode table
shipped in the MIT-licensed PyPI package cpca (a test-only dependency): it is read as a file, cpca itself
is not imported. Run it after upgrading cpca and review the diff:

    .venv/bin/python -m pipelines.lib.standardise.divisions_seed

cn_divisions.csv: one row per province, city (prefecture level, including the county-level cities a
province administers directly, such as 仙桃市) and district (county level, including county-level cities
such as 昆山市), with the short name people write (广西, 凉山, 巴音郭楞, 昆山, 浦东) and its parents.
A municipality (北京市) is its own city; cpca's placeholders (市辖区, 县, 省直辖县级行政区划) are dropped.

cn_division_aliases.csv: further names a division goes by: an autonomous prefecture's short name with 州
(凉山州, 延边州), a district beginning with 市 written after its city's short name (青岛市北区 for
青岛市市北区) and the few informal names in INFORMAL_ALIASES.
"""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path

SEEDS_DIR = Path(__file__).resolve().parents[3] / "dbt_project" / "seeds"
MUNICIPALITIES = ("11", "12", "31", "50")
PLACEHOLDERS = ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划")

# Names people write that no rule derives: alias -> adcode.
INFORMAL_ALIASES = {"内蒙": "150000"}


def _cpca_resource(name: str) -> Path:
    spec = importlib.util.find_spec("cpca")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("cpca is not installed (it is a test dependency: pip install -r requirements-dev)")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / name


def _nation_stems() -> list[str]:
    names = [line.strip() for line in _cpca_resource("56_nations.csv").read_text(encoding="utf-8").splitlines()]
    return sorted({n.removesuffix("族") for n in names if n}, key=lambda s: (-len(s), s))


def short_name(name: str, level: str, stems: list[str]) -> str:
    """The name without its administrative suffix (and an autonomous area's peoples): 凉山彝族自治州 -> 凉山.
    Never shorter than two characters: 和县, 城区 stay as they are. level "county" is a county-level unit
    a province administers directly (仙桃市, 定安县, 神农架林区)."""
    suffixes = {
        "province": ["特别行政区", "自治区", "省", "市"],
        "city": ["自治州", "地区", "盟", "市"],
        "county": ["自治县", "林区", "县", "市"],
        "district": ["自治县", "自治旗", "新区", "特区", "矿区", "区", "县", "市", "旗"],
    }[level]
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            short = name[: -len(suffix)]
            break
    else:
        return name
    # The peoples of an autonomous area go (各族: all peoples; a one-character people, 回 藏 苗 ..., only
    # with 族, so that a place name's own last character stays): 巴音郭楞蒙古 -> 巴音郭楞, 管城回族 -> 管城.
    nations = "|".join(re.escape(s) + ("族" if len(s) == 1 or not suffix.startswith("自治") else "族?")
                       for s in [*stems, "各"])
    while nations and (m := re.search(f"(?:{nations})$", short)) and m.start() >= 2:
        short = short[: m.start()]
    if short.endswith("族") and short[:-1] in stems:  # 鄂温克族(自治旗) -> 鄂温克, 东乡族(自治县) -> 东乡
        short = short[:-1]
    return short


def build() -> tuple[list[dict], list[dict]]:
    stems = _nation_stems()
    with _cpca_resource("adcodes.csv").open(encoding="utf-8") as f:
        names = {r["adcode"][:6]: r["name"] for r in csv.DictReader(f)}
    rows = []
    for code, name in sorted(names.items()):
        if name in PLACEHOLDERS:
            continue
        province = names[code[:2] + "0000"]
        if code.endswith("0000"):
            level, city, district = "province", "", ""
        elif code.endswith("00"):
            level, city, district = "city", name, ""
        elif names.get(code[:4] + "00") in ("省直辖县级行政区划", "自治区直辖县级行政区划"):
            level, city, district = "county", name, ""
        else:
            level, district = "district", name
            city = province if code[:2] in MUNICIPALITIES else names[code[:4] + "00"]
        rows.append({"adcode": code, "level": level, "name": name, "short_name": short_name(name, level, stems),
                     "province": province, "city": city, "district": district})
    # A province's directly administered county-level cities and counties are cities of the seed.
    for r in rows:
        if r["level"] == "county":
            r["level"] = "city"
    # A short name a sibling already has plainly (井陉 of 井陉县) is not also the short name of 井陉矿区.
    plain = {(r["city"], short_name(r["name"], "district", [])) for r in rows
             if r["level"] == "district" and r["name"][-1] in "区县市旗" and not re.search("(新|特|矿)区$", r["name"])}
    for r in rows:
        if r["level"] == "district" and re.search("(新|特|矿)区$", r["name"]) and (r["city"], r["short_name"]) in plain:
            r["short_name"] = r["name"][:-1]

    taken = {r["name"] for r in rows} | {r["short_name"] for r in rows}
    aliases = []
    for r in rows:
        if r["level"] == "city" and r["name"].endswith("自治州"):
            alias = r["short_name"] + "州"
            if alias not in taken:
                aliases.append({"alias": alias, "adcode": r["adcode"], "kind": "prefecture short name"})
    # 青岛市北区 is 青岛市市北区 with the 市 written once; read as 青岛市 + 北区 it would lose the district.
    short_of = {r["name"]: r["short_name"] for r in rows if r["level"] == "city"}
    for r in rows:
        if r["level"] == "district" and r["name"].startswith("市") and r["city"] in short_of:
            alias = short_of[r["city"]] + r["name"]
            if alias not in taken:
                aliases.append({"alias": alias, "adcode": r["adcode"], "kind": "city and district sharing 市"})
    for alias, code in INFORMAL_ALIASES.items():
        aliases.append({"alias": alias, "adcode": code, "kind": "informal name"})
    return rows, sorted(aliases, key=lambda a: (a["adcode"], a["alias"]))


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    divisions, aliases = build()
    _write(SEEDS_DIR / "cn_divisions.csv", divisions)
    _write(SEEDS_DIR / "cn_division_aliases.csv", aliases)
    print(f"{len(divisions)} divisions, {len(aliases)} aliases written to {SEEDS_DIR}")


if __name__ == "__main__":
    main()
