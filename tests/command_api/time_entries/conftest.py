from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.factories import OrgHandle, UserHandle, add_member, make_org


@pytest.fixture
def org(db: Engine) -> OrgHandle:
    return make_org(db)


@pytest.fixture
def member(db: Engine, org: OrgHandle) -> UserHandle:
    return add_member(db, org, "member")


@pytest.fixture
def manager(db: Engine, org: OrgHandle) -> UserHandle:
    return add_member(db, org, "manager")


@pytest.fixture
def admin(db: Engine, org: OrgHandle) -> UserHandle:
    return add_member(db, org, "admin")
