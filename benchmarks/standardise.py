"""Benchmark: the nightly job's stages (ingest, dbt build with tests, match, publish) on N generated records.

    .venv/bin/python benchmarks/standardise.py --records 100000

Runs the same library code and dbt project as the nightly job (without Dagster's bookkeeping) on a
temporary data home. Peak memory is the larger of this process and the dbt subprocess.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

from pipelines.lib.dbt_project import run_dbt
from pipelines.lib.dedupe import match_records
from pipelines.lib.home import LeadHome
from pipelines.lib.ingest import SOURCE_SYSTEMS, ingest_source
from pipelines.lib.publish import publish_leads
from pipelines.lib.sample_data import generate_leads
from pipelines.lib.summary import run_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="leadfactory-bench-") as tmp:
        home = LeadHome.from_env(tmp).ensure()
        home.export_env()
        t = time.perf_counter()
        leads = generate_leads(args.records, seed=args.seed)
        leads.drop("person_id").write_parquet(home.warehouse_dir / "bench.parquet")
        print(f"generated {args.records:,} records in {time.perf_counter() - t:.1f}s (not part of the pipeline)")

        stages: dict[str, float] = {}
        t = time.perf_counter()
        with home.connect() as conn:
            for system in SOURCE_SYSTEMS:
                ingest_source(conn, home.root, system)
        stages["ingest"] = time.perf_counter() - t

        t = time.perf_counter()
        run_dbt(["build"])
        stages["dbt build (standardise + tests)"] = time.perf_counter() - t

        t = time.perf_counter()
        with home.connect() as conn:
            match_records(conn)
            stages["match"] = time.perf_counter() - t
            t = time.perf_counter()
            publish_leads(conn)
            summary = run_summary(conn)
        stages["publish"] = time.perf_counter() - t

    total = sum(stages.values())
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\nrecords: {args.records:,}   cores: {os.cpu_count()}")
    for stage, seconds in stages.items():
        print(f"  {stage:<34} {seconds:8.1f} s")
    print(f"  {'total':<34} {total:8.1f} s   ({args.records / total:,.0f} records/s)")
    print(f"  peak memory: this process {own:,.0f} MiB, dbt {children:,.0f} MiB")
    print("  " + summary.render().replace("\n", "\n  "))


if __name__ == "__main__":
    main()
