"""Importers of Toggl Track, Clockify, Harvest and generic CSV exports (docs/API.md,
"Imports"). This package only parses; matching people, writing entries and the job
that runs an import live elsewhere."""

from importers.dates import DateOrder
from importers.parsing import parse
from importers.rows import MAX_ERRORS, ImportRow, ParseResult, Person, RowError
from importers.sources import SOURCES

__all__ = [
    "MAX_ERRORS",
    "SOURCES",
    "DateOrder",
    "ImportRow",
    "ParseResult",
    "Person",
    "RowError",
    "parse",
]
