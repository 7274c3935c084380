"""Running the code location's jobs from Python: the CLI, the tests and the benchmarks all come here,
so they run the same job definitions as the Dagster UI (one orchestration path)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from typing import TYPE_CHECKING

import dagster as dg

from pipelines.lib.home import LeadHome
from pipelines.lib.identity.library import library_of

if TYPE_CHECKING:
    import polars as pl

    from pipelines.lib.matching.leads import LeadStats

__all__ = ["dedupe_file", "import_run_config", "load_job", "run_job", "standardise_library", "step_times"]

# The real-time location's jobs (pipelines/realtime): loading them never imports dbt, Splink or GX.
REALTIME_JOBS = ("correction_job", "notification_job")


def load_job(name: str) -> dg.JobDefinition:
    """A job as its code location defines it (the batch location, or the real-time one for corrections)."""
    if name in REALTIME_JOBS:
        from pipelines.realtime.definitions import defs
    else:
        from pipelines.lib.standardise.dbt_project import parse_dbt_project

        parse_dbt_project()  # the dbt assets are built from the manifest, so it must exist before import
        from pipelines.definitions import defs
    return defs().resolve_job_def(name)


def import_run_config(files: list, decided_by: str = "") -> dict:
    """Run config naming the files an import job reads (the ingest assets' own; imported when needed)."""
    from pipelines.defs.ingest.assets import import_run_config as run_config

    return run_config(files, decided_by)


def run_job(name: str, instance: dg.DagsterInstance | None = None, run_config: dict | None = None,
            raise_on_error: bool = True, asset_selection: list[dg.AssetKey] | None = None) -> dg.ExecuteInProcessResult:
    """Run a job (or some of its assets) in-process on the current home (``$LEADFACTORY_HOME``); dead runs
    are reaped first."""
    from pipelines.defs.run_health import reap_dead_runs

    job = load_job(name)
    instance = instance or dg.DagsterInstance.ephemeral()
    reap_dead_runs(instance)
    return job.execute_in_process(instance=instance, run_config=run_config or {}, raise_on_error=raise_on_error,
                                  asset_selection=asset_selection)


def standardise_library(instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    """Import the home's sources and run the dbt rules only (dedupe_job up to marts.lead_records)."""
    job = load_job("dedupe_job")
    keys = [key for key in job.asset_layer.executable_asset_keys
            if key.path[0] in ("raw", "reference", "staging", "intermediate", "marts")]
    return run_job("dedupe_job", instance=instance, asset_selection=keys)


def dedupe_file(input_path: Path, output_path: Path, progress: Callable[[str, float], None] | None = None,
                run_config: dict | None = None) -> tuple[pl.DataFrame, LeadStats, dict[str, float]]:
    """Deduplicate one file without touching the lead library; write one row per input data row.

    Runs ``dedupe_job`` (the library's own import, dbt rules and matcher) on a temporary home; each
    step's time is reported through ``progress(name, seconds)``."""
    from pipelines.lib.matching.dedupe import dedupe_output, write_dedupe_output

    input_path, output_path = Path(input_path).resolve(), Path(output_path)
    if not input_path.is_file():
        raise FileNotFoundError(f"{input_path}: no such file")
    if output_path.suffix.lower() not in (".csv", ".xlsx"):
        raise ValueError(f"{output_path}: the output must end in .csv or .xlsx")
    timings: dict[str, float] = {}
    config = {**(run_config or {}), "ops": {**(run_config or {}).get("ops", {}),
                                            **import_run_config([input_path])["ops"]}}
    with tempfile.TemporaryDirectory(prefix="leadfactory-dedupe-") as tmp:
        home = LeadHome.from_env(tmp).ensure()
        with home.activated(), dg.DagsterInstance.ephemeral() as instance:
            started = time.perf_counter()
            result = run_job("dedupe_job", instance=instance, run_config=config, raise_on_error=False)
            step_times(instance, result.run_id, timings, progress)
            if not result.success:
                failure = next((e for e in result.all_events if e.is_step_failure), None)
                error = failure.step_failure_data.error if failure else None
                raise ValueError(f"{input_path.name}: could not be deduplicated: {error.message.strip() if error else ''}")
            t = time.perf_counter()
            library = library_of(home.root)
            with home.connect() as conn:
                library.register(conn)
                try:
                    failed = conn.execute("select reason from lib_imports where status = 'failed'").fetchall()
                    if failed:
                        raise ValueError(f"{input_path.name}: {failed[0][0]}")
                    output = dedupe_output(conn)
                finally:
                    library.unregister(conn)
            stats = golden_lead_stats(result)
            timings["total"] = time.perf_counter() - started
    write_dedupe_output(output, output_path)
    timings["write output"] = time.perf_counter() - t
    if progress:
        progress("write output", timings["write output"])
    return output, stats, timings


STAGE_NAMES = {
    "library_records": "read file",
    "standardised_lead_models": "standardise (dbt)",
    "matching__scored_pairs": "score pairs (Splink)",
    "matching__golden_leads": "cluster and build leads",
}


def step_times(instance, run_id: str, timings: dict[str, float],
               progress: Callable[[str, float], None] | None = None) -> dict[str, float]:
    """Each step's wall time, from the run's event log (start to success)."""
    started: dict[str, float] = {}
    for record in instance.get_records_for_run(run_id, limit=100_000).records:
        event = record.event_log_entry.dagster_event
        if event is None or not event.step_key:
            continue
        if event.is_step_start:
            started[event.step_key] = record.event_log_entry.timestamp
        elif event.is_step_success and event.step_key in started:
            name = STAGE_NAMES.get(event.step_key, event.step_key)
            timings[name] = record.event_log_entry.timestamp - started[event.step_key]
            if progress:
                progress(name, timings[name])
    return timings


def golden_lead_stats(result) -> LeadStats:
    """The golden_leads step's figures, from its materialization metadata."""
    from pipelines.lib.matching.leads import LeadStats

    for event in result.all_events:
        if event.is_step_materialization:
            materialization = event.step_materialization_data.materialization
            if materialization.asset_key.path == ["matching", "golden_leads"]:
                meta = {k: v.value for k, v in materialization.metadata.items()}
                return LeadStats(
                    records=meta["records"], pairs_scored=meta["pairs_scored"], pairs_merged=meta["pairs_merged"],
                    pairs_to_review=meta["pairs_sent_to_review"],
                    clusters_split_by_guard=meta["clusters_split_by_chaining_guard"],
                    largest_cluster_before_guard=meta["largest_cluster_before_guard"],
                    largest_lead=meta["largest_lead"], leads=meta["leads"], leads_merged=meta["leads_merged"],
                    leads_split=meta["leads_split"])
    raise ValueError("the run built no golden leads")
