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
    """Input failed validation: a record (quarantined, not stored) or a request (filters, ids, options)."""


class NotFoundError(OncographError):
    """An entity that was asked for does not exist."""


class AuthenticationError(OncographError):
    """No credentials, or credentials that are unknown, revoked or disabled."""


class PermissionDeniedError(OncographError):
    """The caller is known but its role or ownership does not allow the action."""


class ConflictError(OncographError):
    """The request conflicts with the current state (a duplicate name, a job already running)."""
