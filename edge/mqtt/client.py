"""paho-mqtt client construction from ``mqtt.*`` settings, and the broker probe for ``doctor``.

This package is the only one that imports paho. Credentials go to paho and nowhere else:
they are never logged, and paho's own logger is never enabled.
"""
from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import ConfigError, Settings
from edge.mqtt.topics import Topics

log = logging.getLogger(__name__)

# What the rest of the package needs of paho, so that paho is imported here only.
Client = mqtt.Client
MQTTMessage = mqtt.MQTTMessage
MQTTMessageInfo = mqtt.MQTTMessageInfo
MQTT_ERR_SUCCESS = mqtt.MQTT_ERR_SUCCESS
MQTT_ERR_NO_CONN = mqtt.MQTT_ERR_NO_CONN
error_string = mqtt.error_string

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 120


def client_id_for(device_id: str) -> str:
    """``facepro-<device_id>``; a device id that already starts with ``facepro-`` is used as is."""
    return device_id if device_id.startswith("facepro-") else f"facepro-{device_id}"


def broker_label(settings: Settings) -> str:
    scheme = "mqtts" if settings["mqtt.tls.enabled"] else "mqtt"
    return f"{scheme}://{settings['mqtt.host']}:{settings['mqtt.port']}"


def topics_for(settings: Settings, device_id: str) -> Topics:
    for key in ("mqtt.base_topic", "mqtt.discovery_prefix"):
        value = settings[key]
        if not value.strip("/") or "+" in value or "#" in value:
            raise ConfigError(f"{key}: {value!r} must be a non-empty topic without the wildcards '+' and '#'")
    return Topics(settings["mqtt.base_topic"], device_id, settings["mqtt.discovery_prefix"])


def make_client(settings: Settings, device_id: str, *, client_id: str | None = None,
                will: bool = True) -> mqtt.Client:
    """A configured (not yet connected) client: protocol, credentials, TLS, last will, backoff.

    Raises :class:`ConfigError` naming the key when a TLS file cannot be loaded.
    """
    protocol = mqtt.MQTTv5 if settings["mqtt.protocol"] == "5" else mqtt.MQTTv311
    kwargs: dict[str, Any] = {"client_id": client_id or client_id_for(device_id), "protocol": protocol}
    if protocol == mqtt.MQTTv311:
        kwargs["clean_session"] = True
    client = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)
    if settings["mqtt.username"] is not None:
        client.username_pw_set(settings["mqtt.username"], settings["mqtt.password"])
    tls = settings["mqtt.tls"]
    if tls["enabled"]:
        for key in ("ca_file", "cert_file", "key_file"):
            if tls[key] is not None:
                try:
                    with open(tls[key], "rb"):
                        pass
                except OSError as exc:
                    raise ConfigError(f"mqtt.tls.{key}: cannot read {tls[key]}: {exc.strerror}") from None
        if tls["key_file"] and not tls["cert_file"]:
            raise ConfigError("mqtt.tls.key_file: set without mqtt.tls.cert_file")
        try:
            client.tls_set(ca_certs=tls["ca_file"], certfile=tls["cert_file"], keyfile=tls["key_file"],
                           cert_reqs=ssl.CERT_REQUIRED)
        except (ssl.SSLError, ValueError, OSError) as exc:
            raise ConfigError(f"mqtt.tls: cannot load the certificate files: {exc}") from None
        if tls["insecure"]:
            client.tls_insecure_set(True)
    if will:
        client.will_set(topics_for(settings, device_id).availability, "offline", qos=1, retain=True)
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
    return client


def reason_text(reason_code: Any) -> str:
    """A reason code (paho ReasonCode or int) as words."""
    if hasattr(reason_code, "getName"):
        return str(reason_code.getName())
    try:
        return mqtt.connack_string(int(reason_code))
    except (TypeError, ValueError):
        return str(reason_code)


def is_failure(reason_code: Any) -> bool:
    if hasattr(reason_code, "is_failure"):
        return bool(reason_code.is_failure)
    try:
        return int(reason_code) != 0
    except (TypeError, ValueError):
        return True


def probe_broker(settings: Settings, device_id: str, timeout_s: float = 5) -> dict[str, Any]:
    """Connect, publish a QoS 1 probe message under the device's topics, disconnect.

    Returns ``{ok, detail}``; never raises. The probe uses its own client id (so a running
    service is not disconnected) and no last will, and publishes nothing retained (so it
    never claims the device is online when the service is not running).
    """
    label = broker_label(settings)
    try:
        client = make_client(settings, device_id, client_id=client_id_for(device_id) + "-probe", will=False)
    except ConfigError as exc:
        return {"ok": False, "detail": str(exc)}
    except Exception as exc:  # a paho/ssl surprise must not break doctor
        return {"ok": False, "detail": f"{label}: cannot set up the client: {exc}"}

    connected = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(_c: mqtt.Client, _u: Any, _flags: Any, reason_code: Any, _p: Any) -> None:
        outcome["reason"] = reason_code
        connected.set()

    client.on_connect = on_connect
    client.connect_timeout = float(timeout_s)
    deadline = time.monotonic() + timeout_s
    try:
        client.connect(settings["mqtt.host"], settings["mqtt.port"], keepalive=max(5, int(timeout_s) * 2))
    except Exception as exc:
        return {"ok": False, "detail": f"{label}: cannot connect: {exc}"}
    client.loop_start()
    try:
        if not connected.wait(max(0.1, deadline - time.monotonic())):
            return {"ok": False, "detail": f"{label}: no CONNACK within {timeout_s:g} s"}
        if is_failure(outcome["reason"]):
            return {"ok": False, "detail": f"{label}: connection refused: {reason_text(outcome['reason'])}"}
        topic = topics_for(settings, device_id).probe
        info = client.publish(topic, json.dumps({"probe": time.time()}), qos=1, retain=False)
        try:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        except (RuntimeError, ValueError) as exc:
            return {"ok": False, "detail": f"{label}: publish to {topic} failed: {exc}"}
        if not info.is_published():
            return {"ok": False, "detail": f"{label}: no PUBACK for {topic} within {timeout_s:g} s"}
        return {"ok": True, "detail": f"{label}: connected as {client_id_for(device_id)}-probe, "
                                      f"published to {topic}"}
    except Exception as exc:
        return {"ok": False, "detail": f"{label}: {exc}"}
    finally:
        try:
            client.disconnect()
        except Exception:
            pass
        client.loop_stop()
