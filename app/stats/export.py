"""Tables out as CSV (UTF-8 with BOM, for Excel) or XLSX, streamed chunk by chunk.

Rows come in as an async iterator of chunks, so a million-row export never sits in memory:
CSV is encoded and sent per ~64 KiB; XLSX rows go to XlsxWriter in constant-memory mode (a
temporary file per sheet) in a worker thread, and the finished file is streamed from disk.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

import anyio
from fastapi.responses import StreamingResponse

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOM = "\ufeff"  # tells Excel the file is UTF-8 (Cyrillic stays readable)
CSV_FLUSH_BYTES = 64 * 1024
XLSX_MAX_ROWS = 1_048_576  # Excel's sheet limit, header included; more rows go to a new sheet
FILE_CHUNK = 256 * 1024
# A cell starting with one of these is a formula to Excel: citizen-written text must never run.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Kind = Literal["text", "int", "float", "bool", "datetime", "date", "hours", "list"]
Chunks = AsyncIterator[Sequence[Sequence[Any]]]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind = "text"


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback and the exact UTF-8 name."""
    fallback = filename.encode("ascii", "replace").decode().replace('"', "")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def _plain(value: Any, kind: Kind, tz: ZoneInfo) -> Any:
    """The cell's value in the region's local time, hours from seconds, lists joined."""
    if value is None:
        return None
    if kind == "datetime" and isinstance(value, datetime):
        return value.astimezone(tz).replace(tzinfo=None, microsecond=0) if value.tzinfo else value
    if kind == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    if kind == "hours":
        return round(value / 3600, 2)
    if kind == "bool":
        return bool(value)
    if kind == "list":
        return " ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return value


def _guarded(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_converter(kind: Kind, tz: ZoneInfo, decimal_comma: bool) -> Callable[[Any], str]:
    """The text of a non-null cell of this kind (chosen once per column, not per cell)."""

    def number(value: Any) -> str:
        text = repr(float(value)) if kind != "int" else str(int(value))
        return text.replace(".", ",") if decimal_comma else text

    def moment(value: Any) -> str:
        local = _plain(value, "datetime", tz)
        return local.strftime("%Y-%m-%d %H:%M:%S") if isinstance(local, datetime) else str(local)

    if kind == "int":
        return str
    if kind == "float":
        return number
    if kind == "hours":
        return lambda value: number(_plain(value, "hours", tz))
    if kind == "bool":
        return lambda value: "true" if value else "false"
    if kind == "datetime":
        return moment
    if kind == "date":
        return lambda value: _plain(value, "date", tz).isoformat()
    if kind == "list":
        return lambda value: _guarded(_plain(value, "list", tz))
    return lambda value: _guarded(str(value))


async def csv_stream(
    columns: Sequence[Column], chunks: Chunks, *, delimiter: str, tz: ZoneInfo
) -> AsyncIterator[bytes]:
    # With ';' (Russian Excel) the decimal separator is a comma, or Excel misreads 1.5 as a date.
    converters = [_csv_converter(c.kind, tz, decimal_comma=delimiter == ";") for c in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow([c.name for c in columns])
    async for rows in chunks:
        for row in rows:
            writer.writerow(
                [
                    "" if value is None else convert(value)
                    for convert, value in zip(converters, row, strict=True)
                ]
            )
            if buffer.tell() >= CSV_FLUSH_BYTES:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue().encode()


class _XlsxFile:
    """One workbook on disk, written row by row (XlsxWriter's constant-memory mode)."""

    def __init__(self, columns: Sequence[Column], sheet: str, tz: ZoneInfo):
        fd, self.path = tempfile.mkstemp(prefix="regiondesk-", suffix=".xlsx")
        os.close(fd)
        self.columns, self.sheet_name, self.tz = columns, sheet, tz
        # Imported on the first XLSX export: 2 MB that a serving process rarely needs.
        import xlsxwriter

        self.book = xlsxwriter.Workbook(
            self.path,
            {
                "constant_memory": True,
                # Text stays text: never a formula, a link or a number.
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
            },
        )
        self.bold = self.book.add_format({"bold": True})
        self.datetime_format = self.book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.date_format = self.book.add_format({"num_format": "yyyy-mm-dd"})
        self.sheets = 0
        self._new_sheet()

    def _new_sheet(self) -> None:
        self.sheets += 1
        name = self.sheet_name if self.sheets == 1 else f"{self.sheet_name} {self.sheets}"
        self.sheet = self.book.add_worksheet(name[:31])
        self.sheet.freeze_panes(1, 0)
        for i, column in enumerate(self.columns):
            self.sheet.write_string(0, i, column.name, self.bold)
        self.row = 1

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        for values in rows:
            if self.row >= XLSX_MAX_ROWS:
                self._new_sheet()
            for i, (column, raw) in enumerate(zip(self.columns, values, strict=True)):
                self._cell(i, _plain(raw, column.kind, self.tz))
            self.row += 1

    def _cell(self, col: int, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool):
            self.sheet.write_boolean(self.row, col, value)
        elif isinstance(value, int | float):
            self.sheet.write_number(self.row, col, value)
        elif isinstance(value, datetime):
            self.sheet.write_datetime(self.row, col, value, self.datetime_format)
        elif isinstance(value, date):
            self.sheet.write_datetime(self.row, col, value, self.date_format)
        else:
            self.sheet.write_string(self.row, col, str(value))

    def close(self) -> None:
        self.book.close()

    def remove(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)


async def xlsx_stream(
    columns: Sequence[Column], chunks: Chunks, *, sheet: str, tz: ZoneInfo
) -> AsyncIterator[bytes]:
    book = await anyio.to_thread.run_sync(_XlsxFile, columns, sheet, tz)
    try:
        async for rows in chunks:
            await anyio.to_thread.run_sync(book.write, rows)
        await anyio.to_thread.run_sync(book.close)
        async with await anyio.open_file(book.path, "rb") as f:
            while data := await f.read(FILE_CHUNK):
                yield data
    finally:
        await anyio.to_thread.run_sync(book.remove)


def table_response(
    fmt: Literal["csv", "xlsx"],
    columns: Sequence[Column],
    chunks: Chunks,
    *,
    filename: str,
    sheet: str,
    delimiter: str,
    tz: ZoneInfo,
) -> StreamingResponse:
    """A streamed download; `filename` has no extension."""
    if fmt == "xlsx":
        body, media_type = xlsx_stream(columns, chunks, sheet=sheet, tz=tz), XLSX_MEDIA_TYPE
    else:
        body, media_type = csv_stream(columns, chunks, delimiter=delimiter, tz=tz), CSV_MEDIA_TYPE
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Content-Disposition": content_disposition(f"{filename}.{fmt}")},
    )


async def one_chunk(rows: Sequence[Sequence[Any]]) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """An already computed (small) table as a chunk stream."""
    yield rows
