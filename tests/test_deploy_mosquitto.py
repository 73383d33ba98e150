"""The example broker set-up in deploy/mosquitto/ (password file + per-device ACL) on a real
Mosquitto: a device reaches only its own topics, anonymous clients none."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO
from tests.support.procs import free_port, wait_for_port

CONF = REPO / "deploy" / "mosquitto" / "facepro.conf"
ACL = REPO / "deploy" / "mosquitto" / "facepro.acl"
USERS = {"facepro-aaaaaaaaaaaa": "pw-a", "facepro-bbbbbbbbbbbb": "pw-b", "homeassistant": "pw-ha"}

pytestmark = pytest.mark.skipif(shutil.which("mosquitto_passwd") is None or shutil.which("mosquitto_sub") is None,
                                reason="mosquitto and mosquitto-clients are not installed")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("mosquitto-example")
    passwd = work / "passwd"
    for user, password in USERS.items():
        subprocess.run(["mosquitto_passwd", "-b", *([] if passwd.exists() else ["-c"]), str(passwd), user, password],
                       check=True, capture_output=True)
    port = free_port()
    # The example as shipped, with its paths pointed here and one plain loopback listener
    # instead of the TLS one (no certificates in a test).
    lines = []
    for line in CONF.read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key in ("listener", "certfile", "keyfile", "cafile", "persistence", "persistence_location"):
            continue
        if key == "password_file":
            line = f"password_file {passwd}"
        elif key == "acl_file":
            line = f"acl_file {ACL}"
        lines.append(line)
    text = "\n".join(lines)
    assert "allow_anonymous false" in text and f"password_file {passwd}" in text and f"acl_file {ACL}" in text
    conf = work / "mosquitto.conf"
    # user root: a root-started broker would otherwise drop to "mosquitto", who cannot read tmp_path
    conf.write_text(text + f"\nlistener {port} 127.0.0.1\npersistence false\nuser root\n")
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, timeout=10)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def pub(port: int, user: str | None, topic: str, message: str) -> subprocess.CompletedProcess[str]:
    auth = ["-u", user, "-P", USERS[user]] if user else []
    return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), *auth, "-q", "1", "-r", "-t", topic,
                           "-m", message], capture_output=True, text=True, timeout=15)


def retained(port: int, user: str, topic: str) -> str | None:
    proc = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-u", user, "-P", USERS[user],
                           "-t", topic, "-C", "1", "-W", "1"], capture_output=True, text=True, timeout=15)
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout else None


A, B = "facepro-aaaaaaaaaaaa", "facepro-bbbbbbbbbbbb"


def test_each_device_writes_only_its_own_topics(broker: int) -> None:
    assert pub(broker, A, f"facepro/{A}/availability", "online").returncode == 0
    assert retained(broker, "homeassistant", f"facepro/{A}/availability") == "online"
    # A writing under B's topics is dropped by the ACL (the broker accepts and discards it)
    pub(broker, A, f"facepro/{B}/availability", "spoofed")
    assert retained(broker, "homeassistant", f"facepro/{B}/availability") is None
    assert pub(broker, A, f"homeassistant/device/{A}/config", "{}").returncode == 0
    assert retained(broker, "homeassistant", f"homeassistant/device/{A}/config") == "{}"
    pub(broker, A, f"homeassistant/device/{B}/config", "{}")
    assert retained(broker, "homeassistant", f"homeassistant/device/{B}/config") is None
    # its cameras' devices, people's entities and device triggers, and only its own
    for topic in (f"homeassistant/device/{A}/door/config", f"homeassistant/binary_sensor/{A}/ann_presence/config",
                  f"homeassistant/device_automation/{A}/unknown_face/config"):
        assert pub(broker, A, topic, "{}").returncode == 0
        assert retained(broker, "homeassistant", topic) == "{}"
        spoof = topic.replace(A, B)
        pub(broker, A, spoof, "{}")
        assert retained(broker, "homeassistant", spoof) is None
    # and B cannot read A's topics
    assert retained(broker, B, f"facepro/{A}/availability") is None


def test_home_assistant_may_command_a_device(broker: int) -> None:
    assert pub(broker, "homeassistant", f"facepro/{A}/command/backup", "{}").returncode == 0
    assert retained(broker, A, f"facepro/{A}/command/backup") == "{}"


def test_anonymous_and_wrong_password_are_refused(broker: int) -> None:
    assert pub(broker, None, f"facepro/{A}/availability", "x").returncode != 0
    wrong = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker), "-u", A, "-P", "nope", "-t",
                            f"facepro/{A}/x", "-m", "x"], capture_output=True, text=True, timeout=15)
    assert wrong.returncode != 0


def test_the_device_publishes_all_its_discovery_under_the_acl(broker: int, write_settings, publisher_factory) -> None:
    """The real publisher logged in as device A: every discovery config and retained state it
    writes passes the shipped ACL (Home Assistant's login sees them)."""
    import json
    import time

    from edge.config import load_settings
    from edge.mqtt.entities_person import person_config_topics
    from edge.mqtt.topics import Topics
    from tests.support.context import make_ctx
    from tests.support.db import add_person

    settings = load_settings(write_settings({
        "device": {"id": A, "name": "A"},
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": broker, "keepalive_s": 5, "username": A,
                 "password": USERS[A]},
        "telemetry": {"interval_s": 1}, "web": {"enabled": False}}))
    ctx = make_ctx(settings, device_id=A)
    add_person(ctx.db_path, "Ann")

    class Door:
        def cameras_status(self) -> list[dict]:
            return [{"name": "door", "online": True, "fps_processed": 5.0}]

    ctx.pipeline = Door()  # type: ignore[assignment]
    publisher_factory(ctx)
    topics = Topics("facepro", A, "homeassistant")
    wanted = [topics.discovery_config, topics.camera_discovery_config("door"), *person_config_topics(topics, "Ann"),
              topics.entity_config("device_automation", "unknown_face"), topics.person("Ann"),
              topics.camera_recognition("door")]
    deadline = time.monotonic() + 15
    missing = wanted
    while missing and time.monotonic() < deadline:
        missing = [t for t in missing if retained(broker, "homeassistant", t) is None]
        time.sleep(0.2)
    assert missing == []
    assert json.loads(retained(broker, "homeassistant", topics.camera_discovery_config("door")) or "{}")["cmps"]
