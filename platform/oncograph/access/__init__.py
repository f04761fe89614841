"""Access control: principals, API keys, project grants and the scope reads are computed under."""

from oncograph.access.scope import Scope

__all__ = ["Scope"]
