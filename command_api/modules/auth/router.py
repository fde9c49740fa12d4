"""Registration, sign-in, refresh-token rotation and personal API tokens."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import OAuth2PasswordRequestForm

from command_api.modules.auth.dependencies import (
    ApiTokenServiceDep,
    AuthServiceDep,
    ClientIP,
    CommandUser,
)
from command_api.modules.auth.schemas import (
    ApiTokenCreate,
    ApiTokenCreated,
    LoginRequest,
    OAuth2Token,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
)
from command_api.modules.auth.service import IssuedTokens
from command_api.modules.users.schemas import UserRead
from command_api.transaction import CommandRoute
from shared.openapi import errors
from shared.responses import Envelope, ok

router = APIRouter(route_class=CommandRoute)

# Wrong credentials (the same 401 whether the account exists or not), and the rate limits.
SIGN_IN_ERRORS = errors(401, 429)


def _token_pair(tokens: IssuedTokens, response: Response) -> TokenPair:
    # RFC 6749 §5.1: responses carrying tokens must not be cached.
    response.headers["Cache-Control"] = "no-store"
    return TokenPair(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
    )


@router.post(
    "/auth/register",
    status_code=201,
    response_model=Envelope[UserRead],
    responses=errors(409, 429),
)
def register_user(
    data: RegisterRequest, auth: AuthServiceDep, client_ip: ClientIP
) -> Envelope[UserRead]:
    """Create an account. Emails are unique whatever their case (409 ALREADY_EXISTS).
    Rate limited per client IP, on the same budget as login (429 with Retry-After)."""
    return ok(UserRead.model_validate(auth.register(data, client_ip)))


@router.post("/auth/login", response_model=Envelope[TokenPair], responses=SIGN_IN_ERRORS)
def log_in(
    data: LoginRequest, auth: AuthServiceDep, client_ip: ClientIP, response: Response
) -> Envelope[TokenPair]:
    """Exchange email and password for an access token and a refresh token.

    A failure answers the same 401 whether or not the email exists. Rate limited per
    client IP and per account (429 with Retry-After).
    """
    return ok(_token_pair(auth.login(data.email, data.password, client_ip), response))


@router.post("/auth/token", response_model=OAuth2Token, responses=SIGN_IN_ERRORS)
def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    auth: AuthServiceDep,
    client_ip: ClientIP,
    response: Response,
) -> OAuth2Token:
    """OAuth2 password flow (form fields `username`, `password`): the bare OAuth2 token
    response, not enveloped, so that standard clients and /docs can use it."""
    access_token = auth.access_token(form.username, form.password, client_ip)
    response.headers["Cache-Control"] = "no-store"
    return OAuth2Token(access_token=access_token)


@router.post("/auth/refresh", response_model=Envelope[TokenPair], responses=SIGN_IN_ERRORS)
def refresh_tokens(
    data: RefreshRequest, auth: AuthServiceDep, client_ip: ClientIP, response: Response
) -> Envelope[TokenPair]:
    """Spend a refresh token for a new pair. Presenting a spent or revoked token again
    revokes its whole family (every session descending from that login)."""
    return ok(_token_pair(auth.refresh(data.refresh_token, client_ip), response))


@router.post("/auth/logout", status_code=204)
def log_out(data: RefreshRequest, auth: AuthServiceDep) -> Response:
    """End the session of this refresh token (its whole family)."""
    auth.logout(data.refresh_token)
    return Response(status_code=204)


@router.post("/auth/api-tokens", status_code=201, response_model=Envelope[ApiTokenCreated])
def create_api_token(
    data: ApiTokenCreate, user: CommandUser, tokens: ApiTokenServiceDep
) -> Envelope[ApiTokenCreated]:
    """Create a personal API token for scripts. The token is shown only in this response."""
    token, secret = tokens.create(user, data)
    return ok(
        ApiTokenCreated(
            id=token.id,
            name=token.name,
            token=secret,
            expires_at=token.expires_at,
            created_at=token.created_at,
        )
    )


@router.delete("/auth/api-tokens/{token_id}", status_code=204)
def revoke_api_token(
    token_id: uuid.UUID, user: CommandUser, tokens: ApiTokenServiceDep
) -> Response:
    """Revoke one of your API tokens; another user's token is not found (404)."""
    tokens.revoke(user, token_id)
    return Response(status_code=204)
