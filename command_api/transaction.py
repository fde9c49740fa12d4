"""The command API's unit of work: the request owns the transaction.

`CommandRoute` wraps every command endpoint. The endpoint's services only `flush()`. A
command is one hop to a worker thread where it can be: the dependencies that need the
database (the caller's membership, `Deferred`) are looked up there, the endpoint runs, and
the transaction commits, so it is never left open while the request waits for the event
loop. When an Idempotency-Key is claimed, the route stores the response FastAPI made, takes
the consistency token and commits in one more hop. Only then does the doorbell ring for the
projection workers and the response go. Any error rolls everything back (unless the error
asks for its own writes to be kept, such as revoking a refresh-token family).

Dependencies that only build a service around the session are `async def`: FastAPI runs a
plain `def` dependency in the thread pool, a hop that costs more than the constructor.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextvars import ContextVar
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from command_api.idempotency import (
    MAX_KEY_LENGTH,
    STATE_KEY,
    IdempotentReplay,
    claim_key,
    replay_headers,
    request_fingerprint,
    store_response,
)
from shared.changes import CHANGES_WRITTEN
from shared.config import get_settings
from shared.consistency import current_consistency_xid, encode_consistency_token
from shared.db import WriteSession, write_sessionmaker
from shared.errors import EvoTrackError, ValidationFailedError
from shared.openapi import ERROR_DESCRIPTIONS
from shared.redis_client import ring_doorbell
from shared.threads import in_thread

log = logging.getLogger(__name__)

CONSISTENCY_HEADER = "X-Consistency-Token"


async def get_session(request: Request) -> AsyncIterator[WriteSession]:
    """The request's session. Opening it does no I/O (the connection comes with the first
    statement), and neither does closing it once the route has committed or rolled back:
    both stay on the event loop, two thread-pool hops fewer per command."""
    session = write_sessionmaker()()
    request.state.session = session
    try:
        yield session
    finally:
        if session.in_transaction():
            await in_thread(_rollback_and_close, session)
        else:
            session.close()


def _rollback_and_close(session: WriteSession) -> None:
    try:
        session.rollback()
    finally:
        session.close()


SessionDep = Annotated[WriteSession, Depends(get_session, scope="request")]


def _session_of(request: Request) -> WriteSession | None:
    return getattr(request.state, "session", None)


def _rollback(request: Request) -> None:
    session = _session_of(request)
    if session is not None:
        session.rollback()


def _commit(request: Request, response: Response | None) -> str:
    """Commit the request's transaction and return its consistency token."""
    session = _session_of(request)
    if session is None:
        return ""
    token = encode_consistency_token(current_consistency_xid(session))
    row_id = getattr(request.state, STATE_KEY, None)
    if row_id is not None and response is not None:
        store_response(session, row_id, response.status_code, bytes(response.body), token)
    rang = session.info.pop(CHANGES_WRITTEN, False)
    session.commit()
    if rang:
        ring_doorbell()
    return token


class Deferred(ABC):
    """A dependency's value that needs the database, looked up in the command's own thread
    hop (`resolve`) rather than in a hop of its own: see `CommandRoute`."""

    @abstractmethod
    def resolve(self) -> Any: ...


def resolved(value: Any) -> Any:
    """A dependency's value, looked up now if it was deferred (call it in a thread)."""
    return value.resolve() if isinstance(value, Deferred) else value


# The request a command route is handling, for its endpoint's hop (set by `CommandRoute`).
_REQUEST: ContextVar[Request | None] = ContextVar("command_request", default=None)
_COMMITTED = "evotrack_committed_token"


def _in_the_thread_pool(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A plain `def` endpoint as a coroutine that runs it in a worker thread, with the
    deferred lookups before it and, when no Idempotency-Key waits for the response, the
    commit after it: the whole transaction in one hop (`_run_command`).

    FastAPI runs a sync endpoint in the pool and then validates its response in the pool
    again, a second hop; a coroutine endpoint's response is validated on the loop. The
    endpoint still never blocks the loop, and FastAPI reads its signature and docstring
    through `functools.wraps` (the OpenAPI document is the same)."""
    if inspect.iscoroutinefunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await in_thread(_run_command, _REQUEST.get(), endpoint, args, kwargs)

    return run


def _run_command(
    request: Request | None,
    endpoint: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """The endpoint with its deferred dependencies looked up first, then the commit: a
    transaction left open across a return to the loop waits for every other request the
    loop serves. Not committed here: a response an Idempotency-Key must store (the route
    commits it once FastAPI made it) and an error the endpoint answered (rolled back)."""
    result = endpoint(*args, **{name: resolved(value) for name, value in kwargs.items()})
    refused = isinstance(result, Response) and result.status_code >= 400
    if request is not None and not refused and getattr(request.state, STATE_KEY, None) is None:
        setattr(request.state, _COMMITTED, _commit(request, None))
    return result


Dependency = TypeVar("Dependency", bound=Callable[..., Any])
_KEY_CLAIMERS: set[Callable[..., Any]] = set()


def claims_idempotency_key(dependency: Dependency) -> Dependency:
    """Mark a dependency that calls `claim_idempotency_key`: the POST commands that depend
    on it declare the `Idempotency-Key` header, and its 409, in the OpenAPI document."""
    _KEY_CLAIMERS.add(dependency)
    return dependency


class CommandRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _in_the_thread_pool(endpoint), **kwargs)
        self.openapi_extra = {**(self.openapi_extra or {}), **self._documented_headers()}

    def _documented_headers(self) -> dict[str, Any]:
        """The headers this route reads and writes outside FastAPI's parameters."""
        success = str(self.status_code or 200)
        headers: dict[str, Any] = {CONSISTENCY_HEADER: _CONSISTENCY_RESPONSE_HEADER}
        extra: dict[str, Any] = {"responses": {success: {"headers": headers}}}
        if "POST" in (self.methods or ()) and not _KEY_CLAIMERS.isdisjoint(_calls(self.dependant)):
            headers["Idempotent-Replayed"] = _REPLAYED_RESPONSE_HEADER
            extra["parameters"] = [_IDEMPOTENCY_KEY_PARAMETER]
            extra["responses"]["409"] = {"description": ERROR_DESCRIPTIONS[409]}
        return extra

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handle_command(request: Request) -> Response:
            current = _REQUEST.set(request)
            try:
                response = await original(request)
            except IdempotentReplay as replay:
                await in_thread(_rollback, request)
                return Response(
                    replay.body or None,
                    status_code=replay.status_code,
                    headers=replay_headers(replay),
                    media_type="application/json" if replay.body else None,
                )
            except EvoTrackError as exc:
                if exc.persist_changes:
                    await in_thread(_commit, request, None)
                else:
                    await in_thread(_rollback, request)
                raise
            except BaseException:
                await in_thread(_rollback, request)
                raise
            finally:
                _REQUEST.reset(current)
            if response.status_code >= 400:
                await in_thread(_rollback, request)
                return response
            token = getattr(request.state, _COMMITTED, None)
            if token is None:
                token = await in_thread(_commit, request, response)
            if token:
                response.headers[CONSISTENCY_HEADER] = token
            return response

        return handle_command


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    yield dependant.call
    for dependency in dependant.dependencies:
        yield from _calls(dependency)


_IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Any string of yours, kept 24 h: a retry with the same key and body "
    "replays the first response (with `Idempotent-Replayed: true`) instead of running the "
    "command again; the same key with another body is a 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}
_CONSISTENCY_RESPONSE_HEADER = {
    "description": "Send it back on a query API read to see this write "
    "(the read waits until the projections include it)",
    "schema": {"type": "string"},
}
_REPLAYED_RESPONSE_HEADER = {
    "description": "`true` when this is the stored answer to an earlier request with the "
    "same Idempotency-Key",
    "schema": {"type": "string", "enum": ["true"]},
}


def _canonical_body(body: bytes) -> bytes:
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        return body


def wants_idempotency_claim(request: Request) -> bool:
    """Whether `claim_idempotency_key` has a key to claim (or to refuse) for this request."""
    return request.method == "POST" and "idempotency-key" in request.headers


async def claim_idempotency_key(request: Request, session: WriteSession, user_id: Any) -> None:
    """Claim the request's `Idempotency-Key` (POST only) inside its transaction."""
    if not wants_idempotency_claim(request):
        return
    key = request.headers["idempotency-key"]
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailedError(
            "Idempotency-Key must be 1 to 255 characters",
            details=[
                {
                    "field": "Idempotency-Key",
                    "location": "header",
                    "message": "must be 1 to 255 characters",
                    "type": "value_error",
                }
            ],
        )
    fingerprint = request_fingerprint(
        request.method, request.url.path, _canonical_body(await request.body())
    )
    row_id = await in_thread(
        claim_key,
        session,
        user_id=user_id,
        key=key,
        fingerprint=fingerprint,
        ttl_seconds=get_settings().idempotency_ttl_seconds,
    )
    setattr(request.state, STATE_KEY, row_id)
