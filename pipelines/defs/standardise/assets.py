"""dbt-duckdb standardisation: staging -> intermediate -> marts, with dbt tests as asset checks."""


from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from pipelines.defs.resources import DUCKDB_WRITER_POOL, LeadHomeResource
from pipelines.defs.standardise.project import dbt_project
from pipelines.lib.standardise.dbt_project import prune_dbt_runs
from pipelines.lib.quality.profiling import profile_relation, relation_exists

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
    # dbt holds the DuckDB file lock until it exits, so the events are collected first and the
    # row counts and completeness read afterwards from the finished tables.
    target = home.dbt_runs_dir / context.run_id
    events = list(dbt.cli(["build"], context=context, target_path=target).stream())
    prune_dbt_runs(home.dbt_runs_dir, keep=DBT_RUNS_KEPT)
    with home.connect(read_only=True) as conn:
        for event in events:
            if isinstance(event, dg.Output | dg.AssetMaterialization):
                relation = ".".join(context.asset_key_for_output(event.output_name).path) if isinstance(
                    event, dg.Output) else ".".join(event.asset_key.path)
                if relation_exists(conn, relation):
                    event = event.with_metadata({**event.metadata, **profile_relation(conn, relation)})
            yield event
