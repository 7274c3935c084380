"""Review in Excel, a kind at a time: export the queue, fill it in as a person would, import it, run again."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import openpyxl
import pytest
from openpyxl.utils import get_column_letter

from pipelines.lib.matching.leads import record_decision
from pipelines.lib.matching.review import (
    DECISION_HEADER, META_SHEET, MARKER, export_review_workbook, import_review_workbook, is_review_workbook,
    parse_decision,
)
from tests.conftest import leads_of, run_library, settled, use_home, write_csv

LEADFACTORY = str(Path(sys.executable).with_name("leadfactory"))
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
MOBILE_SHEET, CONTACT_SHEET = "同手机号姓名不同", "同邮箱微信QQ姓名不同"


def person(name, mobile=None, email=None, wechat=None, company=None, city=None):
    return {"姓名": name, "手机": mobile, "邮箱": email, "微信": wechat, "公司": company, "城市": city}


# Five pairs of strangers who share a contact: the matcher cannot tell, so all five go to review.
PEOPLE = [
    person("林超", "13811110001", company="星河贸易有限公司", city="成都"),  # row 2 \ m1: same mobile
    person("罗霞", "13811110001", company="星河贸易有限公司", city="成都"),  # row 3 /
    person("周敏", "13811110002", city="杭州"),  # 4 \ m2: same mobile
    person("吴刚", "13811110002", city="杭州"),  # 5 /
    person("郑洁", email="zj_home@163.com", city="南京"),  # 6 \ e1: same e-mail
    person("钱进", email="zj_home@163.com", city="南京"),  # 7 /
    person("许静", wechat="xujing_88", city="厦门"),  # 8 \ e2: same WeChat
    person("韩梅", wechat="xujing_88", city="厦门"),  # 9 /
    person("罗霞", "13999990001", email="luoxia@qq.com", city="成都"),  # 10 \ another 罗霞, one lead of two
    person("罗霞", "13999990001", city="成都"),  # 11 /
    person("冯雪", "13811110003", city="西安"),  # 12 \ m3: same mobile
    person("陈刚", "13811110003", city="西安"),  # 13 / (last, so dropping it moves no other row)
]
PAIRS = {"m1": (2, 3), "m2": (4, 5), "m3": (12, 13), "e1": (6, 7), "e2": (8, 9)}
NAMES = {key: frozenset(PEOPLE[row - 2]["姓名"] for row in rows) for key, rows in PAIRS.items()}


@pytest.fixture(scope="module")
def library(tmp_path_factory, module_monkeypatch):
    """One real run over PEOPLE; each test works on its own copy of the home."""
    home = use_home(tmp_path_factory.mktemp("review_library"), module_monkeypatch)
    write_csv(home.warehouse_dir / "people.csv", PEOPLE)
    run_library(home)
    return home


@pytest.fixture
def home(library, tmp_path, monkeypatch):
    root = tmp_path / "home"
    shutil.copytree(library.root, root, ignore=shutil.ignore_patterns("data_docs", "dbt_runs", ".writer.lock"))
    return use_home(root, monkeypatch)


def lead(home, row: int) -> str:
    return leads_of(home)[f"warehouse/people.csv#{row}"]


def leads_of_pair(home, key: str) -> tuple[str, str]:
    a, b = PAIRS[key]
    return lead(home, a), lead(home, b)


def export(home) -> Path:
    with home.connect(read_only=True) as conn:
        return export_review_workbook(conn, home).path


def pair_cells(path: Path) -> dict[str, str]:
    """{pair key: the address of its decision cell, e.g. "同手机号姓名不同!A5"}."""
    book = openpyxl.load_workbook(path, read_only=True)
    cells = {}
    for sheet in book.worksheets:
        lines = list(sheet.iter_rows(values_only=True))
        header = next((i for i, line in enumerate(lines) if DECISION_HEADER in line), None)
        if header is None:
            continue
        a, b = lines[header].index("姓名 A"), lines[header].index("姓名 B")
        for number, line in enumerate(lines[header + 1:], start=header + 2):
            key = next(k for k, names in NAMES.items() if names == {line[a], line[b]})
            cells[key] = f"{sheet.title}!A{number}"
    book.close()
    return cells


def fill(path: Path, target: Path, values: dict[str, str]) -> Path:
    """Type ``values`` ({"sheet!A5": "同一人"}) into the workbook and save it, as a person does in Excel."""
    book = openpyxl.load_workbook(path)
    for address, value in values.items():
        sheet, cell = address.split("!")
        book[sheet][cell] = value
    book.save(target)
    return target


def queue_pairs(home) -> set[frozenset[str]]:
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        return {frozenset(p) for p in conn.execute("select lead_id_l, lead_id_r from published.lead_review_queue").fetchall()}


def decisions(home) -> list[dict]:
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        return conn.execute("select * from matching.decisions order by decision_id").pl().to_dicts()


def test_the_export_has_one_sheet_per_kind_both_records_side_by_side_and_drop_downs(home, query):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home.root), "LEADFACTORY_HOME": str(home.root)}
    done = subprocess.run([LEADFACTORY, "review", "export"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = home.outbox_dir.glob("审核_*.xlsx")
    assert str(path) in done.stdout and "5 pairs to review" in done.stdout

    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["说明", MOBILE_SHEET, CONTACT_SHEET, META_SHEET]
    assert book[META_SHEET].sheet_state == "veryHidden" and book[META_SHEET]["A1"].value == MARKER
    kinds = dict(query(home, "select conflict_kind, count(*) from published.lead_review_queue group by 1"))
    assert kinds == {"same_mobile_different_name": 3, "same_contact_different_name": 2}
    cells = pair_cells(path)
    assert {k for k, c in cells.items() if c.startswith(MOBILE_SHEET)} == {"m1", "m2", "m3"}
    assert {k for k, c in cells.items() if c.startswith(CONTACT_SHEET)} == {"e1", "e2"}

    sheet = book[MOBILE_SHEET]
    header = [c.value for c in sheet[4]]
    column = {name: i for i, name in enumerate(header)}
    rows = [list(line) for line in sheet.iter_rows(min_row=5, max_row=7)]
    probabilities = [r[column["匹配概率 (probability)"]].value for r in rows]
    assert probabilities == sorted(probabilities, reverse=True)
    m1 = rows[int(cells["m1"].split("!A")[1]) - 5]
    assert {m1[column["姓名 A"]].value, m1[column["姓名 B"]].value} == {"林超", "罗霞"}
    assert m1[column["姓名 比较"]].value == "不同" and m1[column["手机 比较"]].value == "相同"
    assert m1[column["公司 比较"]].value == "相同" and m1[column["邮箱 比较"]].value == "缺失"
    mobile = m1[column["手机 A"]]
    assert mobile.value == "+8613811110001" and mobile.data_type == "s"  # text, never 1.38E+10
    assert mobile.fill.fgColor.rgb.endswith("C6EFCE") and m1[column["姓名 A"]].fill.fgColor.rgb.endswith("F8CBAD")
    assert "同手机号" in m1[column["依据 (why)"]].value
    assert {m1[column["线索 A (lead)"]].value, m1[column["线索 B (lead)"]].value} == set(leads_of_pair(home, "m1"))
    for name in ("review_id", "lead_id_l", "lead_id_r", "record_id_l", "record_id_r"):
        assert m1[column[name]].value
    assert sheet.column_dimensions[get_column_letter(column["review_id"] + 1)].hidden

    validations = {str(v.sqref): v for v in sheet.data_validations.dataValidation}
    assert set(validations) == {"A2", "A5:A7"}  # the sheet's own decision, and every pair's
    for validation in validations.values():
        assert validation.type == "list" and validation.formula1 == '"同一人,不同人"' and validation.allow_blank
    contact = {str(v.sqref) for v in book[CONTACT_SHEET].data_validations.dataValidation}
    assert contact == {"A2", "A5:A6"}
    instructions = "\n".join(str(c.value) for line in book["说明"].iter_rows() for c in line if c.value)
    assert "inbox" in instructions and "leadfactory review import" in instructions and "A2" in instructions


def test_a_filled_workbook_applies_as_one_batch_and_every_later_run_honours_it(home):
    path = export(home)
    cells = pair_cells(path)
    filled = fill(path, home.root / "filled.xlsx", {
        f"{MOBILE_SHEET}!A2": "不同人",  # the whole sheet: every row left blank
        cells["m1"]: "同一人",  # a row's own decision keeps it
        cells["e1"]: "不同人",  # e2 left blank, and no decision for its sheet: undecided
    })
    with home.connect() as conn:
        result = import_review_workbook(conn, filled, decided_by="王专员")
    assert (result.same, result.different, result.undecided, result.skipped, result.errors) == (1, 3, 1, {}, [])
    by_pair = {key: next(r for r in result.rows if f"{r.sheet}!A{r.row}" == cell) for key, cell in cells.items()}
    assert [by_pair[k].decision for k in ("m1", "m2", "m3", "e1")] == ["same", "different", "different", "different"]
    assert by_pair["m2"].from_sheet and by_pair["m3"].from_sheet and not by_pair["m1"].from_sheet
    assert by_pair["e2"].status == "undecided"
    stored = decisions(home)
    assert len(stored) == 4
    assert {frozenset((d["lead_a"], d["lead_b"])): d["decision"] for d in stored} == {
        frozenset(leads_of_pair(home, k)): d for k, d in
        {"m1": "same", "m2": "different", "m3": "different", "e1": "different"}.items()}
    for d in stored:
        assert d["decided_by"] == "王专员" and d["decided_at"] is not None
        assert d["origin"].startswith("review workbook filled.xlsx exported ")

    queued_before = queue_pairs(home)
    run_library(home)
    assert lead(home, 2) == lead(home, 3)  # m1: the person said same
    from pipelines.lib.history.history import LeadHistory
    from pipelines.lib.identity.library import library_of

    story = LeadHistory(library_of(home.root).root).story(lead(home, 2))
    assert story and story[0]["cause"] == "review_decision"  # the merge the decision made, in the lead's history
    queued = queue_pairs(home)
    for key in ("m2", "m3", "e1"):  # different: kept apart, and not offered again
        left, right = leads_of_pair(home, key)
        assert left != right and frozenset((left, right)) not in queued
    assert frozenset(leads_of_pair(home, "e2")) in queued and frozenset(leads_of_pair(home, "e2")) in queued_before


def _import_metadata(result) -> dict:
    for event in result.all_events:
        if event.is_step_materialization:
            materialization = event.step_materialization_data.materialization
            if materialization.asset_key.path == ["raw", "library_records"]:
                return {k: v.value for k, v in materialization.metadata.items()}
    raise AssertionError("the run imported nothing")


def test_a_workbook_dropped_into_the_inbox_is_applied_by_the_import_run_at_once(home):
    path = export(home)
    cells = pair_cells(path)
    dropped = settled(fill(path, home.inbox_dir / "审核_已填.xlsx", {cells["m1"]: "同一人", cells["e1"]: "不同人"}))
    metadata = _import_metadata(run_library(home, files=[dropped]))
    # applied by this run, incrementally: the published leads show it without waiting for the nightly run
    assert metadata["refresh"].startswith("incremental")
    assert lead(home, 2) == lead(home, 3)
    left, right = leads_of_pair(home, "e1")
    assert left != right and frozenset((left, right)) not in queue_pairs(home)
    (applied,) = metadata["review_workbooks"]
    assert (applied["status"], applied["same"], applied["different"]) == ("applied", 1, 1)
    assert {d["decided_by"] for d in decisions(home)} == {applied["decided_by"]} != {""}
    # a workbook of decisions is not a lead file: nothing imported from it, and it is kept in the archive
    assert metadata["files"] == []
    assert not dropped.exists() and len(list((home.inbox_dir / "archive").glob("*审核_已填.xlsx"))) == 1
    assert len(list(home.outbox_dir.glob("审核结果_*.xlsx"))) == 1


def test_a_stale_workbook_applies_what_is_unchanged_and_says_why_it_skipped_the_rest(home):
    path = export(home)
    cells = pair_cells(path)
    m2, e1 = leads_of_pair(home, "m2"), leads_of_pair(home, "e1")
    with home.connect() as conn:  # since the export: someone decided two pairs ...
        record_decision(conn, *m2, "same", decided_by="李专员")
        record_decision(conn, *e1, "different", decided_by="李专员")
    # ... a new file joins the first 罗霞 to the other 罗霞's lead, and 陈刚 left the extract
    write_csv(home.inbox_dir / "bridge.csv", [person("罗霞", "13811110001", email="luoxia@qq.com", city="成都")])
    write_csv(home.warehouse_dir / "people.csv", PEOPLE[:-1])
    run_library(home)
    assert lead(home, 3) == lead(home, 10) != lead(home, 2)

    filled = fill(path, home.root / "filled.xlsx", {
        f"{MOBILE_SHEET}!A2": "不同人", f"{CONTACT_SHEET}!A2": "不同人",
        f"{CONTACT_SHEET}!A9": "同一人",  # typed on a row that is no pair of the export
    })
    before = len(decisions(home))
    with home.connect() as conn:
        result = import_review_workbook(conn, filled, decided_by="王专员")
    reasons = {key: next(r for r in result.rows if f"{r.sheet}!A{r.row}" == cell).reason for key, cell in cells.items()}
    assert reasons == {"m1": "record_moved", "m2": "merged_since", "m3": "record_gone", "e1": "decided_since", "e2": None}
    assert result.skipped == {"record_moved": 1, "merged_since": 1, "record_gone": 1, "decided_since": 1, "unknown_pair": 1}
    assert result.different == 1 and result.same == 0
    added = decisions(home)[before:]
    assert [(frozenset((d["lead_a"], d["lead_b"])), d["decision"]) for d in added] == [
        (frozenset(leads_of_pair(home, "e2")), "different")]


def test_a_bad_decision_is_reported_by_sheet_row_and_value_and_the_rest_applies(home):
    path = export(home)
    cells = pair_cells(path)
    filled = fill(path, home.root / "filled.xlsx", {
        cells["m1"]: "也许",
        cells["m2"]: "\u3000Ｎ ",  # full-width N between spaces: a way of saying different
        f"{CONTACT_SHEET}!A2": "maybe",  # the sheet's decision is wrong: its blank rows stay undecided
    })
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home.root), "LEADFACTORY_HOME": str(home.root)}
    done = subprocess.run([LEADFACTORY, "review", "import", str(filled), "--by", "赵专员"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    sheet, cell = cells["m1"].split("!")
    assert f"工作表「{sheet}」第 {cell[1:]} 行" in done.stdout and "「也许」" in done.stdout
    assert f"sheet {sheet}, row {cell[1:]}: unknown decision '也许'" in done.stdout
    assert f"工作表「{CONTACT_SHEET}」第 2 行" in done.stdout and "'maybe'" in done.stdout
    stored = decisions(home)
    assert [(frozenset((d["lead_a"], d["lead_b"])), d["decision"], d["decided_by"]) for d in stored] == [
        (frozenset(leads_of_pair(home, "m2")), "different", "赵专员")]
    (result,) = home.outbox_dir.glob("审核结果_*.xlsx")
    assert str(result) in done.stdout
    outcomes = [line for line in openpyxl.load_workbook(result)["明细 Rows"].iter_rows(values_only=True)][1:]
    assert sorted(line[2] for line in outcomes) == sorted(
        ["错误 (error)"] * 2 + ["已生效 (applied)"] + ["未决定 (undecided)"] * 3)


def test_a_sheet_that_lost_its_hidden_ids_is_reported_not_dropped_silently(home):
    path = export(home)
    cells = pair_cells(path)
    book = openpyxl.load_workbook(path)
    sheet = book[CONTACT_SHEET]
    header = [c.value for c in sheet[4]]
    sheet.delete_cols(header.index("review_id") + 1, 5)  # copied into another workbook without them
    sheet[cells["e1"].split("!")[1]] = "同一人"
    book[MOBILE_SHEET][cells["m2"].split("!")[1]] = "不同人"
    book.save(home.root / "filled.xlsx")
    with home.connect() as conn:
        result = import_review_workbook(conn, home.root / "filled.xlsx", decided_by="王专员")
    (error,) = result.errors
    assert error.sheet == CONTACT_SHEET and "lost its hidden id columns" in error.reason
    assert (result.same, result.different) == (0, 1)  # the other sheet still applies


def test_is_review_workbook_knows_an_export_even_after_a_person_saved_it_and_nothing_else(home, tmp_path):
    path = export(home)
    assert is_review_workbook(path)
    assert is_review_workbook(fill(path, tmp_path / "saved.xlsx", {f"{MOBILE_SHEET}!A2": "同一人"}))
    assert not is_review_workbook(SAMPLES / "inbox" / "展会线索.xlsx")  # a lead file
    other = openpyxl.Workbook()
    other.active.title = META_SHEET  # even one with a sheet of that name
    other.active["A1"] = "线索"
    other.save(tmp_path / "other.xlsx")
    assert not is_review_workbook(tmp_path / "other.xlsx")
    (tmp_path / "half.xlsx").write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    write_csv(tmp_path / "leads.csv", [person("张伟", "13812345601")])
    for not_ours in ("half.xlsx", "leads.csv", "missing.xlsx"):
        assert not is_review_workbook(tmp_path / not_ours)


@pytest.mark.parametrize(("typed", "decision"), [
    ("同一人", "same"), (" 同 一 人 ", "same"), ("ｓａｍｅ", "same"), ("Y", "same"), ("是", "same"),
    ("不同人", "different"), ("\u3000不同人\u3000", "different"), ("Different", "different"), ("n", "different"),
    ("否", "different"), (None, None), ("  ", None),
])
def test_decision_variants(typed, decision):
    assert parse_decision(typed) == decision


@pytest.mark.parametrize("typed", ["也许", "same?", "1", "同一人不同人"])
def test_anything_else_is_not_a_decision(typed):
    with pytest.raises(ValueError):
        parse_decision(typed)
