"""Read lead files (CSV, Excel, Parquet) into all-text Polars frames, one frame per sheet.

Every cell is read as text: a mobile typed as a number in Excel must stay ``13800138000``, never
``1.38e10``, and a postcode must keep its leading zero.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import fastexcel
import polars as pl

CSV_SUFFIXES = {".csv", ".txt"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
PARQUET_SUFFIXES = {".parquet"}


class LeadFileError(ValueError):
    """A file cannot be read as leads; the message names the file (and the row where known)."""


@dataclass(frozen=True)
class Sheet:
    label: str  # the file's relative path, with "#sheet" for a workbook's second and later sheets
    frame: pl.DataFrame  # all columns Utf8, data rows only


def decode_text(raw: bytes, path: Path) -> tuple[str, str]:
    """Decode CSV bytes as UTF-8 (with or without BOM) or, failing that, GB18030 (a superset of GBK)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8"), "utf-8-sig"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as exc:
        raise LeadFileError(f"{path}: not UTF-8 or GBK/GB18030 text (byte {exc.start})") from exc


def _first_ragged_row(text: str) -> tuple[int, int, int] | None:
    """(data row, fields found, fields expected) of the first row whose width differs from the header."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    for row_number, row in enumerate(reader, start=1):
        if row and len(row) != len(header):
            return row_number, len(row), len(header)
    return None


def read_csv(path: Path, label: str) -> list[Sheet]:
    text, _encoding = decode_text(path.read_bytes(), path)
    if not text.strip():
        return []
    try:
        frame = pl.read_csv(io.StringIO(text), infer_schema=False, truncate_ragged_lines=False)
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError) as exc:
        ragged = _first_ragged_row(text)
        if ragged:
            row, found, expected = ragged
            raise LeadFileError(f"{path}: row {row}: {found} fields where the header has {expected}") from exc
        raise LeadFileError(f"{path}: cannot parse CSV: {exc}") from exc
    return [Sheet(label, frame)]


def read_excel(path: Path, label: str) -> list[Sheet]:
    try:
        workbook = fastexcel.read_excel(path)
    except Exception as exc:  # calamine raises its own error types for corrupt or encrypted files
        raise LeadFileError(f"{path}: cannot open workbook: {exc}") from exc
    sheets = []
    for index, sheet_name in enumerate(workbook.sheet_names):
        try:
            frame = workbook.load_sheet(index, dtypes="string").to_polars()
        except Exception as exc:
            raise LeadFileError(f"{path}: sheet {sheet_name!r}: cannot read: {exc}") from exc
        if frame.width == 0 or frame.height == 0:
            continue
        sheets.append(Sheet(label if index == 0 else f"{label}#{sheet_name}", frame))
    return sheets


def read_parquet(path: Path, label: str) -> list[Sheet]:
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:
        raise LeadFileError(f"{path}: cannot read Parquet: {exc}") from exc
    return [Sheet(label, frame.select(pl.all().cast(pl.Utf8)))]


def read_lead_file(path: Path, label: str | None = None) -> list[Sheet]:
    """Read one file by its extension; raise LeadFileError naming the file when it cannot be read."""
    label = label or path.name
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        sheets = read_csv(path, label)
    elif suffix in EXCEL_SUFFIXES:
        sheets = read_excel(path, label)
    elif suffix in PARQUET_SUFFIXES:
        sheets = read_parquet(path, label)
    else:
        raise LeadFileError(f"{path}: unsupported file type {suffix!r} (CSV, XLSX, XLS or Parquet)")
    # Header cells of Excel/CSV may carry stray spaces; blank rows are kept and rejected later with a reason.
    return [Sheet(s.label, s.frame.rename(lambda c: str(c).strip())) for s in sheets]
