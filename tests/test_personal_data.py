"""Personal data stays where it belongs: a real run whose contacts fail expectations leaves no full mobile
or e-mail in Data Docs, the quality report, the logs at INFO, the command's output or the Dagster run's
event log and metadata; those show them masked (``138****8000``, ``z***@qq.com``). Receipts and review
workbooks, which specialists need in full, are written under the data home only."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import fastexcel
import pytest

from pipelines.lib.quality.masking import mask_email, mask_phone
from pipelines.lib.quality.quality import EXPECTATIONS_DIR, EXPECTATIONS_ENV, mask_validation_result
from tests.conftest import use_home, write_csv

LEADFACTORY = str(Path(sys.executable).with_name("leadfactory"))
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"

# People of our own beside the committed samples: two share a mobile (fails uniqueness), and one has only
# a mobile with a digit missing, so the row is rejected and its raw value named (masked) in the log.
PEOPLE = [
    {"姓名": "欧阳明远", "手机": "13912340001", "邮箱": "ouyang.mingyuan@qq.com", "公司": "远航物流有限公司"},
    {"姓名": "司马静怡", "手机": "13912340002", "邮箱": "Sima.Jingyi@163.com", "公司": "静怡文化传媒有限公司"},
    {"姓名": "诸葛文博", "手机": "13912340003", "邮箱": "zhuge.wenbo@126.com", "公司": "文博科技有限公司"},
    {"姓名": "上官晓峰", "手机": "13912340004", "邮箱": "", "公司": "晓峰建材有限公司"},
    {"姓名": "慕容雪", "手机": "13912340004", "邮箱": "murong.xue@outlook.com", "公司": "雪域食品有限公司"},
    {"姓名": "皇甫立新", "手机": "1391234567", "邮箱": "", "公司": ""},
]
INVALID_MOBILE = "1391234567"

# Stricter suites that every contact fails (warning: the run still publishes and reports), so the gates
# have contacts to show.
STRICT = [
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "mobile", "regex": r"^\+86100"},
     "meta": {"notes": "test: no mobile passes"}, "severity": "warning"},
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "email", "regex": r"@example\.invalid$"},
     "meta": {"notes": "test: no e-mail passes"}, "severity": "warning"},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "mobile"},
     "meta": {"notes": "test: mobiles are unique"}, "severity": "warning"},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "email", "value_set": ["nobody@example.invalid"]},
     "meta": {"notes": "test: one e-mail only"}, "severity": "warning"},
]

# Where the product keeps personal data in full by design (README); everything else in the home is scanned.
PERSONAL_DATA = {"library", "versions", "backup", "outbox", "inbox", "warehouse", "events"}
MASKED_MOBILE = re.compile(r"1[3-9]\d\*{4}\d{4}")
MASKED_EMAIL = re.compile(r"\w\*\*\*@[\w.-]+\.\w+")


def _run(*args: str, home: Path, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([LEADFACTORY, "--home", str(home), *args], capture_output=True, text=True,
                          cwd=cwd, env=os.environ.copy(), timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def ran(tmp_path_factory, module_monkeypatch):
    """One real nightly run through the command (normal verbosity) on a home whose contacts fail the
    (stricter) gates, then the report, the summary and a review export, each run from an empty folder."""
    root = tmp_path_factory.mktemp("personal_home")
    home = use_home(root, module_monkeypatch)
    shutil.copytree(SAMPLES / "warehouse", home.warehouse_dir, dirs_exist_ok=True)
    shutil.copytree(SAMPLES / "inbox", home.inbox_dir, dirs_exist_ok=True)
    write_csv(home.inbox_dir / "名片.csv", PEOPLE)
    strict = tmp_path_factory.mktemp("strict_suites")
    for name in ("standardised_records", "golden_leads"):
        suite = json.loads((EXPECTATIONS_DIR / f"{name}.json").read_text(encoding="utf-8"))
        suite["expectations"] += STRICT
        (strict / f"{name}.json").write_text(json.dumps(suite, ensure_ascii=False), encoding="utf-8")
    module_monkeypatch.setenv(EXPECTATIONS_ENV, str(strict))
    cwd = tmp_path_factory.mktemp("cwd")  # nothing may be written where the command is started
    outputs = {"run": _run("run", home=root, cwd=cwd)}
    outputs["report"] = _run("report", home=root, cwd=cwd)
    outputs["summary"] = _run("summary", home=root, cwd=cwd)
    outputs["review export"] = _run("review", "export", home=root, cwd=cwd)
    return home, outputs, cwd


@pytest.fixture(scope="module")
def contacts(ran) -> dict[str, set[str]]:
    """Every mobile and e-mail of the input, as standardised (E.164 and the national number) and as typed."""
    home, *_ = ran
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        mobiles = {v for (v,) in conn.execute("select distinct unnest(mobiles) from marts.lead_records").fetchall()}
        emails = {v for (v,) in conn.execute("select distinct unnest(emails) from marts.lead_records").fetchall()}
    assert {f"+86{p['手机']}" for p in PEOPLE if p["手机"] != INVALID_MOBILE} <= mobiles
    assert {p["邮箱"].lower() for p in PEOPLE if p["邮箱"]} <= emails
    return {"mobile": mobiles | {m.removeprefix("+86") for m in mobiles} | {INVALID_MOBILE},
            "email": emails | {p["邮箱"] for p in PEOPLE if p["邮箱"]}}


def leaked(text: str, contacts: dict[str, set[str]]) -> list[str]:
    lowered = text.lower()
    return sorted(v for values in contacts.values() for v in values if v.lower() in lowered)


def masked_forms(contacts: dict[str, set[str]]) -> tuple[set[str], set[str]]:
    return ({mask_phone(m) for m in contacts["mobile"] if m.startswith("+86")},
            {mask_email(e) for e in contacts["email"] if e == e.lower()})


def workbook_text(path: Path) -> str:
    reader = fastexcel.read_excel(path)
    return "\n".join(json.dumps(reader.load_sheet(name, header_row=None).to_polars().rows(), ensure_ascii=False,
                                default=str) for name in reader.sheet_names)


def file_text(path: Path) -> str:
    if path.suffix == ".xlsx":
        return workbook_text(path)
    return path.read_bytes().decode("utf-8", errors="ignore")  # SQLite files too: their text is stored as is


def test_the_gates_had_contacts_to_show(ran):
    """The stricter suites failed on contacts, so every place below had full values it could have shown."""
    home, *_ = ran
    run = _last_run(home)
    evaluations = [e.dagster_event.asset_check_evaluation_data for e in _events(home, run)
                   if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"]
    failing = {e.check_name: e.metadata["failing_samples"].value for e in evaluations if "failing_samples" in e.metadata}
    for gate in ("standardised_records_quality", "golden_leads_quality"):
        assert {"test: no mobile passes", "test: no e-mail passes", "test: mobiles are unique"} <= set(failing[gate])


def test_data_docs_show_contacts_masked_only(ran, contacts):
    home, *_ = ran
    mobiles, emails = masked_forms(contacts)
    for gate in ("standardised_records", "golden_leads"):
        pages = [p for p in (home.root / "data_docs" / gate).rglob("*") if p.is_file() and "static" not in p.parts]
        assert pages
        for page in pages:
            assert leaked(file_text(page), contacts) == [], page
        (validation,) = (home.root / "data_docs" / gate / "validations").rglob("*.html")
        shown = validation.read_text(encoding="utf-8")
        # the failing values are still there for the engineer, masked: their shape, prefix and domain
        assert set(MASKED_MOBILE.findall(shown)) & mobiles, gate
        assert set(MASKED_EMAIL.findall(shown)) & emails, gate


def test_the_quality_report_shows_contacts_masked_only(ran, contacts):
    home, outputs, _ = ran
    reports = sorted((home.root / "reports").glob("quality_*.xlsx"))
    assert len(reports) == 2  # the run's and the `report` command's
    for report in reports:
        assert leaked(workbook_text(report), contacts) == [], report
        review = fastexcel.read_excel(report).load_sheet("待审核").to_polars()
        shown = [v for column in ("mobile_l", "mobile_r") for v in review[column].to_list() if v]
        assert all(MASKED_MOBILE.fullmatch(v) for v in shown), shown
        shown = [v for column in ("email_l", "email_r") for v in review[column].to_list() if v]
        assert all(MASKED_EMAIL.fullmatch(v) for v in shown), shown
    for command in ("report", "summary"):
        assert leaked(outputs[command].stdout + outputs[command].stderr, contacts) == [], command


def test_the_command_output_and_its_logs_at_info_show_contacts_masked_only(ran, contacts):
    _, outputs, _ = ran
    for command, done in outputs.items():
        assert leaked(done.stdout + done.stderr, contacts) == [], command
    logged = outputs["run"].stderr
    assert " - INFO - " in logged and "INFO pipelines." in logged  # Dagster's and the product's INFO lines
    # the rejected row is named with its value masked
    (line,) = [line for line in logged.splitlines() if re.search(r"名片\.csv row \d+ rejected", line)]
    assert mask_phone(INVALID_MOBILE) in line, line


def test_the_run_event_log_and_metadata_show_contacts_masked_only(ran, contacts):
    from dagster._serdes import serialize_value

    home, *_ = ran
    run = _last_run(home)
    events = _events(home, run)
    assert len(events) > 50
    text = "\n".join(serialize_value(e) for e in events)
    assert leaked(text, contacts) == []
    mobiles, emails = masked_forms(contacts)
    assert set(MASKED_MOBILE.findall(text)) & mobiles and set(MASKED_EMAIL.findall(text)) & emails


def test_nothing_else_in_the_home_holds_a_full_contact(ran, contacts):
    """Everything outside the folders documented as personal data (and the DuckDB file): Data Docs,
    reports, dbt's logs and artefacts, Dagster's storage (runs, event logs, captured step output)."""
    home, *_ = ran
    scanned = 0
    for path in home.root.rglob("*"):
        relative = path.relative_to(home.root)
        if not path.is_file() or relative.parts[0] in PERSONAL_DATA or path.name.startswith(home.duckdb_path.name):
            continue
        if path.suffix in (".woff", ".woff2", ".ttf", ".otf", ".png", ".gif", ".ico", ".gpickle", ".msgpack"):
            continue
        assert leaked(file_text(path), contacts) == [], relative
        scanned += 1
    assert scanned > 20


def test_receipts_and_review_workbooks_are_written_under_the_data_home_only(ran, contacts):
    home, outputs, cwd = ran
    assert list(cwd.iterdir()) == []
    exported = Path(outputs["review export"].stdout.split(" pairs to review in ")[1].splitlines()[0])
    assert exported.parent == home.outbox_dir and exported.name.startswith("审核_")
    receipts = {path.name.split("_")[1]: path for path in home.outbox_dir.glob("*_回执.xlsx")}
    assert set(receipts) == {"展会线索", "名片"}  # one per inbox file
    assert leaked(workbook_text(receipts["名片"]), contacts)  # specialists get them in full, there
    for path in home.root.rglob("*.xlsx"):
        assert path.relative_to(home.root).parts[0] in ("outbox", "reports", "inbox", "warehouse"), path


def test_every_contact_value_a_validation_result_keeps_is_masked():
    """Beyond the failing-row lists: index rows keyed by column, counts per value, observed values of
    aggregate expectations (distinct values) and multi-column results."""
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    def item(kind, kwargs, result):
        return ExpectationValidationResult(success=False, expectation_config=ExpectationConfiguration(type=kind, kwargs=kwargs),
                                           result=result)

    suite = ExpectationSuiteValidationResult(success=False, suite_name="t", results=[
        item("expect_column_values_to_match_regex", {"column": "mobile", "regex": "x"}, {
            "partial_unexpected_list": ["+8613800138000"],
            "partial_unexpected_counts": [{"value": "+8613800138000", "count": 2}],
            "partial_unexpected_index_list": [{"record_id": "r1", "mobile": "+8613800138000"}],
            "unexpected_index_query": "df.filter(items=[13800138000], axis=0)", "unexpected_count": 2}),
        item("expect_column_distinct_values_to_be_in_set", {"column": "email", "value_set": []}, {
            "observed_value": ["zhang.wei@qq.com"], "details": {"value_counts": [{"value": "zhang.wei@qq.com", "count": 1}]}}),
        item("expect_compound_columns_to_be_unique", {"column_list": ["name_lower", "email"]}, {
            "partial_unexpected_list": [{"name_lower": "张伟", "email": "zhang.wei@qq.com"}]}),
        item("expect_column_values_to_be_in_set", {"column": "province", "value_set": []}, {
            "partial_unexpected_list": ["火星省"]}),
    ])
    mask_validation_result(suite, ["record_id", "mobile", "email", "name_lower", "province"])
    text = json.dumps([r.result for r in suite.results], ensure_ascii=False)
    assert "13800138000" not in text.replace("items=[13800138000]", "") and "zhang.wei" not in text
    assert text.count("138****8000") == 3 and text.count("z***@qq.com") == 3
    assert "张伟" in text and "火星省" in text and '"record_id": "r1"' in text and '"count": 2' in text


def _last_run(home):
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        (run,) = instance.get_runs(limit=1)
        assert run.job_name == "nightly_job" and run.is_success
        return run.run_id


def _events(home, run_id):
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        return instance.all_logs(run_id)
