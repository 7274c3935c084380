"""The resource every stage of both code locations shares: the data home and its writer lock.

No dbt, Splink or Great Expectations import here: the real-time location (pipelines/realtime) loads this
module in every run it starts, and its runs must start in seconds."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from pipelines.defs.run_health import reap_dead_runs, run_tags_for_this_process
from pipelines.lib.home import LeadHome

# Every asset that writes the DuckDB file runs in this pool (limited to one step at a time by the
# instance config); the whole run holds the home's writer lock besides (LeadHomeResource).
DUCKDB_WRITER_POOL = "duckdb_writer"


class LeadHomeResource(dg.ConfigurableResource):
    """The data home. Empty means ``$LEADFACTORY_HOME``, else ``./data``.

    For the length of a run it holds the home's writer lock, so the nightly job, sensor-launched imports
    and CLI writers never write the DuckDB file or the library at the same time (a run-level limit:
    jobs use the in-process executor, so the resource lives as long as the run). A run that must wait
    says for whom; a run whose process died releases the lock with it.
    """

    home: str = ""
    wait_minutes: float = 360.0

    def lead_home(self) -> LeadHome:
        home = LeadHome.from_env(self.home or None).ensure()
        home.export_env()  # dbt's subprocess finds the same DuckDB file through the environment
        return home

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator["LeadHomeResource"]:
        home = self.lead_home()
        run = context.dagster_run
        holder = f"dagster run {run.run_id} ({run.job_name})" if run else "dagster"
        if run is not None and context.instance is not None:
            context.instance.add_run_tags(run.run_id, run_tags_for_this_process())
            reap_dead_runs(context.instance)

        def waiting(current: dict | None) -> None:
            context.log.info(f"waiting for the lead library's writer: {current or 'another process'}")

        with home.writer_lock(holder, wait_seconds=self.wait_minutes * 60, on_wait=waiting):
            yield self


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"lead_home": LeadHomeResource()})
