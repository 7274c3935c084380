"""Lead Data Factory: the Dagster code location and its plain-Python library (``pipelines.lib``)."""
