"""A stdlib HTTP server on a background thread: the common base of the local GDC and PDC stand-ins."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Self


class BackgroundServer:
    """Runs ``self.httpd`` on a daemon thread; use as a context manager or call :meth:`start`/:meth:`stop`."""

    httpd: ThreadingHTTPServer
    thread_name = "local-server"
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
