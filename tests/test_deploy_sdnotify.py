"""systemd supervision: `facepro run` speaks sd_notify over a real unix datagram socket."""
from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

from edge.service import components_healthy
from tests.conftest import CLIP, FACEPRO, subprocess_env


def _receive_until(sock: socket.socket, wanted: str, deadline: float, seen: list[str]) -> None:
    while time.monotonic() < deadline:
        try:
            message = sock.recv(4096).decode()
        except TimeoutError:
            continue
        seen.append(message)
        if wanted in message.split("\n"):
            return
    raise AssertionError(f"no {wanted} within the deadline; received {seen!r}")


def test_run_sends_ready_then_watchdog_and_exits_0_on_sigterm(tmp_path: Path, write_settings) -> None:
    # a real pipeline on the shared clip: the watchdog is pinged only while its threads are healthy
    settings = write_settings({"web": {"enabled": False}, "mqtt": {"enabled": False},
                               "cameras": [{"name": "clip", "source": str(CLIP), "loop": True}]})
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.5)
    env = subprocess_env(NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="400000")
    proc = subprocess.Popen([*FACEPRO, "--config", str(settings), "run"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        _receive_until(sock, "READY=1", deadline, seen)
        ready_index = len(seen) - 1
        _receive_until(sock, "WATCHDOG=1", deadline, seen)
        assert all("WATCHDOG=1" not in m for m in seen[:ready_index]), "watchdog ping before READY"
        # the database was migrated before READY was sent
        assert (tmp_path / "data" / "facepro.db").is_file()
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
        assert proc.returncode == 0, output
        sock.settimeout(1)
        _receive_until(sock, "STOPPING=1", time.monotonic() + 5, seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()


class _Part:
    def __init__(self, name: str, result) -> None:
        self.name = name
        self._result = result

    def healthy(self):
        if isinstance(self._result, Exception):
            raise self._result
        return self._result


def test_components_healthy_collects_reasons_from_each_part() -> None:
    parts = [_Part("pipeline", (False, ["camera door: capture thread died"])), _Part("mqtt", True),
             _Part("web", RuntimeError("boom")), _Part("backups", False)]
    ok, problems = components_healthy(parts)
    assert not ok
    assert problems == ["pipeline: camera door: capture thread died", "web: health check failed: boom",
                        "backups: unhealthy"]
    assert components_healthy([_Part("mqtt", (True, [])), _Part("web", True)]) == (True, [])


class _FlakyPart:
    name = "flaky"

    def __init__(self) -> None:
        self.ok = True

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def healthy(self) -> tuple[bool, list[str]]:
        return (True, []) if self.ok else (False, ["worker stuck"])


def test_watchdog_pings_stop_while_a_part_is_unhealthy(tmp_path: Path, write_settings, monkeypatch) -> None:
    """Service.run in this process with one part whose health we flip; the pings go over a real socket."""
    import threading

    from edge import service as service_module
    from edge.config import load_settings

    part = _FlakyPart()
    monkeypatch.setattr(service_module, "build_components", lambda ctx: [part])
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # a ping every 0.05 s
    service = service_module.Service(load_settings(write_settings(), env={}))
    phases: dict[str, list[str]] = {"boot": [], "healthy": [], "unhealthy": [], "recovered": []}

    def drive() -> None:
        try:
            # the phases time the main loop, so they start at READY, not while boot migrates the database
            _receive_until(sock, "READY=1", time.monotonic() + 60, phases["boot"])
            for phase in ("healthy", "unhealthy", "recovered"):
                part.ok = phase != "unhealthy"
                deadline = time.monotonic() + 0.6
                while time.monotonic() < deadline:
                    try:
                        phases[phase].append(sock.recv(4096).decode())
                    except TimeoutError:
                        pass
        finally:
            service.request_stop()

    driver = threading.Thread(target=drive)
    driver.start()
    try:
        assert service.run() == 0
    finally:
        driver.join(10)
        sock.close()
    assert any("READY=1" in m.split("\n") for m in phases["boot"]), phases["boot"]
    assert any(m == "WATCHDOG=1" for m in phases["healthy"])
    unhealthy = phases["unhealthy"]
    # a ping computed just before the flip may still arrive; after the STATUS none may
    marks = [i for i, m in enumerate(unhealthy) if m.startswith("STATUS=unhealthy: flaky: worker stuck")]
    assert len(marks) == 1, unhealthy
    assert not any("WATCHDOG=1" in m for m in unhealthy[marks[0]:]), unhealthy
    assert "WATCHDOG=1\nSTATUS=running" in phases["recovered"]
