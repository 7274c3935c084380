"""Great Expectations gates as blocking Dagster asset checks: a critical failure stops publication."""

import dagster as dg

from pipelines.defs.resources import LeadHomeResource
from pipelines.lib.quality.quality import GATES, QualityResult, source_age_hours, suite_path, validate_gate
from pipelines.lib.refresh import refresh_plan
from pipelines.lib.sources.sources import Source, load_sources


def _gate(context: dg.AssetCheckExecutionContext, lead_home: LeadHomeResource, name: str) -> dg.AssetCheckResult:
    """Validate one gate and render its Data Docs into <home>/data_docs/<gate>/ (one site per gate, so
    each check's build leaves the other's pages alone)."""
    home = lead_home.lead_home()
    docs = home.root / "data_docs" / name
    with home.connect(read_only=True) as conn:
        plan = refresh_plan(conn, context.run.run_id, context.run.root_run_id)
        gate = f"{name}_changed" if plan.incremental and f"{name}_changed" in GATES else name
        # Data Docs describe the whole library: an incremental run leaves the last full run's pages
        quality = validate_gate(conn, gate, docs_dir=None if plan.incremental else docs)
    result = _check_result(quality)
    index = docs / "index.html"
    return dg.AssetCheckResult(
        passed=result.passed, severity=result.severity, description=result.description,
        metadata={**result.metadata, "refresh": plan.describe(), "data_docs": dg.MetadataValue.url(index.as_uri())},
    )


def _check_result(quality: QualityResult) -> dg.AssetCheckResult:
    metadata: dict = {"rows_validated": quality.rows, "suite": dg.MetadataValue.path(str(suite_path(quality.suite)))}
    for outcome in quality.outcomes:
        label = f"{outcome.column or 'table'} / {outcome.notes}"
        metadata[f"failing/{label}"] = outcome.unexpected_count
    failing = {o.notes: {"severity": o.severity, "failing": o.unexpected_count, "sample (masked)": o.sample}
               for o in quality.outcomes if not o.success}
    metadata["failing_samples"] = dg.MetadataValue.json(failing)
    critical = quality.critical_failures
    description = ("all critical expectations met" if not critical else
                   "critical expectations failed: " + "; ".join(f"{o.notes} ({o.unexpected_count} rows)" for o in critical))
    return dg.AssetCheckResult(passed=quality.passed, severity=dg.AssetCheckSeverity.ERROR,
                               metadata=metadata, description=description)


@dg.asset_check(
    asset=dg.AssetKey(["marts", "lead_records"]),
    name="standardised_records_quality",
    blocking=True,
    description="expectations/standardised_records.json: contact forms, divisions, no junk, rows reconcile.",
)
def standardised_records_quality(context: dg.AssetCheckExecutionContext,
                                 lead_home: LeadHomeResource) -> dg.AssetCheckResult:
    return _gate(context, lead_home, "standardised_records")


@dg.asset_check(
    asset=dg.AssetKey(["matching", "golden_leads"]),
    name="golden_leads_quality",
    blocking=True,
    description="expectations/golden_leads.json: unique ids, every lead to publish reachable, contact forms, "
                "divisions, no junk, counts reconcile. Failing blocks publication; the previous one stays.",
)
def golden_leads_quality(context: dg.AssetCheckExecutionContext, lead_home: LeadHomeResource) -> dg.AssetCheckResult:
    return _gate(context, lead_home, "golden_leads")


FRESHNESS_LIMIT_HOURS = 24.0


def _freshness_check(source: Source):
    @dg.asset_check(
        asset=dg.AssetKey(["raw", "library_records"]),
        name=f"{source.name}_freshness",
        description=f"A new file arrived in <home>/{source.path} (source {source.name}) within the last "
                    f"{FRESHNESS_LIMIT_HOURS:.0f} hours.",
    )
    def _check(lead_home: LeadHomeResource) -> dg.AssetCheckResult:
        home = lead_home.lead_home()
        hours = source_age_hours(source.folder(home.root))
        fresh = hours is not None and hours <= FRESHNESS_LIMIT_HOURS
        return dg.AssetCheckResult(
            passed=fresh,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"hours_since_newest_file": hours if hours is not None else -1.0,
                      "limit_hours": FRESHNESS_LIMIT_HOURS},
            description="fresh" if fresh else (f"no file for {hours:.1f} hours" if hours is not None else "no file at all"),
        )

    return _check


# One check per declared source; kept in a dict so the defs loader finds each by its own name.
# (a database source has no folder of files to age; its reads are in the import log)
FRESHNESS_CHECKS = {source.name: _freshness_check(source) for source in load_sources() if not source.is_database}


@dg.definitions
def quality_checks() -> dg.Definitions:
    # A module with a @definitions function contributes only what it returns: every check is listed here.
    return dg.Definitions(asset_checks=[standardised_records_quality, golden_leads_quality,
                                        *FRESHNESS_CHECKS.values()])
