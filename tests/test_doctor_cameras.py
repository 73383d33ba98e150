"""``facepro doctor`` against cameras that hang or crash the prober: bounded in time, isolated in
a child process, exit code 1 (a failed check), never a dead doctor (SIGABRT was seen)."""
from __future__ import annotations

import json
import os
import socket
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from edge.pipeline import probe
from tests.support.cli import run_cli


class SilentServer:
    """Accepts every TCP connection and never sends a byte (a camera whose firmware hung)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        self.sock.close()


def test_doctor_is_bounded_with_cameras_that_never_answer(write_settings, tmp_path: Path) -> None:
    server = SilentServer()
    try:
        config = write_settings({
            "paths": {"models_dir": str(tmp_path / "none")},
            "cameras": [{"name": "rtsp-hung", "source": f"rtsp://admin:Pw-123@127.0.0.1:{server.port}/stream"},
                        {"name": "http-hung", "source": f"http://127.0.0.1:{server.port}/video.mjpg"}],
        })
        t0 = time.monotonic()
        proc = run_cli(config, "doctor", "--json", "--timeout", "3", log_level="warning", timeout=120)
        took = time.monotonic() - t0
        assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
        checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
        for name in ("camera rtsp-hung", "camera http-hung"):
            assert checks[name]["status"] == "FAIL", checks[name]
            assert "no frame within 3 s" in checks[name]["detail"] or "no answer" in checks[name]["detail"]
            assert checks[name]["fix"], checks[name]
        assert "Pw-123" not in proc.stdout + proc.stderr
        # two cameras, each bounded by the probe's deadline, plus doctor's other checks
        assert took < 2 * probe.deadline_s(3) + 30, took
    finally:
        server.close()


def test_a_prober_that_dies_of_a_signal_is_a_failed_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aborting = tmp_path / "python-that-aborts"
    aborting.write_text("#!/bin/sh\nkill -ABRT $$\n")
    aborting.chmod(aborting.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sys, "executable", str(aborting))
    result = probe.probe_source({"name": "cam", "source": "rtsp://127.0.0.1:9/stream"}, timeout_s=2)
    assert result["ok"] is False and result["code"] == "crashed" and "SIGABRT" in result["error"], result
    assert os.getpid() > 0  # still here
