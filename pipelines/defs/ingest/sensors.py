"""The inbox sensor: every complete new file a specialist drops into <home>/inbox is imported once.

A file is ready when its size and modification time did not change between two ticks and it is not
still arriving (a partial download, younger than a couple of seconds, or a workbook, which is a zip,
without its end record: ``pipelines/lib/identity/ingest.py: still_arriving``): a file still being copied is left
alone until it is whole. The import run moves it to ``inbox/archive/`` (or ``failed/``)
and writes its receipt; identical content dropped again is recognised by its hash and answered as a
duplicate. While an import or nightly run is active the sensor waits; a run that died is marked failed
(pipelines/defs/run_health.py) and its files are requested again on the next tick, backing off when the
same files keep failing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg

from pipelines.defs.ingest.assets import import_run_config
from pipelines.defs.jobs import inbox_import_job
from pipelines.defs.run_health import UNFINISHED, reap_dead_runs
from pipelines.lib.home import LeadHome
from pipelines.lib.identity.ingest import file_label, source_files
from pipelines.lib.sources.sources import load_sources

RETRY_BACKOFF_SECONDS = 600.0
MAX_QUICK_RETRIES = 3
WATCHED_JOBS = ("inbox_import_job", "nightly_job")


def evaluate_inbox(instance: dg.DagsterInstance, cursor: str | None, now: float | None = None
                   ) -> tuple[dg.RunRequest | dg.SkipReason, str]:
    """One tick: (what to do, the new cursor). Plain function so tests and the sensor share it."""
    now = time.time() if now is None else now
    state = json.loads(cursor) if cursor else {}
    seen: dict[str, list[int]] = state.get("seen", {})
    attempts: dict[str, list[float]] = state.get("attempts", {})  # "file|size|mtime" -> [count, last request]
    reap_dead_runs(instance)
    home = LeadHome.from_env()
    inbox = next((s for s in load_sources() if s.mode == "append" and not s.is_database), None)
    if inbox is None:
        return dg.SkipReason("no append source is declared in pipelines/config/sources.yaml"), json.dumps(state)
    new_seen, ready = {}, []
    for path in source_files(inbox, home.root, now):  # files still downloading or copying are left out
        try:
            stat = path.stat()
        except FileNotFoundError:  # moved by an import meanwhile
            continue
        label = file_label(path, home.root)
        signature = [stat.st_size, stat.st_mtime_ns]
        new_seen[label] = signature
        if seen.get(label) == signature:  # unchanged since the last tick: complete
            ready.append((path, label, signature))
    new_state = {"seen": new_seen,
                 "attempts": {k: v for k, v in attempts.items() if k.rsplit("|", 2)[0] in new_seen}}
    if not ready:
        waiting = len(new_seen)
        return dg.SkipReason(f"{waiting} file(s) still arriving" if waiting else "inbox is empty"), json.dumps(new_state)
    active = [r for job in WATCHED_JOBS
              for r in instance.get_run_records(filters=dg.RunsFilter(job_name=job, statuses=UNFINISHED), limit=1)]
    if active:
        return (dg.SkipReason(f"waiting for run {active[0].dagster_run.run_id} ({active[0].dagster_run.job_name})"),
                json.dumps(new_state))
    chosen, retry = [], None
    for path, label, signature in ready:
        key = f"{label}|{signature[0]}|{signature[1]}"
        count, last = new_state["attempts"].get(key, [0, 0.0])
        if count >= MAX_QUICK_RETRIES and now - last < RETRY_BACKOFF_SECONDS:
            continue  # the same file keeps failing: try it again later, not every tick
        if count == 0:
            chosen.append((key, str(path)))
        elif retry is None:
            retry = (key, str(path))
    # A file that was requested before and is still here is retried in a run of its own, so a file that
    # breaks its run cannot hold the others back.
    if not chosen and retry:
        chosen = [retry]
    for key, _ in chosen:
        count, _last = new_state["attempts"].get(key, [0, 0.0])
        new_state["attempts"][key] = [count + 1, now]
    chosen = [path for _, path in chosen]
    if not chosen:
        return dg.SkipReason("files failed several imports; retrying every 10 minutes"), json.dumps(new_state)
    request = dg.RunRequest(
        run_config=import_run_config(chosen),
        tags={"leadfactory/files": json.dumps([Path(c).name for c in chosen], ensure_ascii=False)[:1000]},
    )
    return request, json.dumps(new_state)


@dg.sensor(
    job=inbox_import_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Imports each complete new file dropped into <home>/inbox, once (by content hash); "
                "receipts go to <home>/outbox.",
)
def inbox_sensor(context: dg.SensorEvaluationContext):
    result, cursor = evaluate_inbox(context.instance, context.cursor)
    context.update_cursor(cursor)
    return result
