"""Time zones and periods."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints


@lru_cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_valid_timezone(name: str) -> bool:
    if name not in _known_zones() and name != "UTC":
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def validate_timezone(name: str) -> str:
    if not is_valid_timezone(name):
        raise ValueError(f"unknown IANA time zone '{name}'")
    return name


# --- Types for request schemas ---------------------------------------------------------

EARLIEST_YEAR = 1970
LATEST_YEAR = 2100


_RFC3339_START = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]")


def _rfc3339_only(value: Any) -> Any:
    """Refuse numbers and numeric strings, which pydantic would read as Unix times."""
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339_START.match(value)):
        return value
    raise ValueError("must be an RFC 3339 timestamp with an offset")


def _utc_in_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:  # year 1 or 9999 with an offset pushing it out of range
        raise ValueError(f"must be between {EARLIEST_YEAR} and {LATEST_YEAR}") from exc
    # The range applies to the instant stored (UTC), not to the local wall time.
    if not EARLIEST_YEAR <= utc.year <= LATEST_YEAR:
        raise ValueError(f"must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return utc


def _date_in_range(value: date) -> date:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


# An RFC 3339 timestamp with an offset, within sane years, normalized to UTC.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only), AfterValidator(_utc_in_range)]
# A calendar date within sane years.
Day = Annotated[date, AfterValidator(_date_in_range)]
# An IANA time zone name such as "Europe/Berlin".
TimezoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(validate_timezone)]
