"""Dates, times and durations as the exporters write them.

Dates are ISO (2026-03-02), month-first (03/02/2026) or day-first (02/03/2026,
02.03.2026); which of the last two a file uses is decided once for the whole file
(`detect_date_order`), never guessed row by row."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo


class DateOrder(StrEnum):
    YMD = "YMD"
    MDY = "MDY"
    DMY = "DMY"


_ISO_DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_OTHER_DATE = re.compile(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*(?:([AaPp])\.?[Mm]\.?)?")
_CLOCK_HOURS = re.compile(r"(\d+):(\d{2})(?::(\d{2}))?")
_DECIMAL_HOURS = re.compile(r"\d+(?:[.,]\d+)?|[.,]\d+")


@dataclass(frozen=True, slots=True)
class Detection:
    order: DateOrder | None
    problem: str | None = None


def detect_date_order(values: Iterable[str]) -> Detection:
    """DMY or MDY from the values that can only be one of them (a first number over 12
    is a day, a second over 12 too); dotted dates are day-first. When every date reads
    both ways and the two readings differ, the caller must say (`date_format`)."""
    day_first = month_first = dotted = differ = False
    example = ""
    for value in values:
        match = _OTHER_DATE.fullmatch(value.strip())
        if match is None:
            continue
        first, second = int(match[1]), int(match[3])
        day_first |= first > 12
        month_first |= second > 12
        dotted |= match[2] == "."
        if first != second and not example:
            example, differ = value.strip(), True
    if day_first and month_first:
        return Detection(None, "the dates mix day-first and month-first forms; " + _ASK)
    if day_first or (dotted and not month_first):
        return Detection(DateOrder.DMY)
    if month_first or not differ:
        return Detection(DateOrder.MDY)
    return Detection(None, f"a date like '{example}' could be day-first or month-first; " + _ASK)


_ASK = "set date_format to DMY (day first) or MDY (month first)"


@lru_cache(maxsize=4096)  # exports repeat the same days and times
def parse_date(text: str, order: DateOrder) -> date:
    value = text.strip()
    iso = _ISO_DATE.fullmatch(value)
    if iso is not None:
        return _make_date(value, int(iso[1]), int(iso[2]), int(iso[3]))
    other = _OTHER_DATE.fullmatch(value)
    if other is None or order is DateOrder.YMD:
        raise ValueError(f"'{value}' is not a date; write it like 2026-03-02")
    first, second, year = int(other[1]), int(other[3]), int(other[4])
    if order is DateOrder.MDY:
        return _make_date(value, year, first, second)
    return _make_date(value, year, second, first)


def _make_date(text: str, year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"'{text}' is not a date in the calendar") from None


@lru_cache(maxsize=4096)
def parse_time(text: str) -> time:
    """24-hour (13:30, 13:30:00) or 12-hour (1:30 PM, 01:30:00 pm) times."""
    value = text.strip()
    match = _TIME.fullmatch(value)
    if match is None:
        raise ValueError(f"'{value}' is not a time of day; write it like 13:30 or 1:30 PM")
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if match[4] is not None:
        if not 1 <= hour <= 12:
            raise ValueError(f"'{value}' is not a time of day: a 12-hour clock runs 1 to 12")
        hour = hour % 12 + (12 if match[4] in "Pp" else 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"'{value}' is not a time of day")
    return time(hour, minute, second)


def parse_hours(text: str) -> timedelta:
    """Decimal hours with a point or a comma (1.5, 1,5) or a clock (1:30, 1:30:00)."""
    value = text.strip()
    clock = _CLOCK_HOURS.fullmatch(value)
    if clock is not None:
        minutes, seconds = int(clock[2]), int(clock[3] or 0)
        if minutes > 59 or seconds > 59:
            raise ValueError(f"'{value}' is not a number of hours")
        return timedelta(hours=int(clock[1]), minutes=minutes, seconds=seconds)
    if _DECIMAL_HOURS.fullmatch(value) is None:
        raise ValueError(f"'{value}' is not a number of hours; write it like 1.5 or 1:30")
    try:
        hours = Decimal(value.replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"'{value}' is not a number of hours") from None
    return timedelta(seconds=int((hours * 3600).to_integral_value()))


@lru_cache(maxsize=4096)
def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in `zone` as UTC. A time the clocks skip (spring forward) is
    refused rather than shifted by an hour; in the repeated hour (fall back) the first
    occurrence is taken, as an exporter writing local times cannot tell them apart."""
    aware = local.replace(tzinfo=zone)
    in_utc = aware.astimezone(UTC)
    if in_utc.astimezone(zone).replace(tzinfo=None) != local:
        raise ValueError(
            f"{local:%Y-%m-%d %H:%M} does not exist in {zone.key}: the clocks skip that hour"
        )
    return in_utc


def parse_date_time(text: str, order: DateOrder, zone: ZoneInfo) -> datetime:
    """RFC 3339 with an offset (kept), or a local date and time (in `zone`)."""
    value = text.strip()
    parsed = _iso_date_time(value)
    if parsed is not None and parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    if parsed is not None:
        return to_utc(parsed, zone)
    day, _, clock = value.partition(" ")
    if not clock:
        raise ValueError(f"'{value}' is not a date and time; write it like 2026-03-02T09:00:00Z")
    return to_utc(datetime.combine(parse_date(day, order), parse_time(clock)), zone)


def _iso_date_time(value: str) -> datetime | None:
    if len(value) <= len("2026-03-02") or not value[:4].isdigit():
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def date_part(value: str) -> str:
    """The date of a generic `start`/`end` that is not ISO, for `detect_date_order`."""
    value = value.strip()
    if _iso_date_time(value) is not None:
        return ""
    return value.partition(" ")[0]
