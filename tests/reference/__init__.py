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

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    case_id: str            # unique across fields, e.g. "phones-00042"
    cells: dict             # the input row's cells by header: 手机, 座机, 邮箱, 省份, 城市, 区县, 地址 ...
    meant: object           # what the person meant (the generator's truth), shown in reports
    expected: object        # the oracle's verdict, in the same shape as product()'s
    kind: str = ""          # the generator's name for the messy form, for per-kind figures


def weighted_cases(field: str, seed: int, n: int, kinds: list[tuple[Callable, float]],
                   case_of: Callable[[object, object], tuple[dict, object]]) -> list[Case]:
    """``n`` cases, each of a kind drawn by weight; a kind makes (meant, what it wrote) from the random
    generator, and ``case_of`` turns that into the row's cells and the oracle's verdict."""
    rng = random.Random(seed)
    functions, weights = zip(*kinds)
    out = []
    for i in range(n):
        kind = rng.choices(functions, weights)[0]
        meant, written = kind(rng)
        cells, expected = case_of(meant, written)
        out.append(Case(case_id=f"{field}-{i:05d}", cells=cells, meant=meant, expected=expected,
                        kind=kind.__name__.lstrip("_")))
    return out
