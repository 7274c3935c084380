"""The leadfactory command, as a user runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import build_parser

LEADFACTORY = str(Path(sys.executable).with_name("leadfactory"))
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


@pytest.mark.parametrize("command", [[], ["run"], ["ingest"], ["summary"], ["samples"], ["dedupe"], ["train"], ["decide"]])
def test_every_command_has_help(command):
    done = subprocess.run([LEADFACTORY, *command, "--help"], capture_output=True, text=True, check=True)
    assert "usage: leadfactory" in done.stdout
    assert len(done.stdout.splitlines()) > 3


def test_parser_knows_the_commands():
    assert {"run", "ingest", "summary", "samples", "dedupe", "train", "decide"} <= set(build_parser()._subparsers._group_actions[0].choices)


def test_run_prints_the_summary_and_masks_phones(tmp_path):
    shutil.copytree(SAMPLES / "warehouse", tmp_path / "warehouse")
    shutil.copytree(SAMPLES / "inbox", tmp_path / "inbox")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LEADFACTORY_HOME": str(tmp_path)}
    done = subprocess.run([LEADFACTORY, "run"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = {line.strip().split("  ")[0]: line for line in done.stdout.splitlines()}
    assert lines["rows read"].split()[2] == "400"
    assert "leads published" in lines and "reconciles" in lines and lines["reconciles"].endswith("yes")
    assert 0 < int(lines["leads published"].split()[2].replace(",", "")) < 400
    # the inbox file was imported, archived, and its receipt printed
    assert "inbox/展会线索.xlsx: 100 rows read = " in done.stdout and "_回执.xlsx" in done.stdout
    assert (tmp_path / "dagster_home" / "dagster.yaml").exists()  # the run is recorded in the home's instance
    assert any((tmp_path / "dagster_home").glob("storage/*"))
    import re

    logged = done.stdout + done.stderr
    assert not re.search(r"1[3-9]\d{9}", logged), "a full mobile number reached the log"


def test_samples_if_absent_leaves_existing_files(tmp_path):
    (tmp_path / "warehouse").mkdir()
    (tmp_path / "warehouse" / "mine.csv").write_text("姓名\n张伟\n", encoding="utf-8")
    done = subprocess.run([LEADFACTORY, "--home", str(tmp_path), "samples", "--if-absent"], capture_output=True, text=True, check=True)
    assert "already present" in done.stdout
    assert sorted(p.name for p in (tmp_path / "warehouse").iterdir()) == ["mine.csv"]


def test_ingest_imports_a_file_where_it_lies_prints_its_receipt_and_says_when_it_comes_again(tmp_path):
    home = tmp_path / "home"
    mine = tmp_path / "my files" / "展会线索.xlsx"
    mine.parent.mkdir()
    shutil.copy(SAMPLES / "inbox" / "展会线索.xlsx", mine)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LEADFACTORY_HOME": str(home)}
    done = subprocess.run([LEADFACTORY, "ingest", str(mine)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "inbox/展会线索.xlsx" not in done.stdout  # it came from elsewhere and stays there
    assert "展会线索.xlsx: 100 rows read = " in done.stdout
    (receipt,) = (home / "outbox").glob("*_回执.xlsx")
    assert str(receipt) in done.stdout
    assert mine.exists() and len(list((home / "inbox" / "archive").iterdir())) == 1
    again = subprocess.run([LEADFACTORY, "ingest", str(mine)], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already imported before (same content); nothing added" in again.stdout
    assert len(list((home / "outbox").glob("*_回执.xlsx"))) == 2  # the second receipt says so
    bad = tmp_path / "my files" / "notes.pdf"
    bad.write_bytes(b"%PDF-1.4")
    failed = subprocess.run([LEADFACTORY, "ingest", str(bad)], capture_output=True, text=True, env=env, timeout=300)
    assert failed.returncode == 1 and "NOT imported" in failed.stdout
