"""Dagster definitions grouped by stage; loaded by ``pipelines.definitions`` via load_from_defs_folder."""
