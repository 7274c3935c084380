"""Differential checks of the standardisation rules against reference libraries.

Each field has a module here (``phones``, ``emails``, ``places``) that generates messy values the way
people type them, asks a reference library (the oracle: ``phonenumbers``, ``email-validator``,
``cpca``) what each should become, and reads what the product made of it. ``<field>_differences.yaml``
lists, with reasons, the kinds of case where the product is deliberately different; every other
disagreement is a defect. The harness (``harness.py``) writes every case as one row of one CSV, runs
the real nightly job once and hands each field module its rows of ``marts.lead_records``.

A field module provides:

    FIELD: str                      # "phones" | "emails" | "places"
    ORACLE: str                     # the reference library and version, for the report
    def cases(seed: int, n: int) -> list[Case]
    def product(row: dict | None) -> object       # the product's verdict from the case's lead_records row
                                                  # (None when the record is not a lead record)
    def deliberate(case: Case, got: object) -> str | None
        # the name of the listed difference (in <field>_differences.yaml) this disagreement is, or None
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    case_id: str            # unique across fields, e.g. "phones-00042"
    cells: dict             # the input row's cells by header: 手机, 座机, 邮箱, 省份, 城市, 区县, 地址 ...
    meant: object           # what the person meant (the generator's truth), shown in reports
    expected: object        # the oracle's verdict, in the same shape as product()'s
    kind: str = ""          # the generator's name for the messy form, for per-kind figures
