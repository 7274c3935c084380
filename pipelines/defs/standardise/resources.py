"""The dbt CLI resource, used only by the batch location's standardisation assets."""

import dagster as dg
from dagster_dbt import DbtCliResource

from pipelines.defs.standardise.project import dbt_project
from pipelines.lib.standardise.dbt_project import DBT_EXECUTABLE


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)})
