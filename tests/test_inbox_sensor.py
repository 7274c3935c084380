"""The inbox sensor with real evaluations, the run-level writer limit, and runs that die."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from pipelines.defs.ingest.sensors import evaluate_inbox, inbox_sensor
from pipelines.runs import run_job
from tests.conftest import use_home, write_csv

LEADFACTORY = str(Path(sys.executable).with_name("leadfactory"))
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
PEOPLE = [{"姓名": "张伟", "手机": "13812345601", "公司": "字节跳动"}, {"姓名": "李娜", "手机": "13900000002", "公司": "华为"}]


def age(path: Path, seconds: float) -> None:
    """Make a file look as if it was last written ``seconds`` ago."""
    when = time.time() - seconds
    os.utime(path, (when, when))


def tick(instance, cursor=None):
    """One real evaluation of the sensor definition, as the daemon runs it."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name="inbox_sensor")
    result = inbox_sensor(context)
    return result, context.cursor


def test_the_sensor_is_on_by_default_and_ticks_at_least_every_five_seconds():
    from pipelines.definitions import defs

    sensor = defs().resolve_sensor_def("inbox_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds <= 5
    assert sensor.job_name == "inbox_import_job"


def test_a_half_copied_workbook_is_not_read_until_it_is_complete(tmp_path, monkeypatch):
    home = use_home(tmp_path, monkeypatch)
    whole = (SAMPLES / "inbox" / "展会线索.xlsx").read_bytes()
    path = home.inbox_dir / "展会线索.xlsx"
    path.write_bytes(whole[: len(whole) // 2])  # the copy is under way
    age(path, 10)
    instance = dg.DagsterInstance.ephemeral()
    now = time.time()
    result, cursor = evaluate_inbox(instance, None, now)
    assert isinstance(result, dg.SkipReason)  # first sight: not yet known to be settled
    result, cursor = evaluate_inbox(instance, cursor, now + 5)
    assert isinstance(result, dg.SkipReason), "a workbook without its zip end record is still arriving"
    with path.open("ab") as handle:  # the copy finishes
        handle.write(whole[len(whole) // 2:])
    age(path, 10)
    result, cursor = evaluate_inbox(instance, cursor, now + 10)
    assert isinstance(result, dg.SkipReason)  # it changed since the last tick
    result, cursor = evaluate_inbox(instance, cursor, now + 15)
    assert isinstance(result, dg.RunRequest)
    assert result.run_config["ops"]["library_records"]["config"]["files"] == [str(path)]


def test_each_dropped_file_is_imported_once_and_the_same_file_again_gets_a_receipt_saying_so(tmp_path, monkeypatch):
    home = use_home(tmp_path, monkeypatch)
    instance = dg.DagsterInstance.ephemeral()
    first = write_csv(home.inbox_dir / "客户名单.csv", PEOPLE)
    content = first.read_bytes()
    (home.inbox_dir / "~$客户名单.csv").write_text("lock", encoding="utf-8")  # Excel's lock file: not a lead file
    (home.inbox_dir / "下载中.xlsx.crdownload").write_bytes(b"partial")
    age(first, 10)
    result, cursor = tick(instance)
    assert isinstance(result, dg.SkipReason)
    result, cursor = tick(instance, cursor)
    assert isinstance(result, dg.RunRequest)
    assert result.run_config["ops"]["library_records"]["config"]["files"] == [str(first)]
    assert run_job("inbox_import_job", instance=instance, run_config=result.run_config).success
    assert not first.exists()
    (archived,) = (home.inbox_dir / "archive").iterdir()
    assert archived.read_bytes() == content
    result, cursor = tick(instance, cursor)
    assert isinstance(result, dg.SkipReason)  # nothing new: no run
    # dropped again under another name
    again = home.inbox_dir / "客户名单 (2).csv"
    again.write_bytes(content)
    age(again, 10)
    result, cursor = tick(instance, cursor)
    result, cursor = tick(instance, cursor)
    assert isinstance(result, dg.RunRequest)
    assert run_job("inbox_import_job", instance=instance, run_config=result.run_config).success
    receipts = sorted(home.outbox_dir.glob("*_回执.xlsx"))
    assert len(receipts) == 2
    import polars as pl

    second = pl.read_excel(receipts[-1] if "(2)" in receipts[-1].name else receipts[0], sheet_name="汇总 Summary",
                           has_header=False, infer_schema_length=0)
    words = dict(second.iter_rows())
    assert "重复文件" in words["状态 (status)"] and "imported before" in words["状态 (status)"]
    with home.connect(read_only=True) as conn:
        assert conn.execute("select count(*) from raw.library_records").fetchone()[0] == 2


def _started_run(instance, pid: int) -> dg.DagsterRun:
    from dagster._core.utils import make_new_run_id

    from pipelines.defs.run_health import HOST_TAG, PID_TAG

    run = dg.DagsterRun(job_name="inbox_import_job", run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED,
                        tags={PID_TAG: str(pid), HOST_TAG: os.uname().nodename})
    return instance.add_run(run)


def test_the_sensor_waits_while_an_import_runs_and_a_dead_run_blocks_nothing(tmp_path, monkeypatch):
    home = use_home(tmp_path, monkeypatch)
    instance = dg.DagsterInstance.ephemeral()
    path = write_csv(home.inbox_dir / "a.csv", PEOPLE)
    age(path, 10)
    _, cursor = tick(instance)
    alive = _started_run(instance, os.getpid())
    result, cursor = tick(instance, cursor)
    assert isinstance(result, dg.SkipReason) and f"waiting for run {alive.run_id}" in result.skip_message
    instance.report_run_failed(alive, "finished for the test")
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process that has died: its run was killed and never said so
    dead = _started_run(instance, gone.pid)
    result, cursor = tick(instance, cursor)
    assert isinstance(result, dg.RunRequest)
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE


def _run_cli(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "LEADFACTORY_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    return subprocess.Popen([LEADFACTORY, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)


def _step_windows(home: Path) -> dict[str, tuple]:
    """(created, first step start, last step end, status) of every run in the home's instance."""
    os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
    with dg.DagsterInstance.get() as instance:
        windows = {}
        for record in instance.get_run_records():
            times = [r.event_log_entry.timestamp for r in instance.get_records_for_run(record.dagster_run.run_id,
                                                                                    limit=100_000).records
                     if r.event_log_entry.dagster_event and r.event_log_entry.dagster_event.event_type_value in
                     ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE")]
            windows[record.dagster_run.run_id] = (record.create_timestamp.timestamp(), min(times), max(times),
                                                  record.dagster_run.status)
        return windows


def test_two_runs_started_at_once_never_write_at_the_same_time(tmp_path, monkeypatch):
    home = use_home(tmp_path, monkeypatch)
    shutil.copytree(SAMPLES / "warehouse", home.warehouse_dir, dirs_exist_ok=True)
    nightly = _run_cli(home.root, "run")
    importer = _run_cli(home.root, "ingest", str(SAMPLES / "inbox" / "展会线索.xlsx"))
    outputs = [p.communicate(timeout=600)[0] for p in (nightly, importer)]
    assert nightly.returncode == 0 and importer.returncode == 0, outputs
    windows = _step_windows(home.root)
    assert len(windows) == 2
    (a_created, a_start, a_end, _), (b_created, b_start, b_end, _) = sorted(windows.values(), key=lambda w: w[1])
    assert b_created < a_end, "the second run was not started while the first was running: nothing was tested"
    assert a_end <= b_start, "two runs wrote the library at the same time"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def test_a_killed_run_blocks_nothing_and_its_dbt_child_dies_with_it(tmp_path, monkeypatch):
    home = use_home(tmp_path, monkeypatch)
    shutil.copytree(SAMPLES / "warehouse", home.warehouse_dir, dirs_exist_ok=True)
    run = _run_cli(home.root, "run")
    deadline = time.time() + 240
    dbt = []
    while time.time() < deadline and not dbt:  # wait until the run is inside dbt, holding the file
        dbt = [c for c in _children(run.pid) if b"dbt" in Path(f"/proc/{c}/cmdline").read_bytes()]
        time.sleep(0.2)
    assert dbt, "the run never started dbt"
    time.sleep(2)
    os.kill(run.pid, signal.SIGKILL)  # as a user's kill -9, the parent alone
    run.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(Path(f"/proc/{c}").exists() for c in dbt):
        time.sleep(0.2)
    alive = [c for c in dbt if Path(f"/proc/{c}").exists() and b"Z" not in Path(f"/proc/{c}/stat").read_bytes()[-200:]]
    assert not alive, "dbt outlived the run that started it"
    again = _run_cli(home.root, "run")
    output = again.communicate(timeout=600)[0]
    assert again.returncode == 0, output[-3000:]
    statuses = sorted(str(s) for *_, s in _step_windows(home.root).values())
    assert statuses == ["DagsterRunStatus.FAILURE", "DagsterRunStatus.SUCCESS"], statuses


@pytest.fixture(autouse=True)
def _restore_dagster_home():
    saved = os.environ.get("DAGSTER_HOME")
    yield
    if saved is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = saved


def test_cursor_is_plain_json(tmp_path, monkeypatch):
    home = use_home(tmp_path, monkeypatch)
    write_csv(home.inbox_dir / "a.csv", PEOPLE)
    _, cursor = evaluate_inbox(dg.DagsterInstance.ephemeral(), None)
    assert list(json.loads(cursor)["seen"]) == ["inbox/a.csv"]


def test_a_file_that_broke_its_run_is_retried_alone_then_backed_off(tmp_path, monkeypatch):
    home = use_home(tmp_path, monkeypatch)
    instance = dg.DagsterInstance.ephemeral()
    bad = write_csv(home.inbox_dir / "bad.csv", PEOPLE)
    now = time.time()
    _, cursor = evaluate_inbox(instance, None, now)
    first, cursor = evaluate_inbox(instance, cursor, now + 5)
    assert first.run_config["ops"]["library_records"]["config"]["files"] == [str(bad)]
    # the run failed and left the file; a new file arrives meanwhile
    good = write_csv(home.inbox_dir / "good.csv", PEOPLE)
    retry, cursor = evaluate_inbox(instance, cursor, now + 10)
    assert retry.run_config["ops"]["library_records"]["config"]["files"] == [str(bad)]  # a run of its own
    second, cursor = evaluate_inbox(instance, cursor, now + 15)
    assert second.run_config["ops"]["library_records"]["config"]["files"] == [str(good)]  # not held back by bad
    good.unlink()
    third, cursor = evaluate_inbox(instance, cursor, now + 20)
    assert third.run_config["ops"]["library_records"]["config"]["files"] == [str(bad)]  # the third attempt
    for tick in range(3):  # then it waits, tick after tick
        result, cursor = evaluate_inbox(instance, cursor, now + 25 + 5 * tick)
        assert "retrying every 10 minutes" in result.skip_message
    later, cursor = evaluate_inbox(instance, cursor, now + 20 + 601)
    assert later.run_config["ops"]["library_records"]["config"]["files"] == [str(bad)]
