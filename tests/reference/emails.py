"""E-mail cells as people type them, judged by email-validator (the oracle) and by the product.

Each case is one 邮箱 cell made of one to three addresses the person meant (``Case.meant``), some with a
fault of their own (two dots in a row, no TLD, a quoted local part ...), then dressed the way files dress
them (case, spaces, full-width ＠ ． 。, mailto:, separators). ``expected`` is what email-validator
(``check_deliverability=False``, otherwise its defaults) accepts among the meant addresses, in the
product's canonical form: email-validator's normalised address with the local part lower-cased (NFC),
each address once, in cell order. ``deliberate`` names the entry of emails_differences.yaml a
disagreement falls under.
"""

from __future__ import annotations

import csv
import random
import unicodedata
from pathlib import Path

import email_validator
import idna
from email_validator import EmailNotValidError, validate_email

from tests.reference import Case, weighted_cases

FIELD = "emails"
ORACLE = f"email-validator {email_validator.__version__}"
HEADER = "邮箱"
DIFFERENCES = Path(__file__).with_name("emails_differences.yaml")
JUNK_SEED = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "junk_values.csv"

LOCAL_PART_MAX_OCTETS = 64


# --- the oracle ------------------------------------------------------------------------------------------

def oracle(address: str) -> str | None:
    """email-validator's verdict on one address: its normalised form, local part lower-cased, or None."""
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return None
    return unicodedata.normalize("NFC", checked.local_part.lower()) + "@" + checked.domain


def _expected(addresses: list[str]) -> list[str]:
    out: list[str] = []
    for address in addresses:
        canonical = oracle(address)
        if canonical is not None and canonical not in out:
            out.append(canonical)
    return out


# --- what people type ----------------------------------------------------------------------------------

NAMES = ["zhangwei", "wangfang", "li.na", "liu_yang", "chenjie", "yang.lei", "zhao-min", "huang.xiaoming",
         "zhou123", "wu_di", "xu.jing", "sun-li", "ma.chao", "zhu88", "hu.bo", "guo.jing", "he.ping", "lin.feng",
         "luo_yi", "gao.yuan", "sales", "info", "hr", "service", "david.wang", "amy_chen", "kevin.li2020"]
DOMAINS = ["qq.com", "163.com", "126.com", "sina.com", "sina.cn", "sohu.com", "foxmail.com", "gmail.com",
           "outlook.com", "hotmail.com", "yeah.net", "139.com", "aliyun.com", "189.cn", "vip.qq.com",
           "vip.163.com", "huawei.com", "xiaomi.com", "mail.bytedance.com", "abc-tech.cn", "zhongke.com.cn",
           "hz-trade.net", "bj.chinamobile.com", "example.org", "sz-elec.com.cn", "x1.io"]
IDN_DOMAINS = ["例子.中国", "公司.cn", "中文网.com", "北京大学.中国", "阿里巴巴.网址", "mail.例子.中国", "华为.公司",
               "münchen.de", "bücher.example", "españa.com", "société.fr"]
UNICODE_LOCALS = ["张三", "李四", "用户", "销售部", "王小明", "客服", "josé", "zoë", "ünal", "陈.静", "李_娜"]
SPECIAL_LOCALS = ["o'brien", "a+crm", "zhang+lead", "a+b/c", "sales/bj", "a=b", "wang!", "#team", "li$", "a%b",
                  "r&d", "a*b", "what?", "^_^", "a_b", "`x`", "{dev}", "a|b", "~li", "first-last", "x.y.z"]
PLACEHOLDERS = ["test@test.com", "test@example.com", "a@a.com", "123@qq.com", "123456@qq.com", "xxx@xxx.com",
                "none@none.com", "test@163.com", "null@qq.com", "x@126.com", "na@sina.com"]
SEPARATORS = [",", ";", " ", "、", "，", "；", "/", " / ", ", ", "; ", "、 "]
FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}


def _local(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.55:
        return rng.choice(NAMES)
    if roll < 0.8:
        return str(rng.randint(10_000, 9_999_999_999))  # a QQ number
    return rng.choice(NAMES) + str(rng.randint(1, 999))


def _address(rng: random.Random) -> str:
    return f"{_local(rng)}@{rng.choice(DOMAINS)}"


def _punycode(domain: str) -> str:
    return idna.encode(domain, uts46=True).decode("ascii")


def _mixed_case(rng: random.Random, text: str) -> str:
    """Upper-case some ASCII letters (only ASCII: Unicode case mapping can change a word, ß -> SS)."""
    style = rng.random()
    if style < 0.3:
        return "".join(c.upper() if c.isascii() else c for c in text)
    if style < 0.6:  # ZhangWei@QQ.com
        local, _, domain = text.partition("@")
        return local[:1].upper() + local[1:] + "@" + "".join(c.upper() if c.isascii() else c for c in domain)
    return "".join(c.upper() if c.isascii() and rng.random() < 0.3 else c for c in text)


# Each kind: rng -> (meant addresses, cell). A fault is part of what the person meant (the oracle judges
# it); dressing (case, spaces, full-width, mailto:, separators) is not.

def _plain(rng):
    a = _address(rng)
    return [a], a


def _case(rng):
    a = _address(rng)
    return [a], _mixed_case(rng, a)


def _spaces(rng):
    a = _address(rng)
    return [a], rng.choice([" ", "  ", "\u3000", "\u00a0", "\t"]) + a + rng.choice(["", " ", "\u3000", " \u00a0"])


def _fullwidth_at(rng):
    a = _address(rng)
    return [a], a.replace("@", rng.choice(["＠", "﹫"]))


def _fullwidth_dot(rng):
    a = _address(rng)
    local, _, domain = a.partition("@")
    return [a], local + "@" + domain.replace(".", rng.choice(["。", "．"]))


def _fullwidth_all(rng):
    a = _address(rng)
    return [a], "".join(FULLWIDTH.get(c, c) for c in a)


def _mailto(rng):
    a = _address(rng)
    return [a], rng.choice(["mailto:", "MAILTO:", "Mailto:"]) + a


def _several(rng):
    addresses = [_address(rng) for _ in range(rng.choice([2, 2, 2, 3]))]
    cell = addresses[0]
    for a in addresses[1:]:
        cell += rng.choice(SEPARATORS) + (_mixed_case(rng, a) if rng.random() < 0.2 else a)
    return addresses, cell


def _several_mixed(rng):
    """A good address and a faulty one, either order."""
    good, bad = _address(rng), rng.choice([_double_dot, _trailing_dot_local, _missing_tld, _missing_at])(rng)[0][0]
    addresses = [good, bad] if rng.random() < 0.5 else [bad, good]
    return addresses, rng.choice(["、", ";", "/", " ", ","]).join(addresses)


def _duplicate(rng):
    a = _address(rng)
    return [a, a], a + rng.choice(SEPARATORS) + _mixed_case(rng, a)


def _special(rng):
    a = f"{rng.choice(SPECIAL_LOCALS)}@{rng.choice(DOMAINS)}"
    return [a], a


def _special_two(rng):
    a, b = f"{rng.choice(SPECIAL_LOCALS)}@{rng.choice(DOMAINS)}", _address(rng)
    return [a, b], a + rng.choice(["/", "、", ";"]) + b


def _idn(rng):
    a = f"{_local(rng)}@{rng.choice(IDN_DOMAINS)}"
    return [a], a


def _idn_punycode(rng):
    domain = rng.choice(IDN_DOMAINS)
    a = f"{_local(rng)}@{_punycode(domain)}"
    return [a], a.upper() if rng.random() < 0.2 else a


def _unicode_local(rng):
    a = f"{rng.choice(UNICODE_LOCALS)}@{rng.choice(DOMAINS + IDN_DOMAINS)}"
    return [a], a


def _double_dot(rng):
    local, domain = _local(rng), rng.choice(DOMAINS)
    if rng.random() < 0.6:
        cut = rng.randint(1, max(1, len(local) - 1))
        local = local[:cut] + ".." + local[cut:]
    else:
        domain = domain.replace(".", "..", 1)
    a = f"{local}@{domain}"
    return [a], a


def _trailing_dot_local(rng):
    a = f"{_local(rng)}.@{rng.choice(DOMAINS)}" if rng.random() < 0.7 else f".{_local(rng)}@{rng.choice(DOMAINS)}"
    return [a], a


def _trailing_dot_domain(rng):
    a = f"{_address(rng)}."
    return [a], a


def _missing_tld(rng):
    a = f"{_local(rng)}@{rng.choice(['qq', '163', '126', 'sina', 'gmail', 'company'])}"
    return [a], a


def _missing_at(rng):
    a = f"{_local(rng)}{rng.choice(['', '.', ' at '])}{rng.choice(DOMAINS)}"
    return [a], a


def _two_at(rng):
    local, domain = _local(rng), rng.choice(DOMAINS)
    a = rng.choice([f"{local}@@{domain}", f"{local}@{local}@{domain}", f"@{local}@{domain}"])
    return [a], a


def _quoted(rng):
    local = rng.choice(["zhang.san", "zhang san", "a@b", "li..na", "wang.", "x\\\"y"])
    a = f'"{local}"@{rng.choice(DOMAINS)}'
    return [a], a


def _placeholder(rng):
    a = rng.choice(PLACEHOLDERS)
    return [a], a


def _special_use(rng):
    a = f"{_local(rng)}@{rng.choice(['mail.local', 'corp.test', 'localhost', 'x.localhost', 'host.invalid', 'abc.onion', '1.in-addr.arpa'])}"
    return [a], a


def _bad_domain(rng):
    local = _local(rng)
    domain = rng.choice(["qq_mail.com", "-qq.com", "qq-.com", "ab--cd.com", "x.c0m1", "1.2.3.4", "[1.2.3.4]",
                         "qq.c", "mail.-x.cn", "a" * 64 + ".com", "xn--zz.com", "例子..中国", "-例子.中国"])
    a = f"{local}@{domain}"
    return [a], a


def _long_local(rng):
    a = f"{'z' * rng.randint(58, 72)}@qq.com"
    return [a], a


def _space_inside(rng):
    local = _local(rng)
    cut = rng.randint(1, max(1, len(local) - 1))
    a = f"{local[:cut]} {local[cut:]}@{rng.choice(DOMAINS)}"
    return [a], a


def _display_name(rng):
    a = _address(rng)
    shown = f"{rng.choice(['张三', '李四', 'Wang Fang'])} <{a}>"
    return [shown], shown


def _bad_chars(rng):
    junk = rng.choice(["(work)", "<x>", ":", "[1]", "\\", ">"])
    a = f"{_local(rng)}{junk}@{rng.choice(DOMAINS)}"
    return [a], a


# (kind, weight): mostly addresses with dressing, a few faults of each sort, rare deliberate differences.
KINDS = [
    (_plain, 20), (_case, 10), (_spaces, 5), (_fullwidth_at, 5), (_fullwidth_dot, 4), (_fullwidth_all, 2),
    (_mailto, 3), (_several, 10), (_several_mixed, 4), (_duplicate, 2), (_special, 5), (_special_two, 2),
    (_idn, 4), (_idn_punycode, 3), (_unicode_local, 4), (_double_dot, 3), (_trailing_dot_local, 3),
    (_trailing_dot_domain, 2), (_missing_tld, 3), (_missing_at, 2), (_two_at, 1), (_quoted, 1),
    (_special_use, 1), (_bad_domain, 3), (_display_name, 1), (_bad_chars, 1),
    (_placeholder, 0.8), (_long_local, 0.5), (_space_inside, 0.4),
]


def cases(seed: int, n: int) -> list[Case]:
    return weighted_cases("emails", seed, n, KINDS, lambda meant, cell: ({HEADER: cell}, _expected(meant)))


# --- the product ---------------------------------------------------------------------------------------

def product(row: dict | None) -> list[str]:
    return list(row["emails"] or []) if row is not None else []


# --- deliberate differences ----------------------------------------------------------------------------

def _junk() -> tuple[set[str], set[str]]:
    with JUNK_SEED.open(encoding="utf-8") as seed:
        rows = list(csv.DictReader(seed))
    return ({r["value"].lower() for r in rows if r["scope"] == "email"},
            {r["value"].lower() for r in rows if r["scope"] == "any"})


_JUNK_EMAILS, _JUNK_ANY = _junk()


def is_placeholder(address: str) -> bool:
    return address in _JUNK_EMAILS or address.split("@", 1)[0] in _JUNK_ANY


def deliberate(case: Case, got: list[str]) -> str | None:
    """The emails_differences.yaml entry that turns ``case.expected`` into ``got``, or None (a defect).

    The product's deliberate rules are applied in its order to what the person meant; the first that
    changes the oracle's answer names the difference, when all of them together give ``got``."""
    expected, names = list(case.expected), []

    def step(name: str, now: list[str]) -> None:
        nonlocal expected, names
        if now != expected:
            expected, names = now, [*names, name]

    # A space splits a cell only after a piece that holds an @ ("a@x.com b@y.com", "a@x.com 备用").
    pieces = []
    for a in case.meant:
        tokens, merged = a.split() or [a], []
        for token in tokens:
            if merged and "@" not in merged[-1]:
                merged[-1] = f"{merged[-1]} {token}"
            else:
                merged.append(token)
        pieces.extend(merged)
    step("whitespace-separates-addresses", _expected(pieces))
    cell, joined = case.cells[HEADER], []
    for piece in pieces:
        if joined and "@" not in joined[-1] and f"{joined[-1]}/{piece}" in cell:
            joined[-1] = f"{joined[-1]}/{piece}"
        else:
            joined.append(piece)
    step("slash-before-the-at-kept", _expected(joined))
    step("local-part-at-most-64-octets",
         [a for a in expected if len(a.split("@", 1)[0].encode("utf-8")) <= LOCAL_PART_MAX_OCTETS])
    step("placeholders-are-junk", [a for a in expected if not is_placeholder(a)])
    return names[0] if names and got == expected else None
