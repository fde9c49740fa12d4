"""Whose work a member may write, and at what member rate.

Other modules (time entries) inject `MemberScopeService` instead of reading memberships and
teams themselves. The scope follows API.md: admins and owners may write for any member;
managers for themselves and every member of the teams they lead and of all teams below
those; members only for themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import any_, select
from sqlalchemy.orm import Session, aliased

from command_api.modules.organizations.context import OrgContext
from command_api.modules.organizations.models import Membership, Role, Team, TeamMember
from shared.db import uuid_array
from shared.errors import NotFoundError


class MemberScopeService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def member_rate(self, org_id: uuid.UUID, user_id: uuid.UUID) -> int | None:
        """The member's own hourly rate (None when unset); 404 when not a live member."""
        rates = self.member_rates(org_id, [user_id])
        if user_id not in rates:
            raise NotFoundError.for_entity("Member", user_id)
        return rates[user_id]

    def member_rates(
        self, org_id: uuid.UUID, user_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, int | None]:
        """Hourly rate per live member among `user_ids`; non-members are absent."""
        if not user_ids:
            return {}
        rows = self.session.execute(
            select(Membership.user_id, Membership.hourly_rate_amount).where(
                Membership.org_id == org_id,
                Membership.user_id == any_(uuid_array(user_ids)),
                Membership.deleted_at.is_(None),
            )
        )
        return {user_id: rate for user_id, rate in rows}

    def can_write_for(self, ctx: OrgContext, user_id: uuid.UUID) -> bool:
        return user_id in self.writable_users(ctx, [user_id])

    def writable_users(self, ctx: OrgContext, user_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """The subset of `user_ids` whose entries the caller may write (one query at most)."""
        wanted = set(user_ids)
        if ctx.role.at_least(Role.ADMIN):
            return wanted
        allowed = wanted & {ctx.user.id}
        others = wanted - allowed
        if ctx.role is Role.MANAGER and others:
            allowed |= self._members_of_led_teams(ctx.org_id, ctx.user.id, others)
        return allowed

    def _members_of_led_teams(
        self, org_id: uuid.UUID, manager_id: uuid.UUID, user_ids: set[uuid.UUID]
    ) -> set[uuid.UUID]:
        # The teams the manager leads, then every team below them. UNION (not UNION ALL)
        # stops the recursion even if a cycle ever slipped into parent_id.
        led = (
            select(Team.id)
            .join(TeamMember, TeamMember.team_id == Team.id)
            .where(
                TeamMember.org_id == org_id,
                TeamMember.user_id == manager_id,
                TeamMember.is_lead.is_(True),
                Team.deleted_at.is_(None),
            )
            .cte("led_teams", recursive=True)
        )
        child = aliased(Team)
        led = led.union(
            select(child.id)
            .join(led, child.parent_id == led.c.id)
            .where(child.org_id == org_id, child.deleted_at.is_(None))
        )
        rows = self.session.scalars(
            select(TeamMember.user_id)
            .join(led, TeamMember.team_id == led.c.id)
            .where(TeamMember.org_id == org_id, TeamMember.user_id == any_(uuid_array(user_ids)))
            .distinct()
        )
        return set(rows)
