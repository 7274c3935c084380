"""Benchmark corrections: a batch of events applied to a large library and published.

    .venv/bin/python benchmarks/corrections_benchmark.py --library 1000000 --events 10000 --work /tmp/corrections

1. Generate ``library`` leads and build the library with the nightly job (``leadfactory run``), once per
   ``--work`` folder (``--rebuild`` starts again).
2. Write ``events`` events about random published leads (by lead_id or by their mobile: a verified new
   mobile, a bounced e-mail, a job change, an opt-out, an owner change) into ``<home>/events/``.
3. ``leadfactory events apply`` as a user runs it (the same ``correction_job`` the sensor starts): the
   process's wall time, and the run's own time from start to the published version (what the sensor's
   run takes once it picked the lines up), with every step's time.
4. One more event, alone: the same two figures.
5. With ``--daemon``: the Dagster daemon running (``dagster-daemon run``, the events sensor at its minimum
   interval, runs launched as the UI launches them), one event written to a file; the seconds until the
   change is in the newest published version (read from ``<home>/versions``, as the CRM reads it).

Targets (issue 10): 10,000 events on a 1,000,000-record library published within 10 s of the pickup; a
single event visible in the published version within 15 s of being written.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from pipelines.lib.sources.sample_data import generate_leads

LEADFACTORY = str(Path(sys.executable).with_name("leadfactory"))
SEED = 5151


def run(cmd: list[str], home: Path, log: Path) -> float:
    env = {**os.environ, "LEADFACTORY_HOME": str(home), "LEADFACTORY_BACKUP": str(home.parent / "backup")}
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}); see {log}:\n{log.read_text(errors='replace')[-3000:]}")
    return wall


def prepare(work: Path, library: int, rebuild: bool) -> Path:
    home = work / "home"
    marker = work / f"built_{library}"
    if marker.exists() and not rebuild:
        return home
    shutil.rmtree(work, ignore_errors=True)
    (home / "warehouse").mkdir(parents=True)
    generate_leads(library, seed=SEED).drop("person_id").write_parquet(home / "warehouse" / "crm_leads.parquet")
    wall = run([LEADFACTORY, "run"], home, work / "build.log")
    print(f"library of {library:,} records built by the nightly job: {wall:.1f} s", flush=True)
    marker.touch()
    return home


def make_events(home: Path, count: int, prefix: str) -> list[dict]:
    with duckdb.connect(str(home / "leadfactory.duckdb"), read_only=True) as conn:
        leads = conn.execute(f"select lead_id, mobile, email from published.leads_clean using sample {count * 2} rows "
                             "(reservoir, 7)").fetchall()
    rng = random.Random(f"{SEED}{prefix}")
    events = []
    for i in range(count):
        lead_id, mobile, email = leads[i % len(leads)]
        kind = rng.choice(["mobile_changed", "contact_invalid", "job_changed", "opted_out", "owner_changed"])
        key = {"mobile": mobile[3:]} if mobile and rng.random() < 0.5 else {"lead_id": lead_id}
        payload = {
            "mobile_changed": {"new_mobile": f"139{rng.randrange(10**8):08d}", "verified": True},
            "contact_invalid": {"field": "email", "value": email} if email else {"field": "mobile", "value": mobile},
            "job_changed": {"company": f"新公司{rng.randrange(1000)}有限公司", "job_title": "经理"},
            "opted_out": {},
            "owner_changed": {"owner": f"销售{rng.randrange(50)}"},
        }[kind]
        events.append({"event_id": f"{prefix}-{i}", "type": kind, "occurred_at": f"2026-12-0{1 + i % 7}T10:{i % 60:02d}:00+08:00",
                       "source": "bench", "lead": key, "payload": payload})
    return events


def last_run(home: Path) -> tuple[float, dict[str, float]]:
    import dagster as dg

    from pipelines.runs import step_times

    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        record = instance.get_run_records(filters=dg.RunsFilter(job_name="correction_job"), limit=1)[0]
        return (record.end_time or 0) - (record.start_time or 0), step_times(instance, record.dagster_run.run_id, {})


def apply(home: Path, work: Path, events: list[dict], name: str) -> None:
    folder = home / "events"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{name}.jsonl").open("w", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps(event, ensure_ascii=False) + "\n")
    wall = run([LEADFACTORY, "events", "apply"], home, work / f"{name}.log")
    run_seconds, steps = last_run(home)
    lines = (work / f"{name}.log").read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("events:")), len(lines))
    report = lines[start:start + 3]
    print(f"{len(events):,} events: process {wall:.1f} s wall; the run (pickup to published version) "
          f"{run_seconds:.1f} s; steps {', '.join(f'{k} {v:.1f} s' for k, v in steps.items())}")
    for line in report[:3]:
        print(f"    {line.strip()}")


def daemon_latency(home: Path, work: Path, events: int) -> None:
    """``events`` single events, one after the other, each timed from being written to being in the newest
    published version (the sensor's 5 s loop makes each wait differ: min, median and max are printed)."""
    import statistics

    import pyarrow.compute as pc

    from pipelines.lib.history.versions import Versions

    project = Path(__file__).resolve().parents[1]
    env = {**os.environ, "LEADFACTORY_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home"),
           "LEADFACTORY_BACKUP": str(home.parent / "backup"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    log = (work / "daemon.log").open("w")
    daemon = subprocess.Popen([str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
                              cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT)
    seconds = []
    try:
        versions = Versions(home / "versions")
        time.sleep(30)  # the daemon loads the code location and the sensor's first ticks pass (no events)
        lead_id = versions.read("leads_clean").column("lead_id")[0].as_py()
        for n in range(events):
            before = len(versions.list())
            owner = f"销售-{time.strftime('%H%M%S')}-{n}"
            # occurred now: an event with an older time than one the lead already holds is superseded
            occurred = datetime.now(timezone.utc).isoformat(timespec="microseconds")
            event = {"event_id": f"daemon-{owner}", "type": "owner_changed", "occurred_at": occurred,
                     "source": "bench", "lead": {"lead_id": lead_id}, "payload": {"owner": owner}}
            time.sleep(random.uniform(0, 5))  # written at any moment of the sensor's loop
            written = time.perf_counter()
            with (home / "events" / "daemon.jsonl").open("a", encoding="utf-8") as out:
                out.write(json.dumps(event, ensure_ascii=False) + "\n")
            while time.perf_counter() - written < 120:
                if len(versions.list()) > before:
                    table = versions.read("leads_clean")
                    row = table.filter(pc.equal(table.column("lead_id"), lead_id))
                    if row.num_rows and row.column("owner")[0].as_py() == owner:
                        seconds.append(time.perf_counter() - written)
                        break
                time.sleep(0.2)
            else:
                print(f"one event with the daemon running: not visible after 120 s; see {work / 'daemon.log'}")
                return
        print(f"one event with the daemon running, {events} times: visible in the published version "
              f"{min(seconds):.1f} / {statistics.median(seconds):.1f} / {max(seconds):.1f} s (min / median / max) "
              f"after it was written ({', '.join(f'{s:.1f}' for s in seconds)})")
    finally:
        daemon.terminate()
        daemon.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/corrections_benchmark"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--daemon", action="store_true", help="also time single events with the Dagster daemon running")
    parser.add_argument("--daemon-events", type=int, default=5, help="how many single events to time with the daemon")
    args = parser.parse_args()
    home = prepare(args.work, args.library, args.rebuild)
    stamp = time.strftime("%H%M%S")
    apply(home, args.work, make_events(home, args.events, f"batch{stamp}"), f"batch{stamp}")
    apply(home, args.work, make_events(home, 1, f"single{stamp}"), f"single{stamp}")
    if args.daemon:
        daemon_latency(home, args.work, args.daemon_events)


if __name__ == "__main__":
    main()
