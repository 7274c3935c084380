"""The whole nightly job on generated sample files: counts, lineage, metadata, publication, failure."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from pipelines.definitions import defs as load_defs
from pipelines.realtime.definitions import defs as load_realtime_defs
from pipelines.lib.sources.sample_data import generate_leads, write_sample_files
from pipelines.lib.quality.summary import run_summary
from tests.conftest import run_nightly_job, settled, use_home

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, module_monkeypatch):
    """The committed samples plus a generated set, run through the real job once."""
    root = tmp_path_factory.mktemp("sample_home")
    home = use_home(root, module_monkeypatch)
    shutil.copytree(SAMPLES / "warehouse", home.warehouse_dir, dirs_exist_ok=True)
    shutil.copytree(SAMPLES / "inbox", home.inbox_dir, dirs_exist_ok=True)
    generated = write_sample_files(generate_leads(600, seed=7), root / "generated")
    shutil.copy(root / "generated" / "warehouse" / "crm_leads.parquet", home.warehouse_dir / "generated.parquet")
    settled(home.inbox_dir / "broken.csv", write="姓名,手机\n张伟,13800138001,多余\n".encode())
    instance = dg.DagsterInstance.ephemeral()
    result = run_nightly_job(instance)
    return home, instance, result, generated


def test_run_succeeds_and_every_row_reconciles(sample_run):
    home, _, result, generated = sample_run
    assert result.success
    with home.connect(read_only=True) as conn:
        summary = run_summary(conn)
    committed = 200 + 100 + 100  # data/samples: parquet, GBK CSV, Excel
    assert summary.files_imported == 5 and summary.files_failed == 0
    assert summary.rows_read == committed + generated["warehouse/crm_leads.parquet"] + 1  # + broken.csv's one row
    assert summary.rows_rejected_at_import == 1  # the ragged row, by number; the file's other rows would load
    assert summary.reconciles
    # identical rows of one source are one record; every other row is one
    assert summary.rows_read - 1 - 10 <= summary.records_in_library <= summary.rows_read - 1
    assert summary.rows_standardised > 0.9 * summary.records_in_library
    assert summary.records_in_leads == summary.rows_standardised
    assert 0 < summary.leads_published < summary.rows_standardised  # duplicates were merged


def test_the_broken_row_is_rejected_by_file_and_row_in_the_receipt(sample_run):
    home, *_ = sample_run
    (receipt,) = home.outbox_dir.glob("*broken*_回执.xlsx")
    rejected = pl.read_excel(receipt, sheet_name="未收录 Rejected", infer_schema_length=0)
    assert rejected.height == 1
    row = rejected.row(0, named=True)
    assert row["文件 (file)"] == "inbox/broken.csv" and row["行号 (row)"] == "2"
    assert "第 2 行字段数为 3，表头有 2 列" in row["原因 (why)"]
    assert (home.inbox_dir / "archive").is_dir() and not (home.inbox_dir / "broken.csv").exists()


def test_lineage_columns_point_back_to_each_file_and_row(sample_run, query):
    home, *_ = sample_run
    rows = dict(query(home, "select source_file, max(source_row) from published.lead_members group by 1"))
    assert set(rows) == {
        "warehouse/crm_leads.parquet", "warehouse/legacy_leads_gbk.csv", "warehouse/generated.parquet",
        "inbox/展会线索.xlsx",
    }
    assert rows["warehouse/legacy_leads_gbk.csv"] <= 101 and rows["inbox/展会线索.xlsx"] <= 101  # Excel row numbers
    (systems,), = query(home, "select list(distinct source_system order by source_system) from published.lead_members")
    assert systems == ["inbox", "warehouse"]
    (extras,), = query(home, """select count(*) from marts.lead_records
                                where source_file like '%gbk.csv' and json_extract_string(extra_attributes, '$.客户等级') in ('A','B','C')""")
    assert extras > 90


def test_published_mobiles_are_all_e164(sample_run, query):
    home, *_ = sample_run
    (bad,), = query(home, r"""select count(*) from published.leads_clean, unnest(mobiles) as m(v)
                              where not regexp_full_match(v, '\+861[3-9][0-9]{9}|\+(8[0-57-9]|[1-79])[0-9]{5,13}')""")
    (good, leads), = query(home, "select count(mobile), count(*) from published.leads_clean")
    assert bad == 0 and good > 0.8 * leads


def test_assets_report_row_counts_and_completeness(sample_run):
    home, instance, *_ = sample_run
    for key in (["raw", "library_records"], ["marts", "lead_records"], ["published", "leads_clean"]):
        event = instance.get_latest_materialization_event(dg.AssetKey(key))
        assert event is not None, key
        metadata = event.asset_materialization.metadata
        assert metadata["row_count"].value > 0, key
        completeness = {k: v.value for k, v in metadata.items() if k.startswith("completeness/")}
        assert 0 < completeness["completeness/name"] <= 1, key
        assert 0 < completeness["completeness/mobile"] <= 1, key


def test_dbt_tests_ran_as_asset_checks_and_passed(sample_run):
    _, _, result, _ = sample_run
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) >= 15
    assert all(e.passed for e in evaluations), [e.check_name for e in evaluations if not e.passed]


def test_rerun_on_the_same_input_publishes_the_same_rows(sample_run, query):
    home, *_ = sample_run
    before = query(home, "select lead_id, mobile, company_core, record_count from published.leads_clean order by lead_id")
    assert run_nightly_job().success
    after = query(home, "select lead_id, mobile, company_core, record_count from published.leads_clean order by lead_id")
    assert before == after
    (publications,), = query(home, "select count(*) from published.publications where table_name = 'published.leads_clean'")
    assert publications == 2


def test_a_run_that_fails_while_publishing_keeps_the_previous_publication(sample_run, query):
    """A fault inside the publication itself, after import, standardisation, matching and the gates have
    succeeded: published.lead_events, which the publication appends to, has drifted (a column someone
    added). The publication has already replaced the lead tables when the append fails: all of it must be
    undone, leaving the previous version whole and no part of the new one."""
    home, *_ = sample_run
    tables = ("published.leads_clean", "published.leads_unreachable", "published.lead_members",
              "published.lead_review_queue", "published.lead_events", "published.publications",
              "matching.lead_registry")

    def state():
        return {t: query(home, f"select * from {t} order by all") for t in tables}

    before = state()
    settled(home.inbox_dir / "new.csv", write="姓名,手机\n新客户,13700001111\n".encode())
    with home.connect() as conn:
        conn.execute("alter table published.lead_events add column reviewed_by varchar")
    try:
        result = run_nightly_job(raise_on_error=False)
    finally:
        with home.connect() as conn:
            conn.execute("alter table published.lead_events drop column reviewed_by")
    assert not result.success
    failed = {e.step_key for e in result.all_events if e.is_step_failure}
    assert failed == {"published_leads"}, failed
    succeeded = {e.step_key for e in result.all_events if e.is_step_success}
    assert {"library_records", "matching__golden_leads"} <= succeeded  # it got as far as publishing
    (new_records,), = query(home, "select count(*) from marts.lead_records where source_file = 'inbox/new.csv'")
    assert new_records == 1  # the new lead was built, ready to publish
    after = state()
    for table in tables:
        assert after[table] == before[table], f"{table} changed in a failed publication"
    # repaired, the next run publishes the new lead
    assert run_nightly_job().success
    (published,), = query(home, "select count(*) from published.lead_members where source_file = 'inbox/new.csv'")
    assert published == 1


def test_asset_graph_runs_from_files_through_dbt_to_publication():
    graph = load_defs().resolve_asset_graph()
    lineage = [
        ["published", "leads_clean"], ["matching", "golden_leads"], ["matching", "scored_pairs"],
        ["marts", "lead_records"], ["intermediate", "int_leads_standardised"], ["intermediate", "int_leads_unioned"],
        ["staging", "stg_raw__library_records"], ["raw", "library_records"],
    ]
    for child, parent in zip(lineage, lineage[1:]):
        assert dg.AssetKey(parent) in graph.get(dg.AssetKey(child)).parent_keys, (child, parent)


def test_nightly_schedule_runs_everything_at_two_shanghai_time_and_is_on():
    defs = load_defs()
    schedule = defs.resolve_schedule_def("nightly_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "Asia/Shanghai"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "nightly_job"
    job_keys = defs.resolve_job_def("nightly_job").asset_layer.executable_asset_keys
    model = dg.AssetKey(["matching", "match_model"])
    # training is explicit
    assert job_keys == set(defs.resolve_asset_graph().executable_asset_keys) - {model}
    assert model in defs.resolve_job_def("training_job").asset_layer.executable_asset_keys
    # events and edits are applied by the real-time location's own job, within seconds, not at night
    realtime = load_realtime_defs()
    corrections = dg.AssetKey(["corrections", "applied_corrections"])
    deliveries = dg.AssetKey(["notify", "notification_deliveries"])
    assert realtime.resolve_job_def("correction_job").asset_layer.executable_asset_keys == {corrections}
    assert realtime.resolve_job_def("notification_job").asset_layer.executable_asset_keys == {deliveries}
    # an asset lives in one location only
    assert not set(realtime.resolve_asset_graph().executable_asset_keys) & job_keys


def test_the_real_time_location_loads_without_dbt_splink_or_great_expectations():
    """A run the daemon starts for one event loads its code location first: the heavy libraries would add
    seconds to every correction (issue 10: visible within 15 s)."""
    import subprocess
    import sys

    probe = ("import sys; from pipelines.realtime.definitions import defs; defs(); "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster_dbt', 'dbt', 'splink', 'great_expectations'}))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    assert loaded == "[]"


def test_every_duckdb_writer_shares_one_pool_limited_to_one(tmp_path, monkeypatch):
    pools = {a.op.pool for a in [*load_defs().assets, *load_realtime_defs().assets]}
    assert pools == {"duckdb_writer"}
    home = use_home(tmp_path, monkeypatch)
    config = yaml.safe_load((home.dagster_home / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"]["default_limit"] == 1
    with dg.DagsterInstance.get() as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1



def test_dbt_run_folders_live_in_the_home_and_only_the_newest_are_kept(sample_run, tmp_path):
    home, _, result, _ = sample_run
    assert (home.dbt_runs_dir / result.run_id / "run_results.json").exists()
    from pipelines.lib.standardise.dbt_project import prune_dbt_runs

    for i in range(12):
        folder = tmp_path / f"run{i:02d}"
        folder.mkdir()
        os.utime(folder, (1_000_000 + i, 1_000_000 + i))
    prune_dbt_runs(tmp_path, keep=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"run{i:02d}" for i in range(2, 12)]


def test_match_results_show_as_metadata(sample_run):
    _, instance, *_ = sample_run
    event = instance.get_latest_materialization_event(dg.AssetKey(["matching", "golden_leads"]))
    metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    for key in ("pairs_scored", "pairs_merged", "pairs_sent_to_review", "clusters_split_by_chaining_guard",
                "largest_cluster_before_guard", "leads"):
        assert key in metadata
    assert metadata["pairs_merged"] > 0 and metadata["leads"] > 0
    assert 1 < metadata["largest_cluster_before_guard"] <= 20


def test_every_record_is_in_exactly_one_lead_with_an_explanation(sample_run, query):
    home, *_ = sample_run
    (records, members, distinct, explained), = query(home, """
        select (select count(*) from marts.lead_records), count(*), count(distinct record_id),
               count(*) filter (where match_explanation is not null) from published.lead_members""")
    assert records == members == distinct == explained


def test_splink_leaves_no_working_tables_behind(sample_run, query):
    home, *_ = sample_run
    (leftovers,), = query(home, "select count(*) from information_schema.tables where table_name like '__splink__%'")
    assert leftovers == 0
