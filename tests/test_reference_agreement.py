"""Differential test: the standardisation rules against the reference libraries, on generated messy values.

Every field's cases (tests/reference/) run through one real nightly job. A disagreement with the
oracle (phonenumbers, email-validator, cpca) must be one of the deliberate differences listed, with
the reason, in tests/reference/<field>_differences.yaml; anything else is a defect and fails here.
The README's agreement figures come from benchmarks/reference_agreement.py on more cases.
"""

from __future__ import annotations

import pytest

from tests.conftest import run_nightly_job, use_home
from tests.reference.harness import FIELDS, listed_differences, score, write_cases

SEED = 20261123
CASES_PER_FIELD = 600


@pytest.fixture(scope="module")
def reports(tmp_path_factory, module_monkeypatch):
    home = use_home(tmp_path_factory.mktemp("reference_home"), module_monkeypatch)
    by_field = write_cases(home.warehouse_dir / "reference_cases.csv", SEED, CASES_PER_FIELD)
    assert run_nightly_job().success
    return score(home.duckdb_path, by_field)


@pytest.mark.parametrize("field", FIELDS)
def test_every_disagreement_with_the_reference_is_a_listed_deliberate_difference(reports, field):
    report = reports[field]
    print(report.summary())
    shown = [f"{case.kind}: {case.cells} expected {case.expected} got {got}" for case, got in report.defects[:10]]
    assert not report.defects, f"{len(report.defects)} {field} cases disagree with {report.oracle}:\n" + "\n".join(shown)


@pytest.mark.parametrize("field", FIELDS)
def test_the_generator_exercises_the_hard_cases_and_the_rules_agree_on_most(reports, field):
    report = reports[field]
    # Many kinds of mess, each generated more than once: a generator that only makes clean values proves nothing.
    assert len(report.by_kind) >= 10 and sum(c for c, _ in report.by_kind.values()) == report.cases
    assert report.agreement >= 0.90, report.summary()


@pytest.mark.parametrize("field", FIELDS)
def test_listed_differences_give_a_reason_and_an_example(field):
    for name, entry in listed_differences(field).items():
        assert entry.get("why") and entry.get("example") is not None, name
