"""Realistic Chinese sample leads with known duplicate groups, for the demo, tests and benchmarks.

Each generated person appears as one or more records; ``person_id`` is the truth a matcher is scored
against. The noise is the kind real lead files carry: common names (many 张伟), homophone typos
(张伟/章伟), honorifics (王总), every mobile format, full-width digits, Excel floats, company name
variants, company switchboards shared by colleagues, family e-mails shared by two people, junk
placeholders, salespeople's own mobiles typed in for customers, and missing fields.

People also change (离职、调岗、换号): with ``life_changes`` (a share of the people with several records)
a person's later records show a job change (another company, usually another title, a work e-mail on the
new company's domain, often another city and office address; same name, mobile and WeChat) or a mobile
change (a new number; same name, e-mail, WeChat and company). A changed person keeps something to be
recognised by, as in a real CRM: most of their records show the contact they kept (whoever changed job and
mobile at once, or whose records never show what they kept, left no trace that links the two). The
records before the change are older than those after it. The changes are drawn from a random stream of
their own, so the same seed without life changes gives the same people and the same noise, unchanged.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from ..standardise.pinyin import pinyin_key

# Weighted roughly by how common the surnames are, so common full names collide as in real data.
SURNAMES = (
    "王" * 12 + "李" * 12 + "张" * 11 + "刘" * 9 + "陈" * 8 + "杨" * 6 + "黄" * 4 + "赵" * 4 + "吴" * 4 + "周" * 4
    + "徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴莫孔向汤"
)
COMMON_GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "霞", "平", "刚"]
GIVEN_CHARS = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英秀兰玉华红建国文志海波辉鹏飞宇浩然子涵梓萱欣怡佳琪思雨晨阳俊博嘉豪雪梅春燕晓东立新德成振宇一鸣家乐"
# Same pinyin, different character: the typos a phone call or an input method produce.
HOMOPHONES = {
    "张": "章", "章": "张", "王": "汪", "汪": "王", "李": "黎", "黎": "李", "林": "琳", "伟": "玮", "芳": "方",
    "娜": "纳", "静": "婧", "丽": "莉", "强": "蔷", "军": "君", "洋": "阳", "勇": "永", "艳": "燕", "杰": "洁",
    "娟": "鹃", "涛": "韬", "明": "铭", "超": "潮", "霞": "侠", "平": "萍", "刚": "钢", "敏": "民", "华": "桦",
    "红": "虹", "海": "亥", "波": "博", "辉": "晖", "飞": "菲", "宇": "雨", "浩": "昊", "欣": "馨",
}
HONORIFICS = ["总", "经理", "先生", "女士", "老师"]
BRAND_CHARS = "华信达通瑞恒泰盛丰安宏远鑫博创新海天中金嘉联合众科云智微星辰蓝鼎晟隆兴源德"
INDUSTRIES = ["科技", "网络科技", "信息技术", "贸易", "实业", "电子商务", "文化传媒", "生物科技", "教育", "餐饮管理", "物流", "建设工程"]
SUFFIXES = ["有限公司", "有限公司", "有限公司", "股份有限公司", "有限责任公司", "集团有限公司"]
# (province, city, district list, area code): places with a switchboard area code.
PLACES = [
    ("北京市", "北京市", ["朝阳区", "海淀区", "东城区", "西城区", "丰台区"], "010"),
    ("上海市", "上海市", ["浦东新区", "徐汇区", "静安区", "闵行区", "黄浦区"], "021"),
    ("广东省", "广州市", ["天河区", "越秀区", "海珠区", "番禺区", "白云区"], "020"),
    ("广东省", "深圳市", ["南山区", "福田区", "宝安区", "龙岗区", "罗湖区"], "0755"),
    ("浙江省", "杭州市", ["西湖区", "滨江区", "余杭区", "拱墅区", "上城区"], "0571"),
    ("江苏省", "南京市", ["鼓楼区", "玄武区", "建邺区", "秦淮区", "江宁区"], "025"),
    ("江苏省", "苏州市", ["姑苏区", "吴中区", "相城区", "虎丘区", "吴江区"], "0512"),
    ("四川省", "成都市", ["武侯区", "锦江区", "青羊区", "金牛区", "成华区"], "028"),
    ("湖北省", "武汉市", ["江汉区", "武昌区", "洪山区", "汉阳区", "江岸区"], "027"),
    ("陕西省", "西安市", ["雁塔区", "碑林区", "新城区", "莲湖区", "未央区"], "029"),
    ("吉林省", "长春市", ["朝阳区", "南关区", "宽城区", "二道区", "绿园区"], "0431"),
    ("山东省", "青岛市", ["市南区", "市北区", "黄岛区", "崂山区", "李沧区"], "0532"),
]
STREETS = ["人民路", "中山路", "建设路", "解放路", "科技园路", "创业大道", "和平街", "新华路", "长江路", "学府路"]
TITLES = ["总经理", "销售经理", "采购经理", "CEO", "技术总监", "市场专员", "HR", "财务主管", "董事长", "运营经理",
          "Sales Manager", "采购", "行政助理", "工程师", "创始人", "副总经理", "客服主管"]
SOURCES = ["官网", "展会", "电话营销", "转介绍", "抖音广告", "微信公众号", "线下活动"]
EMAIL_DOMAINS = ["qq.com", "163.com", "126.com", "gmail.com", "sina.com", "outlook.com"]
JUNK_MOBILES = ["13800138000", "无", "-", "12345678901", "null"]
# What changed for a changed person: a job (company, title, work e-mail, often city) or a mobile.
LIFE_CHANGE_KINDS = ("job", "job", "mobile")
LIFE_CHANGES = 0.3  # default share of the people with several records whose later records show a change
# A changed person is known by the contact they kept (the mobile across a job change, the e-mail across a
# mobile change): on most of their records, before and after, it is there to be seen.
KEPT_CONTACT_SHOWN = 0.9
COPIES = ([1] * 55) + ([2] * 25) + ([3] * 12) + ([4] * 5) + ([5] * 3)  # records per person, avg 1.76

CANONICAL_COLUMNS = [
    "name", "mobile", "landline", "email", "wechat", "qq", "company", "job_title",
    "province", "city", "district", "address", "source", "owner", "updated_at",
]


# People's mobiles come from allocated ranges (140-144, 154, 160, 174, 194 ... are not), the busiest most
# often: 13x, 15x and 18x carry most subscribers.
_MOBILE_PREFIXES = ([f"13{d}" for d in range(10)] * 3 + [f"15{d}" for d in "012356789"] * 3
                    + [f"18{d}" for d in range(10)] * 3 + ["145", "147", "162", "165", "166", "167"]
                    + [f"17{d}" for d in "0135678"] + [f"19{d}" for d in "01235789"])


def _mobile(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + "".join(rng.choice("0123456789") for _ in range(8))


def _format_mobile(number: str, rng: random.Random) -> str:
    """The forms mobiles arrive in from forms, CRMs and Excel."""
    style = rng.random()
    if style < 0.40:
        return number
    if style < 0.50:
        return f"{number[:3]} {number[3:7]} {number[7:]}"
    if style < 0.58:
        return f"+86 {number[:3]}-{number[3:7]}-{number[7:]}"
    if style < 0.64:
        return f"+86{number}"
    if style < 0.69:
        return f"0086{number}"
    if style < 0.74:
        return f"86-{number}"
    if style < 0.82:
        return number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    if style < 0.92:
        return f"{number}.0"
    return f"{number[:3]}-{number[3:7]}-{number[7:]}"


def _company(rng: random.Random, place: tuple) -> dict:
    core = rng.choice(BRAND_CHARS) + rng.choice(BRAND_CHARS)
    industry = rng.choice(INDUSTRIES)
    city_short = place[1].removesuffix("市")
    switchboard = f"{place[3]}-{rng.randint(5, 8)}{rng.randint(0, 9999999):07d}"[: len(place[3]) + 9]
    return {
        "core": core, "industry": industry, "city_short": city_short, "suffix": rng.choice(SUFFIXES),
        "place": place, "switchboard": switchboard, "domain": f"{pinyin_key(core)}{rng.randint(1, 99)}.com",
    }


def _company_name(company: dict, rng: random.Random) -> str:
    """The ways one company is written: with/without city, bracketed city, short form, 市."""
    core, industry, city, suffix = company["core"], company["industry"], company["city_short"], company["suffix"]
    style = rng.random()
    if style < 0.40:
        return f"{city}{core}{industry}{suffix}"
    if style < 0.55:
        return f"{core}{industry}({city}){suffix}"
    if style < 0.65:
        return f"{core}{industry}（{city}）{suffix}"
    if style < 0.80:
        return f"{core}{industry}"
    if style < 0.90:
        return f"{city}市{core}{industry}{suffix}"
    return f"{core}{industry}{suffix}"


def _own(value: str, issued: set[str]) -> str:
    """``value``, or the nearest variant of it nobody holds yet: a mobile, an e-mail address, a WeChat or QQ
    id belongs to one person (sharing one is modelled on purpose: family e-mails, salespeople's mobiles).
    Two namesakes drawing wangwei_123 get wangwei_123 and wangwei_1232. No random draw: the rest of the
    sample does not move."""
    candidate, n = value, 1
    while candidate in issued:
        n += 1
        if "@" in value:
            local, domain = value.split("@", 1)
            candidate = f"{local}{n}@{domain}"
        elif value.isdigit() and len(value) == 11:  # a mobile stays a mobile
            candidate = value[:7] + f"{(int(value[7:]) + n - 1) % 10_000:04d}"
        else:
            candidate = f"{value}{n}"
    issued.add(candidate)
    return candidate


def _person(pid: int, rng: random.Random, companies: list[dict], family_emails: list[str],
            issued: dict[str, set[str]]) -> dict:
    surname = rng.choice(SURNAMES)
    if rng.random() < 0.35:  # very common one-character given names make many same-name strangers
        given = rng.choice(COMMON_GIVEN)
    else:
        given = "".join(rng.choice(GIVEN_CHARS) for _ in range(rng.choice([1, 2, 2])))
    name = surname + given
    key = pinyin_key(name) or "user"
    company = rng.choice(companies) if rng.random() < 0.85 else None
    place = company["place"] if company and rng.random() < 0.8 else rng.choice(PLACES)
    mobiles = [_own(_mobile(rng), issued["mobile"])] + (
        [_own(_mobile(rng), issued["mobile"])] if rng.random() < 0.15 else [])
    if family_emails and rng.random() < 0.02:
        email = rng.choice(family_emails)  # a family address shared with someone else
    elif company and rng.random() < 0.3:
        email = _own(f"{key}@{company['domain']}", issued["email"])
    else:
        email = _own(f"{key}{rng.randint(1, 9999)}@{rng.choice(EMAIL_DOMAINS)}", issued["email"])
    if rng.random() < 0.01:
        family_emails.append(email)
    wechat = None
    if rng.random() < 0.55:
        wechat = _own(mobiles[0] if rng.random() < 0.3 else f"{key}_{rng.randint(10, 9999)}", issued["wechat"])
    qq = _own(str(rng.randint(10_000, 3_999_999_999)), issued["qq"]) if rng.random() < 0.2 else None
    return {
        "person_id": pid, "name": name, "mobiles": mobiles, "email": email, "wechat": wechat,
        "qq": qq,
        "company": company, "job_title": rng.choice(TITLES), "place": place,
        "address_tail": f"{rng.choice(STREETS)}{rng.randint(1, 999)}号", "source": rng.choice(SOURCES),
        "owner": rng.choice(["销售一部", "销售二部", "渠道部", None]),
    }


def _name_variant(name: str, rng: random.Random) -> str:
    style = rng.random()
    if style < 0.08:
        chars = list(name)
        swappable = [i for i, ch in enumerate(chars) if ch in HOMOPHONES]
        if swappable:
            i = rng.choice(swappable)
            chars[i] = HOMOPHONES[chars[i]]
        return "".join(chars)
    if style < 0.12:
        return name + rng.choice(["先生", "女士"])
    if style < 0.16:
        return " ".join(name) if len(name) == 2 else f"{name[0]} {name[1:]}"
    if style < 0.18:
        return name[0] + rng.choice(HONORIFICS[:2])  # "王总": only the surname survives
    return name


def _record(person: dict, copy: int, rng: random.Random, now: datetime, rep_mobiles: list[str],
            after: dict | None = None, crng: random.Random | None = None, kept: str | None = None) -> dict:
    """One record of ``person``. ``after`` is the person as they are after a life change: the record shows
    its values, while the noise is drawn from ``rng`` exactly as for the unchanged person (draws that only
    the changed person needs come from ``crng``), so a change alters nothing else in the sample. ``kept``
    (mobile or email) is the contact a changed person kept: their records usually show it."""
    now_person = after or person
    company = person["company"]
    place = now_person["place"]
    keep = lambda p: rng.random() < p  # noqa: E731 - a short local predicate reads better here
    ckeep = lambda p: crng.random() < p  # noqa: E731
    mobile = person["mobiles"][1] if len(person["mobiles"]) > 1 and copy > 0 and keep(0.5) else person["mobiles"][0]
    if after is not None:  # the same choice among the numbers the person has now
        mobile = after["mobiles"][person["mobiles"].index(mobile) % len(after["mobiles"])]
    # Lead forms make the mobile mandatory; it goes missing only in imports and hand-typed lists.
    mobile_text = _format_mobile(mobile, rng) if keep(0.92) else None
    shown = mobile_text is not None
    if keep(0.02):
        mobile_text, shown = rng.choice(JUNK_MOBILES), False
    elif keep(0.005):
        # A salesperson's own mobile typed in for a customer who gave none: one number, many people.
        mobile_text, shown = rng.choice(rep_mobiles), False
    elif mobile_text and keep(0.01):
        mobile_text, shown = mobile_text[:-1], False  # a digit lost in typing
    if kept == "mobile" and not shown and ckeep(KEPT_CONTACT_SHOWN):
        mobile_text = _format_mobile(mobile, crng)
    email = now_person["email"] if keep(0.6) else None
    if email and keep(0.1):
        email = email.upper() if keep(0.5) else email.replace("@", "＠")
    if keep(0.01):
        email = "test@test.com"
    if kept == "email" and email in (None, "test@test.com") and ckeep(KEPT_CONTACT_SHOWN):
        email = now_person["email"]
    landline = company["switchboard"] if company and keep(0.3) else None
    if company and keep(0.85):
        company_text = _company_name(company, rng)
    else:
        company_text = None
    if after is not None and after["company"] is not company:
        new = after["company"]
        if company is None:  # a first company: its presence and form from the change's own stream
            landline = new["switchboard"] if ckeep(0.3) else None
            company_text = _company_name(new, crng) if ckeep(0.85) else None
        else:
            landline = new["switchboard"] if landline and new else None
            company_text = _company_name(new, crng) if company_text and new else None
    district = rng.choice(place[2])
    address = None
    if keep(0.6):
        style = rng.random()
        if style < 0.4:
            address = f"{place[0]}{place[1]}{district}{now_person['address_tail']}"
        elif style < 0.7:
            address = f"{place[1].removesuffix('市')}{district}{now_person['address_tail']}"
        else:
            address = f"{district}{now_person['address_tail']}"
    return {
        "person_id": person["person_id"],
        "name": _name_variant(person["name"], rng) if keep(0.95) else None,
        "mobile": mobile_text,
        "landline": landline,
        "email": email,
        "wechat": person["wechat"] if person["wechat"] and keep(0.7) else None,
        "qq": person["qq"] if person["qq"] and keep(0.6) else None,
        "company": company_text,
        "job_title": now_person["job_title"] if keep(0.6) else None,
        "province": place[0] if keep(0.3) else None,
        "city": place[1] if keep(0.3) else None,
        "district": None,
        "address": address,
        "source": now_person["source"],
        "owner": now_person["owner"],
        "updated_at": (now - timedelta(days=rng.randint(0, 720), minutes=rng.randint(0, 1440))).strftime("%Y-%m-%d %H:%M:%S"),
    }


def _changed(person: dict, kind: str, crng: random.Random, companies: list[dict],
             issued: dict[str, set[str]]) -> dict:
    """The person after a life change of ``kind`` (job or mobile)."""
    after = dict(person)
    if kind == "job":
        old = person["company"]
        # often a new employer in the same city, else anywhere (and then usually a move)
        same_city = [c for c in crng.sample(companies, min(len(companies), 40))
                     if c["place"][1] == person["place"][1] and c is not old]
        new = crng.choice(same_city) if same_city and crng.random() < 0.5 else crng.choice(companies)
        while new is old:
            new = crng.choice(companies)
        after["company"] = new
        after["place"] = new["place"] if crng.random() < 0.8 else person["place"]
        if crng.random() < 0.75:  # another role; else the same title at the new employer
            after["job_title"] = crng.choice([t for t in TITLES if t != person["job_title"]])
        if old and person["email"].endswith("@" + old["domain"]):
            # the old work address is dead
            after["email"] = _own(f"{person['email'].split('@')[0]}@{new['domain']}", issued["email"])
        if crng.random() < 0.8:  # the new office
            after["address_tail"] = f"{crng.choice(STREETS)}{crng.randint(1, 999)}号"
        if crng.random() < 0.5:  # the later lead arrived through another channel and owner
            after["source"] = crng.choice(SOURCES)
            after["owner"] = crng.choice(["销售一部", "销售二部", "渠道部", None])
    if kind == "mobile":
        mobiles = [_own(_mobile(crng), issued["mobile"])]
        if len(person["mobiles"]) > 1 and crng.random() < 0.5:
            mobiles.append(person["mobiles"][1])  # the second number is kept
        after["mobiles"] = mobiles
    return after


def generate_leads(records: int, seed: int = 20261122, life_changes: float = LIFE_CHANGES,
                   explain: bool = False) -> pl.DataFrame:
    """``records`` lead records (shuffled) with a ``person_id`` truth column; same seed, same output.

    ``life_changes``: the share of people with several records whose later records show a job or mobile
    change. ``explain`` adds ``life_change`` (job or mobile; null for unchanged people) and
    ``after_change`` (the record shows the changed person) for evaluation and tests; they are not lead fields.
    """
    if not 0.0 <= life_changes <= 1.0:
        raise ValueError(f"life_changes must be between 0 and 1, not {life_changes}")
    rng = random.Random(seed)
    crng = random.Random(f"{seed}:life-changes")  # the changes' own stream: the rest of the sample is the same
    now = datetime(2026, 11, 1)
    companies = [_company(rng, rng.choice(PLACES)) for _ in range(max(records // 12, 5))]
    family_emails: list[str] = []
    issued: dict[str, set[str]] = {"mobile": set(), "email": set(), "wechat": set(), "qq": set()}
    rep_mobiles = [_mobile(rng) for _ in range(max(3, records // 20_000))]
    rows: list[dict] = []
    pid = 0
    while len(rows) < records:
        person = _person(pid, rng, companies, family_emails, issued)
        copies = min(rng.choice(COPIES), records - len(rows))
        kind, change_at, after = None, copies, None
        if copies > 1 and crng.random() < life_changes:
            kind = crng.choice(LIFE_CHANGE_KINDS)
            change_at = crng.randint(1, copies - 1)  # records from this copy on show the change
            after = _changed(person, kind, crng, companies, issued)
        mine = []
        for copy in range(copies):
            changed = copy >= change_at
            row = _record(person, copy, rng, now, rep_mobiles, after if changed else None, crng,
                          kept={"job": "mobile", "mobile": "email"}.get(kind))
            mine.append({**row, "life_change": kind, "after_change": changed})
        if kind:  # the records before the change are the older ones
            dates = sorted(r["updated_at"] for r in mine)
            for r, date in zip(mine, dates):
                r["updated_at"] = date
        rows += mine
        pid += 1
    rng.shuffle(rows)
    frame = pl.DataFrame(rows, schema={"person_id": pl.Int64, **{c: pl.Utf8 for c in CANONICAL_COLUMNS},
                                       **TRUTH_COLUMNS})
    return frame if explain else frame.drop(list(TRUTH_COLUMNS))


# Beside person_id, what generate_leads(explain=True) says about each record: not lead fields.
TRUTH_COLUMNS = {"life_change": pl.Utf8, "after_change": pl.Boolean}


# How each sample file names its columns: English for the CRM extract, Chinese for the others.
_GBK_HEADERS = {"name": "姓名", "mobile": "手机号", "landline": "座机", "email": "邮箱", "wechat": "微信", "qq": "QQ",
                "company": "单位", "job_title": "职位", "province": "省份", "city": "城市", "address": "地址",
                "source": "来源", "owner": "负责人", "updated_at": "更新时间"}
_EXCEL_HEADERS = {"name": "联系人", "mobile": "电话", "landline": "公司电话", "email": "电子邮箱", "wechat": "微信号",
                  "company": "公司名称", "job_title": "职务", "province": "省", "city": "市", "address": "详细地址",
                  "source": "线索来源", "updated_at": "登记时间"}


def write_sample_files(leads: pl.DataFrame, root: Path, excel_rows: int = 5000) -> dict[str, int]:
    """Split the leads over a Parquet extract, a GBK CSV and an Excel workbook; write truth.csv beside them.

    Returns {relative path: rows}. truth.csv maps (source_file, source_row) to person_id.
    """
    root = Path(root)
    (root / "warehouse").mkdir(parents=True, exist_ok=True)
    (root / "inbox").mkdir(parents=True, exist_ok=True)
    n = leads.height
    n_excel = min(n // 4, excel_rows)
    n_gbk = n // 4
    parts = {
        "warehouse/crm_leads.parquet": leads.slice(0, n - n_gbk - n_excel),
        "warehouse/legacy_leads_gbk.csv": leads.slice(n - n_gbk - n_excel, n_gbk),
        "inbox/展会线索.xlsx": leads.slice(n - n_excel, n_excel),
    }
    written: dict[str, int] = {}
    truth = []
    for rel, part in parts.items():
        path = root / rel
        data = part.drop("person_id", *[c for c in TRUTH_COLUMNS if c in part.columns])
        if rel.endswith(".parquet"):
            data.write_parquet(path)
        elif rel.endswith(".csv"):
            # An extra column the mapping does not know: it must survive as an extra attribute.
            data = data.select(list(_GBK_HEADERS)).rename(_GBK_HEADERS).with_columns(
                pl.Series("客户等级", [("A", "B", "C")[i % 3] for i in range(part.height)])
            )
            path.write_bytes(data.write_csv().encode("gb18030"))
        else:
            data = data.select(list(_EXCEL_HEADERS)).rename(_EXCEL_HEADERS).with_columns(pl.lit("展会现场登记").alias("备注"))
            data.write_excel(path, worksheet="线索")
        written[rel] = part.height
        # Rows as the readers number them: Excel's row numbers for CSV and workbooks (header = row 1),
        # record numbers for Parquet.
        first = 1 if rel.endswith(".parquet") else 2
        truth.append(part.select(
            pl.lit(rel).alias("source_file"),
            pl.int_range(first, part.height + first, dtype=pl.Int64).alias("source_row"),
            "person_id", *[c for c in TRUTH_COLUMNS if c in part.columns],
        ))
    pl.concat(truth).write_csv(root / "truth.csv")
    written["truth.csv"] = n
    return written
