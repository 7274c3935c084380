"""Benchmark the incremental path: a specialist's Excel file into a large lead library.

    .venv/bin/python benchmarks/incremental_benchmark.py --library 1000000 --new 10000 --work /tmp/incremental

1. Generate ``library + new`` leads with known duplicates; the first ``library`` go to the warehouse
   extract, the last ``new`` to an Excel workbook (so the new rows share people with the library and
   with each other, as a real file does).
2. Build the library with the nightly job (``leadfactory run``), once per ``--work`` folder: later
   invocations reuse it (``--rebuild`` starts again).
3. On a copy of that home, ``leadfactory ingest new.xlsx`` as a user runs it: a whole process, timed
   wall, with the peak memory of the process (and of any child) printed.
4. A full nightly rerun on the same home (``leadfactory run``) rebuilds everything from the library:
   for each new row, the set of records it shares a lead with must be the same as after the
   incremental import (agreement, target >= 99.5 %). Precision and recall of both against the truth.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl

from pipelines.lib.matching.evaluation import score_clustering
from pipelines.lib.sources.sample_data import _EXCEL_HEADERS, generate_leads

LEADFACTORY = str(Path(sys.executable).with_name("leadfactory"))
SEED = 4242
NEW_FILE = "新线索.xlsx"


def run(cmd: list[str], home: Path, log: Path) -> tuple[float, float]:
    """Run a leadfactory command on ``home``; return (wall seconds, peak GiB of the process and its children)."""
    env = {**os.environ, "LEADFACTORY_HOME": str(home)}
    # A fresh interpreter per measurement: ru_maxrss of RUSAGE_CHILDREN is the largest child so far,
    # so the command runs under a small wrapper that reports its own children's peak.
    wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
               "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
               "sys.exit(r.returncode)")
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "-c", wrapper, *cmd], env=env, stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - started
    text = log.read_text(errors="replace")
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}); see {log}:\n{text[-3000:]}")
    peak = int(re.findall(r"PEAK_KIB (\d+)", text)[-1]) / 1024 / 1024
    return wall, peak


def prepare(work: Path, library: int, new: int, rebuild: bool) -> Path:
    """The library home built by the nightly job, and the new file (kept outside the home)."""
    base = work / "library_home"
    marker = work / f"built_{library}_{new}"
    if marker.exists() and not rebuild:
        return base
    shutil.rmtree(work, ignore_errors=True)
    (base / "warehouse").mkdir(parents=True)
    leads = generate_leads(library + new, seed=SEED)
    leads.slice(0, library).drop("person_id").write_parquet(base / "warehouse" / "crm_leads.parquet")
    fresh = leads.slice(library, new)
    fresh.drop("person_id").select(list(_EXCEL_HEADERS)).rename(_EXCEL_HEADERS).write_excel(work / NEW_FILE, worksheet="线索")
    # truth: the extract by record number, the workbook by Excel row (header = row 1)
    pl.concat([
        leads.slice(0, library).select(pl.lit("warehouse/crm_leads.parquet").alias("source_file"),
                                       pl.int_range(1, library + 1, dtype=pl.Int64).alias("source_row"), "person_id"),
        fresh.select(pl.lit(NEW_FILE).alias("source_file"), pl.int_range(2, new + 2, dtype=pl.Int64).alias("source_row"),
                     "person_id"),
    ]).write_parquet(work / "truth.parquet")
    wall, peak = run([LEADFACTORY, "run"], base, work / "build.log")
    print(f"library of {library:,} records built by the nightly job: {wall:.1f} s, peak {peak:.2f} GiB", flush=True)
    marker.touch()
    return base


def last_run_steps(home: Path) -> tuple[float, dict[str, float]]:
    """The last run's own duration and each step's, from the home's Dagster instance."""
    import dagster as dg

    from pipelines.runs import step_times

    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        record = instance.get_run_records(limit=1)[0]
        steps = step_times(instance, record.dagster_run.run_id, {})
        return (record.end_time or 0) - (record.start_time or 0), steps


def members(home: Path) -> pl.DataFrame:
    with duckdb.connect(str(home / "leadfactory.duckdb"), read_only=True) as conn:
        return conn.execute("select lead_id, record_id, source_file, source_row from published.lead_members").pl()


def new_review_pairs(home: Path) -> set[tuple[str, str]]:
    """Review-queue pairs with a record of the new file."""
    with duckdb.connect(str(home / "leadfactory.duckdb"), read_only=True) as conn:
        return set(conn.execute("""
            select record_id_l, record_id_r from published.lead_review_queue q
            where exists (select 1 from published.lead_members m where m.source_file like ?
                          and m.record_id in (q.record_id_l, q.record_id_r))""", [f"%{Path(NEW_FILE).stem}%"]).fetchall())


def new_row_partners(frame: pl.DataFrame) -> pl.DataFrame:
    """For each record of the new file: the sorted list of every record sharing its lead."""
    grouped = frame.group_by("lead_id").agg(pl.col("record_id").sort().alias("partners"))
    return (frame.filter(pl.col("source_file").str.contains(Path(NEW_FILE).stem))
            .join(grouped, on="lead_id").select("record_id", "lead_id", "partners"))


def accuracy(frame: pl.DataFrame, truth: pl.DataFrame) -> str:
    labelled = frame.with_columns(pl.when(pl.col("source_file").str.contains(Path(NEW_FILE).stem))
                                  .then(pl.lit(NEW_FILE)).otherwise(pl.col("source_file")).alias("source_file"))
    joined = labelled.join(truth, on=["source_file", "source_row"]).select(
        pl.col("lead_id").alias("predicted"), pl.col("person_id").alias("truth"))
    with duckdb.connect() as conn:
        conn.register("scored", joined.to_arrow())
        return score_clustering(conn, "scored").render()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/leadfactory-incremental"))
    parser.add_argument("--rebuild", action="store_true", help="build the library again even if --work has it")
    parser.add_argument("--no-rerun", action="store_true", help="skip the full nightly rerun (agreement)")
    parser.add_argument("--repeat", type=int, default=3, help="times the import is measured, each on a fresh copy")
    args = parser.parse_args()
    base = prepare(args.work, args.library, args.new, args.rebuild)
    home = args.work / "home"
    print(f"\n{args.new:,}-row Excel file into a {args.library:,}-record library (leadfactory ingest, whole process):")
    walls = []
    for attempt in range(args.repeat):  # each on a fresh copy of the library home
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(base, home, symlinks=True)
        os.sync()  # the copy's write-back must not land inside the measurement
        wall, peak = run([LEADFACTORY, "ingest", str(args.work / NEW_FILE)], home, args.work / "ingest.log")
        walls.append(wall)
        print(f"  attempt {attempt + 1}: wall {wall:.1f} s, peak memory {peak:.2f} GiB", flush=True)
    log = (args.work / "ingest.log").read_text(errors="replace")
    print(f"  wall median {statistics.median(walls):.1f} s, min {min(walls):.1f}, max {max(walls):.1f} (target <= 20 s)")
    run_seconds, steps = last_run_steps(home)
    print(f"  last attempt: the run itself {run_seconds:.1f} s (the rest: starting Python, loading the code "
          "location, leaving); steps:")
    for name, seconds in steps.items():
        print(f"    {name:<44} {seconds:6.1f} s")
    for line in log.splitlines():
        if line.startswith(NEW_FILE) or "refresh: " in line:
            print("  " + line.strip()[-160:])
    incremental = members(home)
    incremental_review = new_review_pairs(home)
    truth = pl.read_parquet(args.work / "truth.parquet")
    print(f"  accuracy after the incremental import: {accuracy(incremental, truth)}")
    if args.no_rerun:
        return
    wall_full, peak_full = run([LEADFACTORY, "run"], home, args.work / "rerun.log")
    full = members(home)
    full_review = new_review_pairs(home)
    a, b = new_row_partners(incremental), new_row_partners(full)
    joined = a.join(b, on="record_id", how="full", suffix="_full", coalesce=True)
    agree = joined.filter(pl.col("partners") == pl.col("partners_full")).height
    same_id = joined.filter((pl.col("partners") == pl.col("partners_full"))
                            & (pl.col("lead_id") == pl.col("lead_id_full"))).height
    print(f"\nfull nightly rerun: {wall_full:.1f} s, peak {peak_full:.2f} GiB; accuracy {accuracy(full, truth)}")
    print(f"agreement on the new rows (the same lead members as the full rerun): {agree:,} of {joined.height:,} "
          f"= {agree / max(joined.height, 1):.2%} (target >= 99.5 %); with the same lead id too: "
          f"{same_id / max(joined.height, 1):.2%}")
    print(f"review pairs with a new row: {len(incremental_review):,} after the import, {len(full_review):,} after the "
          f"rerun, {len(incremental_review & full_review):,} in both")


if __name__ == "__main__":
    main()
