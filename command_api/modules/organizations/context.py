"""Who calls a command, as which member of which organization (a module of its own, so that
the organization's dependencies and services both import it and not each other)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from command_api.modules.organizations.models import Membership, Organization, Role
from command_api.modules.users.models import User
from shared.errors import ForbiddenError


@dataclass(frozen=True)
class OrgContext:
    user: User
    organization: Organization
    membership: Membership

    @property
    def role(self) -> Role:
        return Role(self.membership.role)

    @property
    def org_id(self) -> uuid.UUID:
        return self.organization.id

    def require(self, role: Role) -> None:
        if not self.role.at_least(role):
            raise ForbiddenError(f"This needs the {role.value} role or higher")
