"""The machine API on two real running services (``facepro run``): scripts/enroll_fleet.py
enrols one person on both, Prometheus's ``promtool check metrics`` reads /metrics fetched with
a token, ``latest.jpg`` comes from a real camera, and no token value reaches a log line, an
MQTT message (a real broker, everything under ``#`` captured) or a page."""
from __future__ import annotations

import http.cookiejar
import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from tests.conftest import CLIP, FACEPRO, MEDIA_DIR, MODELS_DIR, REPO, subprocess_env
from tests.support.cli import run_cli
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_hub import Hub
from tests.support.procs import free_port, wait_for_port

SCRIPT = REPO / "scripts" / "enroll_fleet.py"
PROMTOOL = shutil.which("promtool") or str(Path(sys.executable).parent / "promtool")


def get(url: str, token: str | None = None) -> tuple[int, bytes, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def start_device(tmp: Path, name: str, broker: Mosquitto, camera: bool) -> SimpleNamespace:
    data_dir, port = tmp / name / "data", free_port()
    settings = {
        "device": {"id": f"fleet-{name}", "name": f"Fleet {name}"},
        "paths": {"data_dir": str(data_dir), "models_dir": str(MODELS_DIR)},
        "cameras": [{"name": "stage", "source": str(CLIP), "loop": True}] if camera else [],
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": broker.port, "keepalive_s": 5},
        "backup": {"schedule": None, "targets": [{"name": "local", "type": "local", "path": str(tmp / name / "bk")}]},
        "web": {"host": "127.0.0.1", "port": port, "public_read": False},
    }
    path = tmp / name / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(settings))
    # Tokens are made before the service starts, with the CLI as an installer would.
    admin = run_cli(path, "web", "token", "create", "fleet", "--scope", "admin")
    read = run_cli(path, "web", "token", "create", "prometheus")
    assert admin.returncode == 0 and read.returncode == 0, admin.stderr + read.stderr
    log = tmp / name / "facepro.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*FACEPRO, "--config", str(path), "run"], stdout=out, stderr=subprocess.STDOUT,
                                env=subprocess_env(), cwd=REPO)
    return SimpleNamespace(name=name, base=f"http://127.0.0.1:{port}", port=port, proc=proc, log=log,
                           data_dir=data_dir, settings=path, admin=admin.stdout.strip(), read=read.stdout.strip())


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    tmp = tmp_path_factory.mktemp("fleet")
    (tmp / "broker").mkdir()
    broker = Mosquitto(tmp / "broker").start()
    hub = Hub(broker.port).start()
    devices = []
    try:
        devices = [start_device(tmp, "a", broker, camera=True), start_device(tmp, "b", broker, camera=False)]
        for device in devices:
            wait_for_port(device.port, timeout=90)
            deadline = time.monotonic() + 90
            while get(device.base + "/api/v1/people", device.read)[0] != 200:
                assert device.proc.poll() is None, device.log.read_text()
                assert time.monotonic() < deadline, device.log.read_text()[-3000:]
                time.sleep(0.3)
        yield SimpleNamespace(tmp=tmp, devices=devices, hub=hub, broker=broker)
    finally:
        for device in devices:
            stop(device.proc)
        hub.stop()
        broker.stop()


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=180,
                          cwd=REPO)


def faces(device: SimpleNamespace, name: str) -> int | None:
    status, body, _ = get(f"{device.base}/api/v1/people/{urllib.request.quote(name)}", device.read)
    return json.loads(body)["faces"] if status == 200 else None


def test_enroll_fleet_on_two_services(fleet: SimpleNamespace) -> None:
    a, b = fleet.devices
    (fleet.tmp / "b.token").write_text(b.admin + "\n")
    down = f"http://127.0.0.1:{free_port()}"
    devices = fleet.tmp / "devices.txt"
    devices.write_text(f"# the site\n{a.base}  {a.admin}\n{b.base}/ @b.token  # the back door\n{down} {a.admin}\n")
    photos = [str(MEDIA_DIR / "lin-manuel-miranda.png"), str(MEDIA_DIR / "lin-manuel-miranda.png")]
    run = run_script(str(devices), "Lin-Manuel Miranda", *photos)
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"OK    {a.base}  created: 2 face(s) added, 2 in all"
    assert lines[1] == f"OK    {b.base}  created: 2 face(s) added, 2 in all"
    assert lines[2].startswith(f"FAIL  {down}  unreachable: cannot reach the device")
    assert lines[3] == "Lin-Manuel Miranda: enrolled on 2 of 3 device(s)"
    assert faces(a, "Lin-Manuel Miranda") == 2 and faces(b, "Lin-Manuel Miranda") == 2

    # again, on the two that answer: the photos are added to the person each device knows
    devices.write_text(f"{a.base} {a.admin}\n{b.base} @b.token\n")
    run = run_script(str(devices), "Lin-Manuel Miranda", photos[0], "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert [(d["ok"], d["action"], d["faces"]) for d in report["devices"]] == [
        (True, "added to the existing person", 3)] * 2

    # a photo with two faces: every device refuses the whole upload, nothing changes
    run = run_script(str(devices), "Lin-Manuel Miranda", photos[0], str(MEDIA_DIR / "two_people.jpg"))
    assert run.returncode == 1
    assert run.stdout.count("photo_rejected: two_people.jpg: 2 faces found") == 2, run.stdout
    assert faces(a, "Lin-Manuel Miranda") == 3 and faces(b, "Lin-Manuel Miranda") == 3

    # a read token may not enrol
    devices.write_text(f"{a.base} {a.read}\n")
    run = run_script(str(devices), "Someone", photos[0])
    assert run.returncode == 1 and "insufficient_scope" in run.stdout
    assert faces(a, "Someone") is None
    assert not any(t in run.stdout + run.stderr for d in fleet.devices for t in (d.admin, d.read))


@pytest.mark.parametrize("content,message", [
    ("", "lists no device"), ("ftp://x 1\n", "is not an http:// or https:// URL"),
    ("http://u:p@x:1 t\n", "must not carry credentials"), ("http://x:1\n", "no token for http://x:1"),
    ("http://x:1 a b\n", "got 3 fields"), ("http://x:1 @missing.token\n", "cannot read token file"),
])
def test_enroll_fleet_refuses_bad_input_before_any_request(tmp_path: Path, content: str, message: str) -> None:
    devices = tmp_path / "devices.txt"
    devices.write_text(content)
    run = run_script(str(devices), "Ann", str(MEDIA_DIR / "obama.jpg"))
    assert run.returncode == 2 and message in run.stderr, run.stderr


def test_enroll_fleet_refuses_missing_files_and_non_images(tmp_path: Path) -> None:
    run = run_script(str(tmp_path / "none.txt"), "Ann", str(MEDIA_DIR / "obama.jpg"))
    assert run.returncode == 2 and "cannot read the devices file" in run.stderr
    devices = tmp_path / "devices.txt"
    devices.write_text("http://127.0.0.1:1 t\n")
    run = run_script(str(devices), "Ann", str(MEDIA_DIR / "README.md"), str(MEDIA_DIR / "obama.jpg"))
    assert run.returncode == 2 and "README.md: not a JPEG or PNG image" in run.stderr


@pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="needs promtool (scripts/setup_env.sh test unpacks it)")
def test_promtool_checks_metrics_fetched_with_a_read_token(fleet: SimpleNamespace) -> None:
    device = fleet.devices[0]
    assert get(device.base + "/metrics")[0] == 401
    status, body, headers = get(device.base + "/metrics", device.read)
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert b"facepro_" in body
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=60)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    broken = subprocess.run([PROMTOOL, "check", "metrics"], input=body + b"facepro bad line{\n",
                            capture_output=True, timeout=60)
    assert broken.returncode != 0  # promtool does find faults


def test_latest_jpg_from_a_real_camera(fleet: SimpleNamespace) -> None:
    device = fleet.devices[0]
    capture = cv2.VideoCapture(str(CLIP))
    ok, first = capture.read()
    capture.release()
    assert ok
    deadline = time.monotonic() + 30
    while (answer := get(device.base + "/api/v1/cameras/stage/latest.jpg", device.read))[0] != 200:
        assert answer[0] in (503, 429) and time.monotonic() < deadline, answer[:2]
        time.sleep(0.6)
    frame = cv2.imdecode(np.frombuffer(answer[1], np.uint8), cv2.IMREAD_COLOR)
    assert frame.shape == first.shape and answer[2]["X-Captured-At"].endswith("Z")
    cameras = json.loads(get(device.base + "/api/v1/cameras", device.read)[1])["cameras"]
    assert cameras[0]["name"] == "stage" and cameras[0]["online"] is True


def test_token_values_never_reach_logs_pages_or_mqtt(fleet: SimpleNamespace) -> None:
    a = fleet.devices[0]
    secrets = [t for d in fleet.devices for t in (d.admin, d.read)]
    # use every token, also where it is refused
    for device in fleet.devices:
        assert get(device.base + "/api/v1/status", device.read)[0] == 200
        assert get(device.base + "/api/v1/backups", device.admin)[0] == 200
        assert get(device.base + "/api/v1/status", device.admin + "x")[0] == 401
    status, body, _ = get(a.base + f"/api/v1/status?access_token={a.read}")
    assert status == 400 and a.read.encode() not in body
    # the technician's pages, logged in
    password = (a.data_dir / "technician-password.txt").read_text().strip()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    login_page = opener.open(a.base + "/login", timeout=20).read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)  # type: ignore[union-attr]
    form = urllib.parse.urlencode({"password": password, "csrf_token": csrf}).encode()
    opener.open(urllib.request.Request(a.base + "/login", data=form), timeout=20).read()
    pages = [opener.open(a.base + path, timeout=20).read() for path in
             ("/", "/events", "/people", "/backups", "/api/status", "/metrics", "/api/v1/openapi.json")]
    assert b"Fleet a" in pages[0]
    time.sleep(1.0)  # let the last MQTT messages arrive
    messages = [m.topic.encode() + b" " + m.payload for m in fleet.hub.messages]
    assert len(messages) > 5  # the devices did publish (availability, discovery, states)
    logs = {d.name: d.log.read_text(errors="replace") for d in fleet.devices}
    for secret in secrets:
        for where, blob in [("page", p) for p in pages] + [("mqtt", m) for m in messages]:
            assert secret.encode() not in blob and secret[4:20].encode() not in blob, where
        for name, text in logs.items():
            assert secret not in text and secret[4:20] not in text, name
    # ...but the tokens are logged by name
    assert "api: token 'prometheus' (read) GET /api/v1/" in logs["a"]
    assert "api: token 'fleet' (admin) POST /api/v1/people" in logs["b"]
    assert "api: token 'prometheus' (read) may not POST /api/v1/people" in logs["a"]
    assert "api: refused an unknown or malformed token" in logs["a"]
    assert "token in the URL" in logs["a"]
