"""Run every field's reference cases through the real nightly job once and score them.

Used by tests/test_reference_agreement.py (in the suite) and benchmarks/reference_agreement.py (the
figures in the README), so both measure the same thing.
"""

from __future__ import annotations

import importlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import yaml

from . import Case

FIELDS = ("phones", "emails", "places")
FILLER_COMPANY = "样例填充有限公司"  # keeps a row a lead record when the field under test ends up empty


def field_module(name: str):
    return importlib.import_module(f"tests.reference.{name}")


def listed_differences(name: str) -> dict[str, dict]:
    """The deliberate differences of a field, by name, from <field>_differences.yaml."""
    path = Path(__file__).with_name(f"{name}_differences.yaml")
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return {entry["name"]: entry for entry in entries}


@dataclass
class FieldReport:
    field: str
    oracle: str
    cases: int = 0
    agree: int = 0
    deliberate: Counter = field(default_factory=Counter)
    defects: list[tuple[Case, object]] = field(default_factory=list)
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind -> [cases, agree]

    @property
    def agreement(self) -> float:
        return self.agree / self.cases if self.cases else 1.0

    def summary(self) -> str:
        lines = [f"{self.field:<7} vs {self.oracle:<24} {self.cases:>6} cases  agree {self.agreement:7.2%}  "
                 f"deliberate {sum(self.deliberate.values()):>5}  defects {len(self.defects):>4}"]
        for name, count in self.deliberate.most_common():
            lines.append(f"          deliberate: {name:<40} {count:>5}")
        return "\n".join(lines)


def write_cases(path: Path, seed: int, n: int, fields: tuple[str, ...] = FIELDS) -> dict[str, list[Case]]:
    """All fields' cases as rows of one CSV (one row per case); returns the cases by field."""
    by_field = {name: field_module(name).cases(seed, n) for name in fields}
    rows = []
    for cases in by_field.values():
        for case in cases:
            # 负责人 only tells rows apart: identical rows of one source are one record.
            rows.append({"case_id": case.case_id, "公司": FILLER_COMPANY, "负责人": f"样例-{case.case_id}", **case.cells})
    headers = sorted({key for row in rows for key in row})
    frame = pl.DataFrame([{h: row.get(h) for h in headers} for row in rows], schema={h: pl.String for h in headers})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(frame.write_csv().encode("utf-8"))
    return by_field


def score(duckdb_path: Path, by_field: dict[str, list[Case]]) -> dict[str, FieldReport]:
    """Compare the product's lead records with each case's oracle verdict."""
    with duckdb.connect(str(duckdb_path), read_only=True) as conn:
        cursor = conn.execute(
            "select json_extract_string(extra_attributes, '$.case_id') as case_id, * from marts.lead_records")
        names = [d[0] for d in cursor.description]
        rows = {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}
    reports = {}
    for name, cases in by_field.items():
        module = field_module(name)
        listed = listed_differences(name)
        report = FieldReport(name, module.ORACLE)
        for case in cases:
            got = module.product(rows.get(case.case_id))
            kind = report.by_kind.setdefault(case.kind, [0, 0])
            report.cases += 1
            kind[0] += 1
            if _same(got, case.expected):
                report.agree += 1
                kind[1] += 1
                continue
            why = module.deliberate(case, got)
            if why is not None and why not in listed:
                raise KeyError(f"{name}: deliberate difference {why!r} is not listed in {name}_differences.yaml")
            if why is None:
                report.defects.append((case, got))
            else:
                report.deliberate[why] += 1
        reports[name] = report
    return reports


def _same(got: object, expected: object) -> bool:
    return json.dumps(got, default=str, ensure_ascii=False) == json.dumps(expected, default=str, ensure_ascii=False)
