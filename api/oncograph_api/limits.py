"""A bound on request bodies, enforced before the app reads or parses one (so a huge body costs milliseconds).

:class:`BodyLimit` is an ASGI middleware. A request whose ``Content-Length`` exceeds its path's limit is
refused at once; a body without one (chunked) is counted as it streams in, and refused as soon as the count
passes the limit. The answer is the problem document of :class:`~oncograph_api.errors.ContentTooLarge`
(413). A body within the limit is handed to the app unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oncograph_api.errors import ContentTooLarge, error_response

MAX_BODY_BYTES = 10 * 1024 * 1024
"""The default limit: a cohort of 200,000 ids as JSON is about 8 MB; a 1,000-node filter far less."""


class BodyLimit:
    """Refuse request bodies over ``default`` bytes (``paths`` gives exact paths their own limits)."""

    def __init__(
        self, app: ASGIApp, *, default: int = MAX_BODY_BYTES, paths: Mapping[str, int] | None = None
    ):
        self.app = app
        self.default = default
        self.paths = dict(paths or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope["path"], self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send, limit)
            return
        # Count what arrives (a chunked body declares no length) before the app sees any of it.
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await self._refuse(scope, receive, send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(Request(scope), ContentTooLarge(limit))
        response.headers["Connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
