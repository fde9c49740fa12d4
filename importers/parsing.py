"""`parse`: an export's bytes to normalized rows and errors, never an exception.

The file is read twice, record by record: once for the date columns alone (whether
02/03/2026 is day- or month-first is decided for the whole file), once to build the
rows. Only the rows are kept, so a 50 MB export costs its rows, not copies of itself."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from importers.dates import DateOrder, date_part, detect_date_order
from importers.decoding import NotCsvError, choose_delimiter, decode, lines, normalize_header
from importers.rows import ParseResult
from importers.sources import SOURCES, CellError, Cells, Context, Source


def parse(
    source: str, data: bytes, *, timezone: str, date_format: str | None = None
) -> ParseResult:
    """Parse an export of `source` (toggl_csv, clockify_csv, harvest_csv, generic_csv).

    Local date-times are read in `timezone`; `date_format` (YMD, MDY, DMY) forces the
    order of non-ISO dates, else it is detected. Every problem, of the file or of a
    cell, is an error of the result, at most one per record."""
    result = ParseResult()
    spec, zone, order = _check_parameters(result, source, timezone, date_format)
    if spec is None or zone is None or not result.ok:
        return result
    try:
        text = decode(data)
    except NotCsvError as error:
        result.add_error(None, None, str(error))
        return result
    delimiter = choose_delimiter(text, frozenset(spec.header_names()))
    index = _match_header(result, spec, text, delimiter)
    if index is None:
        return result
    if order is None:
        order = _detect_order(result, spec, text, delimiter, index)
        if order is None:
            return result
    _build_rows(result, spec, _records(text, delimiter), index, Context(zone, order))
    return result


def _check_parameters(
    result: ParseResult, source: str, timezone: str, date_format: str | None
) -> tuple[Source | None, ZoneInfo | None, DateOrder | None]:
    spec = SOURCES.get(source)
    if spec is None:
        result.add_error(None, "source", f"unknown source '{source}'; one of: {', '.join(SOURCES)}")
    zone = None
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        result.add_error(None, "timezone", f"'{timezone}' is not an IANA time zone")
    order = None
    if date_format is not None:
        try:
            order = DateOrder(date_format.strip().upper())
        except ValueError:
            result.add_error(None, "date_format", f"'{date_format}' is not YMD, MDY or DMY")
    return spec, zone, order


def _records(text: str, delimiter: str) -> Iterator[list[str]]:
    return csv.reader(lines(text), delimiter=delimiter)


def _match_header(
    result: ParseResult, spec: Source, text: str, delimiter: str
) -> dict[str, int] | None:
    try:
        header = next(_records(text, delimiter), [])
    except csv.Error as error:
        result.add_error(1, None, f"the header cannot be read as CSV: {error}")
        return None
    names = spec.header_names()
    index: dict[str, int] = {}
    for position, name in enumerate(header):
        column = names.get(normalize_header(name))
        if column is not None:
            index.setdefault(column, position)
    present = ", ".join(name.strip() for name in header if name.strip())
    if not index:
        message = f"this is not a {spec.label} CSV export: none of its columns are here"
        result.add_error(1, None, f"{message}; the file's columns are: {present}")
        return None
    for group in spec.required:
        if not any(column in index for column in group):
            wanted = " or ".join(f"'{column}'" for column in group)
            result.add_error(
                1, group[0], f"the file has no column {wanted}; its columns are: {present}"
            )
    return index if result.ok else None


def _detect_order(
    result: ParseResult, spec: Source, text: str, delimiter: str, index: dict[str, int]
) -> DateOrder | None:
    positions = [index[column] for column in spec.date_columns if column in index]
    simple = spec.date_columns != ("start", "end")

    def values() -> Iterator[str]:
        records = _records(text, delimiter)
        try:
            next(records, None)
            for record in records:
                for position in positions:
                    if position < len(record):
                        yield record[position] if simple else date_part(record[position])
        except csv.Error:
            return  # reported with its row when the rows are built

    detection = detect_date_order(values())
    if detection.problem is not None:
        result.add_error(None, spec.date_columns[0], detection.problem)
    return detection.order


def _build_rows(
    result: ParseResult,
    spec: Source,
    records: Iterator[list[str]],
    index: dict[str, int],
    context: Context,
) -> None:
    next(records, None)
    number = 1
    try:
        for number, record in enumerate(records, start=2):
            if _is_blank(record):
                continue
            result.rows_total += 1
            try:
                result.rows.append(spec.build(Cells(number, record, index), context))
            except CellError as error:
                result.add_error(number, error.column, error.message)
    except csv.Error as error:
        result.add_error(number + 1, None, f"the file cannot be read as CSV from here: {error}")


def _is_blank(record: Sequence[str]) -> bool:
    return not any(cell.strip() for cell in record)
