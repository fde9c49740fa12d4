"""PostgreSQL's binary COPY format, for the generator's entries (the COPY page of the
PostgreSQL manual, "Binary Format"): a signature, then per row a field count and per field
its length in bytes (-1 for NULL) and the type's binary send format; a uuid is its 16
bytes, a timestamptz the microseconds since 2000-01-01 UTC as an int64.

The server parses it at about a third of the CPU text costs (timestamps and uuids above
all), and packing a row with one `struct` call from fields packed once costs less than
formatting it as text. psycopg's `write_row` would frame the rows itself but wants a `UUID`
and two `datetime` objects per row, which cost more than everything else an entry takes.
"""

from __future__ import annotations

import struct
import uuid

import psycopg

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # no flags, no header extension
COPY_TRAILER = b"\xff\xff"
BINARY = "(FORMAT binary)"
NULL = b"\xff\xff\xff\xff"
PG_EPOCH = 946_684_800  # 2000-01-01 in Unix seconds
MICROS = 1_000_000


def uuid_field(value: str) -> bytes:
    return struct.pack(">i", 16) + uuid.UUID(value).bytes


def bool_field(value: bool) -> bytes:
    return struct.pack(">i?", 1, value)


def int8_field(value: int) -> bytes:
    return struct.pack(">iq", 8, value)


def text_field(value: str) -> bytes:
    data = value.encode()
    return struct.pack(">i", len(data)) + data


def pg_micros(epoch: int) -> int:
    """A Unix epoch as a binary timestamptz value."""
    return (epoch - PG_EPOCH) * MICROS


def copy_binary(
    conn: psycopg.Connection[object], table: str, columns: str, rows: list[bytes]
) -> None:
    """One COPY of whole binary rows (each: field count, then its fields)."""
    if not rows:
        return
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN {BINARY}") as copy:
        copy.write(COPY_SIGNATURE + b"".join(rows) + COPY_TRAILER)
