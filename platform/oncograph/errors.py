"""One error hierarchy. Every error a user can cause says what was wrong and what to do."""

from __future__ import annotations


class OncographError(Exception):
    """Base of every error oncograph raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class ConfigurationError(OncographError):
    """A setting is missing or wrong."""


class DatabaseError(OncographError):
    """The database cannot be reached, started or migrated."""


class SourceError(OncographError):
    """A data source (GDC API, a portal file) answered or contained something unusable."""


class SourceUnavailableError(SourceError):
    """A remote source kept failing after every retry."""


class InputFormatError(SourceError):
    """A file's layout is not one oncograph knows."""


class ValidationError(OncographError):
    """A record failed validation (the record is quarantined, not stored)."""


class NotFoundError(OncographError):
    """An entity that was asked for does not exist."""
