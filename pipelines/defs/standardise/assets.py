"""dbt-duckdb standardisation: staging -> intermediate -> marts, with dbt tests as asset checks."""


import json
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from pipelines.defs.resources import DUCKDB_WRITER_POOL, LeadHomeResource
from pipelines.defs.standardise.project import dbt_project
from pipelines.lib.standardise.dbt_project import prune_dbt_runs, run_dbt_in_process
from pipelines.lib.quality.profiling import profile_relation, relation_exists
from pipelines.lib.refresh import refresh_plan

DBT_RUNS_KEPT = 10  # enough to investigate recent failures without the folder growing every night


class LeadDbtTranslator(DagsterDbtTranslator):
    """Models and seeds are keyed by schema ("marts/lead_records"); sources keep "raw/<table>"."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed"):
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "reference" if dbt_resource_props["resource_type"] == "seed" else "standardise"


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=LeadDbtTranslator(),
    pool=DUCKDB_WRITER_POOL,
)
def standardised_lead_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, lead_home: LeadHomeResource
) -> Iterator[Any]:
    home = lead_home.lead_home()
    with home.connect(read_only=True) as conn:
        plan = refresh_plan(conn, context.run.run_id, context.run.root_run_id)
    target = home.dbt_runs_dir / context.run.run_id
    if plan.incremental:
        yield from _standardise_pending_records(context, home, target, plan)
        return
    if not context.selected_asset_check_keys:
        yield from _rebuild_without_tests(context, home, target, plan)
        return
    # Full: every model rebuilt from the whole library and every dbt test run (as asset checks).
    context.log.info(f"dbt build --full-refresh: refresh {plan.describe()}")
    # dbt holds the DuckDB file lock until it exits, so the events are collected first and the
    # row counts and completeness read afterwards from the finished tables.
    events = list(dbt.cli(["build", "--full-refresh"], context=context, target_path=target).stream())
    prune_dbt_runs(home.dbt_runs_dir, keep=DBT_RUNS_KEPT)
    views = _view_relations(_manifest_nodes())
    with home.connect(read_only=True) as conn:
        for event in events:
            if isinstance(event, dg.Output | dg.AssetMaterialization):
                relation = ".".join(context.asset_key_for_output(event.output_name).path) if isinstance(
                    event, dg.Output) else ".".join(event.asset_key.path)
                if relation not in views and relation_exists(conn, relation):
                    event = event.with_metadata({**event.metadata, **profile_relation(conn, relation)})
            yield event


def _view_relations(nodes: dict) -> set[str]:
    """The models dbt builds as views: profiling one would run its whole query again (the staging view
    stages every record of the library), so views get no row counts."""
    return {f"{n['schema']}.{n['name']}" for n in nodes.values()
            if n["resource_type"] == "model" and n["config"].get("materialized") == "view"}


def _manifest_nodes() -> dict:
    return json.loads(dbt_project.manifest_path.read_text(encoding="utf-8"))["nodes"]


def _run_in_process(context: dg.AssetExecutionContext, home, target, plan, args: list[str]):
    """dbt ``args`` inside this process; each node it ran whose asset this run selected, as (key, run)."""
    context.log.info(f"dbt {' '.join(args)} (in process): refresh {plan.describe()}")
    runs = run_dbt_in_process(args, target)
    prune_dbt_runs(home.dbt_runs_dir, keep=DBT_RUNS_KEPT)
    nodes = _manifest_nodes()
    translator = LeadDbtTranslator()
    selected = set(context.selected_asset_keys)
    for run in runs:
        key = translator.get_asset_key(nodes[run.unique_id])
        if key in selected:
            yield key, run


def _rebuild_without_tests(context: dg.AssetExecutionContext, home, target, plan) -> Iterator[Any]:
    """Full, for a job that selects no dbt tests (`leadfactory dedupe` on a throwaway home): every seed and
    model rebuilt by dbt inside this process, from the project as parsed once. A dbt subprocess would parse
    the whole project again (each home's DuckDB path is part of dbt's profile, and a changed profile defeats
    its partial parsing) and run the unit tests: about 30 s at a million records, before any SQL."""
    args = ["build", "--full-refresh", "--exclude", "resource_type:test", "resource_type:unit_test"]
    built = list(_run_in_process(context, home, target, plan, args))
    views = _view_relations(_manifest_nodes())
    with home.connect(read_only=True) as conn:
        for key, run in built:
            relation = ".".join(key.path)
            profiled = relation not in views and relation_exists(conn, relation)
            metadata = profile_relation(conn, relation) if profiled else {}
            yield dg.MaterializeResult(asset_key=key, metadata={
                **metadata, "seconds": round(run.seconds, 2), "refresh": plan.describe()})


def _standardise_pending_records(context: dg.AssetExecutionContext, home, target, plan) -> Iterator[Any]:
    """Incremental: the models take only the pending records (macros/incremental.sql), run by dbt inside
    this process so a small import is not dominated by dbt's start-up. Views and reference seeds are not
    rebuilt, and the dbt tests, which scan whole tables, wait for the nightly run (the GX gate checks
    the changed records)."""
    # the views and seeds stand as they are; dbt looks up the few relations it touches instead of listing
    # every schema first
    args = ["run", "--select", "config.materialized:incremental", "--no-populate-cache"]
    for key, run in _run_in_process(context, home, target, plan, args):
        # no row counts: counting a staging view means staging the whole library
        yield dg.MaterializeResult(asset_key=key, metadata={
            "records_standardised": plan.changed_records, "seconds": round(run.seconds, 2),
            "refresh": plan.describe()})
