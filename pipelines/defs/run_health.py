"""Dead runs must not block the runs after them.

A run whose process died (kill -9, out of memory, a closed laptop) stays STARTED in Dagster's storage
and keeps any pool slots its steps claimed. Dagster's run monitoring cannot see this with the default
run launcher, nor for in-process runs started by the CLI, so every run records its process id and
host as tags, and before a run starts (and on every inbox sensor tick) runs whose process is gone are
marked failed and their slots freed. The writer lock itself is an OS file lock, released by the dying
process, and dbt children die with their parent (see pipelines/lib/standardise/dbt_project.py).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import dagster as dg

PID_TAG = "leadfactory/pid"
HOST_TAG = "leadfactory/host"
# The process's start time (clock ticks since boot) and the boot: a pid reused after a reboot or by
# another process is not the run's process.
PROCESS_TAG = "leadfactory/process"
ACTIVE_STATUSES = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
# A run that has not ended yet (queued or waiting to start too): what a sensor waits for before asking again.
UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, *ACTIVE_STATUSES]

log = logging.getLogger(__name__)


def process_identity(pid: int) -> str | None:
    """Boot id and start time of a process: together they name it uniquely on this machine."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        start = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        return f"{boot}:{start}"
    except (OSError, IndexError):
        return None


def run_tags_for_this_process() -> dict[str, str]:
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    identity = process_identity(os.getpid())
    if identity:
        tags[PROCESS_TAG] = identity
    return tags


def process_alive(pid: int, identity: str | None = None) -> bool:
    if identity is not None and process_identity(pid) not in (None, identity):
        return False  # the pid now belongs to another process (or the machine rebooted)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (dead, not yet reaped by its parent) is dead for our purposes
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every active run on this host whose process is gone, and free its pool slots."""
    reaped = []
    host = socket.gethostname()
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=ACTIVE_STATUSES)):
        run = record.dagster_run
        pid = run.tags.get(PID_TAG)
        if not pid or run.tags.get(HOST_TAG) != host or int(pid) == os.getpid() \
                or process_alive(int(pid), run.tags.get(PROCESS_TAG)):
            continue
        message = (f"the process running this run (pid {pid} on {host}) is gone; the run is marked failed "
                   "and its slots freed so the runs after it can go ahead")
        instance.report_run_failed(run, message)
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        log.warning("run %s: %s", run.run_id, message)
        reaped.append(run.run_id)
    return reaped
