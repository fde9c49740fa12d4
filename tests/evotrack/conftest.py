"""Fixtures of the command-line tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.services import scratch_database


@pytest.fixture
def empty_database() -> Iterator[str]:
    with scratch_database(f"evotrack_cli_{uuid.uuid4().hex[:10]}") as url:
        yield url
