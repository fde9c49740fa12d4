"""From the uploaded bytes to text and a CSV dialect: encodings, BOMs, binary files."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator

NOT_CSV = "this is not a CSV file; export the report as CSV and upload that"
SPREADSHEET = "this is a spreadsheet (XLSX) or a ZIP archive, not a CSV file; save it as CSV"
EMPTY = "the file is empty"
DELIMITERS = (",", ";", "\t")

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f]")
_LINE = re.compile(r"[^\n]*\n|[^\n]+")


class NotCsvError(ValueError):
    """The bytes cannot be a CSV export; the message says why, for a person."""


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 (BOM, or plain ASCII text as UTF-16), else
    cp1252 and finally latin-1, which decodes anything: a file that is readable text in
    some encoding is never refused for it."""
    text = _decode(data)
    if not text.strip(" \t\r\n\ufeff"):
        raise NotCsvError(EMPTY)
    return text


def _decode(data: bytes) -> str:
    if data.startswith(b"PK\x03\x04"):
        raise NotCsvError(SPREADSHEET)
    if data.startswith(_UTF16_BOMS):
        return _decode_utf16(data, "utf-16")
    head = data[:4096]
    if len(head) >= 4 and not head[1::2].strip(b"\x00"):
        return _decode_utf16(data, "utf-16-le")
    if len(head) >= 4 and not head[0::2].strip(b"\x00"):
        return _decode_utf16(data, "utf-16-be")
    if b"\x00" in data or len(_CONTROL.findall(head)) * 100 > len(head):
        raise NotCsvError(NOT_CSV)
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _decode_utf16(data: bytes, encoding: str) -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        raise NotCsvError(NOT_CSV) from error
    if "\x00" in text:
        raise NotCsvError(NOT_CSV)
    return text


def lines(text: str) -> Iterator[str]:
    """The text line by line, lazily, so a 50 MB file is never copied whole again."""
    if "\n" not in text:
        text = text.replace("\r", "\n")
    for match in _LINE.finditer(text):
        yield match.group()


def choose_delimiter(text: str, known_columns: frozenset[str]) -> str:
    """The delimiter under which the header names the most known columns (then the most
    columns): an exporter's locale decides between comma, semicolon and tab."""
    header_line = next(lines(text), "")

    def score(delimiter: str) -> tuple[int, int]:
        header = next(csv.reader([header_line], delimiter=delimiter), [])
        names = {normalize_header(name) for name in header}
        return len(names & known_columns), len(header)

    return max(DELIMITERS, key=score)


def normalize_header(name: str) -> str:
    return name.strip().strip("\ufeff").strip().casefold()
