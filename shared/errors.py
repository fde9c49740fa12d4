"""The exception hierarchy. Services raise these; one handler maps them to the envelope."""

from __future__ import annotations

from typing import Any


class EvoTrackError(Exception):
    status_code = 500
    error_code = "INTERNAL_ERROR"
    default_message = "An internal error occurred"
    # When true, the entry point commits what the request wrote before answering with
    # this error (e.g. revoking a refresh-token family after a reuse is detected).
    persist_changes = False

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.headers = headers
        super().__init__(self.message)


class BusinessRuleError(EvoTrackError):
    status_code = 400
    error_code = "BUSINESS_RULE"
    default_message = "The command breaks a rule of the domain"


class UnauthorizedError(EvoTrackError):
    status_code = 401
    error_code = "UNAUTHORIZED"
    default_message = "Missing, invalid or expired credentials"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class ForbiddenError(EvoTrackError):
    status_code = 403
    error_code = "FORBIDDEN"
    default_message = "Your role does not allow this"


class NotFoundError(EvoTrackError):
    status_code = 404
    error_code = "NOT_FOUND"
    default_message = "Not found"

    @classmethod
    def for_entity(cls, entity: str, identifier: object) -> NotFoundError:
        return cls(f"{entity} with identifier '{identifier}' not found")


class AlreadyExistsError(EvoTrackError):
    status_code = 409
    error_code = "ALREADY_EXISTS"
    default_message = "Already exists"


class ConflictError(EvoTrackError):
    status_code = 409
    error_code = "CONFLICT"
    default_message = "The command conflicts with the current state"


class PreconditionFailedError(EvoTrackError):
    """`If-Match` named a version the entity has moved past; `details.current` shows it now."""

    status_code = 412
    error_code = "PRECONDITION_FAILED"
    default_message = "The entity has changed since the version in If-Match"


class ValidationFailedError(EvoTrackError):
    """Malformed input found by a service (for example a bulk item); details name the fields."""

    status_code = 422
    error_code = "VALIDATION_ERROR"
    default_message = "The request is malformed"


class RateLimitedError(EvoTrackError):
    status_code = 429
    error_code = "RATE_LIMITED"
    default_message = "Too many requests"

    def __init__(self, retry_after_seconds: int, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after_seconds))})


class ServiceUnavailableError(EvoTrackError):
    status_code = 503
    error_code = "SERVICE_UNAVAILABLE"
    default_message = "A dependency is unavailable"

    def __init__(self, message: str | None = None, *, retry_after_seconds: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_seconds)})


class ProjectionLagError(ServiceUnavailableError):
    error_code = "PROJECTION_LAG"
    default_message = "The projections have not caught up with the requested write yet"
