"""Dagster on PostgreSQL (the production instance): one setting selects it, and the nightly job and a
sensor-launched import are recorded in a real server's database, with the DuckDB writer pool limited there.

Needs a PostgreSQL server at 127.0.0.1:5432 (user postgres, trust auth, or LEADFACTORY_TEST_POSTGRES_URL);
each module run creates its own database and drops it at the end.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import pytest
import yaml

from pipelines.lib.home import DAGSTER_POSTGRES_URL_ENV, DUCKDB_PATH_ENV, HOME_ENV, LeadHome
from tests.conftest import write_csv

psycopg = pytest.importorskip("psycopg")

LEADFACTORY = str(Path(sys.executable).with_name("leadfactory"))
CONFIG = Path(__file__).resolve().parents[1] / "pipelines" / "config"
SERVER = os.environ.get("LEADFACTORY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
WAREHOUSE = [
    {"线索ID": "W1", "姓名": "张伟", "手机": "13812345601", "公司": "字节跳动"},
    {"线索ID": "W2", "姓名": "李娜", "手机": "13900000002", "公司": "华为"},
    {"线索ID": "W3", "姓名": "王芳", "手机": "13700000003", "公司": "腾讯"},
]
INBOX = [{"姓名": "欧阳震华", "手机": "13912345601", "公司": "阿里巴巴"}, {"姓名": "司马相如", "手机": "13712345602"}]


def test_the_two_templates_differ_only_in_storage_and_one_setting_selects_the_copy(tmp_path, monkeypatch):
    embedded = yaml.safe_load((CONFIG / "dagster.yaml").read_text(encoding="utf-8"))
    production = yaml.safe_load((CONFIG / "dagster_postgres.yaml").read_text(encoding="utf-8"))
    assert production.pop("storage") == {"postgres": {"postgres_url": {"env": DAGSTER_POSTGRES_URL_ENV}}}
    assert production == embedded  # the pool limit, run queue and run monitoring are kept
    assert embedded["concurrency"]["pools"]["default_limit"] == 1
    monkeypatch.delenv(DAGSTER_POSTGRES_URL_ENV, raising=False)
    home = LeadHome.from_env(tmp_path).ensure()
    instance_yaml = home.dagster_home / "dagster.yaml"
    assert instance_yaml.read_bytes() == (CONFIG / "dagster.yaml").read_bytes()
    monkeypatch.setenv(DAGSTER_POSTGRES_URL_ENV, "postgresql://dagster:s3cret-pw@db.example:5432/dagster")
    home.ensure()  # an existing home follows the setting
    assert instance_yaml.read_bytes() == (CONFIG / "dagster_postgres.yaml").read_bytes()
    assert "s3cret-pw" not in instance_yaml.read_text(encoding="utf-8")  # only the variable's name is written
    instance_yaml.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")  # a home made before a change
    home.ensure()
    assert instance_yaml.read_bytes() == (CONFIG / "dagster_postgres.yaml").read_bytes()
    monkeypatch.delenv(DAGSTER_POSTGRES_URL_ENV)
    home.ensure()
    assert instance_yaml.read_bytes() == (CONFIG / "dagster.yaml").read_bytes()


@pytest.fixture(scope="module")
def database() -> str:
    """A new database on the real server for this module; dropped at the end."""
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at {SERVER}: {exc}")
    name = f"lf_dagster_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'create database "{name}"')
        try:
            yield urlunsplit(urlsplit(SERVER)._replace(path=f"/{name}"))
        finally:
            admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="module")
def pg_home(database, tmp_path_factory, module_monkeypatch) -> LeadHome:
    """A small home whose Dagster instance is on ``database``, exported to this process too."""
    root = tmp_path_factory.mktemp("pg_home")
    for key, value in {HOME_ENV: str(root), DUCKDB_PATH_ENV: str(root / "leadfactory.duckdb"),
                       "DAGSTER_HOME": str(root / "dagster_home"), DAGSTER_POSTGRES_URL_ENV: database}.items():
        module_monkeypatch.setenv(key, value)
    home = LeadHome.from_env().ensure()
    write_csv(home.warehouse_dir / "crm_extract.csv", WAREHOUSE)
    return home


def _sqlite_files(home: LeadHome) -> list[Path]:
    return [p for p in home.dagster_home.rglob("*") if p.suffix in (".db", ".sqlite") or p.name.endswith("-wal")]


@pytest.fixture(scope="module")
def runs(pg_home, database) -> dict[str, str]:
    """The nightly job run by ``leadfactory run``, then the inbox sensor's import: {job name: run id}."""
    from pipelines.defs.ingest.sensors import inbox_sensor
    from pipelines.runs import load_job

    env = {"PATH": os.environ["PATH"], "HOME": str(pg_home.root), HOME_ENV: str(pg_home.root),
           "DAGSTER_HOME": str(pg_home.dagster_home), DAGSTER_POSTGRES_URL_ENV: os.environ[DAGSTER_POSTGRES_URL_ENV],
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DAGSTER_DISABLE_TELEMETRY": "1"}
    done = subprocess.run([LEADFACTORY, "run"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    dropped = write_csv(pg_home.inbox_dir / "展会名单.csv", INBOX)
    with dg.DagsterInstance.get() as instance:
        cursor, request = None, None
        for _ in range(2):  # first sight, then settled: as two daemon ticks
            context = dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name=inbox_sensor.name)
            request = inbox_sensor(context)
            cursor = context.cursor
        assert isinstance(request, dg.RunRequest), request
        assert request.run_config["ops"]["library_records"]["config"]["files"] == [str(dropped)]
        # what the daemon launches for the request: its config and tags, tagged with the sensor
        result = load_job("inbox_import_job").execute_in_process(
            instance=instance, run_config=request.run_config,
            tags={**request.tags, **dg.DagsterRun.tags_for_sensor(inbox_sensor)})
        assert result.success
    assert not dropped.exists()  # imported and archived
    nightly = re.search(r"^run (\S+) succeeded$", done.stdout, re.MULTILINE)
    assert nightly, done.stdout[-3000:]
    return {"nightly_job": nightly.group(1), "inbox_import_job": result.run_id}


def test_the_home_instance_is_on_postgresql_with_the_pool_limit(pg_home, runs):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert instance.event_log_storage.supports_global_concurrency_limits
        assert instance.global_op_concurrency_default_limit == 1
    assert not _sqlite_files(pg_home), "Dagster fell back to SQLite files under dagster_home"


def test_both_runs_are_read_back_from_postgresql(pg_home, runs, database):
    with dg.DagsterInstance.get() as instance:
        records = {r.dagster_run.job_name: r.dagster_run for r in instance.get_run_records()}
    assert set(records) == set(runs)
    for job, run in records.items():
        assert run.run_id == runs[job] and run.status == dg.DagsterRunStatus.SUCCESS, (job, run.status)
    assert records["inbox_import_job"].tags["dagster/sensor_name"] == "inbox_sensor"
    with psycopg.connect(database) as conn:
        rows = conn.execute("select run_id, pipeline_name, status from runs").fetchall()
        assert sorted(rows) == sorted((run_id, job, "SUCCESS") for job, run_id in runs.items())
        # the writer pool's limit was set in PostgreSQL by the runs' steps, and no slot is left claimed
        assert conn.execute("select \"limit\" from concurrency_limits where concurrency_key = 'duckdb_writer'"
                            ).fetchall() == [(1,)]
        assert conn.execute("select count(*), count(run_id) from concurrency_slots "
                            "where concurrency_key = 'duckdb_writer' and deleted = false").fetchone() == (1, 0)
    assert not _sqlite_files(pg_home), "Dagster fell back to SQLite files under dagster_home"


def test_the_limit_holds_across_runs_and_a_dead_runs_slot_is_freed(pg_home, runs):
    from dagster._core.utils import make_new_run_id

    from pipelines.defs.run_health import HOST_TAG, PID_TAG, reap_dead_runs

    gone = subprocess.Popen(["true"])
    gone.wait()
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage

        def started(pid: int) -> dg.DagsterRun:
            return instance.add_run(dg.DagsterRun(
                job_name="inbox_import_job", run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED,
                tags={PID_TAG: str(pid), HOST_TAG: socket.gethostname()}))

        dead, waiting = started(gone.pid), started(os.getpid())
        assert storage.claim_concurrency_slot("duckdb_writer", dead.run_id, "library_records").is_claimed
        assert not storage.claim_concurrency_slot("duckdb_writer", waiting.run_id, "library_records").is_claimed
        assert reap_dead_runs(instance) == [dead.run_id]
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert storage.claim_concurrency_slot("duckdb_writer", waiting.run_id, "library_records").is_claimed
        storage.free_concurrency_slots_for_run(waiting.run_id)
        instance.report_run_failed(waiting, "finished for the test")
        assert storage.get_concurrency_info("duckdb_writer").active_slot_count == 0
