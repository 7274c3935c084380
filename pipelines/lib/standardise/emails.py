"""E-mail addresses SQL cannot judge: non-ASCII (用户@例子.中国, Unicode local parts) and punycode (xn--).

Plain ASCII addresses are judged in SQL by one regular expression (dbt_project/macros/emails.sql) that
restates email-validator's rules; only the rest comes here, once per distinct value, to
``email_validator.validate_email`` with no deliverability check (no DNS, no network).

The product follows email-validator 2.4.0's defaults (internationalised addresses allowed; quoted local
parts, bracketed IP domains and display names refused; special-use domains such as .test, .local and
.localhost refused; the domain needs a dot and must end in a letter), with three product rules:

- the local part is lower-cased (email-validator keeps its case): ``ZhangWei@QQ.com`` -> ``zhangwei@qq.com``;
- the local part is at most 64 octets (RFC 5321 4.5.3.1.1; email-validator checks it only when ``strict``);
- the canonical domain is email-validator's normalised one: the Unicode form (U-labels), UTS-46 mapped
  (so lower-case) and NFC, so ``用户@xn--fsqu00a.xn--fiqs8s`` and ``用户@例子.中国`` are both ``用户@例子.中国``.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

LOCAL_PART_MAX_OCTETS = 64


@lru_cache(maxsize=200_000)
def canonical_email(address: str) -> str | None:
    """The canonical form of a valid address, or None when email-validator (or the 64-octet rule) refuses it."""
    try:
        checked = validate_email(
            address,
            check_deliverability=False,
            allow_smtputf8=True,
            allow_empty_local=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            strict=False,  # the local part's length is checked below, in octets
            globally_deliverable=True,
            test_environment=False,
        )
    except EmailNotValidError:
        return None
    local = unicodedata.normalize("NFC", checked.local_part.lower())
    if len(local.encode("utf-8")) > LOCAL_PART_MAX_OCTETS:
        return None
    return f"{local}@{checked.domain}"

