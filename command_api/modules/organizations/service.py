"""Organizations, memberships and the team tree: the rules, and the change rows they write.

Roles rank owner > admin > manager > member. Admins manage settings, members and teams;
only an owner makes owners, changes an owner or deletes the organization; an organization
always keeps at least one owner. The team tree never gets a cycle: every tree change
holds the organization row's lock, so two concurrent moves are checked one after the
other. Deleting a team moves its sub-teams up to its parent (each recorded as a team
update) and drops its member links.

Services only flush; the request commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from command_api.modules.organizations.context import OrgContext
from command_api.modules.organizations.models import Membership, Organization, Role, Team
from command_api.modules.organizations.repository import OrganizationsRepository
from command_api.modules.organizations.schemas import (
    MemberCreate,
    MemberUpdate,
    OrganizationCreate,
    OrganizationUpdate,
    TeamCreate,
    TeamMemberUpsert,
    TeamUpdate,
)
from command_api.modules.time_entries.overlap import apply_overlap_policy
from command_api.modules.users.models import User
from shared.changes import ChangeOp, ChangeRecord, record_changes
from shared.errors import AlreadyExistsError, BusinessRuleError, NotFoundError

ORGANIZATION = "organization"
MEMBERSHIP = "membership"
TEAM = "team"
TEAM_MEMBER = "team_member"

# JSON field -> column, where they differ.
_COLUMNS = {"hourly_rate": "hourly_rate_amount"}


@dataclass(frozen=True)
class TeamLink:
    team_id: uuid.UUID
    user_id: uuid.UUID
    is_lead: bool


# --- Change payloads -------------------------------------------------------------------


def _org_state(org: Organization) -> dict[str, Any]:
    return {
        "id": str(org.id),
        "name": org.name,
        "timezone": org.timezone,
        "currency": org.currency,
        "week_start": org.week_start,
        "hourly_rate": org.hourly_rate_amount,
        "prevent_overlaps": org.prevent_overlaps,
        "lock_before": org.lock_before.isoformat() if org.lock_before else None,
        "long_running_timer_seconds": org.long_running_timer_seconds,
    }


def _member_state(membership: Membership, user: User) -> dict[str, Any]:
    return {
        "user_id": str(user.id),
        "role": Role(membership.role).value,
        "hourly_rate": membership.hourly_rate_amount,
        "full_name": user.full_name,
        "email": user.email,
    }


def _team_state(team: Team) -> dict[str, Any]:
    return {"name": team.name, "parent_id": str(team.parent_id) if team.parent_id else None}


def _link_state(team_id: uuid.UUID, user_id: uuid.UUID, is_lead: bool) -> dict[str, Any]:
    return {"team_id": str(team_id), "user_id": str(user_id), "is_lead": is_lead}


def _change(
    entity: str,
    entity_id: uuid.UUID,
    org_id: uuid.UUID,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> ChangeRecord:
    op = ChangeOp.CREATED if old is None else ChangeOp.DELETED if new is None else ChangeOp.UPDATED
    return ChangeRecord(
        entity=entity, entity_id=entity_id, op=op, org_id=org_id, payload={"old": old, "new": new}
    )


def _column_values(data: OrganizationUpdate | MemberUpdate) -> dict[str, Any]:
    """The fields the body sent, keyed by column name (enums as their plain values)."""
    values = {_COLUMNS.get(name, name): getattr(data, name) for name in data.model_fields_set}
    return {k: v.value if isinstance(v, Role) else v for k, v in values.items()}


def _constraint_name(exc: IntegrityError) -> str | None:
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None)


class _Base:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.repo = OrganizationsRepository(session)

    def _lock_organization(self, org_id: uuid.UUID) -> Organization:
        org = self.repo.lock_organization(org_id)
        if org is None:  # deleted since the request's membership check
            raise NotFoundError.for_entity("Organization", org_id)
        return org


# --- Organizations ---------------------------------------------------------------------


class OrganizationService(_Base):
    def create(self, user: User, data: OrganizationCreate) -> Organization:
        """Create an organization; its creator becomes its owner."""
        org = Organization(
            id=uuid.uuid4(),
            name=data.name,
            timezone=data.timezone,
            currency=data.currency,
            week_start=data.week_start,
            hourly_rate_amount=data.hourly_rate,
            prevent_overlaps=data.prevent_overlaps,
            lock_before=data.lock_before,
            long_running_timer_seconds=data.long_running_timer_seconds,
        )
        owner = Membership(id=uuid.uuid4(), org_id=org.id, user_id=user.id, role=Role.OWNER.value)
        self.session.add(org)
        self.session.flush()
        self.session.add(owner)
        self.session.flush()
        record_changes(
            self.session,
            [
                _change(ORGANIZATION, org.id, org.id, None, _org_state(org)),
                _change(MEMBERSHIP, owner.id, org.id, None, _member_state(owner, user)),
            ],
        )
        return org

    def update(self, context: OrgContext, data: OrganizationUpdate) -> Organization:
        """Change settings; turning `prevent_overlaps` on fails with 409 if entries overlap."""
        org = self._lock_organization(context.org_id)
        old = _org_state(org)
        for column, value in _column_values(data).items():
            setattr(org, column, value)
        new = _org_state(org)
        if new == old:
            return org
        self.session.flush()
        if new["prevent_overlaps"] != old["prevent_overlaps"]:
            apply_overlap_policy(self.session, org.id, org.prevent_overlaps)
        record_changes(self.session, [_change(ORGANIZATION, org.id, org.id, old, new)])
        return org

    def delete(self, context: OrgContext) -> None:
        """Soft-delete the organization: every path under it answers 404 from now on."""
        org = self._lock_organization(context.org_id)
        old = _org_state(org)
        org.deleted_at = func.now()
        self.session.flush()
        record_changes(self.session, [_change(ORGANIZATION, org.id, org.id, old, None)])


# --- Members ---------------------------------------------------------------------------


def _check_owner_rules(
    context: OrgContext, owner_ids: list[uuid.UUID], current: Role, new: Role | None
) -> None:
    """Only owners touch owners; the last owner may be neither demoted nor removed."""
    if Role.OWNER in (current, new):
        context.require(Role.OWNER)
    if current is Role.OWNER and new is not Role.OWNER and len(owner_ids) <= 1:
        action = "removed" if new is None else "demoted"
        raise BusinessRuleError(f"The last owner of an organization cannot be {action}")


class MemberService(_Base):
    def add(self, context: OrgContext, data: MemberCreate) -> tuple[Membership, User]:
        """Add an existing user (by email); a removed member comes back with the new role."""
        if data.role is Role.OWNER:
            context.require(Role.OWNER)
        user = self.repo.find_user_by_email(data.email)
        if user is None:
            raise NotFoundError(f"User with email '{data.email}' not found")
        membership = self.repo.find_membership_any_state(context.org_id, user.id)
        if membership is not None and membership.deleted_at is None:
            raise AlreadyExistsError(f"{user.email} is already a member")
        if membership is None:
            membership = Membership(id=uuid.uuid4(), org_id=context.org_id, user_id=user.id)
            membership.role, membership.hourly_rate_amount = data.role.value, data.hourly_rate
            self._insert(membership)
        else:
            membership.role, membership.hourly_rate_amount = data.role.value, data.hourly_rate
            membership.deleted_at = None
            self.session.flush()
        state = _member_state(membership, user)
        record_changes(
            self.session, [_change(MEMBERSHIP, membership.id, context.org_id, None, state)]
        )
        return membership, user

    def update(
        self, context: OrgContext, user_id: uuid.UUID, data: MemberUpdate
    ) -> tuple[Membership, User]:
        """Change a member's role or hourly rate."""
        # Owners first, then the member: the same lock order everywhere, no deadlocks.
        owner_ids = self.repo.lock_owner_ids(context.org_id) if data.role is not None else []
        membership, user = self._get(context.org_id, user_id)
        current = Role(membership.role)
        _check_owner_rules(context, owner_ids, current, data.role or current)
        old = _member_state(membership, user)
        for column, value in _column_values(data).items():
            setattr(membership, column, value)
        new = _member_state(membership, user)
        if new != old:
            self.session.flush()
            record_changes(
                self.session, [_change(MEMBERSHIP, membership.id, context.org_id, old, new)]
            )
        return membership, user

    def remove(self, context: OrgContext, user_id: uuid.UUID) -> None:
        """Remove a member (admins), or leave (anyone); their team links in the org go too."""
        if user_id != context.user.id:
            context.require(Role.ADMIN)
        owner_ids = self.repo.lock_owner_ids(context.org_id)
        membership, user = self._get(context.org_id, user_id)
        _check_owner_rules(context, owner_ids, Role(membership.role), None)
        old = _member_state(membership, user)
        membership.deleted_at = func.now()
        self.session.flush()
        links = self.repo.remove_team_links_of_user(context.org_id, user_id)
        unlinked = [
            _change(TEAM_MEMBER, team_id, context.org_id, _link_state(team_id, user_id, lead), None)
            for team_id, lead in links
        ]
        record_changes(
            self.session,
            [_change(MEMBERSHIP, membership.id, context.org_id, old, None), *unlinked],
        )

    def _get(self, org_id: uuid.UUID, user_id: uuid.UUID) -> tuple[Membership, User]:
        found = self.repo.find_member(org_id, user_id)
        if found is None:
            raise NotFoundError.for_entity("Member", user_id)
        return found

    def _insert(self, membership: Membership) -> None:
        try:
            with self.session.begin_nested():
                self.session.add(membership)
        except IntegrityError as exc:
            if _constraint_name(exc) == "uq_memberships_org_user":
                raise AlreadyExistsError("This user is already a member") from exc
            raise


# --- Teams -----------------------------------------------------------------------------


class TeamService(_Base):
    def create(self, context: OrgContext, data: TeamCreate) -> Team:
        """Create a team at the root or under a parent of the same organization."""
        org_id = context.org_id
        self._lock_organization(org_id)
        if data.parent_id is not None:
            self._get(org_id, data.parent_id, entity="Parent team")
        team = Team(id=uuid.uuid4(), org_id=org_id, name=data.name, parent_id=data.parent_id)
        self.session.add(team)
        self.session.flush()
        record_changes(self.session, [_change(TEAM, team.id, org_id, None, _team_state(team))])
        return team

    def update(self, context: OrgContext, team_id: uuid.UUID, data: TeamUpdate) -> Team:
        """Rename a team or move it in the tree (never under itself or its sub-teams)."""
        self._lock_organization(context.org_id)
        team = self._get(context.org_id, team_id)
        old = _team_state(team)
        # The parent is checked before anything is assigned: its queries would flush the
        # team once more, and every flush is one more version.
        if "parent_id" in data.model_fields_set and data.parent_id != team.parent_id:
            self._check_new_parent(team, data.parent_id)
            team.parent_id = data.parent_id
        if data.name is not None:
            team.name = data.name
        new = _team_state(team)
        if new != old:
            self.session.flush()
            record_changes(self.session, [_change(TEAM, team.id, context.org_id, old, new)])
        return team

    def delete(self, context: OrgContext, team_id: uuid.UUID) -> None:
        """Soft-delete a team: its sub-teams move up to its parent, its member links go."""
        org_id = context.org_id
        self._lock_organization(org_id)
        team = self._get(org_id, team_id)
        old = _team_state(team)
        children = self.repo.reattach_children(org_id, team.id, team.parent_id)
        links = self.repo.remove_team_links(org_id, team.id)
        team.deleted_at = func.now()
        self.session.flush()
        moved = [
            _change(
                TEAM,
                child_id,
                org_id,
                {"name": name, "parent_id": str(team.id)},
                {"name": name, "parent_id": old["parent_id"]},
            )
            for child_id, name in children
        ]
        unlinked = [
            _change(TEAM_MEMBER, team.id, org_id, _link_state(team.id, user_id, lead), None)
            for user_id, lead in links
        ]
        record_changes(self.session, [_change(TEAM, team.id, org_id, old, None), *moved, *unlinked])

    def put_member(
        self, context: OrgContext, team_id: uuid.UUID, user_id: uuid.UUID, data: TeamMemberUpsert
    ) -> TeamLink:
        """Add a member of the organization to a team, or change whether they lead it."""
        org_id = context.org_id
        # Share locks: a concurrent team delete or member removal cannot strand the link.
        self._get(org_id, team_id, lock=True)
        if not self.repo.is_member(org_id, user_id, lock=True):
            raise NotFoundError.for_entity("Member", user_id)
        existing = self.repo.find_team_member(team_id, user_id)
        old_lead = existing.is_lead if existing is not None else None
        is_lead = data.is_lead if data.is_lead is not None else bool(old_lead)
        if old_lead != is_lead:
            self.repo.upsert_team_member(org_id, team_id, user_id, is_lead)
            old = None if old_lead is None else _link_state(team_id, user_id, old_lead)
            new = _link_state(team_id, user_id, is_lead)
            record_changes(self.session, [_change(TEAM_MEMBER, team_id, org_id, old, new)])
        return TeamLink(team_id=team_id, user_id=user_id, is_lead=is_lead)

    def remove_member(self, context: OrgContext, team_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Take a user out of a team."""
        org_id = context.org_id
        self._get(org_id, team_id)
        was_lead = self.repo.delete_team_member(team_id, user_id)
        if was_lead is None:
            raise NotFoundError.for_entity("Team member", user_id)
        old = _link_state(team_id, user_id, was_lead)
        record_changes(self.session, [_change(TEAM_MEMBER, team_id, org_id, old, None)])

    def _get(
        self, org_id: uuid.UUID, team_id: uuid.UUID, *, entity: str = "Team", lock: bool = False
    ) -> Team:
        team = self.repo.find_team(org_id, team_id, lock=lock)
        if team is None:
            raise NotFoundError.for_entity(entity, team_id)
        return team

    def _check_new_parent(self, team: Team, parent_id: uuid.UUID | None) -> None:
        if parent_id is None:
            return
        self._get(team.org_id, parent_id, entity="Parent team")
        if self.repo.is_self_or_ancestor(team.org_id, team.id, parent_id):
            raise BusinessRuleError("A team cannot be moved under itself or one of its sub-teams")
