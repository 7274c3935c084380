"""Plain Python for the factory. Nothing here imports Dagster, so it runs in the CLI, tests and dbt plugins."""
