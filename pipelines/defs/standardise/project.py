"""The dbt project as Dagster sees it. ``dagster dev`` re-parses it; elsewhere `make prepare` does."""

from dagster_dbt import DbtProject

from pipelines.lib.standardise.dbt_project import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()
