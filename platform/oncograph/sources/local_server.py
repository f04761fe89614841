"""The plumbing of the local stand-ins (GDC mirror, PDC GraphQL): stdlib ``http.server``, HTTP/1.1 keep-alive.

- :class:`LocalHTTPServer`: a threading server that carries the :class:`~oncograph.sources.faults.FaultInjector`.
- :class:`JsonHandler`: GET and POST go to the subclass's :meth:`~JsonHandler.dispatch`; JSON answers with
  ``Content-Length``; injected faults (429 with ``Retry-After``, 500/502/503, a truncated body that closes the
  connection); a bug answers 500 instead of dropping the connection. Each stand-in says how its error bodies
  look (:meth:`~JsonHandler.error_body`: GDC ``{"message"}``, PDC GraphQL ``{"errors"}``).
- :class:`BackgroundServer`: runs a server on a daemon thread (tests, the demo) or in the foreground
  (``oncograph gdc-server``, ``oncograph pdc-server``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self, cast

from oncograph.sources.faults import FaultDecision, FaultInjector

logger = logging.getLogger(__name__)


class LocalHTTPServer(ThreadingHTTPServer):
    """The threading HTTP server of a stand-in; its handlers find the fault injector here."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], injector: FaultInjector
    ) -> None:
        super().__init__(address, handler)
        self.injector = injector


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler that answers JSON and applies the server's injected faults."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    label: ClassVar[str] = "local server"
    """Names the stand-in in fault messages and logs, e.g. ``GDC mirror``."""

    def do_GET(self) -> None:
        self._guarded()

    def do_POST(self) -> None:
        self._guarded()

    def dispatch(self) -> None:
        """Answer the request (subclasses)."""
        raise NotImplementedError

    def error_body(self, message: str) -> bytes:
        """The stand-in's error body for ``message``."""
        raise NotImplementedError

    def extra_headers(self) -> dict[str, str]:
        """Headers sent with every answer."""
        return {}

    @property
    def injector(self) -> FaultInjector:
        return cast(LocalHTTPServer, self.server).injector

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s - %s", self.label, self.address_string(), format % args)

    def _guarded(self) -> None:
        try:
            self.dispatch()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug: answer 500 rather than dropping the connection
            logger.exception("%s failed on %s %s", self.label, self.command, self.path)
            self.send_json(500, self.error_body(f"internal {self.label} error: {type(exc).__name__}: {exc}"))

    def send_fault(self, decision: FaultDecision) -> bool:
        """Answer an injected 429 or 5xx; False when ``decision`` lets the request through (or truncates it)."""
        if decision.kind == "rate_limited":
            message = f"rate limit exceeded ({self.label} fault injection); retry later"
            self.send_json(429, self.error_body(message), {"Retry-After": str(decision.retry_after_s)})
            return True
        if decision.kind == "error":
            message = f"simulated server error {decision.status} ({self.label} fault injection)"
            self.send_json(decision.status, self.error_body(message))
            return True
        return False

    def send_answer(self, body: bytes, decision: FaultDecision) -> None:
        """``200`` with ``body``, cut short when ``decision`` says ``truncate``."""
        cut = int(len(body) * decision.cut_fraction) if decision.kind == "truncate" else None
        self.send_json(200, body, truncate_at=cut)

    def send_json(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        truncate_at: int | None = None,
    ) -> None:
        """Send ``body`` with its full ``Content-Length``; with ``truncate_at``, only that much, then close."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**self.extra_headers(), **(headers or {})}.items():
            self.send_header(name, value)
        if truncate_at is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        if truncate_at is None:
            self.wfile.write(body)
            return
        self.wfile.write(body[: max(0, min(len(body) - 1, truncate_at))])
        self.wfile.flush()
        self.close_connection = True


class BackgroundServer:
    """Runs ``self.httpd`` on a daemon thread; use as a context manager or call :meth:`start`/:meth:`stop`."""

    httpd: ThreadingHTTPServer
    thread_name = "local-server"
    label = "local server"
    """Names the server in logs, e.g. ``GDC mirror``."""
    path = ""
    """Appended to the base URL by :attr:`url` (e.g. ``/graphql``)."""

    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the bound socket (IPv6 hosts in brackets)."""
        host, port = self.httpd.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        if ":" in host_text:
            host_text = f"[{host_text}]"
        return f"http://{host_text}:{port}"

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def start(self) -> Self:
        """Serve on a daemon thread."""
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=self.thread_name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def run_foreground(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve on this thread until interrupted (Ctrl-C returns normally); ``on_ready`` gets the URL."""
        try:
            if on_ready is not None:
                on_ready(self.url)
            self.httpd.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            logger.info("%s on %s stopped", self.label, self.url)
        finally:
            self.httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
