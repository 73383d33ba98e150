"""The rate cap and motion gate in a running pipeline, and their figures where a technician
and a hub look: /api/status, /metrics, the status page, the MQTT motion binary sensor."""
from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from edge.config import load_settings
from edge.pipeline.gate import EMPTY_AFTER
from edge.pipeline.service import Pipeline
from edge.web.app import create_app
from tests.conftest import CLIP, DEVICE
from tests.support.context import make_ctx, pipeline_with_telemetry
from tests.support.mjpeg import MjpegCamera
from tests.support.mqtt_hub import ROOT, Hub
from tests.support.scenes import camera_frame, still_background
from tests.support.waiting import wait_until


def still_jpegs(count: int = 8) -> list[bytes]:
    rng = np.random.default_rng(2)
    scene = still_background()
    return [cv2.imencode(".jpg", camera_frame(scene, rng, quality=0), [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
            for _ in range(count)]


def status_of(pipeline: Pipeline, name: str) -> dict[str, Any]:
    return next(s for s in pipeline.cameras_status() if s["name"] == name)


def test_rate_cap_and_gate_figures_in_status_metrics_and_page(write_settings) -> None:
    porch = MjpegCamera(still_jpegs(), fps=15).start()
    settings = load_settings(write_settings({
        "cameras": [{"name": "fast", "source": str(CLIP), "loop": True, "rate": "max", "motion": False,
                     "detect_fps": 4},
                    {"name": "porch", "source": porch.url}],
        "web": {"host": "127.0.0.1", "port": 0, "public_read": True},
        "telemetry": {"history_retention_days": 0}}), env={})
    ctx, pipeline, telemetry = pipeline_with_telemetry(settings, persist=False)
    pipeline.start()
    try:
        # the porch camera's warm-up is over (10 samples at 5 fps) and the fast one is running;
        # the detector saw EMPTY_AFTER empty porch frames (until then the gate keeps looking every
        # keepalive_s, as if a face were there) and the frames the gate let through are all done
        # (a loaded worker may still have them queued)
        wait_until(lambda: status_of(pipeline, "porch")["frames_decoded"] >= 15
                   and status_of(pipeline, "porch")["frames_detected"] >= EMPTY_AFTER
                   and status_of(pipeline, "fast")["frames_detected"] >= 2, 40, "both cameras running")
        assert pipeline.loop is not None
        porch_feed = pipeline.loop.feed("porch")
        assert porch_feed is not None and porch_feed.ring.wait_idle(10), "porch frames still queued"
        before = status_of(pipeline, "fast"), status_of(pipeline, "porch"), time.monotonic()
        time.sleep(3.0)
        fast, porch_status, t1 = status_of(pipeline, "fast"), status_of(pipeline, "porch"), time.monotonic()
        telemetry.sample()
        client = create_app(ctx).test_client()
        api = client.get("/api/status").get_json()
        metrics = client.get("/metrics").get_data(as_text=True)
        page = client.get("/").get_data(as_text=True)
    finally:
        pipeline.stop()
        porch.stop()

    # the cap: at most 4 frames a second reach the detector, whatever the source delivers
    elapsed = t1 - before[2]
    detected = fast["frames_detected"] - before[0]["frames_detected"]
    assert 0 < detected <= 4 * elapsed + 2, (before[0], fast)
    assert fast["frames_captured"] - before[0]["frames_captured"] > 3 * detected  # decoded, never converted
    decoded = fast["frames_decoded"] - before[0]["frames_decoded"]
    assert detected <= decoded <= detected + 3  # converted only for the detector (a few in flight)
    assert fast["motion_gating"] is False and fast["motion"] is None and fast["detect_fps"] == 4
    # the still porch: gated, no motion, the detector left alone after its warm-up
    assert porch_status["motion_gating"] is True and porch_status["motion"] is False
    assert porch_status["motion_fraction"] < 0.01
    assert porch_status["frames_detected"] - before[1]["frames_detected"] == 0
    assert porch_status["frames_decoded"] > before[1]["frames_decoded"]
    assert porch_status["detect_share"] < 0.5

    cams = {c["name"]: c for c in api["cameras"]["data"]}
    for key in ("fps_capture", "fps_decoded", "fps_detected", "detect_share", "motion", "motion_fraction"):
        assert key in cams["porch"] and key in cams["fast"], key
    assert cams["porch"]["motion"] is False and cams["fast"]["fps_capture"] > cams["fast"]["fps_detected"]

    families = {f.name: f for f in text_string_to_metric_families(metrics)}

    def sample(name: str, camera: str) -> float | None:
        return next((s.value for s in families[name].samples if s.labels.get("camera") == camera), None)

    assert sample("facepro_camera_motion", "porch") == 0.0
    assert sample("facepro_camera_motion", "fast") is None  # not gated: left out, not 0
    assert sample("facepro_camera_detect_limit_frames_per_second", "fast") == 4.0
    decoded_fps = sample("facepro_camera_decoded_frames_per_second", "porch")
    assert decoded_fps is not None and 0 < decoded_fps <= 7
    assert sample("facepro_camera_detected_frames_per_second", "fast") is not None
    share = sample("facepro_camera_detected_frames_ratio", "porch")
    assert share is not None and 0 < share < 0.5
    assert sample("facepro_camera_motion_ratio", "porch") is not None

    assert "decoded fps" in page and "to detector" in page
    assert "not gated" in page and "still (" in page


class GatedPipeline:
    """The pipeline's status interface with one gated camera (door) and one not gated (yard)."""

    def __init__(self) -> None:
        self.motion = False

    def cameras_status(self) -> list[dict[str, Any]]:
        return [{"name": "door", "online": True, "fps_processed": 0.5, "motion_gating": True, "motion": self.motion,
                 "motion_fraction": 0.0},
                {"name": "yard", "online": True, "fps_processed": 5.0, "motion_gating": False, "motion": None}]


def test_motion_binary_sensor_for_home_assistant(write_settings, mosquitto, publisher_factory) -> None:
    hub = Hub(mosquitto.port).start()
    try:
        ctx = make_ctx(load_settings(write_settings({
            "mqtt": {"enabled": True, "host": "127.0.0.1", "port": mosquitto.port, "keepalive_s": 5},
            "telemetry": {"interval_s": 1}, "web": {"enabled": False}})))
        pipeline = GatedPipeline()
        ctx.pipeline = pipeline
        publisher_factory(ctx)
        # on each camera's own device
        config = hub.wait_topic(f"homeassistant/device/{DEVICE}/door/config").json()
        sensor = config["cmps"]["motion"]
        assert sensor["p"] == "binary_sensor" and sensor["device_class"] == "motion"
        assert sensor["state_topic"] == f"{ROOT}/camera/door/motion" and sensor["unique_id"] == "test_device_door_motion"
        yard = hub.wait_topic(f"homeassistant/device/{DEVICE}/yard/config").json()
        assert "motion" not in yard["cmps"]  # not gated: no motion sensor
        appliance = hub.wait_topic(f"homeassistant/device/{DEVICE}/config").json()
        assert not [key for key in appliance["cmps"] if "motion" in key]
        assert hub.wait_topic(f"{ROOT}/camera/door/motion").text == "OFF"
        t0 = time.monotonic()
        pipeline.motion = True  # as the gate reports it on the bus, before the next telemetry tick
        ctx.bus.publish("motion", {"name": "door", "motion": True, "fraction": 0.04})
        hub.wait_topic(f"{ROOT}/camera/door/motion", payload="ON", after=t0)
        late = Hub(mosquitto.port).start()  # a hub that subscribes later gets the retained state
        try:
            state = late.wait_topic(f"{ROOT}/camera/door/motion")
            assert state.text == "ON" and state.retain
        finally:
            late.stop()
    finally:
        hub.stop()
