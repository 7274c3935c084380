"""Resources shared by every stage."""


import dagster as dg
from dagster_dbt import DbtCliResource

from pipelines.defs.standardise.project import dbt_project
from pipelines.lib.dbt_project import DBT_EXECUTABLE
from pipelines.lib.home import LeadHome

# Every asset that writes the DuckDB file runs in this pool; the instance config
# (pipelines/config/dagster.yaml) limits it to one at a time.
DUCKDB_WRITER_POOL = "duckdb_writer"


class LeadHomeResource(dg.ConfigurableResource):
    """The data home. Empty means ``$LEADFACTORY_HOME``, else ``./data``."""

    home: str = ""

    def lead_home(self) -> LeadHome:
        home = LeadHome.from_env(self.home or None).ensure()
        home.export_env()  # dbt's subprocess finds the same DuckDB file through the environment
        return home


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "lead_home": LeadHomeResource(),
            "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
        }
    )
