"""The caller's membership in the organization of the path, and role checks.

An organization the caller is not in answers 404, never 403: no existence leak.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import ColumnElement, Select, and_, bindparam, select

from command_api.modules.auth.dependencies import (
    CALLER_CONDITIONS,
    Caller,
    Credentials,
    active_caller,
    caller,
)
from command_api.modules.organizations.context import OrgContext
from command_api.modules.organizations.models import Membership, Organization, Role
from command_api.modules.organizations.service import (
    MemberService,
    OrganizationService,
    TeamService,
)
from command_api.modules.users.models import User
from command_api.transaction import (
    Deferred,
    SessionDep,
    claim_idempotency_key,
    claims_idempotency_key,
    resolved,
    wants_idempotency_claim,
)
from shared.db import WriteSession
from shared.errors import NotFoundError
from shared.threads import in_thread


@claims_idempotency_key
async def get_org_context(
    org_id: uuid.UUID, request: Request, session: SessionDep, credentials: Credentials
) -> OrgContext | PendingOrgContext:
    """Who calls, and as which member of the path's organization. A token that names no one
    is a 401 at once. The lookup itself runs in the command's own thread hop (it is the
    command's first statement), unless an Idempotency-Key must be claimed first: then in a
    hop here, with the claim."""
    found = caller(credentials)
    if not wants_idempotency_claim(request):
        return PendingOrgContext(session, found, org_id)
    context = await in_thread(_org_context, session, found, org_id)
    await claim_idempotency_key(request, session, context.user.id)
    return context


@dataclass(frozen=True)
class PendingOrgContext(Deferred):
    """`get_org_context`'s lookup, for the command's thread hop (`CommandRoute`)."""

    session: WriteSession
    found: Caller
    org_id: uuid.UUID

    def resolve(self) -> OrgContext:
        return _org_context(self.session, self.found, self.org_id)


def _org_context_of(
    caller_condition: ColumnElement[bool],
) -> Select[User, Organization, Membership]:
    return (
        select(User, Organization, Membership)
        .outerjoin(
            Membership,
            and_(
                Membership.user_id == User.id,
                Membership.org_id == bindparam("org_id"),
                Membership.deleted_at.is_(None),
            ),
        )
        .outerjoin(
            Organization,
            and_(Organization.id == Membership.org_id, Organization.deleted_at.is_(None)),
        )
        .where(caller_condition)
    )


# Built once for each kind of token (see `CALLER_CONDITIONS`).
_ORG_CONTEXT = {kind: _org_context_of(condition) for kind, condition in CALLER_CONDITIONS.items()}


def _org_context(session: WriteSession, found: Caller, org_id: uuid.UUID) -> OrgContext:
    """The caller, the organization and the membership in one query (every organization
    command pays for this round trip)."""
    row = session.execute(
        _ORG_CONTEXT[found.by_api_token], {**found.params, "org_id": org_id}
    ).one_or_none()
    user, organization, membership = row if row is not None else (None, None, None)
    user = active_caller(user)
    if organization is None or membership is None:
        raise NotFoundError.for_entity("Organization", org_id)
    return OrgContext(user=user, organization=organization, membership=membership)


OrgMember = Annotated[OrgContext, Depends(get_org_context)]


def require_role(role: Role) -> Callable[[OrgContext], OrgContext]:
    def check(context: OrgMember) -> OrgContext:
        # A plain `def`: FastAPI calls it in a worker thread, where the lookup may run.
        member: OrgContext = resolved(context)
        member.require(role)
        return member

    return check


OrgManager = Annotated[OrgContext, Depends(require_role(Role.MANAGER))]
OrgAdmin = Annotated[OrgContext, Depends(require_role(Role.ADMIN))]
OrgOwner = Annotated[OrgContext, Depends(require_role(Role.OWNER))]


# --- Services ---------------------------------------------------------------------------


async def get_organization_service(session: SessionDep) -> OrganizationService:
    return OrganizationService(session)


async def get_member_service(session: SessionDep) -> MemberService:
    return MemberService(session)


async def get_team_service(session: SessionDep) -> TeamService:
    return TeamService(session)


OrganizationServiceDep = Annotated[OrganizationService, Depends(get_organization_service)]
MemberServiceDep = Annotated[MemberService, Depends(get_member_service)]
TeamServiceDep = Annotated[TeamService, Depends(get_team_service)]
