"""Camera passwords never shown: not in the log, /api/status, the dashboard, MQTT, doctor,
``config show`` or ``export settings``; separate username/password_file work against a real
RTSP camera that asks for credentials, and each connection error is named with its fix."""
from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from edge import secrets
from edge.config import ConfigError, load_settings
from edge.pipeline.camera_url import CredentialError, open_url, read_password_file
from tests.conftest import CLIP
from tests.support.camera_run import WatchedCamera
from tests.support.cli import run_cli
from tests.support.mqtt_hub import Hub
from tests.support.procs import free_port
from tests.support.rtsp import RtspCamera, encode_clip, rtsp_available
from tests.support.service import start_service, stop_process, wait_for_line
from tests.support.waiting import wait_until

PASSWORD = "S3cret-Pw9"
WRONG = "Wr0ng-Pw7"
needs_rtsp = pytest.mark.skipif(bool(rtsp_available()), reason=str(rtsp_available()))


@pytest.mark.parametrize(("text", "masked"), [
    ("rtsp://admin:S3cret@10.0.0.5:554/Streaming/101", "rtsp://admin:***@10.0.0.5:554/Streaming/101"),
    ("open rtsp://u:p%40ss@cam/x failed; retry http://v:w@h/", "open rtsp://u:***@cam/x failed; retry http://v:***@h/"),
    ("'rtsps://admin:a:b@host/s'", "'rtsps://admin:***@host/s'"),
    ("rtsp://admin@cam/stream", "rtsp://admin@cam/stream"),           # no password: nothing to hide
    ("rtsp://cam/path?user=x", "rtsp://cam/path?user=x"),
    ("mail me at a:b@c", "mail me at a:b@c"),                         # not a URL
    ("rtsp://admin:Admin@123@10.0.0.5/s", "rtsp://admin:***@10.0.0.5/s"),  # a raw '@' in the password
    ("rtsp://admin:abc/def@cam/s x", "rtsp://admin:***@cam/s x"),   # a raw '/'
    ('{"source": "rtsp://a:p@w@h/s", "to": "x@y"}', '{"source": "rtsp://a:***@h/s", "to": "x@y"}'),
    ("rtsp://cam/path?x=a:b@c", "rtsp://cam/path?x=a:b@c"),           # no user info before the path
])
def test_mask_url(text: str, masked: str) -> None:
    assert secrets.mask_url(text) == masked
    assert secrets.redact(text) == masked


def test_a_password_with_a_raw_at_sign_is_registered_whole() -> None:
    secrets.register_url("rtsp://admin:Admin@123@10.0.0.5/s")
    assert secrets.redact("login with Admin@123 failed") == "login with *** failed"


def test_separate_credentials_build_the_url_and_are_registered(tmp_path: Path) -> None:
    pw_file = tmp_path / "cam.pw"
    pw_file.write_text("p@ss word/1\n")
    url = open_url({"name": "a", "source": "rtsp://10.0.0.5/s", "username": "ad min", "password_file": str(pw_file)})
    assert url == "rtsp://ad%20min:p%40ss%20word%2F1@10.0.0.5/s"
    assert "p@ss word/1" not in secrets.redact("the password is p@ss word/1")
    assert open_url({"name": "b", "source": "rtsp://old:x@h/s", "password": "n3w"}) == "rtsp://old:n3w@h/s"
    big = tmp_path / "big.pw"
    big.write_bytes(b"x" * 5000)
    with pytest.raises(CredentialError, match="big.pw: larger than 4096 bytes"):
        read_password_file(big)
    with pytest.raises(CredentialError, match="nope.pw: file not found"):
        read_password_file(tmp_path / "nope.pw")


def test_credentials_only_with_a_url_and_one_password(write_settings) -> None:
    with pytest.raises(ConfigError, match=r"cameras\[0\]: password only apply to a URL source"):
        load_settings(write_settings({"cameras": [{"name": "a", "source": "/dev/video0", "password": "x"}]}))
    with pytest.raises(ConfigError, match=r"cameras\[0\]: set password or password_file, not both"):
        load_settings(write_settings({"cameras": [{"name": "a", "source": "rtsp://h/s", "password": "x",
                                                   "password_file": "/etc/x"}]}))


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory):
    if rtsp_available():
        pytest.skip(str(rtsp_available()))
    media = encode_clip(CLIP, tmp_path_factory.mktemp("rtsp") / "clip.mp4", "h264", loops=3)
    server = RtspCamera(media, credentials=("admin", PASSWORD)).start()
    yield server
    server.stop()


@pytest.fixture
def full_backlog():
    """A port whose accept queue is full and never drained: a connect's SYN is dropped and the
    connection times out, as with a camera whose address a firewall drops."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    queued = []
    for _ in range(3):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", port))
        queued.append(client)
    time.sleep(0.2)
    yield port
    for client in queued:
        client.close()
    server.close()


@needs_rtsp
def test_each_connection_error_is_named_with_its_fix(camera: RtspCamera, full_backlog: int) -> None:
    cases = {
        "unauthorized": camera.url("admin", WRONG),
        "not_found": camera.url("admin", PASSWORD, path="/nope"),
        "refused": f"rtsp://admin:{PASSWORD}@127.0.0.1:{free_port()}/stream",
        "unknown_host": f"rtsp://admin:{PASSWORD}@camera.invalid/stream",
        "unknown_scheme": f"rstp://admin:{PASSWORD}@127.0.0.1:{camera.port}/stream",
        "tls": f"rtsps://admin:{PASSWORD}@127.0.0.1:{camera.port}/stream",  # a camera without TLS
        "timeout": f"rtsp://admin:{PASSWORD}@127.0.0.1:{full_backlog}/stream",
    }
    fixes = {"unauthorized": "user name and password", "not_found": "stream path", "refused": "port",
             "unknown_host": "host name", "unknown_scheme": "typo", "tls": "certificate",
             "timeout": "powered and reachable"}
    for code, url in cases.items():
        with WatchedCamera({"name": code, "source": url, "stall_timeout_s": 3.0}) as cam:
            status = wait_until(lambda: cam.status if cam.status["error_code"] else None, 20, f"{code} named")
        assert status["error_code"] == code and fixes[code] in status["error_fix"], status
        assert PASSWORD not in status["error"] and WRONG not in status["error"], status
    with WatchedCamera({"name": "h264ok", "source": camera.url("admin", PASSWORD), "stall_timeout_s": 3.0}) as cam:
        wait_until(lambda: cam.status["online"], 20, "right password online")


@needs_rtsp
def test_an_h265_camera_with_credentials_through_ffmpeg(tmp_path: Path) -> None:
    media = encode_clip(CLIP, tmp_path / "clip265.mp4", "h265", loops=2)
    server = RtspCamera(media, "h265", credentials=("admin", PASSWORD)).start()
    try:
        camera = {"name": "h265", "source": server.url(), "username": "admin", "password": PASSWORD,
                  "stall_timeout_s": 3.0}
        with WatchedCamera(camera) as cam:
            wait_until(lambda: cam.status["online"] and cam.status["frames_captured"] >= 20, 30, "H.265 frames")
            assert cam.status["error"] is None
    finally:
        server.stop()


@needs_rtsp
def test_passwords_shown_nowhere(camera: RtspCamera, tmp_path: Path, write_settings, mosquitto) -> None:
    pw_file = tmp_path / "front.pw"
    pw_file.write_text(PASSWORD + "\n")
    web_port = free_port()
    config = write_settings({
        "cameras": [
            {"name": "front", "source": camera.url(), "username": "admin", "password_file": str(pw_file)},
            {"name": "side", "source": camera.url("admin", WRONG), "stall_timeout_s": 3.0},
            {"name": "back", "source": camera.url("admin", PASSWORD), "enabled": False},
        ],
        "paths": {"models_dir": str(tmp_path / "no-models")},   # recognition off: cameras only
        "web": {"host": "127.0.0.1", "port": web_port, "public_read": True},
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": mosquitto.port},
        "telemetry": {"interval_s": 1}, "backup": {"schedule": None},
    })
    hub = Hub(mosquitto.port).start()
    proc = start_service(config)
    seen: list[str] = []
    try:
        seen += wait_for_line(proc, "camera front online", timeout=60)
        if not any("401 Unauthorized" in line for line in seen):
            seen += wait_for_line(proc, "401 Unauthorized", timeout=30)
        base = f"http://127.0.0.1:{web_port}"
        status = wait_until(lambda: _status_with_error(base), 30, "side's error in /api/status")
        dashboard = urllib.request.urlopen(base + "/", timeout=10).read().decode()
        hub.wait_until(lambda: any("unauthorized" in m.text for m in hub.messages), 20, "camera error on MQTT")
        mqtt_text = "\n".join(m.topic + " " + m.text for m in hub.messages)
    finally:
        log = "".join(seen) + stop_process(proc)
        hub.stop()
    doctor = run_cli(config, "doctor", "--json", "--timeout", "5", timeout=120)
    shown = run_cli(config, "config", "show")
    export = tmp_path / "export.json"
    assert run_cli(config, "export", "settings", str(export)).returncode == 0
    side = next(c for c in status["cameras"]["data"] if c["name"] == "side")
    assert side["error_code"] == "unauthorized" and "rtsp://admin:***@127.0.0.1" in side["error"]
    assert "camera side" in doctor.stdout and "401" in doctor.stdout
    assert "rtsp://admin:***@" in shown.stdout and '"password_file"' in shown.stdout
    places = {"log": log, "api/status": json.dumps(status), "dashboard": dashboard, "mqtt": mqtt_text,
              "doctor": doctor.stdout + doctor.stderr, "config show": shown.stdout + shown.stderr,
              "export settings": export.read_text()}
    for where, text in places.items():
        assert PASSWORD not in text and WRONG not in text, where


def _status_with_error(base: str) -> dict | None:
    status = json.loads(urllib.request.urlopen(base + "/api/status", timeout=10).read())
    cams = (status.get("cameras") or {}).get("data") or []
    return status if any(c.get("error_code") == "unauthorized" for c in cams) else None
