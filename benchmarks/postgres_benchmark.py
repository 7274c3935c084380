"""Benchmark publishing to the CRM's PostgreSQL (issue 11): the same ``sync_crm`` every publication runs.

    .venv/bin/python benchmarks/postgres_benchmark.py --library 1000000 --work /tmp/corrections_benchmark

1. A library of ``--library`` generated records, built once per ``--work`` folder by the nightly job (the
   corrections benchmark's folder can be shared: same builder).
2. A fresh database on the server (``--server``, default the local one) owned by a fresh pipeline login;
   ``leadfactory roles setup``.
3. Times, each in one transaction as a publication does it:
   - the first publication into the empty CRM schema (every table copied whole: binary COPY);
   - the next version with nothing changed (the comparison with the version the CRM holds);
   - ``leadfactory events apply`` with ``--events`` events (a correction batch: only the changed leads),
     the CRM part as the run reports it.
Target (issue 11): 1,000,000 leads in <= 60 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time
import uuid
from pathlib import Path

import duckdb
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corrections_benchmark import LEADFACTORY, make_events, prepare, run  # noqa: E402

from pipelines.lib.history.versions import Versions  # noqa: E402
from pipelines.lib.publish.postgres import setup_roles, sync_crm  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/corrections_benchmark"))
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="a superuser login, to create the benchmark's database and pipeline login")
    args = parser.parse_args()
    home = prepare(args.work, args.library, rebuild=False)
    suffix = uuid.uuid4().hex[:8]
    pipeline, database = f"lf_bench_pipeline_{suffix}", f"lf_bench_{suffix}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(f"create role {pipeline} login createrole")
        admin.execute(f"create database {database} owner {pipeline}")
    url = re.sub(r"//[^@/]*@?([^/]*)/.*$", rf"//{pipeline}@\1/{database}", args.server)
    try:
        versions = Versions(home / "versions")
        newest = versions.list()[-1]
        with duckdb.connect(str(home / "leadfactory.duckdb")) as duck:
            setup_roles(url, duck)
            leads = duck.execute("select (select count(*) from published.leads_clean) + "
                                 "(select count(*) from published.leads_unreachable)").fetchone()[0]
            print(f"library: {args.library:,} records, {leads:,} leads (reachable and quarantined), version "
                  f"{newest.version}")
            first = sync_crm(duck, home / "versions", home / "library", newest, url=url)
            print(f"first publication into an empty CRM schema: {first.seconds:.1f} s "
                  f"({sum(first.rows.values()):,} rows: {first.render()})", flush=True)
            again = sync_crm(duck, home / "versions", home / "library",
                             dataclasses.replace(newest, version=newest.version + 1), url=url)
            print(f"the next version, nothing changed (compared with the held version): {again.seconds:.1f} s",
                  flush=True)
        # a correction batch as users run it, the CRM part included (the held version is now ahead of the
        # home's newest by one: the batch's version must come right after it, so one is published first)
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("delete from crm.versions where version > %s", [newest.version])
        stamp = time.strftime("%H%M%S")
        events = make_events(home, args.events, f"crm{stamp}")
        folder = home / "events"
        folder.mkdir(exist_ok=True)
        import json

        with (folder / f"crm{stamp}.jsonl").open("w", encoding="utf-8") as out:
            for event in events:
                out.write(json.dumps(event, ensure_ascii=False) + "\n")
        os.environ["LEADFACTORY_POSTGRES_URL"] = url
        log = args.work / f"crm{stamp}.log"
        wall = run([LEADFACTORY, "events", "apply"], home, log)
        crm_line = next((line for line in log.read_text().splitlines() if "CRM database" in line), "(no CRM line)")
        print(f"{args.events:,} events applied and published (process {wall:.1f} s): "
              f"{crm_line[crm_line.find('CRM database'):]}")
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(f"drop database if exists {database} with (force)")
            admin.execute(f"drop role if exists {pipeline}")


if __name__ == "__main__":
    main()
