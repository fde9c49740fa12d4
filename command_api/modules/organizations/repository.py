"""SQL of organizations, memberships and the team tree. Never commits.

Every lookup is scoped by `org_id` (another organization's ids simply are not found) and
skips soft-deleted rows unless it says otherwise.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased

from command_api.modules.organizations.models import (
    Membership,
    Organization,
    Role,
    Team,
    TeamMember,
)
from command_api.modules.users.models import User


class OrganizationsRepository:
    """Queries of the organizations module, on the request's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # --- Organizations ----------------------------------------------------------------------------

    def lock_organization(self, org_id: uuid.UUID) -> Organization | None:
        """Lock the organization row (FOR NO KEY UPDATE) and reload it.

        NO KEY: concurrent inserts that reference the organization (their foreign-key checks
        take KEY SHARE) are not blocked; other writers of this row, and tree changes, queue.
        """
        return self.session.execute(
            select(Organization)
            .where(Organization.id == org_id, Organization.deleted_at.is_(None))
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()

    # --- Users and memberships --------------------------------------------------------------------

    def find_user_by_email(self, email: str) -> User | None:
        # Matches the unique index on lower(email).
        return self.session.execute(
            select(User).where(func.lower(User.email) == email.lower())
        ).scalar_one_or_none()

    def find_membership_any_state(self, org_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
        """The membership row of a user, live or removed, locked for the caller's change."""
        return self.session.execute(
            select(Membership)
            .where(Membership.org_id == org_id, Membership.user_id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()

    def find_member(self, org_id: uuid.UUID, user_id: uuid.UUID) -> tuple[Membership, User] | None:
        """A live membership with its user, the membership row locked."""
        row = self.session.execute(
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(
                Membership.org_id == org_id,
                Membership.user_id == user_id,
                Membership.deleted_at.is_(None),
            )
            .with_for_update(of=Membership)
            .execution_options(populate_existing=True)
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    def is_member(self, org_id: uuid.UUID, user_id: uuid.UUID, *, lock: bool = False) -> bool:
        """Whether the user is a live member; `lock` share-locks the membership row, so a
        concurrent removal either waits for this transaction or is seen by it."""
        statement = select(Membership.id).where(
            Membership.org_id == org_id,
            Membership.user_id == user_id,
            Membership.deleted_at.is_(None),
        )
        if lock:
            statement = statement.with_for_update(read=True)
        return self.session.execute(statement).first() is not None

    def lock_owner_ids(self, org_id: uuid.UUID) -> list[uuid.UUID]:
        """Lock the organization's live owner memberships and return their user ids.

        Always in id order, so two transactions taking these locks cannot deadlock; a
        transaction blocked here sees the owners as they are after the other one commits.
        """
        return list(
            self.session.execute(
                select(Membership.user_id)
                .where(
                    Membership.org_id == org_id,
                    Membership.role == Role.OWNER.value,
                    Membership.deleted_at.is_(None),
                )
                .order_by(Membership.id)
                .with_for_update()
            ).scalars()
        )

    def remove_team_links_of_user(
        self, org_id: uuid.UUID, user_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, bool]]:
        """Delete a user's team links in one organization; returns (team_id, is_lead) of each."""
        rows = self.session.execute(
            delete(TeamMember)
            .where(TeamMember.org_id == org_id, TeamMember.user_id == user_id)
            .returning(TeamMember.team_id, TeamMember.is_lead)
        ).all()
        return [(row[0], row[1]) for row in rows]

    # --- Teams ------------------------------------------------------------------------------------

    def find_team(
        self, org_id: uuid.UUID, team_id: uuid.UUID, *, lock: bool = False
    ) -> Team | None:
        """A live team; `lock` takes a share lock (a concurrent delete waits, or we see it)."""
        statement = select(Team).where(
            Team.id == team_id, Team.org_id == org_id, Team.deleted_at.is_(None)
        )
        if lock:
            statement = statement.with_for_update(read=True)
        return self.session.execute(
            statement.execution_options(populate_existing=True)
        ).scalar_one_or_none()

    def is_self_or_ancestor(
        self, org_id: uuid.UUID, team_id: uuid.UUID, of_team_id: uuid.UUID
    ) -> bool:
        """Whether `team_id` is `of_team_id` or one of its ancestors (a recursive walk up).

        Moving `team_id` under `of_team_id` makes a cycle exactly when this is true. UNION
        (not UNION ALL) ends the walk even on a tree that is already damaged.
        """
        up = (
            select(Team.id, Team.parent_id)
            .where(Team.id == of_team_id, Team.org_id == org_id)
            .cte("up", recursive=True)
        )
        parent = aliased(Team)
        up = up.union(
            select(parent.id, parent.parent_id)
            .join(up, parent.id == up.c.parent_id)
            .where(parent.org_id == org_id)
        )
        return bool(self.session.execute(select(exists().where(up.c.id == team_id))).scalar_one())

    def reattach_children(
        self, org_id: uuid.UUID, team_id: uuid.UUID, new_parent_id: uuid.UUID | None
    ) -> list[tuple[uuid.UUID, str]]:
        """Move the live children of a team under `new_parent_id`; returns (id, name) of each."""
        rows = self.session.execute(
            update(Team)
            .where(Team.org_id == org_id, Team.parent_id == team_id, Team.deleted_at.is_(None))
            .values(parent_id=new_parent_id, updated_at=func.now(), version=Team.version + 1)
            .returning(Team.id, Team.name)
            .execution_options(synchronize_session=False)
        ).all()
        return [(row[0], row[1]) for row in rows]

    def remove_team_links(
        self, org_id: uuid.UUID, team_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, bool]]:
        """Delete every member link of a team; returns (user_id, is_lead) of each."""
        rows = self.session.execute(
            delete(TeamMember)
            .where(TeamMember.org_id == org_id, TeamMember.team_id == team_id)
            .returning(TeamMember.user_id, TeamMember.is_lead)
        ).all()
        return [(row[0], row[1]) for row in rows]

    def find_team_member(self, team_id: uuid.UUID, user_id: uuid.UUID) -> TeamMember | None:
        return self.session.execute(
            select(TeamMember)
            .where(TeamMember.team_id == team_id, TeamMember.user_id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()

    def upsert_team_member(
        self, org_id: uuid.UUID, team_id: uuid.UUID, user_id: uuid.UUID, is_lead: bool
    ) -> None:
        statement = insert(TeamMember).values(
            team_id=team_id, user_id=user_id, org_id=org_id, is_lead=is_lead
        )
        self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[TeamMember.team_id, TeamMember.user_id],
                set_={"is_lead": statement.excluded.is_lead, "updated_at": func.now()},
            )
        )

    def delete_team_member(self, team_id: uuid.UUID, user_id: uuid.UUID) -> bool | None:
        """Delete one link; returns its `is_lead`, or None when there was no such link."""
        return self.session.execute(
            delete(TeamMember)
            .where(TeamMember.team_id == team_id, TeamMember.user_id == user_id)
            .returning(TeamMember.is_lead)
        ).scalar_one_or_none()
