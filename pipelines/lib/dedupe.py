"""Matching records into leads, for the lead library and for one file on its own (``leadfactory dedupe``)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl

from .dbt_project import run_dbt
from .home import LeadHome
from .ingest import SOURCE_SYSTEMS, ingest_source
from .leads import LEAD_MEMBERS, LeadStats, build_leads
from .match_config import MatchConfig, load_match_config
from .matching import prepare_match_input, score_pairs
from .publish import LEAD_RECORDS
from .readers import EXCEL_SUFFIXES

log = logging.getLogger(__name__)

EXCEL_MAX_ROWS = 1_048_575  # one header row


def match_records(conn: duckdb.DuckDBPyConnection, config: MatchConfig | None = None,
                  on_stage: Callable[[str, float], None] | None = None) -> LeadStats:
    """Score pairs among the standardised records and build leads; ``on_stage(name, seconds)`` reports progress."""
    config = config or load_match_config()
    t = time.perf_counter()
    prepare_match_input(conn, LEAD_RECORDS, config)
    score_pairs(conn, config.model_path, config.review)
    if on_stage:
        on_stage("score pairs (Splink)", time.perf_counter() - t)
    t = time.perf_counter()
    stats = build_leads(conn, LEAD_RECORDS, config)
    if on_stage:
        on_stage("cluster and build leads", time.perf_counter() - t)
    return stats


def standardise_home(home: LeadHome, on_stage: Callable[[str, float], None] | None = None) -> None:
    """Ingest every file of the (exported) home and run the dbt rules, without the library's data tests."""
    t = time.perf_counter()
    with home.connect() as conn:
        for system in SOURCE_SYSTEMS:
            result = ingest_source(conn, home.root, system)
            if result.rejected_files:
                raise ValueError(result.rejected_files[0][1])
    if on_stage:
        on_stage("read file", time.perf_counter() - t)
    t = time.perf_counter()
    run_dbt(["build", "--exclude-resource-type", "test"])
    if on_stage:
        on_stage("standardise (dbt)", time.perf_counter() - t)


OUTPUT_COLUMNS = (
    "source_row", "lead_id", "name", "mobile", "mobiles", "landline", "email", "emails", "wechat", "qq",
    "company", "company_core", "job_title", "job_title_canonical", "province", "city", "district", "address",
    "match_explanation",
)


def dedupe_file(input_path: Path, output_path: Path, config: MatchConfig | None = None,
                progress: Callable[[str, float], None] | None = None) -> tuple[pl.DataFrame, LeadStats, dict[str, float]]:
    """Deduplicate one file without touching the lead library; write one row per input data row."""
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise FileNotFoundError(f"{input_path}: no such file")
    if output_path.suffix.lower() not in (".csv", ".xlsx"):
        raise ValueError(f"{output_path}: the output must end in .csv or .xlsx")
    timings: dict[str, float] = {}

    def stage(name: str, seconds: float) -> None:
        timings[name] = seconds
        if progress:
            progress(name, seconds)

    with tempfile.TemporaryDirectory(prefix="leadfactory-dedupe-") as tmp:
        home = LeadHome.from_env(tmp).ensure()
        folder = home.inbox_dir if input_path.suffix.lower() in EXCEL_SUFFIXES else home.warehouse_dir
        shutil.copy(input_path, folder / input_path.name)
        with home.activated():
            standardise_home(home, stage)
            with home.connect() as conn:
                stats = match_records(conn, config, stage)
                t = time.perf_counter()
                output = conn.execute(f"""
                    select r.source_row, m.lead_id, r.name, r.mobile, array_to_string(r.mobiles, ';') as mobiles,
                           r.landline, r.email, array_to_string(r.emails, ';') as emails, r.wechat, r.qq,
                           r.company, r.company_core, r.job_title, r.job_title_canonical,
                           r.province, r.city, r.district, r.address, m.match_explanation
                    from {LEAD_RECORDS} r join {LEAD_MEMBERS} m using (record_id)
                    union all
                    select source_row, null, {', '.join(['null'] * (len(OUTPUT_COLUMNS) - 3))},
                           '未收录: ' || reason
                    from marts.lead_rejections where source_row is not null
                    order by source_row
                """).pl()
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if output_path.suffix.lower() == ".csv":
        output.write_csv(output_path, include_bom=True)  # the BOM lets Excel open Chinese text correctly
    else:
        if output.height > EXCEL_MAX_ROWS:
            raise ValueError(f"{output_path}: {output.height:,} rows do not fit in one Excel sheet; write .csv instead")
        output.write_excel(output_path, worksheet="去重结果")
    stage("write output", time.perf_counter() - t)
    return output, stats, timings
