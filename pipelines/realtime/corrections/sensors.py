"""The events sensor: new complete lines in <home>/events start the correction job.

What is new is decided against the library's event log (the cursor the job itself keeps, pipelines/lib/
corrections/apply.py), not a cursor of the sensor's own: a run that died is simply asked for again, and
lines are never skipped. While a correction run is unfinished the sensor waits for it.
"""

from __future__ import annotations

import json

import dagster as dg

from pipelines.realtime.jobs import correction_job
from pipelines.defs.run_health import UNFINISHED, reap_dead_runs
from pipelines.lib.corrections.apply import events_dir_of, pending_event_bytes
from pipelines.lib.home import LeadHome
from pipelines.lib.identity.library import library_of



def evaluate_events(instance: dg.DagsterInstance, cursor: str | None) -> tuple[dg.RunRequest | dg.SkipReason, str]:
    """One tick: (what to do, the new cursor: the last failed run already retried)."""
    state = json.loads(cursor) if cursor else {}
    reap_dead_runs(instance)
    home = LeadHome.from_env()
    events_dir = events_dir_of(home.root)
    pending = pending_event_bytes(events_dir, library_of(home.root)) if events_dir.is_dir() else 0
    active = instance.get_run_records(filters=dg.RunsFilter(job_name=correction_job.name, statuses=UNFINISHED), limit=1)
    if active:
        return dg.SkipReason(f"waiting for correction run {active[0].dagster_run.run_id}"), json.dumps(state)
    last = instance.get_run_records(filters=dg.RunsFilter(job_name=correction_job.name), limit=1)
    # a run that failed (or died) after recording its events left their publication to the next run
    retry = bool(last) and last[0].dagster_run.status == dg.DagsterRunStatus.FAILURE \
        and state.get("retried") != last[0].dagster_run.run_id
    if not pending and not retry:
        return dg.SkipReason("no new events"), json.dumps(state)
    if retry:
        state["retried"] = last[0].dagster_run.run_id
    return dg.RunRequest(tags={"leadfactory/pending_event_bytes": str(pending)}), json.dumps(state)


@dg.sensor(
    job=correction_job,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Applies new event lines in <home>/events (and manual edits) within seconds: complete lines "
                "only, each event once.",
)
def events_sensor(context: dg.SensorEvaluationContext):
    result, cursor = evaluate_events(context.instance, context.cursor)
    context.update_cursor(cursor)
    return result
