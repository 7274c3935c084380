"""Masking of personal data for logs and metadata: never show a whole phone number or e-mail."""

from __future__ import annotations

import re

_DIGIT = re.compile(r"\d")


def mask_phone(value: str | None) -> str | None:
    """Keep the first three and last two digits: ``+8613800138000`` -> ``+86138******00``."""
    if value is None:
        return None
    digits = [i for i, ch in enumerate(value) if ch.isdigit()]
    if len(digits) <= 5:
        return _DIGIT.sub("*", value)
    keep = set(digits[:5] if value.startswith("+86") else digits[:3]) | set(digits[-2:])
    return "".join(ch if (not ch.isdigit() or i in keep) else "*" for i, ch in enumerate(value))


def mask_email(value: str | None) -> str | None:
    """Keep the first character of the local part and the domain: ``zhang.wei@qq.com`` -> ``z***@qq.com``."""
    if value is None:
        return None
    local, at, domain = value.partition("@")
    if not at:
        return (value[:1] + "***") if value else value
    return f"{local[:1]}***@{domain}"


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
