"""A TCP relay on loopback that can drop all traffic like a pulled cable: no FIN, no RST.

``Relay(upstream_port).start()`` listens on ``port`` and forwards every connection to the
upstream. ``blackhole()`` keeps every socket open but forwards nothing in either direction
(what arrives is read and thrown away, so neither end sees backpressure or a close); new
connections are accepted and get nothing either. ``restore()`` forwards new connections again;
connections from the blackhole stay dead, as after a real outage the camera's side has timed out.
"""
from __future__ import annotations

import socket
import threading

from tests.support.procs import free_port


class Relay:
    def __init__(self, upstream_port: int, port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self._dead: set[int] = set()          # ids of connections that met the blackhole
        self._holed = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> Relay:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.2)
        self._listener = listener
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def blackhole(self) -> None:
        with self._lock:
            self._holed.set()

    @property
    def dead_links(self) -> int:
        """How many connections met the blackhole (had traffic dropped) so far."""
        return len(self._dead)

    def restore(self) -> None:
        with self._lock:
            self._holed.clear()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for sock in self._sockets:
                sock.close()
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._sockets.append(client)
                holed = self._holed.is_set()
            if holed:
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()  # the camera itself is down: a refusal, as a switch would pass on
                continue
            with self._lock:
                self._sockets.append(upstream)
            conn = id(client)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst, conn), daemon=True).start()

    def _swallow(self, sock: socket.socket) -> None:
        try:
            while not self._stop.is_set() and sock.recv(65536):
                pass
        except OSError:
            pass

    def _pump(self, src: socket.socket, dst: socket.socket, conn: int) -> None:
        try:
            while not self._stop.is_set():
                data = src.recv(65536)
                if not data:
                    break
                if self._holed.is_set():
                    self._dead.add(conn)
                if conn in self._dead:
                    continue  # dropped on the floor
                dst.sendall(data)
        except OSError:
            pass
        if conn not in self._dead:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
