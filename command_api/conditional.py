"""Conditional writes (API.md, "Versions and conditional writes").

`PATCH` and `DELETE` of an entry, a project, a client, a task or a tag take
`If-Match: <version>`. The service locks the row, then calls `ensure_version`: a version
the row has moved past is a 412 with the row as it is now, and nothing is written. Two
conditional edits of one version therefore cannot both win: the second waits for the
first's lock and then reads the version the first wrote.

The header is read as HTTP writes entity tags, too: `"3"`, `W/"3"`, a list of them (any
may match) and `*` (any version: only that the entity exists).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header
from pydantic import BaseModel

from shared.errors import PreconditionFailedError, ValidationFailedError

HEADER = "If-Match"


@dataclass(frozen=True)
class IfMatch:
    """The versions `If-Match` accepts; `None` for any (no header, or `*`)."""

    versions: frozenset[int] | None = None

    def allows(self, version: int) -> bool:
        return self.versions is None or version in self.versions


ANY_VERSION = IfMatch()


def parse_if_match(value: str | None) -> IfMatch:
    if value is None or value.strip() == "*":
        return ANY_VERSION
    versions = set()
    for tag in value.split(","):
        text = tag.strip().removeprefix("W/").strip('"')
        if not text.isascii() or not text.isdigit():
            raise ValidationFailedError(
                f"{HEADER} must be a version the API returned (an integer), or *",
                details=[
                    {
                        "field": HEADER,
                        "location": "header",
                        "message": "must be a version (an integer), a list of them, or *",
                        "type": "value_error",
                    }
                ],
            )
        versions.add(int(text))
    return IfMatch(frozenset(versions))


async def if_match(
    value: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description="Write only if the entity is still at this `version` (as the API "
            "returned it); otherwise 412 with the current entity in `details.current`",
        ),
    ] = None,
) -> IfMatch:
    return parse_if_match(value)


IfMatchDep = Annotated[IfMatch, Depends(if_match)]


def ensure_version(condition: IfMatch, current: Any, shown: type[BaseModel], entity: str) -> None:
    """Refuse (412) unless `condition` allows the locked row's version; the answer's
    `details.current` is `current` (the row, or its view) in the shape `shown`."""
    if condition.allows(current.version):
        return
    raise PreconditionFailedError(
        f"{entity} is at version {current.version}: it changed since the version in {HEADER}",
        details={"current": shown.model_validate(current).model_dump(mode="json")},
    )
