"""Read a database source (``kind: database`` in sources.yaml): a SELECT on PostgreSQL or MySQL/MariaDB.

The connection string comes only from the environment variable the source names (``url_env``); its
scheme picks the driver: ``postgresql://`` / ``postgres://`` (psycopg 3), ``mysql://`` / ``mariadb://``
(pymysql). Errors name the source and the variable and never show the password.

With ``updated_at`` the read is incremental: rows whose column is ``>=`` the last mark (the largest value
read before, kept in the library's import log). ``>=`` rather than ``>``: a row written later with the
same timestamp as the mark (same second, a transaction that committed late) is still read; rows at the
mark that were read before are flagged (``at_mark``) so the import drops those the library already holds
unchanged. For a snapshot source the key column of every row is listed in the same read-only transaction,
so rows that disappeared are retired although only changed rows were read.

Rows are fetched in batches from a server-side cursor and turned into text columns batch by batch (as a
Parquet file's columns are), never held as Python rows for the whole result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, parse_qs

import polars as pl
import pyarrow as pa

from .readers import KEY_FIELDS, ROW_COLUMN, Sheet, _arrow_to_text, _column_names
from .field_mapping import FieldMapping, normalise_header
from .sources import Source

CONNECT_TIMEOUT_SECONDS = 10
# Naive timestamps are read as Beijing time downstream (dbt's parse_lead_timestamp); zoned ones are put there.
LEAD_TIME_ZONE = "Asia/Shanghai"
AT_MARK = "_lf_at_mark"   # added column: the row's updated_at equals the mark it was read from
_ALIAS = "lf_q"
POSTGRES_SCHEMES = ("postgresql", "postgres")
MYSQL_SCHEMES = ("mysql", "mariadb")


class DatabaseSourceError(RuntimeError):
    """A database source cannot be read now; the reason names the source and the variable, no secret."""

    def __init__(self, source: str, reason_zh: str, reason_en: str):
        self.source, self.reason_zh, self.reason_en = source, reason_zh, reason_en
        super().__init__(f"{source}: {reason_zh} ({reason_en})")

    def __reduce__(self):
        return type(self), (self.source, self.reason_zh, self.reason_en)


@dataclass
class DatabaseRead:
    sheet: Sheet                       # the same frame a Parquet file gives: ROW_COLUMN, then text columns
    watermark: str | None              # the largest updated_at read (the next read starts there)
    at_mark: list[int] = field(default_factory=list)   # ROW_COLUMN of rows whose updated_at equals the old mark
    present_keys: pl.Series | None = None  # snapshot, incremental: every row's key now in the source
    bytes_read: int = 0


def connection_url(source: Source) -> str:
    url = os.environ.get(source.url_env or "", "").strip()
    if not url:
        raise DatabaseSourceError(
            source.name,
            f"环境变量 {source.url_env} 未设置，无法连接数据源 {source.name} 的数据库",
            f"the environment variable {source.url_env} is not set: it must hold the connection string of "
            f"source {source.name}'s database")
    return url


def _scheme(source: Source, url: str) -> str:
    scheme = urlsplit(url).scheme.lower().split("+")[0]
    if scheme not in POSTGRES_SCHEMES + MYSQL_SCHEMES:
        raise DatabaseSourceError(
            source.name,
            f"环境变量 {source.url_env} 的连接串须以 postgresql://、mysql:// 或 mariadb:// 开头",
            f"the connection string in {source.url_env} must start with postgresql://, mysql:// or mariadb:// "
            f"(got {scheme + '://' if scheme else 'no scheme'})")
    return "postgresql" if scheme in POSTGRES_SCHEMES else "mysql"


def _secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [url]
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    found += [v for k, values in parse_qs(parts.query).items() if k.lower() in ("password", "passwd") for v in values]
    return sorted({s for s in found if s}, key=len, reverse=True)


def _safe_message(exc: BaseException, url: str) -> str:
    """The driver's message, first line, with the connection string and password taken out."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return f"{type(exc).__name__}: {text}"


def _quote(dialect: str, column: str) -> str:
    return f'"{column}"' if dialect == "postgresql" else f"`{column}`"


# ---------------------------------------------------------------------------------------------- drivers


def _fetched(cursor, size: int, name_of):
    """(column names, rows) per batch of ``size``; one (names, []) when no row came, for the column names
    (read after the first fetch: a server-side cursor describes its rows once it has fetched)."""
    first = True
    while True:
        rows = cursor.fetchmany(size)
        if rows or first:
            yield [name_of(d) for d in cursor.description or ()], rows
        first = False
        if not rows:
            break


class _Driver:
    conn: object

    def close(self) -> None:  # read-only: nothing to keep
        try:
            self.conn.rollback()
        finally:
            self.conn.close()


class _Postgres(_Driver):
    def __init__(self, url: str):
        import psycopg

        self.conn = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=False)
        # one consistent, read-only snapshot for the rows and the key listing; the product never writes here
        self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self.conn.read_only = True
        self._n = 0

    def batches(self, sql: str, params: list, size: int):
        self._n += 1
        with self.conn.cursor(name=f"leadfactory_read_{self._n}") as cursor:  # server-side: batches, not the lot
            cursor.itersize = size
            cursor.execute(sql, params or None)
            yield from _fetched(cursor, size, lambda column: column.name)


class _MySQL(_Driver):
    def __init__(self, url: str):
        import pymysql
        import pymysql.cursors

        parts = urlsplit(url)
        options = {k.lower(): v[-1] for k, v in parse_qs(parts.query).items()}
        self.conn = pymysql.connect(
            host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
            user=unquote(parts.username or ""), password=unquote(parts.password or options.get("password", "")),
            database=unquote(parts.path.lstrip("/")) or None, charset=options.get("charset", "utf8mb4"),
            connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=False,
            cursorclass=pymysql.cursors.SSCursor)  # unbuffered: rows stream from the server in batches
        with self.conn.cursor() as cursor:
            cursor.execute("set session transaction isolation level repeatable read")
            cursor.execute("start transaction with consistent snapshot, read only")

    def batches(self, sql: str, params: list, size: int):
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params or None)
            yield from _fetched(cursor, size, lambda column: column[0])


# ---------------------------------------------------------------------------------------------- reading


def _text_column(values: list, name: str) -> pl.Series:
    """One column of a batch as text, the way a Parquet column of that type reads (readers._arrow_to_text)."""
    try:
        array = pa.array(values)
    except (pa.ArrowException, TypeError, ValueError):  # mixed or exotic values: their text
        return pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.Utf8)
    if pa.types.is_timestamp(array.type) and array.type.tz is not None:
        zoned = pl.from_arrow(array.cast(pa.timestamp(array.type.unit, "UTC")))
        return _arrow_to_text(zoned.dt.convert_time_zone(LEAD_TIME_ZONE).dt.replace_time_zone(None).to_arrow(), name)
    return _arrow_to_text(array, name)


@dataclass
class _Fetched:
    frame: pl.DataFrame          # text columns c0, c1, ... (the ones not set aside)
    names: list[str]             # their names as the query returns them
    flags: list = field(default_factory=list)  # AT_MARK's values, row by row
    largest: object = None       # the last non-null value of the ordered-by column: the largest read


def _fetch(batches, order_column: str | None = None) -> _Fetched:
    """Batches of rows -> one text frame, converted a batch at a time; AT_MARK is set aside."""
    frames, names, flags, largest = [], [], [], None
    for names, rows in batches:
        if not rows:
            continue
        columns = list(zip(*rows))
        frames.append(pl.DataFrame([_text_column(list(columns[i]), f"c{i}") for i, n in enumerate(names)
                                    if n != AT_MARK]))
        if AT_MARK in names:
            flags.extend(columns[names.index(AT_MARK)])
        if order_column in names:  # NULLs sort first (MySQL) or last (PostgreSQL): skip them
            largest = next((v for v in reversed(columns[names.index(order_column)]) if v is not None), largest)
    kept = [n for n in names if n != AT_MARK]
    if not frames:
        return _Fetched(pl.DataFrame(schema={f"c{i}": pl.Utf8 for i in range(len(kept))}), kept)
    frame = pl.concat(frames, how="vertical")
    return _Fetched(frame.rename(dict(zip(frame.columns, [f"c{i}" for i in range(frame.width)]))), kept, flags, largest)


def read_database_source(source: Source, mark: str | None, mapping: FieldMapping, label: str) -> DatabaseRead:
    """The source's rows changed since ``mark`` (all rows without a mark or without ``updated_at``)."""
    url = connection_url(source)
    dialect = _scheme(source, url)
    try:
        # "postgresql+psycopg://" (SQLAlchemy's spelling) is the same server to libpq without the suffix
        plain = dialect + url[url.index("://"):] if dialect == "postgresql" else url
        driver = _Postgres(plain) if dialect == "postgresql" else _MySQL(url)
    except Exception as exc:  # noqa: BLE001 - any driver error becomes the source's reason, secrets removed
        raise DatabaseSourceError(
            source.name,
            f"无法连接数据源 {source.name} 的数据库（连接串取自环境变量 {source.url_env}）：{_safe_message(exc, url)}",
            f"cannot connect to source {source.name}'s database (connection string from {source.url_env}): "
            f"{_safe_message(exc, url)}") from None
    try:
        return _read(driver, dialect, source, mark, mapping, label)
    except DatabaseSourceError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DatabaseSourceError(
            source.name,
            f"数据源 {source.name} 的查询失败：{_safe_message(exc, url)}",
            f"the query of source {source.name} failed: {_safe_message(exc, url)}") from None
    finally:
        try:
            driver.close()
        except Exception:  # noqa: BLE001 - the read is done; a failed close changes nothing
            pass


def _read(driver, dialect: str, source: Source, mark: str | None, mapping: FieldMapping, label: str) -> DatabaseRead:
    # '%' in the user's query is literal: both drivers use %s placeholders once parameters are passed
    inner = source.query.replace("%", "%%")
    params: list = []
    if source.updated_at:
        column = f"{_ALIAS}.{_quote(dialect, source.updated_at)}"
        if mark is None:
            sql = f"select {_ALIAS}.* from ({inner}) {_ALIAS} order by {column}"
        else:
            sql = (f"select {_ALIAS}.*, ({column} = %s) as {AT_MARK} from ({inner}) {_ALIAS} "
                   f"where {column} >= %s order by {column}")
            params = [mark, mark]
    else:
        sql = f"select {_ALIAS}.* from ({inner}) {_ALIAS}"
    fetched = _fetch(driver.batches(sql, params, source.batch_rows), source.updated_at)
    names = fetched.names
    headers = _column_names(names, range(1, len(names) + 1))
    if not any(mapping.canonical_for(n) in KEY_FIELDS for n in headers):
        raise DatabaseSourceError(
            source.name, f"数据源 {source.name} 的查询结果里找不到姓名、手机等线索列",
            f"the query of source {source.name} returns no lead columns such as name or mobile")
    # the key is found as a file's key column is (case and spacing aside: PostgreSQL folds 线索ID to 线索id)
    key = next((n for n in names if source.key and normalise_header(n) == normalise_header(source.key)), None)
    for wanted, found, what in ((source.updated_at, source.updated_at in names, "updated_at"),
                                (source.key, key is not None, "key")):
        if wanted and not found:
            shown = ", ".join(names[:30])
            raise DatabaseSourceError(
                source.name, f"数据源 {source.name} 的查询结果里没有 {what} 列「{wanted}」（查询返回的列：{shown}）",
                f"the query of source {source.name} returns no column {wanted!r} (its {what}); it returns: {shown}")
    frame = fetched.frame.rename(dict(zip(fetched.frame.columns, headers)))
    bytes_read = int(frame.estimated_size())
    frame = frame.with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(ROW_COLUMN)).select(
        ROW_COLUMN, *headers)
    at_mark = [row for row, flag in zip(frame[ROW_COLUMN].to_list(), fetched.flags) if flag]
    # the next read starts at the largest value read (as the server renders it; it compares it back)
    watermark = str(fetched.largest) if fetched.largest is not None else mark
    present = None
    if source.is_snapshot and source.updated_at and mark is not None:
        key_sql = f"select {_ALIAS}.{_quote(dialect, key)} from ({source.query}) {_ALIAS}"
        keys = _fetch(driver.batches(key_sql, [], max(source.batch_rows, 50_000))).frame
        present = keys.to_series(0) if keys.width else pl.Series("key", [], pl.Utf8)
    # rows with no value at all are layout, as a file's blank lines are
    cells = [pl.col(n).is_not_null() & (pl.col(n).str.strip_chars() != "") for n in headers]
    if cells:
        frame = frame.filter(pl.any_horizontal(cells))
    return DatabaseRead(sheet=Sheet(label=label, frame=frame, header_row=0), watermark=watermark,
                        at_mark=at_mark, present_keys=present, bytes_read=bytes_read)
