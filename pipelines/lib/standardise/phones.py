"""Phone numbers against the numbering plans of libphonenumber (the PyPI package ``phonenumbers``).

Mainland numbers are judged in SQL, vectorised, against the national number patterns of China's
numbering plan. Those patterns are not written by hand: ``python -m pipelines.lib.standardise.phones``
copies them from ``phonenumbers``' metadata into the dbt seed ``cn_numbering_plan.csv`` (and a test
checks the seed still equals what the installed ``phonenumbers`` says). Numbers dialled with another
country code (Hong Kong, Macau, Taiwan, abroad) are few; for them SQL cannot know 200-odd numbering
plans, so ``phonenumbers`` judges each distinct number once, in Python (the UDF ``judge_number_abroad``).
"""

from __future__ import annotations

import csv
import unicodedata
from functools import lru_cache
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneNumberType

from ..paths import PROJECT_DIR

NUMBERING_PLAN_SEED = PROJECT_DIR / "dbt_project" / "seeds" / "cn_numbering_plan.csv"

# The number types a lead can be reached on, and the contact field each belongs in. Premium-rate
# numbers (16x) are not a person's number, so they are not taken from the plan.
REACHABLE_TYPES = {
    "mobile": "mobile",
    "fixed_line": "landline",
    "toll_free": "landline",  # 800 / 400-style numbers a company answers
    "shared_cost": "landline",
}

# Deliberate exceptions to phonenumbers' metadata for mainland China: none. The metadata is updated
# several times a year (149, 162, 165, 167, 192 ... arrived with new allocations); a prefix it lags on
# would be added here, as (number_type, pattern, why), and written to the seed beside the metadata's.
EXCEPTIONS: list[tuple[str, str, str]] = []

_TYPE_NAMES = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}


def numbering_plan_rows() -> list[dict[str, str]]:
    """China's national number patterns by type, as phonenumbers' metadata has them, plus EXCEPTIONS."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    source = f"phonenumbers {phonenumbers.__version__}"
    rows = []
    for number_type in REACHABLE_TYPES:
        desc = getattr(metadata, number_type)
        rows.append({"number_type": number_type, "national_pattern": desc.national_number_pattern,
                     "possible_lengths": " ".join(str(n) for n in desc.possible_length), "source": source})
    for number_type, pattern, why in EXCEPTIONS:
        rows.append({"number_type": number_type, "national_pattern": pattern, "possible_lengths": "",
                     "source": f"exception: {why}"})
    return rows


def write_numbering_plan_seed(path: Path = NUMBERING_PLAN_SEED) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=["number_type", "national_pattern", "possible_lengths", "source"])
        writer.writeheader()
        writer.writerows(numbering_plan_rows())
    return path


@lru_cache(maxsize=100_000)
def judge_number_abroad(dialled: str) -> str | None:
    """'number_type|region|e164' for a number dialled with a country code other than +86, or None.

    ``dialled`` is digits with a leading + or 00. Invalid numbers give None: the country's plan has no
    such number (too short, too long, an unallocated range).
    """
    text = "+" + dialled[2:] if dialled.startswith("00") else dialled
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    number_type = _TYPE_NAMES.get(phonenumbers.number_type(number), "unknown")
    region = phonenumbers.region_code_for_number(number) or "001"
    return f"{number_type}|{region}|{phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)}"


@lru_cache(maxsize=100_000)
def standardise_mobile(value: str) -> str | None:
    """One mobile typed by a person or sent in an event (``+86 138-0013-8000``, full-width digits,
    ``008613800138000``), in E.164 as the dbt rules write it, or None when the numbering plan has no such
    mobile. For single values outside a dbt run (event payloads, manual edits): the same phonenumbers
    metadata the seed of the SQL rules is generated from judges them."""
    text = unicodedata.normalize("NFKC", value or "").strip()
    text = "+" + text[2:] if text.startswith("00") else text
    digits = "".join(ch for ch in text if ch.isdigit() or ch == "+")
    if not digits or "+" in digits[1:]:
        return None
    try:
        number = phonenumbers.parse(digits, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) not in (
            PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def main() -> None:
    """Rewrite the numbering-plan seed from the installed phonenumbers (after upgrading it)."""
    print(f"wrote {write_numbering_plan_seed()}")


if __name__ == "__main__":
    main()
