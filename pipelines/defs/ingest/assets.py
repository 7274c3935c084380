"""Ingestion: every lead file under <home>/warehouse and <home>/inbox into raw DuckDB tables."""


from collections.abc import Iterator

import dagster as dg

from pipelines.defs.resources import DUCKDB_WRITER_POOL, LeadHomeResource
from pipelines.lib.ingest import REJECTIONS_TABLE, SOURCE_SYSTEMS, ingest_source, raw_table
from pipelines.lib.profiling import profile_relation

RAW_SPECS = {
    system: dg.AssetSpec(
        key=["raw", f"{system}_leads"],
        description=f"Lead files under <home>/{system} ({', '.join(patterns)}), all text, headers mapped.",
        group_name="ingest",
        kinds={"duckdb", "python"},
        skippable=True,
    )
    for system, patterns in SOURCE_SYSTEMS.items()
}
# Kept in a dict, not at module level: the defs loader would take a bare AssetSpec for an asset of its own.
RAW_SPECS["rejections"] = dg.AssetSpec(
    key=["raw", "ingest_rejections"],
    description="Whole files that could not be read, with the reason naming file (and row).",
    group_name="ingest",
    kinds={"duckdb"},
    skippable=True,
)


@dg.multi_asset(specs=list(RAW_SPECS.values()), can_subset=True, pool=DUCKDB_WRITER_POOL)
def raw_lead_files(context: dg.AssetExecutionContext, lead_home: LeadHomeResource) -> Iterator[dg.MaterializeResult]:
    home = lead_home.lead_home()
    selected = context.selected_asset_keys
    with home.connect() as conn:
        for system in SOURCE_SYSTEMS:
            spec = RAW_SPECS[system]
            if spec.key not in selected:
                continue
            result = ingest_source(conn, home.root, system)
            for file, reason in result.rejected_files:
                context.log.warning(f"rejected {file}: {reason}")
            yield dg.MaterializeResult(
                asset_key=spec.key,
                metadata={
                    **profile_relation(conn, raw_table(system)),
                    "files_read": result.files_read,
                    "files_rejected": len(result.rejected_files),
                    "rows_by_file": dg.MetadataValue.json(result.rows_by_file),
                },
            )
        if RAW_SPECS["rejections"].key in selected:
            count = conn.execute(f"select count(*) from {REJECTIONS_TABLE}").fetchone()[0]
            yield dg.MaterializeResult(asset_key=RAW_SPECS["rejections"].key, metadata={"row_count": count})
