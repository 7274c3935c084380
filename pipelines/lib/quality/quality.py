"""Great Expectations quality gates on the standardised records and on the leads about to be published.

GX 1.x cannot validate DuckDB through duckdb-engine, so each gate fetches its relation from DuckDB as
a pandas frame and validates that in an ephemeral GX context. The suites are versioned JSON files
under ``expectations/``; an expectation of severity ``critical`` failing blocks publication.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ..sources.field_mapping import ConfigError
from .masking import CONTACT_FIELDS, mask_contact, mask_email_sql, mask_phone_sql
from ..paths import PROJECT_DIR
from ..publish.publish import lead_contacts_sql

log = logging.getLogger(__name__)

EXPECTATIONS_DIR = PROJECT_DIR / "expectations"
EXPECTATIONS_ENV = "LEADFACTORY_EXPECTATIONS_DIR"  # another folder of suites, e.g. a stricter one
SAMPLE_ROWS = 5

# What each suite validates: the query (its columns are what the suite names) and the queries of the
# parameters the suite refers to as {"$PARAMETER": ...}.
GATES: dict[str, dict[str, Any]] = {
    "standardised_records": {
        "query": """select record_id, mobile, email, wechat, qq, province, city,
                           lower(name) as name_lower, lower(company) as company_lower, source_file, source_row
                    from marts.lead_records""",
        "parameters": {"accepted_rows": """select (select count(*) from raw.library_records)
                                   - (select count(*) from marts.lead_rejections)"""},
    },
    # An incremental run validates only the records it standardised (the rest passed when they were).
    "standardised_records_changed": {
        "suite": "standardised_records",
        "query": """select record_id, mobile, email, wechat, qq, province, city,
                           lower(name) as name_lower, lower(company) as company_lower, source_file, source_row
                    from marts.lead_records where record_id in (select record_id from raw.pending_changes)""",
        "parameters": {"accepted_rows": """select
            (select count(*) from raw.library_records where record_id in (select record_id from raw.pending_changes))
          - (select count(*) from marts.lead_rejections where record_id in (select record_id from raw.pending_changes))"""},
    },
    # matching.* holds every lead after a full build and only the rebuilt ones after an incremental one.
    # Reachability and the count of leads to publish come from the records' contacts as standardisation
    # judged them (intermediate.int_lead_contacts), not from the lead columns and the quarantine that
    # were derived from each other: a lead built with a contact none of its records has, a reachable lead
    # quarantined or an unreachable one let through fails here.
    "golden_leads": {
        "query": f"""with reachable_contacts as (
                         select lead_id, count(distinct field || ':' || value) as contacts
                         from ({lead_contacts_sql('matching.lead_members')})
                         group by lead_id)
                     select g.lead_id, g.mobile, g.email, g.wechat, g.qq, g.province, g.city,
                            lower(g.name) as name_lower, lower(g.company) as company_lower,
                            coalesce(r.contacts, 0) as reachable_contacts
                     from matching.golden_leads g
                     left join reachable_contacts r using (lead_id)
                     where g.lead_id not in (select lead_id from matching.leads_unreachable)""",
        "parameters": {"publishable_leads": f"""select count(distinct lead_id)
                                        from ({lead_contacts_sql('matching.lead_members')})"""},
    },
}


@dataclass
class Outcome:
    notes: str
    expectation: str
    column: str | None
    severity: str
    success: bool
    unexpected_count: int
    sample: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class QualityResult:
    suite: str
    rows: int
    outcomes: list[Outcome]

    @property
    def critical_failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "critical"]

    @property
    def passed(self) -> bool:
        return not self.critical_failures


def suite_path(name: str) -> Path:
    return Path(os.environ.get(EXPECTATIONS_ENV) or EXPECTATIONS_DIR) / f"{name}.json"


def load_suite(name: str):
    """The suite from its file; a malformed file is refused with its path and the reason."""
    import great_expectations as gx

    path = suite_path(name)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return gx.ExpectationSuite(name=doc["name"], expectations=doc["expectations"], meta=doc.get("meta") or {})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a valid expectation suite: {exc}") from exc


def _masked(row: dict[str, Any]) -> dict[str, Any]:
    """A failing row fit for metadata: contacts masked, missing values as None, numbers as plain ints."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, str):
            out[key] = mask_contact(key, value)
        elif value is None or value != value:  # NaN from pandas
            out[key] = None
        else:
            out[key] = value.item() if hasattr(value, "item") else value
    return out


# Keys of a GX result that hold no column values (a pandas index query, column names).
_NOT_VALUES = frozenset({"unexpected_index_query", "unexpected_index_column_names", "exception_info"})


def _mask_values(value: Any, field: str | None, columns: frozenset[str]) -> Any:
    """Every string in ``value`` masked as ``field`` (``mask_contact``), or, under a key that names a
    column, as that column; numbers (counts, percents, row indexes) stay."""
    if isinstance(value, str):
        return mask_contact(field, value) if field else value
    if isinstance(value, dict):
        return {key: item if key in _NOT_VALUES else _mask_values(item, key if key in columns else field, columns)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_values(item, field, columns) for item in value]
    return value


def mask_validation_result(result, columns) -> None:
    """Mask, in place, the contact values a GX validation result keeps (partial_unexpected_list and its
    counts, unexpected_list, index rows, observed values such as distinct values), so the Data Docs
    rendered from it show ``138****8000`` and ``z***@qq.com``: still the shape of what failed, never a
    whole contact."""
    columns = frozenset(columns)
    for item in result.results:
        kwargs = item.expectation_config.kwargs
        touched = [kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B"), *(kwargs.get("column_list") or [])]
        field = next((c for c in touched if c in CONTACT_FIELDS), None)
        if item.result:
            item.result = _mask_values(item.result, field, columns)


def validate_gate(conn: duckdb.DuckDBPyConnection, name: str, docs_dir: Path | None = None) -> QualityResult:
    """Validate one gate's relation against its suite; failing rows come back masked, a few per expectation.

    With ``docs_dir`` the validation is also rendered as Data Docs there, with local assets.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    gate = GATES[name]
    frame = conn.execute(gate["query"]).df()
    parameters = {key: conn.execute(sql).fetchone()[0] for key, sql in gate["parameters"].items()}
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    if docs_dir is not None:
        context.add_data_docs_site(site_name="local", site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
    suite = context.suites.add(load_suite(gate.get("suite", name)))
    batch_definition = (
        context.data_sources.add_pandas(f"{name}_source").add_dataframe_asset(name).add_batch_definition_whole_dataframe("all rows")
    )
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch_definition, suite=suite))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        # No UpdateDataDocsAction: it would render the values before they are masked (below).
        name=f"{name}_gate", validation_definitions=[definition], actions=[],
        # SUMMARY keeps a few failing rows per expectation, so pages stay small at a million rows.
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_ROWS},
    ))
    run = checkpoint.run(batch_parameters={"dataframe": frame}, expectation_parameters=parameters)
    ((key, result),) = run.run_results.items()
    mask_validation_result(result, frame.columns)
    if docs_dir is not None:
        from .datadocs import vendorize

        # The run stored its unmasked result in the (in-memory) store the site builder reads: replace it.
        context.validation_results_store.set(key, result)
        context.build_data_docs(site_names=["local"], build_index=True,
                                resource_identifiers=[key, ExpectationSuiteIdentifier(name=result.suite_name)])
        vendorize(Path(docs_dir))
    outcomes = []
    for item in result.results:
        config = item.expectation_config
        indexes = (item.result or {}).get("partial_unexpected_index_list") or []
        sample = [_masked(frame.iloc[i].to_dict()) for i in indexes[:SAMPLE_ROWS]] if indexes else []
        outcomes.append(Outcome(
            notes=(config.meta or {}).get("notes", config.type),
            expectation=config.type,
            column=config.kwargs.get("column"),
            severity=str(getattr(config.severity, "value", config.severity)),
            success=bool(item.success),
            unexpected_count=int((item.result or {}).get("unexpected_count") or (0 if item.success else 1)),
            sample=sample,
        ))
    quality = QualityResult(gate.get("suite", name), len(frame), outcomes)
    for failure in quality.critical_failures:
        log.warning("quality gate %s: %s failed for %d rows", name, failure.notes, failure.unexpected_count)
    return quality


def quality_figures(conn: duckdb.DuckDBPyConnection, home_root: Path | None = None) -> dict[str, float | int]:
    """The numbers a run is judged by, recorded every run so they can be followed over time."""
    from .profiling import profile_relation
    from ..publish.publish import LEAD_MEMBERS, LEAD_REVIEW_QUEUE, LEADS_CLEAN, LEADS_UNREACHABLE

    reachable, unreachable, records, review = conn.execute(f"""
        select (select count(*) from {LEADS_CLEAN}), (select count(*) from {LEADS_UNREACHABLE}),
               (select count(*) from {LEAD_MEMBERS}), (select count(*) from {LEAD_REVIEW_QUEUE})""").fetchone()
    leads = reachable + unreachable
    figures: dict[str, float | int] = {
        "contactable_pct": round(100 * reachable / leads, 2) if leads else 0.0,
        "duplicate_rate_pct": round(100 * (1 - leads / records), 2) if records else 0.0,
        "leads": leads,
        "review_queue_size": review,
    }
    for key, value in profile_relation(conn, LEADS_CLEAN).items():
        if key.startswith("completeness/"):
            figures[key] = value
    for contact_field, valid, total in conn.execute("""
            select field, count(*) filter (where status = 'valid'), count(*)
            from intermediate.int_lead_contacts group by field order by field""").fetchall():
        figures[f"validity/{contact_field}"] = round(valid / total, 4) if total else 1.0
    if home_root is not None:
        for source in ("warehouse", "inbox"):
            hours = source_age_hours(home_root / source)
            figures[f"freshness_hours/{source}"] = hours if hours is not None else -1.0
    return figures


def source_age_hours(folder: Path) -> float | None:
    """Hours since the newest file in a source folder arrived; None when it holds no file."""
    import time

    newest = max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=None)
    return round((time.time() - newest) / 3600, 2) if newest is not None else None


def write_quality_report(conn: duckdb.DuckDBPyConnection, home_root: Path) -> tuple[Path, dict[str, Any]]:
    """The run's figures, unreachable leads and review queue as an Excel workbook under <home>/reports/."""
    from datetime import datetime

    import polars as pl
    import xlsxwriter

    from .summary import run_summary

    figures: dict[str, Any] = {**run_summary(conn).as_dict(), **quality_figures(conn, home_root)}
    unreachable = conn.execute("select lead_id, name, company, reason, array_to_string(rows_to_fix, '; ') as rows_to_fix "
                               "from published.leads_unreachable order by lead_id").pl()
    # The report is for whoever follows the figures: contacts masked as the CRM's service role sees them
    # (the review workbook in the outbox has them in full, for the specialists who decide).
    review = conn.execute(f"""select * exclude (review_id) replace (
                                  {mask_phone_sql('mobile_l')} as mobile_l, {mask_phone_sql('mobile_r')} as mobile_r,
                                  {mask_email_sql('email_l')} as email_l, {mask_email_sql('email_r')} as email_r)
                              from published.lead_review_queue""").pl()
    target = home_root / "reports" / f"quality_{datetime.now():%Y%m%d_%H%M%S_%f}.xlsx"
    target.parent.mkdir(parents=True, exist_ok=True)
    with xlsxwriter.Workbook(target) as workbook:
        pl.DataFrame({"指标 figure": list(figures), "数值 value": [str(v) for v in figures.values()]}).write_excel(
            workbook, worksheet="质量概览")
        unreachable.write_excel(workbook, worksheet="无法联系的线索")
        review.write_excel(workbook, worksheet="待审核")
    return target, figures
