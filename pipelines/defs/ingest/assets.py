"""Ingestion: the declared sources' files into the lead library, and its working copy into DuckDB."""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import dagster as dg

from pipelines.defs.resources import DUCKDB_WRITER_POOL, LeadHomeResource
from pipelines.lib.identity.ingest import (LIBRARY_IMPORTS, LIBRARY_RECORDS, import_files, keep_processed_file,
                                           source_files)
from pipelines.lib.matching.leads import rebuild_decided_leads
from pipelines.lib.matching.review import (ReviewWorkbookError, import_review_workbook, is_review_workbook,
                                           write_review_failure, write_review_result)
from pipelines.lib.sources.sources import FAILED_DIR
from pipelines.lib.identity.library import library_of
from pipelines.lib.quality.profiling import profile_relation
from pipelines.lib.publish.receipts import write_receipts
from pipelines.lib.sources.sources import load_sources
from pipelines.lib.matching.incremental import INCREMENTAL_WORKING_STATE
from pipelines.lib.refresh import decide_refresh


class ImportConfig(dg.Config):
    """Empty ``files``: every declared source (the nightly run). Otherwise only these files, into the
    append source (the inbox sensor and ``leadfactory ingest``). A filled review workbook among them is
    applied as decisions, by ``decided_by`` (empty: the file's owner)."""

    files: list[str] = []
    decided_by: str = ""


def import_run_config(files: list, decided_by: str = "") -> dict:
    """Run config naming the files an import job reads (empty: every declared source)."""
    return {"ops": {"library_records": {"config": {"files": [str(f) for f in files], "decided_by": decided_by}}}}


def _file_owner(path: Path) -> str:
    import pwd

    try:
        return pwd.getpwuid(path.stat().st_uid).pw_name
    except (KeyError, OSError):
        return "inbox"


def _apply_review_workbooks(context, conn, home, paths: list[Path], decided_by: str) -> list[dict]:
    """Each filled review workbook applied as one batch of decisions (its leads rebuilt in this run), a
    result workbook in the outbox, and the workbook kept in the inbox's archive. One that cannot be
    applied goes to failed/ with a result saying why; it never stops the run for the rest."""
    inbox = next((s for s in load_sources() if s.mode == "append" and not s.is_database), None)
    done = []
    for path in paths:
        who = decided_by or _file_owner(path)
        try:
            result = import_review_workbook(conn, path, decided_by=who)
        except Exception as exc:  # noqa: BLE001 - a bad workbook is answered, not allowed to fail every run
            reason = str(exc) if isinstance(exc, ReviewWorkbookError) else (
                f"审核工作簿无法读取或应用 (the review workbook could not be read or applied: {type(exc).__name__})")
            context.log.warning(f"review workbook {path.name} not applied: {reason}")
            report = write_review_failure(path.name, reason, home.outbox_dir)
            kept = keep_processed_file(path, inbox, home.root, datetime.now(), folder=FAILED_DIR) if inbox else path
            done.append({"file": path.name, "status": "failed", "reason": reason, "result": str(report),
                         "kept_as": str(kept)})
            continue
        # the leads it settles are rebuilt in this run
        rebuild_decided_leads(conn, [r.decision_id for r in result.rows if r.status == "applied"])
        report = write_review_result(result, home.outbox_dir)
        kept = keep_processed_file(path, inbox, home.root, datetime.now()) if inbox else path
        # counts only: a decision cell may hold whatever was typed into it
        context.log.info(f"review workbook {path.name} by {who}: {result.same} same, {result.different} different, "
                         f"{result.undecided} undecided, {sum(result.skipped.values())} skipped, "
                         f"{len(result.errors)} errors; result {report.name}")
        done.append({"file": path.name, "status": "applied", "decided_by": who, "same": result.same,
                     "different": result.different, "undecided": result.undecided, "skipped": result.skipped,
                     "errors": len(result.errors), "result": str(report), "kept_as": str(kept),
                     "summary": result.render()})
    return done


# Kept in a dict: the defs loader would take bare AssetSpecs at module level for assets of their own.
LIBRARY_SPECS = {spec.key.to_user_string(): spec for spec in [
    dg.AssetSpec(
        key=["raw", "library_records"],
        description="The lead library's current records (all sources, all text, headers mapped, stable record_id); "
                    "the system of record is the append-only Delta tables under <home>/library.",
        group_name="ingest",
        kinds={"deltalake", "duckdb", "python"},
    ),
    dg.AssetSpec(
        key=["raw", "library_imports"],
        description="Every file an import looked at: imported, duplicate, unchanged or failed, with its counts.",
        group_name="ingest",
        kinds={"deltalake", "duckdb"},
    ),
    dg.AssetSpec(
        key=["raw", "pending_changes"],
        description="Records added, updated or retired since the last publication: what an incremental run "
                    "standardises, matches and republishes (pipelines/lib/refresh.py).",
        group_name="ingest",
        kinds={"duckdb"},
    ),
]}


@dg.multi_asset(specs=list(LIBRARY_SPECS.values()), pool=DUCKDB_WRITER_POOL)
def library_records(context: dg.AssetExecutionContext, config: ImportConfig,
                    lead_home: LeadHomeResource) -> Iterator[dg.MaterializeResult]:
    home = lead_home.lead_home()
    library = library_of(home.root)
    sources = load_sources()
    named = [Path(f).resolve() for f in config.files]
    candidates = named or [p for s in sources if s.mode == "append" and not s.is_database
                          for p in source_files(s, home.root)]
    reviews = [p for p in candidates if is_review_workbook(p)]
    with home.connect() as conn:
        # decisions first: the leads they settle are rebuilt with this run's records
        review_results = _apply_review_workbooks(context, conn, home, reviews, config.decided_by)
        batch = import_files(conn, home.root, sources, only_files=named if config.files else None,
                             run_id=context.run.run_id, exclude=frozenset(reviews))
        # A duplicate or unreadable file is answered at once; imported files get theirs after publication.
        answered = write_receipts(conn, library, home.outbox_dir,
                                  import_ids=[f.import_id for f in batch.files if f.status in ("duplicate", "failed")])
        for item in batch.failed:
            context.log.warning(f"file not imported: {item.file_name}: {item.reason}")
        for source, why in batch.retirement_withheld.items():
            context.log.warning(f"{source}: {why}")
        plan = decide_refresh(conn, context.run.run_id, named_files=bool(config.files),
                              working_copy_in_sync=batch.working_copy_in_sync, working_state=INCREMENTAL_WORKING_STATE)
        context.log.info(f"refresh: {plan.describe()}")
        # Profiling a million records costs seconds; an incremental run reports the count only.
        records_profile = ({"row_count": conn.execute(f"select count(*) from {LIBRARY_RECORDS}").fetchone()[0]}
                           if plan.incremental else profile_relation(conn, LIBRARY_RECORDS))
        imports_count = conn.execute(f"select count(*) from {LIBRARY_IMPORTS}").fetchone()[0]
    yield dg.MaterializeResult(
        asset_key=["raw", "library_records"],
        metadata={
            **records_profile,
            **{f"batch/{k}": v for k, v in batch.counts().items()},
            "files": dg.MetadataValue.json([
                {"file": f.file_name, "status": f.status, "rows_read": f.rows_read, "rows_rejected": f.rows_rejected,
                 "records_new": f.records_new, "records_updated": f.records_updated,
                 "records_retired": f.records_retired, "reason": f.reason, "kept_as": f.stored_as}
                for f in batch.files]),
            "retirement_withheld": dg.MetadataValue.json(batch.retirement_withheld),
            "receipts_written": len(answered),
            "review_workbooks": dg.MetadataValue.json(review_results),
            "refresh": plan.describe(),
            "library": dg.MetadataValue.path(str(library.root)),
        },
    )
    yield dg.MaterializeResult(asset_key=["raw", "library_imports"], metadata={"row_count": imports_count})
    yield dg.MaterializeResult(asset_key=["raw", "pending_changes"],
                               metadata={"changed_records": plan.changed_records, "refresh": plan.describe()})
