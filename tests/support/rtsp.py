"""Real RTSP cameras for tests: clips encoded once per session, a GStreamer RTSP server per camera.

``RtspCamera(media, codec).start()`` runs :mod:`tests.support.rtsp_serve` with the system Python
on a free loopback port; ``stop()`` kills it (a camera that loses power), ``start()`` brings it
back on the same port, ``pause()``/``resume()`` SIGSTOP/SIGCONT it (a hung camera with the TCP
connection open). Skips cleanly where the Debian packages are missing.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.procs import free_port, wait_for_port

SYSTEM_PYTHON = "/usr/bin/python3"
SERVE = Path(__file__).with_name("rtsp_serve.py")
_CHECK = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
          "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
          "import sys; sys.exit(0 if Gst.ElementFactory.find('rtph265pay') else 1)")


def rtsp_available() -> str | None:
    """None when the RTSP server can run here, else why not (for a skip)."""
    if not os.path.exists(SYSTEM_PYTHON) or shutil.which("ffmpeg") is None:
        return "needs /usr/bin/python3 and ffmpeg (scripts/setup_env.sh test installs them)"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", _CHECK], capture_output=True, timeout=30, check=False)
    if probe.returncode != 0:
        return "needs gir1.2-gst-rtsp-server-1.0, python3-gi and gstreamer1.0-plugins-* (scripts/setup_env.sh test)"
    return None


def encode_clip(source: Path, out: Path, codec: str, loops: int = 6, noise: int = 0) -> Path:
    """``source`` re-encoded (looped ``loops`` times, no audio) to ``codec``; ``noise`` damages
    the bitstream (ffmpeg's noise bitstream filter: about one byte in ``noise`` changed)."""
    encoder = ["-c:v", "libx265", "-x265-params", "log-level=error"] if codec == "h265" else ["-c:v", "libx264"]
    cmd = ["ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops - 1), "-i", str(source), "-an", *encoder,
           "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p"]
    if noise:
        cmd += ["-bsf:v", f"noise=amount={noise}"]
    subprocess.run([*cmd, str(out)], check=True, capture_output=True, timeout=300)
    return out


class RtspCamera:
    def __init__(self, media: Path, codec: str = "h264", port: int | None = None,
                 credentials: tuple[str, str] | None = None) -> None:
        self.media, self.codec = media, codec
        self.port = port or free_port()
        self.credentials = credentials
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, user: str | None = None, password: str | None = None, path: str = "/stream") -> str:
        auth = f"{user}:{password}@" if user is not None else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}{path}"

    def start(self) -> RtspCamera:
        args = [SYSTEM_PYTHON, str(SERVE), str(self.port), str(self.media), self.codec]
        if self.credentials:
            args += list(self.credentials)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if b"ready" not in line:
            self.stop()
            pytest.fail(f"RTSP server did not start on port {self.port}")
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)



