"""The PDFs of the summary, detailed and timesheet reports (`format=pdf`, API.md "PDF").

Each `render_*_pdf` takes a report's data and a `PdfHeading` and returns the document's
bytes; it reads nothing, so the reports' routes and the shared reports call the same
functions. A page shows the organization's name, the report and its range or week, the
filters in words, then the report's table (its header on every page) ending with the
totals; money in the organization's currency, durations as H:MM:SS.

Made with ReportLab (BSD, pure Python, maintained by ReportLab Inc. since 2000). Text is
set in Noto Sans (OFL; Latin, Greek, Cyrillic) from the pymupdf-fonts package, embedded
(subset) in every document, so no machine needs a font installed. Characters it lacks
(Han, kana, Hangul) are set in Adobe's standard CJK fonts, which ReportLab names without
embedding and which PDF viewers provide or substitute; `pypdf` extracts them all.

A long table is laid out a page at a time (`_PagedTable`): a ReportLab Table splits by
copying every remaining row onto each new page, which made 20,000 rows take 25 seconds.
"""

from __future__ import annotations

import importlib
import io
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table
from reportlab.platypus.doctemplate import BaseDocTemplate

from query_api.modules.entries.queries import EntryRow
from query_api.modules.reports.schemas import TimesheetRead

_FONT = "EvoTrackSans"
_BOLD = "EvoTrackSans-Bold"
_KOREAN, _CHINESE, _JAPANESE = "HYGothic-Medium", "STSong-Light", "HeiseiKakuGo-W5"
_SIZE, _LEADING = 8, 10
_PAD_X, _PAD_Y = 4, 3
_MARGIN = 36  # points: half an inch
_SHADE = colors.HexColor("#EEF1F5")
_RULE = colors.HexColor("#B8C0CC")
# Longer descriptions end in "…": a row must never be taller than a page.
_MAX_TEXT = 300
# ISO 4217 currencies whose minor unit is not the cent (amounts are in minor units).
_NO_DECIMALS = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI"}
    | {"VND", "VUV", "XAF", "XOF", "XPF"}
)
_THREE_DECIMALS = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})


# --- Fonts and text --------------------------------------------------------------------------


@cache
def _font_characters() -> frozenset[int]:
    """Register the fonts (once per process); the code points Noto Sans (regular and bold)
    has."""
    regular = _noto("NotoSans_Regular", _FONT)
    bold = _noto("NotoSans_Bold", _BOLD)
    for font in (regular, bold, *(UnicodeCIDFont(name) for name in (_KOREAN, _CHINESE, _JAPANESE))):
        pdfmetrics.registerFont(font)
    pdfmetrics.registerFontFamily(_FONT, normal=_FONT, bold=_BOLD, italic=_FONT, boldItalic=_BOLD)
    return frozenset(regular.face.charToGlyph) & frozenset(bold.face.charToGlyph)


def _noto(module: str, name: str) -> TTFont:
    # pymupdf-fonts keeps each font as the bytes of a module (and has no type hints).
    font_bytes = importlib.import_module(f"pymupdf_fonts.{module}").fontbuffer
    return TTFont(name, io.BytesIO(font_bytes))


def _fallback_font(char: str) -> str | None:
    """The CJK font for a character Noto Sans lacks; None for others (drawn as a box)."""
    code = ord(char)
    if 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F or 0xAC00 <= code <= 0xD7AF:
        return _KOREAN
    if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF61 <= code <= 0xFF9F:
        return _JAPANESE
    if 0x2E80 <= code <= 0x303F or 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFFEF:
        return _CHINESE
    return None


def _markup(text: str, limit: int = _MAX_TEXT) -> str:
    """`text` as Paragraph markup: escaped, control characters as spaces, and each run of
    characters Noto Sans lacks in a font that has them."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    covered = _font_characters()
    parts: list[str] = []
    current: str | None = None
    for char in text:
        if unicodedata.category(char) == "Cc":
            char = " "
        font = None if ord(char) in covered else _fallback_font(char)
        if font != current:
            parts.append("</font>" if current else "")
            parts.append(f'<font name="{font}">' if font else "")
            current = font
        parts.append(escape(char))
    parts.append("</font>" if current else "")
    return "".join(parts)


def format_duration(seconds: int) -> str:
    """`1:30:00`: hours (as many as there are), minutes, seconds."""
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def format_money(amount: int, currency: str) -> str:
    """`1,234.50 EUR` from minor units, with the currency's number of decimals."""
    decimals = 0 if currency in _NO_DECIMALS else 3 if currency in _THREE_DECIMALS else 2
    major, minor = divmod(abs(amount), 10**decimals)
    number = f"{major:,}" + (f".{minor:0{decimals}d}" if decimals else "")
    return f"{'-' if amount < 0 else ''}{number} {currency}"


# --- The table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    title: str
    width: float  # points
    plain: bool = False  # text of ours (dates, numbers, durations, money): no markup, no wrapping
    right: bool = False


@dataclass(frozen=True)
class Row:
    cells: Sequence[str]
    strong: bool = False  # a group or the totals: bold, shaded
    indent: bool = False  # an inner group: its label indented


def _style(name: str, *, bold: bool = False, size: float = _SIZE, **more: Any) -> ParagraphStyle:
    return ParagraphStyle(
        name, fontName=_BOLD if bold else _FONT, fontSize=size, leading=size * 1.25, **more
    )


_TEXT = _style("text")
_STRONG = _style("strong", bold=True)
_INDENTED = _style("indented", leftIndent=10)
_HEAD = _style("head", bold=True)
_HEAD_RIGHT = _style("head-right", bold=True, alignment=TA_RIGHT)


class _PagedTable(Flowable):
    """Rows `start` onwards of a table, laid out a page at a time: each page's part is a
    Table of the rows that fit it (measured here), and the rest a `_PagedTable` again, so
    the whole costs time in proportion to the rows."""

    def __init__(self, columns: Sequence[Column], rows: Sequence[Row], start: int = 0) -> None:
        super().__init__()
        _font_characters()  # the fonts are registered before the first Paragraph
        self._columns, self._rows, self._start = columns, rows, start
        self._header = [
            Paragraph(escape(c.title), _HEAD_RIGHT if c.right else _HEAD) for c in columns
        ]
        self._measured: list[tuple[list[Any], float]] = []  # cells and height, from `start`

    def _cells(self, row: Row) -> list[Any]:
        text = _STRONG if row.strong else _TEXT
        cells: list[Any] = []
        for index, (column, value) in enumerate(zip(self._columns, row.cells, strict=True)):
            style = _INDENTED if row.indent and index == 0 else text
            cells.append(value if column.plain else Paragraph(_markup(value), style))
        return cells

    def _height(self, cells: Sequence[Any]) -> float:
        height = float(_LEADING)
        for column, cell in zip(self._columns, cells, strict=True):
            if isinstance(cell, Paragraph):
                height = max(height, cell.wrap(column.width - 2 * _PAD_X, 10_000)[1])
        return height + 2 * _PAD_Y

    def _fitting(self, available: float) -> int:
        """How many rows from `start` fit under the header in `available` points."""
        used = self._height(self._header) + 1  # a point to spare for rounding
        count = 0
        while self._start + count < len(self._rows):
            if count == len(self._measured):
                cells = self._cells(self._rows[self._start + count])
                self._measured.append((cells, self._height(cells)))
            used += self._measured[count][1]
            if used > available:
                break
            count += 1
        return count

    def _table(self, count: int) -> Table:
        rows = self._rows[self._start : self._start + count]
        commands: list[tuple[Any, ...]] = [
            ("FONT", (0, 0), (-1, -1), _FONT, _SIZE, _LEADING),
            ("ALIGN", (0, 0), (-1, -1), "LEFT"),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), _PAD_X),
            ("RIGHTPADDING", (0, 0), (-1, -1), _PAD_X),
            ("TOPPADDING", (0, 0), (-1, -1), _PAD_Y),
            ("BOTTOMPADDING", (0, 0), (-1, -1), _PAD_Y),
            ("LINEBELOW", (0, 0), (-1, -1), 0.25, _RULE),
            ("LINEBELOW", (0, 0), (-1, 0), 1, colors.black),
        ]
        for index, column in enumerate(self._columns):
            if column.right:
                commands.append(("ALIGN", (index, 0), (index, -1), "RIGHT"))
        for index, row in enumerate(rows, start=1):
            if row.strong:
                commands.append(("FONT", (0, index), (-1, index), _BOLD, _SIZE, _LEADING))
                commands.append(("BACKGROUND", (0, index), (-1, index), _SHADE))
        data = [self._header, *(cells for cells, _ in self._measured[:count])]
        return Table(data, colWidths=[c.width for c in self._columns], style=commands)

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        count = self._fitting(available_height)
        width = sum(c.width for c in self._columns)
        if self._start + count < len(self._rows):
            return width, available_height + 1  # more rows than fit: to be split
        self._whole = self._table(count)
        return width, float(self._whole.wrap(available_width, available_height)[1])

    def split(self, available_width: float, available_height: float) -> list[Flowable]:
        count = self._fitting(available_height)
        if count == 0:
            return []  # not even one row: on the next page
        rest = self._start + count
        part = self._table(count)
        return [part] + (
            [_PagedTable(self._columns, self._rows, rest)] if rest < len(self._rows) else []
        )

    def draw(self) -> None:
        self._whole.drawOn(self.canv, 0, 0)


# --- The document ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PdfHeading:
    """What stands above the table: the organization, the report and its range or week, and
    lines in words (the grouping, the filters)."""

    organization: str
    currency: str
    title: str  # "Summary report"
    period: str  # "2026-03-01 to 2026-03-31", "2026-W13 (2026-03-23 to 2026-03-29)"
    lines: Sequence[str] = ()
    made_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _document(heading: PdfHeading, table: _PagedTable, *, wide: bool) -> bytes:
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4) if wide else A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN,
        title=f"{heading.title}, {heading.period}",
        author=heading.organization,
        creator="EvoTrack",
    )
    made = heading.made_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    story: list[Flowable] = [
        Paragraph(_markup(heading.organization), _style("org", bold=True, size=16)),
        Spacer(0, 4),
        Paragraph(escape(f"{heading.title}, {heading.period}"), _style("title", size=12)),
        Spacer(0, 4),
        *(Paragraph(_markup(line, 2000), _style("line", size=9)) for line in heading.lines),
        Paragraph(f"Made {made}.", _style("small", size=7, textColor=colors.grey)),
        Spacer(0, 10),
        table,
    ]
    footer = f"{heading.title}, {heading.period}"

    def number_page(canvas: Canvas, doc: BaseDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(_FONT, 7)
        canvas.setFillColor(colors.grey)
        canvas.drawString(_MARGIN, _MARGIN / 2, footer)
        canvas.drawRightString(doc.pagesize[0] - _MARGIN, _MARGIN / 2, f"Page {doc.page}")
        canvas.restoreState()

    document.build(story, onFirstPage=number_page, onLaterPages=number_page)
    return buffer.getvalue()


# --- The three reports -----------------------------------------------------------------------


def _sums(values: Mapping[str, Any], currency: str) -> list[str]:
    return [
        format_duration(int(values["seconds"])),
        format_duration(int(values["billable_seconds"])),
        format_money(int(values["amount"]), currency),
        f"{int(values['entries']):,}",
    ]


def summary_pdf_rows(summary: Mapping[str, Any], currency: str) -> list[Row]:
    """The groups in order (an outer group bold above its inner groups), then the totals."""
    rows = []
    for group in summary["groups"]:
        inner = group.get("groups")
        rows.append(Row([group["label"], *_sums(group, currency)], strong=inner is not None))
        for child in inner or ():
            rows.append(Row([child["label"], *_sums(child, currency)], indent=True))
    rows.append(Row(["Total", *_sums(summary["totals"], currency)], strong=True))
    return rows


def render_summary_pdf(
    heading: PdfHeading, summary: Mapping[str, Any], group_by: Sequence[str]
) -> bytes:
    """The summary (`data` of the JSON answer: groups and totals) as an A4 page or more."""
    columns = [
        Column(" / ".join(dim.capitalize() for dim in group_by), 215),
        Column("Duration", 70, plain=True, right=True),
        Column("Billable", 70, plain=True, right=True),
        Column("Amount", 100, plain=True, right=True),
        Column("Entries", 68, plain=True, right=True),
    ]
    return _document(
        heading, _PagedTable(columns, summary_pdf_rows(summary, heading.currency)), wide=False
    )


_DETAILED_COLUMNS = [
    Column("Date", 56, plain=True),
    Column("Time", 66, plain=True),
    Column("User", 96),
    Column("Project (client)", 116),
    Column("Task", 90),
    Column("Description, tags", 200),
    Column("Duration", 60, plain=True, right=True),
    Column("Amount", 86, plain=True, right=True),
]


def _entry_row(entry: EntryRow, zone: ZoneInfo, currency: str, now: datetime) -> Row:
    start = entry.start_at.astimezone(zone).strftime("%H:%M")
    end = entry.end_at.astimezone(zone).strftime("%H:%M") if entry.end_at else "running"
    project = entry.project_name or "(no project)"
    if entry.client_name:
        project += f" ({entry.client_name})"
    text = entry.description
    if entry.tag_names:
        text += f" · {', '.join(entry.tag_names)}"
    amount = format_money(entry.amount, currency) if entry.billable else "not billable"
    cells = [entry.local_date.isoformat(), f"{start}–{end}", entry.user_name, project]
    cells += [entry.task_name or "", text, format_duration(entry.duration_at(now)), amount]
    return Row(cells)


def render_detailed_pdf(
    heading: PdfHeading,
    entries: Iterable[EntryRow],
    totals: Mapping[str, int],
    *,
    timezone: str,
    now: datetime,
) -> bytes:
    """The entries (times in the organization's `timezone`; a running timer's duration up to
    `now`), then the totals of the finished entries, on landscape A4 pages."""
    zone = ZoneInfo(timezone)
    rows = [_entry_row(entry, zone, heading.currency, now) for entry in entries]
    billable = format_duration(totals["billable_seconds"])
    finished = f"{totals['entries']:,} finished entries, billable {billable}"
    total = ["Total", "", "", "", "", finished, format_duration(totals["seconds"])]
    rows.append(Row([*total, format_money(totals["amount"], heading.currency)], strong=True))
    return _document(heading, _PagedTable(_DETAILED_COLUMNS, rows), wide=True)


def render_timesheet_pdf(heading: PdfHeading, timesheet: TimesheetRead) -> bytes:
    """A row per project and task with the time of each day (blank: none), then the day
    totals and the week's, on a landscape A4 page."""
    days = [Column(day.strftime("%a %d %b"), 62, plain=True, right=True) for day in timesheet.days]
    columns = [Column("Project / task", 266), *days, Column("Total", 70, plain=True, right=True)]
    rows = []
    for line in timesheet.rows:
        label = line.project.name if line.project else "(no project)"
        if line.task:
            label += f" / {line.task.name}"
        cells = [format_duration(s) if s else "" for s in line.seconds_per_day]
        rows.append(Row([label, *cells, format_duration(line.total)]))
    day_totals = [format_duration(s) for s in timesheet.totals_per_day]
    rows.append(Row(["Total", *day_totals, format_duration(timesheet.total)], strong=True))
    return _document(heading, _PagedTable(columns, rows), wide=True)
