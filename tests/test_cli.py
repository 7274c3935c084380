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


@pytest.mark.parametrize("command", [[], ["run"], ["ingest"], ["summary"], ["samples"], ["dedupe"], ["train"], ["decide"],
                                     ["versions"], ["diff"], ["events", "apply"], ["edit"], ["history"], ["restore"],
                                     ["backup"], ["recover"], ["notify", "send"]])
def test_every_command_has_help(command):
    done = subprocess.run([LEADFACTORY, *command, "--help"], capture_output=True, text=True, check=True)
    assert "usage: leadfactory" in done.stdout
    assert len(done.stdout.splitlines()) > 3


def test_parser_knows_the_commands():
    assert {"run", "ingest", "summary", "samples", "dedupe", "train", "decide", "versions", "diff", "events", "edit",
            "history", "restore", "backup", "recover", "notify"} <= set(build_parser()._subparsers._group_actions[0].choices)


def test_run_prints_the_summary(tmp_path):
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
    # the publication is version 1; an import of two new people is version 2, and diff names them
    listed = subprocess.run([LEADFACTORY, "versions"], capture_output=True, text=True, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr[-3000:]
    version_1 = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert len(version_1) == 1 and version_1[0][0] == "1"
    assert version_1[0][3] == lines["leads published"].split()[2]  # the same leads as the summary says
    new_people = tmp_path / "new.csv"
    new_people.write_text("姓名,手机\n欧阳震华,13912345601\n司马相如,13712345602\n", encoding="utf-8")
    ingested = subprocess.run([LEADFACTORY, "ingest", str(new_people)], capture_output=True, text=True, env=env, timeout=300)
    assert ingested.returncode == 0, ingested.stderr[-3000:]
    listed = subprocess.run([LEADFACTORY, "versions"], capture_output=True, text=True, env=env, timeout=120)
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["2", "1"]
    diff = subprocess.run([LEADFACTORY, "diff", "1", "2"], capture_output=True, text=True, env=env, timeout=120)
    assert diff.returncode == 0, diff.stderr[-3000:]
    assert diff.stdout.startswith("version 1 -> 2: 2 leads added, 0 removed"), diff.stdout
    assert "13912345601" not in diff.stdout  # contacts masked
    assert subprocess.run([LEADFACTORY, "diff", "1", "9"], capture_output=True, text=True, env=env).returncode == 2



def test_train_standardises_and_gates_the_library_then_refuses_one_too_small(tmp_path):
    """Every step before training runs (import, dbt, the standardised records' gate); 400 records are too
    few to train on, which the command says plainly, leaving the committed model as it is."""
    from pipelines.lib.matching.match_config import load_match_config

    model = load_match_config().model_path
    before = model.read_bytes()
    shutil.copytree(SAMPLES / "warehouse", tmp_path / "warehouse")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LEADFACTORY_HOME": str(tmp_path)}
    done = subprocess.run([LEADFACTORY, "train"], capture_output=True, text=True, env=env, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "records are too few to train a matching model" in output, output[-3000:]
    assert "FAILED at matching__match_model" in output, output[-3000:]  # the gate before it passed
    assert model.read_bytes() == before

# A file whose rows go every way: a lead, a row whose only contacts are invalid (quarantined), rows that
# cannot be a lead (an invalid mobile or e-mail as the only value; nothing at all).
CONTACTS_FILE = (
    "姓名,手机,邮箱\n"
    "张三,1380013,zhang.san@example\n"   # row 2: a name, but no valid contact: not published
    "李四,13912345678,lisi@qq.com\n"      # row 3: a lead
    ",13800,\n"                           # row 4: only an invalid mobile
    ",,wang@@qq\n"                        # row 5: only an invalid e-mail
    "-,无,\n"                             # row 6: nothing but placeholders
)
FULL_CONTACTS = ("1380013", "zhang.san@example", "13912345678", "lisi@qq.com", "13800", "wang@@qq")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """`leadfactory ingest` of CONTACTS_FILE into a new home, as a user runs it (INFO logging)."""
    root = tmp_path_factory.mktemp("contacts")
    source = root / "联系人.csv"
    source.write_text(CONTACTS_FILE, encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "LEADFACTORY_HOME": str(root / "home")}
    done = subprocess.run([LEADFACTORY, "ingest", str(source)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "home", done


def test_ingest_logs_rejected_rows_with_their_contacts_masked(ingested):
    """The run log says which rows were refused and what was wrong with their contacts, showing each value
    masked, and never a whole phone number or e-mail address."""
    _, done = ingested
    logged = done.stdout + done.stderr
    rejected = {line.split(" row ")[1].split()[0]: line for line in logged.splitlines() if " rejected: " in line}
    assert set(rejected) == {"2", "4", "5", "6"}, logged[-3000:]
    assert "「13***13」" in rejected["2"] and "「z***@example」" in rejected["2"]
    assert "「*****」" in rejected["4"] and "「w***@@qq」" in rejected["5"]
    for value in FULL_CONTACTS:
        assert value not in logged, f"{value} reached the log"


def test_a_rejection_names_the_field_it_concerns(ingested):
    import duckdb

    home, _ = ingested
    with duckdb.connect(str(home / "leadfactory.duckdb"), read_only=True) as conn:
        fields = dict(conn.execute("select source_row, field from marts.lead_rejections").fetchall())
    assert fields == {4: "mobile", 5: "email", 6: None}


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


def test_a_review_workbook_is_never_written_outside_the_data_home(tmp_path):
    """It holds every contact in full: `review export -o` refuses a path outside the home."""
    home, elsewhere = tmp_path / "home", tmp_path / "desktop" / "审核.xlsx"
    done = subprocess.run([LEADFACTORY, "--home", str(home), "review", "export", "-o", str(elsewhere)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "data home" in done.stderr and "数据目录" in done.stderr
    assert not elsewhere.exists()
    inside = subprocess.run([LEADFACTORY, "--home", str(home), "review", "export", "-o", str(home / "outbox" / "a.xlsx")],
                            capture_output=True, text=True, timeout=120)
    assert "data home" not in inside.stderr  # refused for another reason (nothing ran yet), not the place
