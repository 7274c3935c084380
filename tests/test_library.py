"""The library's record identity and accumulation, at the import level (no dbt): ids from content or key,
not from where a row sits; snapshots retire what their newest extract lost; nothing is imported twice;
a crash mid-import leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.sources.field_mapping import ConfigError
from pipelines.lib.identity.ingest import LIBRARY_RECORDS, import_files
from pipelines.lib.identity.library import library_of
from pipelines.lib.sources.sources import load_sources
from tests.conftest import settled, use_home, write_csv

PEOPLE = [
    {"姓名": "张伟", "手机": "13812345601", "公司": "字节跳动", "城市": "北京"},
    {"姓名": "李娜", "手机": "13900000002", "公司": "华为", "城市": "深圳"},
    {"姓名": "王芳", "手机": "13700000003", "公司": "腾讯", "城市": "深圳"},
    {"姓名": "刘洋", "手机": "13600000004", "公司": "阿里巴巴", "城市": "杭州"},
]


def import_home(home, **kwargs):
    with home.connect() as conn:
        batch = import_files(conn, home.root, load_sources(), **kwargs)
        records = dict(conn.execute(f"select record_id, name from {LIBRARY_RECORDS}").fetchall())
    return batch, records


def ids_by_name(records: dict[str, str]) -> dict[str, str]:
    return {name: rid for rid, name in records.items()}


@pytest.fixture
def home(tmp_path, monkeypatch):
    return use_home(tmp_path, monkeypatch)


def test_record_ids_survive_rename_reorder_reexport_and_header_language(home):
    write_csv(home.warehouse_dir / "legacy.csv", PEOPLE)
    _, first = import_home(home)
    assert len(first) == 4
    # renamed and reordered
    (home.warehouse_dir / "legacy.csv").unlink()
    write_csv(home.warehouse_dir / "legacy_2026-11-23.csv", list(reversed(PEOPLE)))
    batch, second = import_home(home)
    assert second == first and batch.counts()["records_new"] == 0 and batch.counts()["records_retired"] == 0
    # re-exported by another system: English headers, other column order, GBK, Excel's ".0", full-width digits
    (home.warehouse_dir / "legacy_2026-11-23.csv").unlink()
    reexport = [{"City": p["城市"], "Mobile": p["手机"] + ".0", "Company": p["公司"], "Name": p["姓名"]} for p in PEOPLE]
    reexport[0]["Mobile"] = "１３８１２３４５６０１"
    write_csv(home.warehouse_dir / "export.csv", reexport, encoding="gbk")
    batch, third = import_home(home)
    assert third == first and batch.counts()["records_new"] == 0


def test_identical_rows_of_one_source_are_one_record_and_every_row_maps_to_it(home):
    write_csv(home.warehouse_dir / "twice.csv", PEOPLE + [PEOPLE[0], {**PEOPLE[1], "姓名": " 李娜 "}])
    batch, records = import_home(home)
    assert len(records) == 4
    (item,) = batch.imported
    assert item.rows_read == 6 and item.records_new == 4
    library = library_of(home.root)
    with duckdb.connect() as conn:
        library.register(conn)
        rows = conn.execute("select source_row, record_id from lib_import_rows order by source_row").fetchall()
    by_row = dict(rows)
    assert by_row[6] == by_row[2] and by_row[7] == by_row[3]  # Excel rows: header 1, data from 2
    assert len(set(by_row.values())) == 4


def test_a_snapshot_retires_what_its_newest_extract_lost_and_guards_against_a_broken_one(home):
    write_csv(home.warehouse_dir / "crm.csv", PEOPLE)
    _, before = import_home(home)
    write_csv(home.warehouse_dir / "crm.csv", PEOPLE[:3])
    batch, after = import_home(home)
    assert batch.retired == {"warehouse": 1}
    assert set(after) == set(before) - {ids_by_name(before)["刘洋"]}
    # the retired record is a new version, not a deletion: its history stays in the library
    with duckdb.connect() as conn:
        library_of(home.root).register(conn)
        changes = conn.execute("select change from lib_records where record_id = ? order by import_id",
                               [ids_by_name(before)["刘洋"]]).fetchall()
    assert changes == [("new",), ("retired",)]
    # an extract that would retire most of the source is taken as broken: nothing is retired
    write_csv(home.warehouse_dir / "crm.csv", PEOPLE[:1])
    batch, guarded = import_home(home)
    assert batch.retired == {} and "broken extract" in batch.retirement_withheld["warehouse"]
    assert guarded == after
    # an unreadable extract retires nothing either
    write_csv(home.warehouse_dir / "crm.csv", PEOPLE[:3])
    (home.warehouse_dir / "other.xlsx").write_bytes(b"PK\x03\x04 half a workbook")
    batch, kept = import_home(home)
    assert batch.retired == {} and "could not be read" in batch.retirement_withheld["warehouse"]
    assert kept == after


def test_an_unchanged_snapshot_writes_nothing(home):
    write_csv(home.warehouse_dir / "crm.csv", PEOPLE)
    import_home(home)
    versions = library_of(home.root).versions()
    batch, _ = import_home(home)
    assert batch.files == [] and library_of(home.root).versions() == versions


def test_a_keyed_source_keeps_the_record_when_its_content_changes(home, tmp_path, monkeypatch):
    config = tmp_path / "sources.yaml"
    config.write_text(textwrap.dedent("""
        sources:
          - {name: crm, kind: folder, path: warehouse, mode: snapshot, priority: 1, key: 线索ID}
          - {name: inbox, kind: folder, path: inbox, mode: append, priority: 2}
    """), encoding="utf-8")
    monkeypatch.setenv("LEADFACTORY_SOURCES", str(config))
    rows = [{"线索ID": f"C{i}", **p} for i, p in enumerate(PEOPLE)]
    write_csv(home.warehouse_dir / "crm.csv", rows)
    _, before = import_home(home)
    rows[0] = {**rows[0], "公司": "抖音集团", "手机": "13812345699"}
    rows.append({"线索ID": "", "姓名": "无主键", "手机": "13500000000"})
    write_csv(home.warehouse_dir / "crm.csv", rows)
    batch, after = import_home(home)
    assert set(after) == set(before)
    assert batch.counts()["records_updated"] == 1 and batch.counts()["records_new"] == 0
    (item,) = batch.imported
    assert item.rows_rejected == 1  # the row without a key, by number
    # a file of the source without the key column cannot be imported (and retires nothing)
    write_csv(home.warehouse_dir / "crm.csv", PEOPLE)
    batch, same = import_home(home)
    assert batch.failed and "线索ID" in batch.failed[0].reason and same == after


def test_an_inbox_file_is_imported_once_then_archived_and_the_library_keeps_its_records(home):
    path = write_csv(home.inbox_dir / "展会.csv", PEOPLE)
    content = path.read_bytes()
    batch, first = import_home(home)
    assert [f.status for f in batch.files] == ["imported"]
    assert not path.exists() and (home.root / batch.files[0].stored_as).read_bytes() == content
    # the same content dropped again, under another name: a duplicate, archived, nothing added
    settled_copy = home.inbox_dir / "展会(1).csv"
    settled_copy.write_bytes(content)
    settled(settled_copy)
    batch, second = import_home(home)
    assert [f.status for f in batch.files] == ["duplicate"] and second == first
    assert "imported before" in batch.files[0].reason
    # the archive may be cleared: the library keeps the records
    for archived in (home.inbox_dir / "archive").iterdir():
        archived.unlink()
    _, third = import_home(home)
    assert third == first


def test_an_unreadable_inbox_file_goes_to_failed_intact_and_the_others_still_import(home):
    write_csv(home.inbox_dir / "good.csv", PEOPLE[:2])
    settled(home.inbox_dir / "bad.xlsx", write=b"PK\x03\x04 half a workbook", seconds=120)
    settled(home.inbox_dir / "notes.pdf", write=b"%PDF-1.4 not leads")
    batch, records = import_home(home)
    status = {f.file_name: f.status for f in batch.files}
    assert status == {"inbox/good.csv": "imported", "inbox/bad.xlsx": "failed", "inbox/notes.pdf": "failed"}
    failed = {p.name.split("_", 1)[1]: p.read_bytes() for p in (home.inbox_dir / "failed").iterdir()}
    assert failed == {"bad.xlsx": b"PK\x03\x04 half a workbook", "notes.pdf": b"%PDF-1.4 not leads"}
    assert len(records) == 2
    reasons = {f.file_name: f.reason for f in batch.failed}
    assert "Excel" in reasons["inbox/bad.xlsx"] and "calamine" not in reasons["inbox/bad.xlsx"]


def test_a_crash_mid_import_leaves_no_partial_import_and_the_file_is_imported_next_time(home):
    """The process dies (os._exit, as kill -9 would) after the records were written and before the
    import was committed: readers see nothing of it, the file stays in the inbox, the next import
    takes it whole, once."""
    path = write_csv(home.inbox_dir / "crash.csv", PEOPLE)
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from pipelines.lib.identity import library
        from pipelines.lib.home import LeadHome
        from pipelines.lib.identity.ingest import import_files
        original = library.Library.append
        def dying_append(self, name, table):
            if name == "imports":
                os._exit(9)
            original(self, name, table)
        library.Library.append = dying_append
        home = LeadHome.from_env({str(home.root)!r})
        with home.connect() as conn:
            import_files(conn, home.root)
    """)
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ}, capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    assert path.exists()
    lib = library_of(home.root)
    assert lib.exists("records") and not lib.exists("imports")  # rows were written, the commit was not
    batch, records = import_home(home)
    assert [f.status for f in batch.files] == ["imported"] and len(records) == 4
    with duckdb.connect() as conn:
        lib.register(conn)
        (rows,), = conn.execute("select count(*) from lib_import_rows").fetchall()
        (orphans,), = conn.execute("select count(*) from lib_all_records where import_id not in "
                                   "(select import_id from lib_imports)").fetchall()
    assert rows == 4 and orphans == 4  # the crashed batch's rows are ignored, not counted twice


def test_sources_config_is_validated_with_errors_that_name_the_entry(tmp_path):
    bad = tmp_path / "sources.yaml"
    bad.write_text("sources:\n  - {name: crm, kind: folder, path: warehouse, mode: mirror, priority: 1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"sources.yaml: sources.crm: mode 'mirror' must be one of"):
        load_sources(bad)
    bad.write_text("sources:\n  - {name: crm, path: ../elsewhere, mode: append, priority: 1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"sources.crm: path '../elsewhere' must be a folder inside the data home"):
        load_sources(bad)
    bad.write_text("sources:\n  - {name: a, path: x, mode: append, priority: 1}\n  - {name: a, path: y, mode: append, priority: 2}\n",
                   encoding="utf-8")
    with pytest.raises(ConfigError, match=r"source names must be unique; repeated: \['a'\]"):
        load_sources(bad)
    assert [s.name for s in load_sources()] == ["warehouse", "inbox"]


def test_record_ids_do_not_depend_on_polars_or_python_hashing(home):
    """The id is md5 over the canonical text: the same row gives the same id in any process."""
    write_csv(home.warehouse_dir / "one.csv", PEOPLE[:1])
    _, records = import_home(home)
    script = textwrap.dedent("""
        import duckdb
        text = chr(31).join(['张伟', '13812345601'] + [chr(0)] * 6 + ['字节跳动', chr(0), chr(0), '北京'] + [chr(0)] * 5)
        print(duckdb.sql("select md5('warehouse' || chr(31) || 'content' || chr(31) || ?)", params=[text]).fetchone()[0])
    """)
    expected = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip()
    assert list(records) == [expected]


def test_the_writer_lock_names_its_holder_and_a_killed_holder_releases_it(home):
    from pipelines.lib.home import WriterBusy

    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pipelines.lib.home import LeadHome
        with LeadHome.from_env({str(home.root)!r}).writer_lock("nightly run 42"):
            print("held", flush=True)
            time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WriterBusy, match="nightly run 42"), home.writer_lock("a test", wait_seconds=0.5):
            pass
    finally:
        holder.kill()  # SIGKILL: no clean-up runs in the holder
        holder.wait()
    with home.writer_lock("a test", wait_seconds=0):
        assert home.writer_lock_holder()["holder"] == "a test"
    assert [p.name for p in home.root.iterdir() if p.name.startswith(".writer")] == [".writer.lock"]


def test_a_file_saved_again_while_it_is_imported_is_imported_as_hashed_and_the_new_content_next_time(home, monkeypatch):
    from pipelines.lib.identity import ingest

    path = write_csv(home.inbox_dir / "名单.csv", PEOPLE[:2])
    original = ingest.read_lead_file

    def read_while_resaved(file, label, mapping, content):
        write_csv(path, PEOPLE[2:])  # the specialist saves the file again, mid-import
        return original(file, label, mapping, content)

    monkeypatch.setattr(ingest, "read_lead_file", read_while_resaved)
    batch, first = import_home(home)
    assert sorted(first.values()) == sorted(p["姓名"] for p in PEOPLE[:2])  # what was hashed is what was read
    assert path.exists() and not (home.inbox_dir / "archive").exists()  # the new content was not archived unread
    monkeypatch.setattr(ingest, "read_lead_file", original)
    batch, second = import_home(home)
    assert [f.status for f in batch.files] == ["imported"] and len(second) == 4 and not path.exists()


def test_a_row_edited_in_place_replaces_its_record_but_a_stranger_in_the_same_row_does_not(home):
    write_csv(home.warehouse_dir / "crm.csv", PEOPLE)
    _, before = import_home(home)
    edited = [{**PEOPLE[0], "手机": "13812345699"}, PEOPLE[1],
              {"姓名": "陌生人", "手机": "13500000009", "公司": "别家", "城市": "成都"}, PEOPLE[3]]
    write_csv(home.warehouse_dir / "crm.csv", edited)
    import_home(home)
    with duckdb.connect() as conn:
        library_of(home.root).register(conn)
        replaces = dict(conn.execute("select name, replaces from lib_records where change = 'new' and replaces "
                                     "is not null or name = '陌生人'").fetchall())
    assert replaces == {"张伟": ids_by_name(before)["张伟"], "陌生人": None}
