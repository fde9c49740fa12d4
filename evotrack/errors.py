"""Errors the command line reports as one clear message, without a stack trace."""

from __future__ import annotations

from pydantic import ValidationError


class CliError(Exception):
    """A problem the user can fix; `evotrack` prints it and exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def describe_settings_error(exc: ValidationError) -> str:
    """One line per problem, named by its environment variable."""
    lines = ["invalid settings:"]
    for error in exc.errors():
        variable = "_".join(str(part) for part in error["loc"]).upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"  {variable}: {message}" if variable else f"  {message}")
    return "\n".join(lines)
