"""Every standardisation rule, table-driven, through the real ingest + dbt build on a temporary home.

Each case is one row of one input file, tagged with an unmapped ``case_id`` column (which must also
survive as an extra attribute). The nightly job runs once for the module; each test reads its row.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.conftest import run_nightly_job, use_home, write_csv

FILLER_COMPANY = "样例填充有限公司"  # keeps a row a lead when the field under test ends up empty

# (raw 手机 cell, expected mobiles, expected landlines)
MOBILE_CASES = [
    ("13800138001", ["+8613800138001"], []),
    ("138 0013 8001", ["+8613800138001"], []),
    ("+86-138-0013-8001", ["+8613800138001"], []),
    ("+86 138 0013 8001", ["+8613800138001"], []),
    ("0086 13800138001", ["+8613800138001"], []),
    ("86-13800138001", ["+8613800138001"], []),
    ("8613800138001", ["+8613800138001"], []),
    ("１３８００１３８００１", ["+8613800138001"], []),
    ("13800138001.0", ["+8613800138001"], []),
    ("1.3800138001E10", ["+8613800138001"], []),
    ("(+86) 138-0013-8001", ["+8613800138001"], []),
    ("13800138001; 13900139002", ["+8613800138001", "+8613900139002"], []),
    ("13800138001/13800138001", ["+8613800138001"], []),
    ("13800138001、0755-88886666", ["+8613800138001"], ["+8675588886666"]),
    ("0755-88886666", [], ["+8675588886666"]),
    ("13800138000", [], []),  # the famous sample number is junk
    ("12345678901", [], []),
    ("11111111111", [], []),
    ("1380013800", [], []),  # a digit short
    ("12800138001", [], []),  # no such mobile prefix
    ("无", [], []),
    # Issue 9: the numbering plan, not a regex.
    ("1.38123E+10", [], []),  # Excel rounded the digits away: rejected, never +8613812300000
    ("14012345678", [], []),  # unallocated prefixes pass 1[3-9]\d{9} but not the plan
    ("17412345678", [], []),
    ("19412345678", [], []),
    ("16012345678", [], []),
    ("19212345678", ["+8619212345678"], []),  # China Broadnet's 192 is allocated
    ("13812345678转123", ["+8613812345678"], []),  # a mobile has no extension
    ("013812345678", ["+8613812345678"], []),  # a leading trunk 0
    ("+86(0)138 1234 5678", ["+8613812345678"], []),
    ("13800138001 13900139002", ["+8613800138001", "+8613900139002"], []),
    ("13800138001或13900139002", ["+8613800138001", "+8613900139002"], []),
    ("13800138001 和 13900139002", ["+8613800138001", "+8613900139002"], []),
    ("+852 9123 4567", ["+85291234567"], []),  # Hong Kong, Macau and Taiwan mobiles are mobiles
    ("+853 6612 3456", ["+85366123456"], []),
    ("+886 912 345 678", ["+886912345678"], []),
    ("+1 650 253 0000", ["+16502530000"], []),  # may be either: stays where the file put it
    ("+123456789", [], []),  # not a number in any plan
]

# (raw 座机 cell, expected landlines, expected mobiles)
LANDLINE_CASES = [
    ("010-12345678", ["+861012345678"], []),
    ("0755-8888 6666", ["+8675588886666"], []),
    ("(021)87654321", ["+862187654321"], []),
    ("+86 10 12345678", ["+861012345678"], []),
    ("0755-88886666转801", ["+8675588886666;ext=801"], []),
    ("400-820-8820", ["+864008208820"], []),
    ("88886666", [], []),  # no area code: cannot be dialled from elsewhere
    ("13912345678", [], ["+8613912345678"]),  # a mobile typed under 座机 is a mobile
    ("021 6123 4567-801", ["+862161234567;ext=801"], []),  # the last dash group is an extension
    ("0601-8888666", [], []),  # no such area code
    ("+86 (0)21 6123 4567", ["+862161234567"], []),
    ("+852 2123 4567", ["+85221234567"], []),
    ("+44 20 7946 0958", ["+442079460958"], []),
]

# (raw 邮箱 cell, expected emails)
EMAIL_CASES = [
    ("ZhangWei@QQ.com ", ["zhangwei@qq.com"]),
    ("zhang＠163．com", ["zhang@163.com"]),
    ("mailto:li@126.com", ["li@126.com"]),
    ("x.y+tag@sub.example.cn", ["x.y+tag@sub.example.cn"]),
    ("a@qq.com; b@163.com", ["a@qq.com", "b@163.com"]),
    ("bad-email", []),
    ("a@b", []),
    ("test@test.com", []),
    ("null", []),
    # Issue 9: judged like email-validator (syntax, IDN), every address of a cell kept.
    ("a..b@x.com", []),  # two dots in a row
    ("name.@qq.com", []),  # a dot just before the @
    (".name@qq.com", []),
    ("用户@例子.中国", ["用户@例子.中国"]),  # IDN domain and Unicode local part
    ("张三@公司.cn", ["张三@公司.cn"]),
    ("li@xn--fsqu00a.xn--fiqs8s", ["li@例子.中国"]),  # punycode: the same canonical (Unicode) form
    ("O'Brien@X.com", ["o'brien@x.com"]),  # legal special characters in the local part
    ("a+b/c@x.com", ["a+b/c@x.com"]),  # / is legal in a local part
    ("a@qq.com、b@163.com", ["a@qq.com", "b@163.com"]),
    ("a@qq.com/b@163.com", ["a@qq.com", "b@163.com"]),
    ("a@qq.com，b@163.com；c@126.com", ["a@qq.com", "b@163.com", "c@126.com"]),
    ("MAILTO:wang@sina.com", ["wang@sina.com"]),
    ("zhao@x.com.", []),  # a trailing dot
    ('"zhao qian"@x.com', []),  # quoted local parts are refused, as email-validator does by default
    ("zhao@mail.local", []),  # special-use domain
    ("zhao@ab--cd.com", []),  # "--" in positions 3-4 of a label is only for punycode
]

# (raw 姓名, expected name, expected pinyin key)
NAME_CASES = [
    ("张伟", "张伟", "zhangwei"),
    ("张 伟", "张伟", "zhangwei"),
    ("章伟", "章伟", "zhangwei"),  # a homophone keeps the same key
    ("　刘洋　", "刘洋", "liuyang"),
    ("王总", "王", "wang"),
    ("张经理", "张", "zhang"),
    ("李娜女士", "李娜", "lina"),
    ("陈先生", "陈", "chen"),
    ("欧阳娜娜", "欧阳娜娜", "ouyangnana"),
    ("赵敏(销售部)", "赵敏", "zhaomin"),
    ("Mr. John  Smith", "John Smith", "johnsmith"),
    ("123", None, None),
    ("无", None, None),
]

# (raw 公司, expected company (cleaned original), expected core)
COMPANY_CASES = [
    ("北京字节跳动科技有限公司", "北京字节跳动科技有限公司", "字节跳动"),
    ("字节跳动(北京)有限公司", "字节跳动(北京)有限公司", "字节跳动"),
    ("字节跳动（北京）有限公司", "字节跳动(北京)有限公司", "字节跳动"),
    ("深圳市腾讯计算机系统有限公司", "深圳市腾讯计算机系统有限公司", "腾讯计算机系统"),
    ("华为技术有限公司", "华为技术有限公司", "华为"),
    ("上海恒泰贸易股份有限公司", "上海恒泰贸易股份有限公司", "恒泰"),
    ("中国平安保险(集团)股份有限公司", "中国平安保险(集团)股份有限公司", "平安保险"),
    ("阿里巴巴集团", "阿里巴巴集团", "阿里巴巴"),
    ("Acme Co., Ltd.", "Acme Co., Ltd.", "acme"),
    ("ＡＢＣ科技有限公司", "ABC科技有限公司", "abc"),
    ("广州科技有限公司", "广州科技有限公司", "广州"),  # never reduced below two characters
    ("无", None, None),
]

# (raw 职务, expected canonical title)
TITLE_CASES = [
    ("销售经理", "销售"),
    ("Sales Manager", "销售"),
    ("总经理", "总经理"),
    ("GM", "总经理"),
    ("CEO", "CEO"),
    ("首席执行官", "CEO"),
    ("副总经理", "副总经理"),
    ("采购专员", "采购"),
    ("HR", "人力资源"),
    ("董事长兼总经理", "董事长"),
    ("技术总监", "CTO"),
    ("打杂的", None),
]

# (地址, 省份, 城市) -> (province, city, district)
ADDRESS_CASES = [
    (("广东深圳南山区科技园", None, None), ("广东省", "深圳市", "南山区")),
    (("北京市朝阳区建国路88号", None, None), ("北京市", "北京市", "朝阳区")),
    (("吉林省长春市朝阳区人民大街", None, None), ("吉林省", "长春市", "朝阳区")),
    (("朝阳区建国路88号", None, None), (None, None, None)),  # Beijing or Changchun: ambiguous
    (("朝阳区建国路88号", None, "长春"), ("吉林省", "长春市", "朝阳区")),
    (("深圳南山区中山路8号", None, None), ("广东省", "深圳市", "南山区")),  # 中山路 is a street
    (("上海市上海市浦东新区世纪大道", None, None), ("上海市", "上海市", "浦东新区")),
    (("山东省青岛市市南区香港中路", None, None), ("山东省", "青岛市", "市南区")),
    (("杭州市西湖区文三路", None, None), ("浙江省", "杭州市", "西湖区")),
    (("虎丘区长江路", None, None), ("江苏省", "苏州市", "虎丘区")),
    (("吉林市船营区", None, None), ("吉林省", "吉林市", "船营区")),
    ((None, "广东", "深圳"), ("广东省", "深圳市", None)),
    ((None, "四川省", None), ("四川省", None, None)),
    (("火星基地一号", None, None), (None, None, None)),
    # issue 9: 中国, a postcode or a label in front; comma-separated parts
    (("中国广东省深圳市南山区科技园", None, None), ("广东省", "深圳市", "南山区")),
    (("518000 广东省深圳市南山区", None, None), ("广东省", "深圳市", "南山区")),
    (("地址：北京市朝阳区建国路88号", None, None), ("北京市", "北京市", "朝阳区")),
    (("广东省，深圳市，南山区，科技园路1号", None, None), ("广东省", "深圳市", "南山区")),
    # a district named like its city, a city named like its province
    (("东营市东营区府前大街55号", None, None), ("山东省", "东营市", "东营区")),
    (("荆州市荆州区", None, None), ("湖北省", "荆州市", "荆州区")),
    (("吉林省吉林市", None, None), ("吉林省", "吉林市", None)),
    # autonomous prefectures and their short forms; a county-level city without 市
    (("凉山州宁南县", None, None), ("四川省", "凉山彝族自治州", "宁南县")),
    (("巴音郭楞", None, None), ("新疆维吾尔自治区", "巴音郭楞蒙古自治州", None)),
    (("吉林延吉市", None, None), ("吉林省", "延边朝鲜族自治州", "延吉市")),
    (("江苏昆山", None, None), ("江苏省", "苏州市", "昆山市")),
    # a municipality in the city column; districts without 区/县
    ((None, None, "北京"), ("北京市", "北京市", None)),
    (("怀柔区", None, "北京"), ("北京市", "北京市", "怀柔区")),
    (("广东深圳南山", None, None), ("广东省", "深圳市", "南山区")),
    (("北京怀柔", None, None), ("北京市", "北京市", "怀柔区")),
    # streets named after places are streets
    (("长春路615号", None, None), (None, None, None)),
    (("中山路88号", None, None), (None, None, None)),
    (("南京东路100号", None, None), (None, None, None)),
    (("北京路1号", None, None), (None, None, None)),
]

# (field header, raw value, expected column, expected value): ids and junk placeholders
OTHER_CASES = [
    ("微信", "Zhang_Wei88", "wechat", "zhang_wei88"),
    ("微信", "13800138001", "wechat", "+8613800138001"),
    ("微信", "ab", "wechat", None),
    ("QQ", "123456789", "qq", "123456789"),
    ("QQ", "12345.0", "qq", "12345"),
    ("QQ", "0123", "qq", None),
    ("职务", "null", "job_title", None),
    ("职务", "N/A", "job_title", None),
    ("微信", "测试", "wechat", None),
    ("来源", "-", "source", None),
    ("来源", "展会", "source", "展会"),
    ("更新时间", "2024/1/5", "updated_at", datetime(2024, 1, 5)),
    ("更新时间", "2024-03-01 10:00:00", "updated_at", datetime(2024, 3, 1, 10)),
    ("更新时间", "2024年3月1日", "updated_at", datetime(2024, 3, 1)),
    ("更新时间", "45321", "updated_at", datetime(2024, 1, 30)),
    # a creation time is created_at, never updated_at (its other headers: test_readers_and_mapping.py)
    ("创建时间", "2023/7/8", "created_at", datetime(2023, 7, 8)),
    ("创建时间", "2023-07-08 09:30", "created_at", datetime(2023, 7, 8, 9, 30)),
    ("创建时间", "2023年7月9日", "created_at", datetime(2023, 7, 9)),
    ("创建时间", "2023-07-10", "updated_at", None),
]


def _rows() -> list[dict]:
    rows = []

    def add(case_id: str, **cells):
        # 负责人 (owner) only tells the rows apart: identical rows of one source are one record (full-width and
        # Excel-float forms of one number included), and each case must stay a row of its own.
        row = {"case_id": case_id, "公司": FILLER_COMPANY, "负责人": f"样例-{case_id}"}
        row.update({k: v for k, v in cells.items() if v is not None})
        rows.append(row)

    for i, (raw, _, _) in enumerate(MOBILE_CASES):
        add(f"mobile-{i}", 手机=raw)
    for i, (raw, _, _) in enumerate(LANDLINE_CASES):
        add(f"landline-{i}", 座机=raw)
    for i, (raw, _) in enumerate(EMAIL_CASES):
        add(f"email-{i}", 邮箱=raw)
    for i, (raw, _, _) in enumerate(NAME_CASES):
        add(f"name-{i}", 姓名=raw)
    for i, (raw, _, _) in enumerate(COMPANY_CASES):
        add(f"company-{i}", 公司=raw, 姓名="公司样例")
    for i, (raw, _) in enumerate(TITLE_CASES):
        add(f"title-{i}", 职务=raw)
    for i, ((address, province, city), _) in enumerate(ADDRESS_CASES):
        add(f"address-{i}", 地址=address, 省份=province, 城市=city)
    for i, (header, raw, _, _) in enumerate(OTHER_CASES):
        add(f"other-{i}", **{header: raw})
    add("reject-empty", 公司="无", 姓名="-")
    add("reject-address-only", 公司="null", 地址="某地某路1号")
    headers = sorted({k for r in rows for k in r})
    return [{h: r.get(h) for h in headers} for r in rows]


@pytest.fixture(scope="module")
def rules_home(tmp_path_factory, module_monkeypatch):
    root = tmp_path_factory.mktemp("rules_home")
    home = use_home(root, module_monkeypatch)
    write_csv(home.warehouse_dir / "rules.csv", _rows())
    assert run_nightly_job().success
    return home


@pytest.fixture(scope="module")
def by_case(rules_home):
    import duckdb

    with duckdb.connect(str(rules_home.duckdb_path), read_only=True) as conn:
        cursor = conn.execute(
            "select json_extract_string(extra_attributes, '$.case_id') as case_id, * from marts.lead_records"
        )
        names = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}


@pytest.mark.parametrize(("raw", "mobiles", "landlines"), MOBILE_CASES)
def test_mobile(by_case, raw, mobiles, landlines):
    row = by_case[f"mobile-{MOBILE_CASES.index((raw, mobiles, landlines))}"]
    assert (row["mobiles"], row["landlines"]) == (mobiles, landlines)
    assert row["mobile"] == (mobiles[0] if mobiles else None)


@pytest.mark.parametrize(("raw", "landlines", "mobiles"), LANDLINE_CASES)
def test_landline(by_case, raw, landlines, mobiles):
    row = by_case[f"landline-{LANDLINE_CASES.index((raw, landlines, mobiles))}"]
    assert (row["landlines"], row["mobiles"]) == (landlines, mobiles)


@pytest.mark.parametrize(("raw", "emails"), EMAIL_CASES)
def test_email(by_case, raw, emails):
    row = by_case[f"email-{EMAIL_CASES.index((raw, emails))}"]
    assert row["emails"] == emails


@pytest.mark.parametrize(("raw", "name", "pinyin"), NAME_CASES)
def test_name(by_case, raw, name, pinyin):
    row = by_case[f"name-{NAME_CASES.index((raw, name, pinyin))}"]
    assert (row["name"], row["name_pinyin"]) == (name, pinyin)


@pytest.mark.parametrize(("raw", "company", "core"), COMPANY_CASES)
def test_company(by_case, raw, company, core):
    row = by_case[f"company-{COMPANY_CASES.index((raw, company, core))}"]
    assert (row["company"], row["company_core"]) == (company, core)


@pytest.mark.parametrize(("raw", "title"), TITLE_CASES)
def test_job_title(by_case, raw, title):
    row = by_case[f"title-{TITLE_CASES.index((raw, title))}"]
    assert row["job_title_canonical"] == title


@pytest.mark.parametrize(("given", "expected"), ADDRESS_CASES)
def test_address_divisions(by_case, given, expected):
    row = by_case[f"address-{ADDRESS_CASES.index((given, expected))}"]
    assert (row["province"], row["city"], row["district"]) == expected


@pytest.mark.parametrize(("header", "raw", "column", "expected"), OTHER_CASES)
def test_ids_junk_and_dates(by_case, header, raw, column, expected):
    row = by_case[f"other-{OTHER_CASES.index((header, raw, column, expected))}"]
    assert row[column] == expected


def test_unreadable_rows_are_rejected_with_a_reason(rules_home, query):
    rejected = dict(query(rules_home, """
        select r.source_row, r.reason from marts.lead_rejections r"""))
    rows = _rows()
    row_of = {r["case_id"]: i + 2 for i, r in enumerate(rows)}  # Excel's row numbers: header = 1
    assert set(rejected) == {row_of["reject-empty"], row_of["reject-address-only"]}
    assert "empty row" in rejected[row_of["reject-empty"]]
    assert "no name, company or valid contact" in rejected[row_of["reject-address-only"]]


def test_field_issues_name_file_row_and_field(rules_home, query):
    rows = _rows()
    row_of = {r["case_id"]: i + 2 for i, r in enumerate(rows)}  # Excel's row numbers: header = 1
    issues = query(rules_home, "select source_file, source_row, field, raw_value, status from marts.lead_field_issues")
    short = row_of[f"mobile-{[c[0] for c in MOBILE_CASES].index('1380013800')}"]
    assert ("warehouse/rules.csv", short, "mobile", "1380013800", "invalid") in issues
    junk_email = row_of[f"email-{[c[0] for c in EMAIL_CASES].index('test@test.com')}"]
    assert ("warehouse/rules.csv", junk_email, "email", "test@test.com", "junk") in issues


def test_every_row_is_accounted_for(rules_home, query, by_case):
    (read,), = query(rules_home, "select count(*) from raw.library_records")
    (rejected,), = query(rules_home, "select count(*) from marts.lead_rejections")
    assert read == len(_rows())
    assert read == len(by_case) + rejected


def test_unmapped_columns_survive_as_extra_attributes(by_case):
    row = by_case["name-0"]
    assert json.loads(row["extra_attributes"]) == {"case_id": "name-0"}


def test_rounded_scientific_notation_is_rejected_saying_excel_lost_the_digits(rules_home, query):
    issues = query(rules_home, "select field, status, issue from marts.lead_field_issues where raw_value = '1.38123E+10'")
    assert len(issues) == 1
    field, status, issue = issues[0]
    assert (field, status) == ("mobile", "invalid")
    assert "科学计数法" in issue and "Excel" in issue


def test_the_numbering_plan_seed_is_what_phonenumbers_says():
    """The seed is generated, never edited by hand: regenerate it after upgrading phonenumbers."""
    import csv

    from pipelines.lib.standardise.phones import NUMBERING_PLAN_SEED, numbering_plan_rows

    with NUMBERING_PLAN_SEED.open(encoding="utf-8") as seed:
        assert list(csv.DictReader(seed)) == numbering_plan_rows()
