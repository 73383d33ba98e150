"""The web component of ``facepro run``: waitress serving the app in its own thread.

A few worker threads only (the page and API are light), so the web server never competes
with the pipeline for more than a sliver of CPU; requests never call into the hot path,
they only read state the parts already keep.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

from edge.context import ServiceContext
from edge.web import auth
from edge.web.app import create_app

log = logging.getLogger(__name__)

THREADS = 3
LOOP_TIMEOUT_S = 0.5
RETRY_S = 10.0


class WebServer:
    name = "web"

    def __init__(self, ctx: ServiceContext, threads: int = THREADS, retry_s: float = RETRY_S) -> None:
        self.ctx = ctx
        self.threads = threads
        self.retry_s = retry_s
        self.bind_error: str | None = None
        self._app: Any = None
        self.host: str = ctx.settings["web.host"]
        self.port: int = ctx.settings["web.port"]
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        ctx = self.ctx
        generated = auth.ensure_technician_password(ctx.data_dir)
        if generated is not None:
            log.warning("no technician password was set: generated one into %s (set your own with "
                        "'facepro web set-password')", ctx.data_dir / auth.FIRST_BOOT_PASSWORD_FILE)
        self._app = create_app(ctx)
        self._stop.clear()
        # First bind now (so the port is known when start returns). A busy port must not stop
        # the pipeline: the service runs on and the web keeps trying to bind in its thread.
        if not self._bind():
            log.error("web: cannot listen on %s:%s (web.host/web.port): %s; the service runs on without "
                      "the status page and retries every %.0f s", self.host, self.port, self.bind_error,
                      self.retry_s)
        self._thread = threading.Thread(target=self._run, name="web", daemon=True)
        self._thread.start()

    @property
    def listening(self) -> bool:
        return self._server is not None

    def _bind(self) -> bool:
        try:
            self._server = create_server(self._app, host=self.host, port=self.port, threads=self.threads,
                                         ident="facepro", clear_untrusted_proxy_headers=True,
                                         max_request_body_size=self._app.config["MAX_CONTENT_LENGTH"] + 1024 * 1024,
                                         channel_timeout=60)
        except OSError as exc:
            self.bind_error = exc.strerror or str(exc)
            return False
        self.bind_error = None
        self.port = int(getattr(self._server, "effective_port", self.port))
        self.ctx.web = self
        log.info("status page on %s (public read: %s)", self.url, self.ctx.settings["web.public_read"])
        return True

    def _run(self) -> None:
        while self._server is None:
            if self._stop.wait(self.retry_s):
                return
            self._bind()
        self._serve()

    def _serve(self) -> None:
        server = self._server
        socket_map = getattr(server, "map", None) or server._map
        try:
            while not self._stop.is_set() and socket_map:
                wasyncore.loop(timeout=LOOP_TIMEOUT_S, map=socket_map, count=1)
        except Exception:
            log.exception("web server loop failed")
        finally:
            # Close in the loop's own thread: wasyncore is not thread-safe.
            server.task_dispatcher.shutdown()
            wasyncore.close_all(socket_map)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                log.warning("web server thread did not stop within 5 s")
        self._thread = None
        self._server = None
        if self.ctx.web is self:
            self.ctx.web = None
