"""MQTT over TLS with a CA file and a client certificate, against a real Mosquitto TLS listener."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edge.config import ConfigError, load_settings
from edge.mqtt.client import make_client, probe_broker
from tests.conftest import DEVICE
from tests.support.context import make_ctx
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_hub import ROOT, Hub
from tests.support.procs import free_port

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(pki: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    pki.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=facepro-test-ca",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=pki)
    (pki / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, cn in (("server", "127.0.0.1"), ("client", DEVICE)):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", cwd=pki)
        extra = ["-extfile", "san.ext"] if name == "server" else []
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", f"{name}.crt", *extra, cwd=pki)


@pytest.fixture
def tls_broker(tmp_path: Path):
    pki = tmp_path / "pki"
    make_pki(pki)
    workdir = tmp_path / "broker"
    workdir.mkdir()
    broker = Mosquitto(workdir)
    tls_port = free_port()
    broker.conf.write_text(broker.conf.read_text() + "\n".join([
        f"listener {tls_port} 127.0.0.1",
        f"cafile {pki / 'ca.crt'}", f"certfile {pki / 'server.crt'}", f"keyfile {pki / 'server.key'}",
        "require_certificate true", "", "user root" if os.geteuid() == 0 else "",
    ]) + "\n")
    broker.start()
    broker.tls_port = tls_port  # type: ignore[attr-defined]
    broker.pki = pki  # type: ignore[attr-defined]
    yield broker
    broker.stop()


def test_tls_with_client_certificate(write_settings, tls_broker, publisher_factory):
    pki = tls_broker.pki
    tls = {"enabled": True, "ca_file": str(pki / "ca.crt"), "cert_file": str(pki / "client.crt"),
           "key_file": str(pki / "client.key"), "insecure": False}
    settings = load_settings(write_settings({
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": tls_broker.tls_port, "keepalive_s": 5, "tls": tls},
        "telemetry": {"interval_s": 1}, "web": {"enabled": False}}))
    hub = Hub(tls_broker.port).start()  # the hub listens on the plain loopback listener
    try:
        publisher = publisher_factory(make_ctx(settings))
        hub.wait_topic(f"{ROOT}/availability", payload="online")
        assert publisher.status()["broker"] == f"mqtts://127.0.0.1:{tls_broker.tls_port}"
    finally:
        hub.stop()
    assert probe_broker(settings, DEVICE, timeout_s=5)["ok"] is True

    without_cert = load_settings(write_settings({"mqtt": {
        "enabled": True, "host": "127.0.0.1", "port": tls_broker.tls_port,
        "tls": {**tls, "cert_file": None, "key_file": None}}}, name="nocert.json"))
    result = probe_broker(without_cert, DEVICE, timeout_s=3)
    assert result["ok"] is False and f"127.0.0.1:{tls_broker.tls_port}" in result["detail"], result


def test_unreadable_tls_file_is_a_clear_settings_error(write_settings, tmp_path):
    settings = load_settings(write_settings({"mqtt": {
        "enabled": True, "tls": {"enabled": True, "ca_file": str(tmp_path / "missing-ca.crt")}}}))
    with pytest.raises(ConfigError, match=r"mqtt\.tls\.ca_file: cannot read .*missing-ca\.crt"):
        make_client(settings, DEVICE)
    result = probe_broker(settings, DEVICE, timeout_s=1)
    assert result["ok"] is False and "mqtt.tls.ca_file" in result["detail"]
