"""The CSV cell rule against formula injection (OWASP, CSV Injection): a pure rule, tested
without a server. tests/query_api/entries/test_detailed_report.py and
tests/query_api/reports/test_summary.py check it end to end."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from query_api.exports import _csv_chunks, csv_cell


@pytest.mark.parametrize(
    "text",
    ["=cmd|' /C calc'!A0", "+1+2", "-2+3", "@SUM(1+1)", "\t=1+2", "\r=1+2", "=", "-"],
)
def test_text_that_starts_like_a_formula_gets_a_leading_quote(text: str) -> None:
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["", "plain", " =1+2", "a=1", "'=already", "1-2", "a;=1+2"])
def test_other_text_is_as_written(text: str) -> None:
    assert csv_cell(text) == text


@pytest.mark.parametrize("number", [-5, -1.5, Decimal("-12.50"), 0, 3600])
def test_numbers_stay_numbers_even_negative(number: int | float | Decimal) -> None:
    assert csv_cell(number) == number


def test_other_values_are_text() -> None:
    some_id = uuid.uuid4()
    assert csv_cell(None) == ""
    assert csv_cell(True) == "true"
    assert csv_cell(date(2026, 1, 2)) == "2026-01-02"
    assert csv_cell(datetime(2026, 1, 2, 3, tzinfo=UTC)) == "2026-01-02T03:00:00Z"
    assert csv_cell(some_id) == str(some_id)


def test_text_is_quoted_so_a_separator_cannot_start_a_new_cell() -> None:
    """Excel splits unquoted cells on a locale's `;`: `a;=1+2` would put `=1+2` at the
    start of a cell of its own. Quoted, it stays one cell; numbers stay bare."""
    rows = [["a;=1+2", -5, Decimal("-1.50"), "=x"]]
    written = b"".join(_csv_chunks(["description", "n", "amount", "label"], rows)).decode()
    assert written.splitlines()[1] == '"a;=1+2",-5,-1.50,"\'=x"'
    assert list(csv.reader(io.StringIO(written)))[1] == ["a;=1+2", "-5", "-1.50", "'=x"]
