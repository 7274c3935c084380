"""Great Expectations gates: each kind of defect fails the right expectation for the right rows, and a
failing critical gate blocks publication while the previous publication stays."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.lib.quality.quality import EXPECTATIONS_DIR, EXPECTATIONS_ENV, validate_gate
from tests.conftest import run_nightly_job, use_home

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


@pytest.fixture(scope="module")
def published_home(tmp_path_factory, module_monkeypatch):
    home = use_home(tmp_path_factory.mktemp("quality_home"), module_monkeypatch)
    shutil.copytree(SAMPLES / "warehouse", home.warehouse_dir, dirs_exist_ok=True)
    shutil.copytree(SAMPLES / "inbox", home.inbox_dir, dirs_exist_ok=True)
    instance = dg.DagsterInstance.ephemeral()
    result = run_nightly_job(instance)
    assert result.success
    return home, result


def test_clean_data_passes_both_gates(published_home):
    _, result = published_home
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["standardised_records_quality"] and checks["golden_leads_quality"]


@pytest.fixture
def scratch(published_home, tmp_path):
    """A copy of the published warehouse to damage."""
    home, _ = published_home
    copy = tmp_path / "scratch.duckdb"
    shutil.copy(home.duckdb_path, copy)
    with duckdb.connect(str(copy)) as conn:
        yield conn


def failures(result):
    return {o.notes: o for o in result.outcomes if not o.success}


@pytest.mark.parametrize(("defect_sql", "expectation", "rows"), [
    ("update marts.lead_records set mobile = '+861380013800' where record_id in (select record_id from marts.lead_records order by record_id limit 3)",
     "mobiles in E.164: a mainland mobile +861[3-9] and 9 digits, another region by its country code; never an extension", 3),
    ("update marts.lead_records set email = 'zhang@@qq' where record_id in (select record_id from marts.lead_records where email is not null order by record_id limit 2)",
     "e-mail syntax", 2),
    ("update marts.lead_records set province = '火星省' where record_id in (select record_id from marts.lead_records order by record_id limit 4)",
     "province from the divisions list", 4),
    ("update marts.lead_records set name = 'N/A' where record_id in (select record_id from marts.lead_records order by record_id limit 2)",
     "no junk value left in names", 2),
    ("update marts.lead_records set company = '测试' where record_id in (select record_id from marts.lead_records order by record_id limit 1)",
     "no junk value left in companies", 1),
])
def test_each_record_defect_fails_its_expectation_for_those_rows(scratch, defect_sql, expectation, rows):
    before = {r[0] for r in scratch.execute("select record_id from marts.lead_records").fetchall()}
    scratch.execute(defect_sql)
    result = validate_gate(scratch, "standardised_records")
    failed = failures(result)
    assert not result.passed
    assert set(failed) == {expectation}
    assert failed[expectation].unexpected_count == rows
    assert failed[expectation].sample and all(row["record_id"] in before for row in failed[expectation].sample)


def test_rows_that_do_not_reconcile_fail_the_row_count(scratch):
    scratch.execute("delete from marts.lead_records where record_id in (select record_id from marts.lead_records limit 5)")
    failed = failures(validate_gate(scratch, "standardised_records"))
    assert set(failed) == {"rows read = rows accepted + rows rejected"}


REACHABLE = "every lead to publish has a reachable contact (valid mobile, e-mail, WeChat or QQ among its records' contacts)"
PUBLISHABLE = "leads to publish = leads of the members with a valid mobile, e-mail, WeChat or QQ among their records' contacts"


def test_an_unreachable_lead_that_escaped_quarantine_fails_the_golden_gate(scratch):
    (lead,), = scratch.execute("select lead_id from matching.leads_unreachable order by lead_id limit 1").fetchall()
    scratch.execute("delete from matching.leads_unreachable where lead_id = ?", [lead])
    failed = failures(validate_gate(scratch, "golden_leads"))
    assert set(failed) == {REACHABLE, PUBLISHABLE}  # one lead too many to publish, and it has no contact
    assert failed[REACHABLE].unexpected_count == 1
    assert failed[REACHABLE].sample[0]["lead_id"] == lead


def test_a_lead_given_a_contact_none_of_its_records_has_fails_the_golden_gate(scratch):
    """Survivorship inventing a contact: the lead looks reachable by its own columns, and its records say
    otherwise."""
    (lead,), = scratch.execute("select lead_id from matching.leads_unreachable order by lead_id limit 1").fetchall()
    scratch.execute("update matching.golden_leads set mobile = '+8613912345678', mobiles = ['+8613912345678'] "
                    "where lead_id = ?", [lead])
    scratch.execute("delete from matching.leads_unreachable where lead_id = ?", [lead])
    failed = failures(validate_gate(scratch, "golden_leads"))
    assert set(failed) == {REACHABLE, PUBLISHABLE}
    assert failed[REACHABLE].sample[0]["lead_id"] == lead


def test_a_reachable_lead_quarantined_fails_the_count_to_publish(scratch):
    (lead,), = scratch.execute("select lead_id from matching.golden_leads where mobile is not null "
                               "order by lead_id limit 1").fetchall()
    scratch.execute("insert into matching.leads_unreachable by name select *, '无任何联系方式 (no contact at all)' as reason, "
                    "[]::varchar[] as rows_to_fix from matching.golden_leads where lead_id = ?", [lead])
    failed = failures(validate_gate(scratch, "golden_leads"))
    assert set(failed) == {PUBLISHABLE}  # the lead is one too few to publish; the others are fine


def test_publication_checks_pass_on_what_was_built(scratch):
    from pipelines.lib.publish.publish import publish_leads

    publication = publish_leads(scratch)
    assert publication.row_counts["published.leads_clean"] > 0


@pytest.mark.parametrize(("fault", "refusal"), [
    # a lead published as reachable although none of its records has a valid contact
    ("""update matching.golden_leads set mobile = '+8613912345678', mobiles = ['+8613912345678']
        where lead_id = (select min(lead_id) from matching.leads_unreachable);
        delete from matching.leads_unreachable where lead_id = (select min(lead_id) from matching.leads_unreachable)""",
     "every published lead can be contacted"),
    # a lead whose contacts survivorship lost, quarantined although its records can be reached
    ("""create temp table victim as select min(lead_id) as lead_id from matching.golden_leads where mobile is not null;
        update matching.golden_leads set mobile = null, mobiles = [], email = null, emails = [], wechat = null,
            wechats = [], qq = null, qqs = [] where lead_id in (select lead_id from victim);
        insert into matching.leads_unreachable by name
        select *, '无任何联系方式 (no contact at all)' as reason, []::varchar[] as rows_to_fix from matching.golden_leads
        where lead_id in (select lead_id from victim)""",
     "every published lead can be contacted"),
    # a lead of the members that survivorship lost
    ("delete from matching.golden_leads where lead_id = (select max(lead_id) from matching.golden_leads where mobile is not null)",
     "every lead of the members is published once"),
    # a lead built from other records than its members
    ("update matching.golden_leads set record_count = record_count + 1 where lead_id = (select min(lead_id) from matching.golden_leads)",
     "every lead of the members is published once"),
])
def test_publication_checks_refuse_real_faults(scratch, fault, refusal):
    """Each check compares the tables about to be published with another source (the members, the
    records' contacts), so a fault in how the lead tables were built is refused and nothing is published."""
    from pipelines.lib.publish.publish import PublishError, publish_leads

    before = scratch.execute("select count(*), max(publication_id) from published.publications").fetchone()
    leads = scratch.execute("select lead_id from published.leads_clean order by lead_id").fetchall()
    for statement in fault.split(";"):
        scratch.execute(statement)
    with pytest.raises(PublishError, match=f"refused to publish: {refusal}"):
        publish_leads(scratch)
    assert scratch.execute("select count(*), max(publication_id) from published.publications").fetchone() == before
    assert scratch.execute("select lead_id from published.leads_clean order by lead_id").fetchall() == leads


def test_samples_are_masked(scratch):
    scratch.execute("update marts.lead_records set mobile = '+8612345678901' where record_id in (select record_id from marts.lead_records order by record_id limit 2)")
    failed = failures(validate_gate(scratch, "standardised_records"))
    text = json.dumps([o.sample for o in failed.values()], ensure_ascii=False)
    assert not re.search(r"\d{7,}", text), text


def test_a_failing_critical_gate_blocks_publication_and_keeps_the_previous_one(published_home, tmp_path, monkeypatch):
    """A stricter golden-lead suite (every lead must have a mobile) fails on real data: nothing is published."""
    home, _ = published_home
    strict = tmp_path / "strict"
    shutil.copytree(EXPECTATIONS_DIR, strict)
    suite = json.loads((strict / "golden_leads.json").read_text(encoding="utf-8"))
    suite["expectations"].append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "mobile"},
                                  "meta": {"notes": "every lead has a mobile (stricter than the product)"},
                                  "severity": "critical"})
    (strict / "golden_leads.json").write_text(json.dumps(suite, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv(EXPECTATIONS_ENV, str(strict))
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        before = conn.execute("select max(publication_id), count(*) from published.publications").fetchone()
        leads = conn.execute("select lead_id from published.leads_clean order by lead_id").fetchall()
    instance = dg.DagsterInstance.ephemeral()
    result = run_nightly_job(instance, raise_on_error=False)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["standardised_records_quality"].passed
    assert not checks["golden_leads_quality"].passed
    failing = checks["golden_leads_quality"].metadata["failing/mobile / every lead has a mobile (stricter than the product)"].value
    assert failing > 0
    published = [e for e in result.all_events if e.is_step_materialization and e.asset_key.path[0] == "published"]
    assert published == []
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        assert conn.execute("select max(publication_id), count(*) from published.publications").fetchone() == before
        assert conn.execute("select lead_id from published.leads_clean order by lead_id").fetchall() == leads


def test_a_malformed_suite_is_refused_naming_the_file(published_home, tmp_path, monkeypatch, scratch):
    (tmp_path / "standardised_records.json").write_text('{"name": "x", "expectations": [{"type": "expect_nothing"}]}')
    monkeypatch.setenv(EXPECTATIONS_ENV, str(tmp_path))
    from pipelines.lib.sources.field_mapping import ConfigError

    with pytest.raises(ConfigError, match="standardised_records.json: not a valid expectation suite"):
        validate_gate(scratch, "standardised_records")


def test_suite_value_sets_match_the_divisions_seed():
    import csv

    seed = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds" / "cn_divisions.csv"
    provinces = {r["name"] for r in csv.DictReader(seed.open(encoding="utf-8")) if r["level"] == "province"}
    for name in ("standardised_records", "golden_leads"):
        suite = json.loads((EXPECTATIONS_DIR / f"{name}.json").read_text(encoding="utf-8"))
        (expectation,) = [e for e in suite["expectations"] if e["kwargs"].get("column") == "province"]
        assert set(expectation["kwargs"]["value_set"]) == provinces


def test_quality_figures_are_recorded_on_every_run(published_home):
    _, result = published_home
    (event,) = [e for e in result.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey(["published", "leads_clean"])]
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert 50 < metadata["quality/contactable_pct"] <= 100
    assert 10 < metadata["quality/duplicate_rate_pct"] < 60
    assert 0.9 < metadata["quality/validity/mobile"] <= 1
    assert 0 < metadata["quality/completeness/mobile"] <= 1
    assert metadata["quality/review_queue_size"] >= 0
    assert 0 <= metadata["quality/freshness_hours/warehouse"] < 24


def test_fresh_sources_pass_and_a_stale_source_is_flagged(published_home, tmp_path):
    import os
    import time

    from pipelines.lib.quality.quality import source_age_hours

    _, result = published_home
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["warehouse_freshness"].passed and checks["inbox_freshness"].passed
    (tmp_path / "old.csv").write_text("姓名\n张伟\n", encoding="utf-8")
    two_days_ago = time.time() - 48 * 3600
    os.utime(tmp_path / "old.csv", (two_days_ago, two_days_ago))
    assert 47.9 < source_age_hours(tmp_path) < 48.1
    assert source_age_hours(tmp_path / "empty") is None


def test_report_prints_the_figures_and_writes_a_workbook(published_home):
    import subprocess
    import sys

    import fastexcel

    home, _ = published_home
    leadfactory = str(Path(sys.executable).with_name("leadfactory"))
    done = subprocess.run([leadfactory, "--home", str(home.root), "report"], capture_output=True, text=True, check=True)
    assert "contactable_pct" in done.stdout and "duplicate_rate_pct" in done.stdout
    written = Path(done.stdout.strip().splitlines()[-1].removeprefix("report written to "))
    assert written.parent == home.root / "reports"
    assert fastexcel.read_excel(written).sheet_names == ["质量概览", "无法联系的线索", "待审核"]


def test_data_docs_are_written_per_gate_and_need_no_network(published_home):
    from pipelines.lib.quality.datadocs import external_assets

    home, result = published_home
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    for gate in ("standardised_records", "golden_leads"):
        site = home.root / "data_docs" / gate
        index = site / "index.html"
        assert index.exists()
        assert checks[f"{gate}_quality"].metadata["data_docs"].value == index.as_uri()
        assert list(site.glob("validations/**/*.html")), "the validation itself is rendered"
        assert external_assets(site) == set()
        for page in site.rglob("*.html"):
            for ref in re.findall(r"""(?:src|href)=["']([^"':#?]+\.(?:css|js|svg))["']""", page.read_text(encoding="utf-8")):
                assert (page.parent / ref).resolve().is_file(), (page, ref)
        assert (site / "static/vendor/bootstrap/dist/css/bootstrap.min.css").stat().st_size > 100_000
        assert any((site / "static/vendor/@fortawesome/fontawesome-free/webfonts").glob("*.woff2"))


def test_every_run_writes_a_quality_workbook(published_home):
    home, result = published_home
    (event,) = [e for e in result.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey(["published", "leads_clean"])]
    report = Path(event.materialization.metadata["quality_report"].value)
    assert report.parent == home.root / "reports" and report.exists()
