"""Masking of personal data for logs and metadata: never show a whole phone number or e-mail."""

from __future__ import annotations

import re

_DIGIT = re.compile(r"\d")


def mask_phone(value: str | None) -> str | None:
    """The masking CRMs show (and the CRM's service role sees, pipelines/lib/publish/postgres.py): a mainland
    number without +86, its first three and last four digits kept: ``+8613800138000`` -> ``138****8000``;
    shorter numbers keep two and two; an extension is dropped. Raw text keeps its other characters."""
    if value is None:
        return None
    text = value.split(";", 1)[0]
    if text.startswith("+86"):
        text = text[3:]
    digits = [i for i, ch in enumerate(text) if ch.isdigit()]
    head, tail = (3, 4) if len(digits) >= 11 else (2, 2) if len(digits) >= 6 else (0, 0)
    keep = set(digits[:head]) | set(digits[len(digits) - tail:])
    return "".join(ch if (not ch.isdigit() or i in keep) else "*" for i, ch in enumerate(text))


def mask_email(value: str | None) -> str | None:
    """Keep the first character of the local part and the domain: ``zhang.wei@qq.com`` -> ``z***@qq.com``."""
    if value is None:
        return None
    local, at, domain = value.partition("@")
    if not at:
        return (value[:1] + "***") if value else value
    return f"{local[:1]}***@{domain}"


def mask_phone_sql(column: str) -> str:
    """``mask_phone`` of a standardised (E.164) number as SQL that DuckDB and PostgreSQL both run."""
    number = f"split_part({column}, ';', 1)"
    national = f"(case when {number} like '+86%' then substr({number}, 4) else {number} end)"
    digits = f"length(regexp_replace({national}, '[^0-9]', '', 'g'))"
    return (f"(case when {column} is null then null "
            f"when {digits} >= 11 then left({national}, length({national}) - {digits} + 3) "
            f"|| repeat('*', {digits} - 7) || right({national}, 4) "
            f"when {digits} >= 6 then left({national}, length({national}) - {digits} + 2) "
            f"|| repeat('*', {digits} - 4) || right({national}, 2) "
            f"else regexp_replace({national}, '[0-9]', '*', 'g') end)")


def mask_email_sql(column: str) -> str:
    """``mask_email`` as SQL that DuckDB and PostgreSQL both run."""
    return (f"(case when {column} is null then null when strpos({column}, '@') = 0 then left({column}, 1) || '***' "
            f"else left({column}, 1) || '***@' || substr({column}, strpos({column}, '@') + 1) end)")


PHONE_FIELDS = frozenset({"mobile", "mobiles", "landline", "landlines", "qq"})
ID_FIELDS = frozenset({"wechat", "douyin", "kuaishou"})
CONTACT_FIELDS = PHONE_FIELDS | ID_FIELDS | {"email", "emails"}


def mask_contact(field: str, value: str | None) -> str | None:
    """Mask a value of any contact field by its kind (other fields are returned as they are)."""
    if value is None:
        return None
    if field in {"email", "emails"}:
        return mask_email(value)
    if field in PHONE_FIELDS:
        return mask_phone(value)
    if field in ID_FIELDS:
        return value[:2] + "***" if len(value) > 2 else "***"
    return value
