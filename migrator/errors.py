"""The one error family the engine raises; callers catch :class:`MigratorError`."""

from __future__ import annotations

__all__ = ["EventError", "MigratorError", "ParseError", "SpecError"]


class MigratorError(Exception):
    """Base class of every error raised by :mod:`migrator`."""


class SpecError(MigratorError, ValueError):
    """A migration or workload spec is invalid; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ParseError(MigratorError, ValueError):
    """A size, rate or duration string could not be understood."""


class EventError(MigratorError, ValueError):
    """A serialised event could not be turned back into an event object."""
