"""Streamed CSV and XLSX exports, and PDF attachments, shared by the reports that offer
`format=csv|xlsx|pdf`.

The API is small on purpose:

- `ExportFormat`: the `format` query parameter (json, csv, xlsx, pdf), declared by
  `ExportFormatParam`; `EXPORT_RESPONSES` declares the attachments' media types.
  `DocumentFormat` (json, pdf) and `PDF_RESPONSES` are the same for a report offered as a
  PDF only (the timesheet).
- `check_export_size(count, export_format)`: refuse (422 naming `format`) an export of more
  than `MAX_EXPORT_ROWS` rows, a PDF of more than `MAX_PDF_ROWS`. Count first, with
  `LIMIT cap + 1`, so that refusing a huge export costs no more than the cap itself.
- `stream_csv(header, rows, filename)` and `stream_xlsx(header, rows, filename)`: a
  `StreamingResponse` with `Content-Disposition: attachment`. `rows` is any iterable of lists
  (for example a server-side cursor read with `yield_per`): rows are consumed lazily, so
  memory stays flat whatever the size.
- `export_response(format, header, rows, filename_stem)`: picks one of the two.
- `pdf_response(content, filename)`: a finished PDF (query_api/reports_pdf.py) as an
  attachment.

Cells may be None, str, bool, int, float, Decimal, date, datetime or UUID. CSV writes numbers
bare and everything else as quoted text (None as empty, booleans as `true`/`false`,
timestamps as RFC 3339 in UTC); XLSX keeps numbers and booleans typed, dates as Excel dates,
and timestamps as RFC 3339 text (Excel has no time zones).

Formula injection (OWASP "CSV Injection"): a spreadsheet runs a cell that starts with `=`,
`+`, `-`, `@`, a tab or a carriage return as a formula, and descriptions and names are
anyone's text. So a CSV text cell starting with one of them gets a leading `'` (shown as
text, never run), and every text cell is quoted, so that a separator inside it (`,` or a
locale's `;`) cannot start a new cell. Numbers are typed values, never user text: they stay
bare, and a negative amount stays a number. An XLSX text cell is a string cell, never a
formula, whatever it starts with.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import IO, Annotated, Any

from fastapi import Query
from fastapi.responses import Response, StreamingResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from shared.errors import ValidationFailedError

MAX_EXPORT_ROWS = 100_000
# A PDF is laid out whole before its first byte leaves, at about 0.6 ms a row: 10,000 rows
# are some 330 pages and 6 seconds.
MAX_PDF_ROWS = 10_000
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF_MEDIA_TYPE = "application/pdf"

# Rows are sent in chunks of about this many bytes: one thread hop per chunk, not per row.
_CHUNK_BYTES = 64 * 1024
# An XLSX workbook is finished (zipped) before its first byte leaves: it is built in a
# temporary file that spills to disk past this size.
_SPOOL_BYTES = 8 * 1024 * 1024
# What makes a spreadsheet read a cell as a formula (OWASP, CSV Injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ExportFormat(StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"
    pdf = "pdf"


ExportFormatParam = Annotated[
    ExportFormat,
    Query(alias="format", description="json, or every row as a csv, xlsx or pdf attachment"),
]


class DocumentFormat(StrEnum):
    json = "json"
    pdf = "pdf"


DocumentFormatParam = Annotated[
    DocumentFormat, Query(alias="format", description="json, or the report as a pdf attachment")
]

_BINARY = {"schema": {"type": "string", "format": "binary"}}

# `responses=` of a route offering exports: beside the JSON envelope of its response model,
# the two attachments, with the media types they are sent with.
EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or with `format=csv|xlsx|pdf` an attachment",
        "content": {
            CSV_MEDIA_TYPE.split(";")[0]: {"schema": {"type": "string"}},
            XLSX_MEDIA_TYPE: _BINARY,
            PDF_MEDIA_TYPE: _BINARY,
        },
        "headers": {
            "Content-Disposition": {
                "description": 'With format=csv|xlsx|pdf: `attachment; filename="….csv"`',
                "schema": {"type": "string"},
            }
        },
    }
}
PDF_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or with `format=pdf` an attachment",
        "content": {PDF_MEDIA_TYPE: _BINARY},
        "headers": {
            "Content-Disposition": {
                "description": 'With format=pdf: `attachment; filename="….pdf"`',
                "schema": {"type": "string"},
            }
        },
    }
}


def export_cap(export_format: ExportFormat) -> int:
    """The most rows an export in `export_format` holds (read at call time: tests lower it)."""
    return MAX_PDF_ROWS if export_format is ExportFormat.pdf else MAX_EXPORT_ROWS


def check_export_size(
    count: int, export_format: ExportFormat = ExportFormat.csv, *, field: str = "format"
) -> None:
    """422 naming `field` when `count` rows exceed the cap of `export_format`."""
    cap = export_cap(export_format)
    if count <= cap:
        return
    kind = "A PDF" if export_format is ExportFormat.pdf else "An export"
    message = (
        f"{kind} holds at most {cap:,} rows and this one would hold more: "
        "narrow the range ('from', 'to') or the filters"
    )
    raise ValidationFailedError(
        message,
        details=[{"field": field, "location": "query", "message": message, "type": "value_error"}],
    )


def _attachment(filename: str) -> dict[str, str]:
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in filename)
    return {"Content-Disposition": f'attachment; filename="{safe}"'}


def _timestamp(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def neutralized(text: str) -> str:
    """`text` as a spreadsheet shows it and never runs it: a leading `'` when it starts like
    a formula (OWASP's list)."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_cell(value: Any) -> str | int | float | Decimal:
    """A number as itself (written bare), anything else as text safe to open in a
    spreadsheet (written quoted)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    return neutralized(str(value))


def _csv_chunks(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    # Every text cell quoted, numbers bare: see "Formula injection" above.
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow([neutralized(name) for name in header])
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
        if buffer.tell() >= _CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def stream_csv(
    header: Sequence[str], rows: Iterable[Sequence[Any]], filename: str
) -> StreamingResponse:
    """A UTF-8 CSV attachment: the header row, then one line per row, streamed."""
    return StreamingResponse(
        _csv_chunks(header, rows), media_type=CSV_MEDIA_TYPE, headers=_attachment(filename)
    )


def _xlsx_cell(sheet: WriteOnlyWorksheet, value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | Decimal):
        return value
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, date):
        cell = WriteOnlyCell(sheet, value=datetime.combine(value, time()))
        cell.number_format = "yyyy-mm-dd"
        return cell
    text = ILLEGAL_CHARACTERS_RE.sub("", str(value))
    cell = WriteOnlyCell(sheet, value=text)
    cell.data_type = "s"  # text starting with "=" stays text: no formula injection
    return cell


def _write_workbook(
    header: Sequence[str], rows: Iterable[Sequence[Any]], sheet_title: str, target: IO[bytes]
) -> None:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title[:31])
    sheet.append(list(header))
    for row in rows:
        sheet.append([_xlsx_cell(sheet, value) for value in row])
    workbook.save(target)


def _xlsx_chunks(
    header: Sequence[str], rows: Iterable[Sequence[Any]], sheet_title: str
) -> Iterator[bytes]:
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as target:
        _write_workbook(header, rows, sheet_title, target)
        target.seek(0)
        while chunk := target.read(_CHUNK_BYTES):
            yield chunk


def stream_xlsx(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    filename: str,
    *,
    sheet_title: str = "Report",
) -> StreamingResponse:
    """An XLSX attachment with one sheet: the header row, then one row per row. Built with
    openpyxl's write-only mode (rows go to a temporary file, memory stays flat)."""
    return StreamingResponse(
        _xlsx_chunks(header, rows, sheet_title),
        media_type=XLSX_MEDIA_TYPE,
        headers=_attachment(filename),
    )


def export_response(
    export_format: ExportFormat,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    filename_stem: str,
) -> StreamingResponse:
    """The CSV or XLSX attachment `<filename_stem>.csv|.xlsx` (not for `json` or `pdf`)."""
    if export_format is ExportFormat.csv:
        return stream_csv(header, rows, f"{filename_stem}.csv")
    if export_format is ExportFormat.xlsx:
        return stream_xlsx(header, rows, f"{filename_stem}.xlsx")
    raise ValueError(f"{export_format} is not a streamed export format")


def pdf_response(content: bytes, filename: str) -> Response:
    """A finished PDF as the attachment `filename`."""
    return Response(content, media_type=PDF_MEDIA_TYPE, headers=_attachment(filename))
