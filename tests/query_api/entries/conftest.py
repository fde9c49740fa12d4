from __future__ import annotations

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import BackgroundProjector
from tests.factories import make_org
from tests.query_api.entries.helpers import Client


@pytest.fixture
def client(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> Client:
    """A fresh organization (owner only), written through the command API, read through the
    query API with the last write's consistency token."""
    client = Client(api, qapi, make_org(db))
    client.named("/tags", "first write")  # a token from the start: the owner is visible
    return client
