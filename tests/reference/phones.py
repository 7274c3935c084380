"""Phone cells as people type them, judged by libphonenumber (``phonenumbers``).

The generator knows the number the person meant. The oracle is phonenumbers' verdict on that
number (parsed as dialled from mainland China): valid or not, its type and its E.164 form. Mobiles are
expected among the record's mobiles, every other valid type among its landlines (with ``;ext=`` for an
extension); a number that may be either (North America) stays in the column it was typed in.
"""

from __future__ import annotations

import random

import phonenumbers
from phonenumbers import PhoneNumberType

from . import Case

FIELD = "phones"
ORACLE = f"phonenumbers {phonenumbers.__version__}"

_FULL_WIDTH = str.maketrans("0123456789+-()", "０１２３４５６７８９＋－（）")

# Real area codes and subscriber lengths of a few cities, and made-up ones (0601, 0999 ...): the oracle
# says which exist. Random mobile prefixes across 130-199 include the unallocated ones on purpose.
_AREA_CODES = ["10", "20", "21", "22", "23", "24", "25", "27", "28", "29", "311", "351", "371", "431", "451",
               "471", "531", "551", "571", "591", "731", "755", "757", "769", "851", "871", "898", "931",
               "991", "601", "999", "290", "488"]
_ABROAD = [  # (country code, national numbers that are valid there, and some that are not)
    ("852", ["91234567", "51234567", "21234567", "61234567", "3123456"]),   # Hong Kong
    ("853", ["66123456", "28123456", "6612345"]),                            # Macau
    ("886", ["912345678", "223456789", "81234567"]),                         # Taiwan
    ("1", ["6502530000", "2125551234", "5551234"]),                          # North America
    ("44", ["2079460958", "7911123456", "123"]),                             # United Kingdom
    ("81", ["312345678", "9012345678"]),                                     # Japan
    ("65", ["91234567", "61234567"]),                                        # Singapore
    ("61", ["412345678", "212345678"]),                                      # Australia
    ("49", ["15123456789", "30123456"]),                                     # Germany
]
_PLACEHOLDERS = ["13800138000", "12345678901", "11111111111", "00000000", "99999999999"]


def _mobile(rng: random.Random) -> str:
    return f"1{rng.randint(30, 99)}{rng.randint(0, 99_999_999):08d}"


def _landline(rng: random.Random) -> tuple[str, str]:
    area = rng.choice(_AREA_CODES)
    length = 8 if len(area) == 2 else rng.choice([7, 8, 8])
    return area, f"{rng.randint(2, 8)}{rng.randint(0, 10 ** (length - 1) - 1):0{length - 1}d}"


def _dress_mobile(rng: random.Random, number: str) -> tuple[str, str]:
    """One messy rendering of a mobile and the kind of mess."""
    a, b, c = number[:3], number[3:7], number[7:]
    forms = [
        ("plain", number),
        ("spaced", f"{a} {b} {c}"),
        ("dashed", f"{a}-{b}-{c}"),
        ("plus86", f"+86 {a} {b} {c}"),
        ("plus86_dashed", f"+86-{a}-{b}-{c}"),
        ("0086", f"0086{number}"),
        ("86_no_plus", f"86-{number}"),
        ("full_width", number.translate(_FULL_WIDTH)),
        ("excel_float", f"{number}.0"),
        ("excel_exact_sci", f"{number[0]}.{number[1:]}E+10"),
        ("trunk_0", f"0{number}"),
        ("plus86_trunk", f"+86(0){a} {b} {c}"),
        ("parenthesised_cc", f"(+86) {a}-{b}-{c}"),
        ("label", f"手机：{number}"),
        ("tel_label", f"Tel: {a} {b} {c}"),
        ("note_after", f"{number}（微信同号）"),
        ("dotted", f"{a}.{b}.{c}"),
    ]
    return rng.choice(forms)


def _dress_landline(rng: random.Random, area: str, local: str) -> tuple[str, str]:
    forms = [
        ("dashed", f"0{area}-{local}"),
        ("parenthesised", f"(0{area}){local}"),
        ("spaced_groups", f"0{area} {local[:4]} {local[4:]}"),
        ("plus86", f"+86 {area} {local}"),
        ("plus86_trunk", f"+86 (0){area} {local}"),
        ("full_width", f"0{area}-{local}".translate(_FULL_WIDTH)),
        ("run_together", f"0{area}{local}"),
    ]
    return rng.choice(forms)


def _oracle(meant: str, ext: str | None, column: str) -> tuple[str, str] | None:
    """('mobile' | 'landline', E.164[;ext=]) for a meant number phonenumbers calls valid, else None."""
    try:
        number = phonenumbers.parse(meant, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    kind = phonenumbers.number_type(number)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if kind == PhoneNumberType.MOBILE:
        return "mobile", e164
    field = column if kind == PhoneNumberType.FIXED_LINE_OR_MOBILE else "landline"
    return field, e164 + (f";ext={ext}" if ext and field == "landline" else "")


def _expected(verdicts: list[tuple[str, str] | None]) -> tuple[list[str], list[str]]:
    mobiles, landlines = [], []
    for verdict in verdicts:
        if verdict is None:
            continue
        target = mobiles if verdict[0] == "mobile" else landlines
        if verdict[1] not in target:
            target.append(verdict[1])
    return mobiles, landlines


def cases(seed: int, n: int) -> list[Case]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        roll = rng.random()
        ext = None
        column = "手机"
        if roll < 0.40:
            number = _mobile(rng)
            kind, cell = _dress_mobile(rng, number)
            meant = [number]
        elif roll < 0.47:  # Excel rounded a long number to six significant digits: the rest is gone
            number = _mobile(rng)
            kind, cell, meant = "excel_rounded_sci", f"{number[0]}.{number[1:6]}E+10", []
        elif roll < 0.52:  # a mobile with an extension someone copied from a signature
            number = _mobile(rng)
            ext = str(rng.randint(1, 999))
            kind, cell, meant = "mobile_with_extension", f"{number}转{ext}", [number]
            ext = None  # a mobile has no extension: the oracle's verdict drops it too
        elif roll < 0.62:  # two numbers in one cell
            first, second = _mobile(rng), _mobile(rng)
            separator = rng.choice([" ", "或", " 和 ", "/", ";", "、", "，", "\n", " / "])
            kind, cell, meant = f"two_numbers[{separator.strip() or 'space'}]", f"{first}{separator}{second}", [first, second]
            if rng.random() < 0.2:  # both written in groups, one space between them too
                kind = "two_numbers_grouped"
                cell = " ".join(f"{m[:3]} {m[3:7]} {m[7:]}" for m in (first, second))
        elif roll < 0.64:  # a name or note beside the number
            number = _mobile(rng)
            kind, cell, meant = "with_name", rng.choice([f"{number} 张先生", f"王女士 {number}", f"{number}(本人)"]), [number]
        elif roll < 0.82:
            area, local = _landline(rng)
            column = "座机"
            kind, cell = _dress_landline(rng, area, local)
            meant = [f"0{area}{local}"]
            if rng.random() < 0.25:
                ext = str(rng.randint(1, 9999))
                marker = rng.choice(["转", "-", " ext. ", "分机"])
                kind, cell = f"{kind}+extension[{marker.strip()}]", f"{cell}{marker}{ext}"
        elif roll < 0.85:
            column = "座机"
            number = rng.choice(["400", "800"]) + f"{rng.randint(0, 9_999_999):07d}"
            kind, cell, meant = "service_400_800", f"{number[:3]}-{number[3:6]}-{number[6:]}", [number]
        elif roll < 0.95:
            code, nationals = rng.choice(_ABROAD)
            national = rng.choice(nationals)
            column = rng.choice(["手机", "座机"])
            kind = f"abroad_{code}"
            cell = rng.choice([f"+{code} {national}", f"00{code}{national}", f"+{code}-{national[:4]}-{national[4:]}"])
            meant = [f"+{code}{national}"]
        else:
            number = rng.choice(_PLACEHOLDERS)
            kind, cell, meant = "placeholder", number, [number]
        verdicts = [_oracle(m, ext, "mobile" if column == "手机" else "landline") for m in meant]
        out.append(Case(f"phones-{i:05d}", {column: cell}, {"meant": meant, "extension": ext},
                        _expected(verdicts), kind))
    return out


def product(row: dict | None) -> tuple[list[str], list[str]]:
    if row is None:
        return [], []
    return list(row["mobiles"] or []), list(row["landlines"] or [])


def deliberate(case: Case, got: tuple[list[str], list[str]]) -> str | None:
    """The listed difference (phones_differences.yaml) a disagreement falls under, or None."""
    expected_mobiles, expected_landlines = case.expected
    mobiles, landlines = got
    if case.kind == "placeholder":
        return "placeholder_numbers"
    if case.kind == "excel_rounded_sci":
        return None
    # The product needs the area code of a landline written with its trunk 0 or country code, or at least
    # ten digits; phonenumbers reads a short run of digits as a local number of some area.
    return None
