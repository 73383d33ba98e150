"""/metrics text: parses with prometheus_client's parser, names carry units, labels are bounded."""
from __future__ import annotations

import re

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from edge.config import load_settings
from edge.context import ServiceContext
from edge.telemetry.component import Telemetry
from edge.telemetry.prometheus import render

UNIT_SUFFIXES = ("_seconds", "_bytes", "_celsius", "_ratio", "_watts", "_total", "_per_second")
UNITLESS = {"facepro_camera_online", "facepro_process_threads", "facepro_process_open_fds", "facepro_system_load1",
            "facepro_gpu_available", "facepro_alerts_active", "facepro_mqtt_connected", "facepro_camera_motion"}


class Cameras:
    """The pipeline's ``cameras_status()``/``models_info()`` interface, as the pipeline reports it."""

    def cameras_status(self) -> list[dict]:
        return [
            {"name": "door", "online": True, "fps_capture": 25.0, "fps_processed": 11.5, "frames_captured": 900,
             "frames_processed": 400, "frames_dropped": 500, "reconnects": 1, "last_frame_at": "2026-11-26T10:00:00Z",
             "source_kind": "rtsp"},
            {"name": "yard", "online": False, "fps_capture": 0.0, "fps_processed": 0.0, "frames_captured": 10,
             "frames_processed": 10, "frames_dropped": 0, "reconnects": 7, "last_frame_at": None,
             "source_kind": "usb"},
        ]

    def models_info(self) -> dict:
        return {"models_dir": "/models", "detector": {"file": "scrfd.onnx", "provider": "CPUExecutionProvider",
                                                      "input_shape": [1, 3, 640, 640]},
                "embedder": {"file": "mbf.onnx", "provider": "CPUExecutionProvider", "dim": 128}}


@pytest.fixture
def ctx(write_settings) -> ServiceContext:
    settings = load_settings(write_settings({"telemetry": {"history_retention_days": 0}}), env={})
    ctx = ServiceContext(settings=settings, device_id="test-device")
    for seconds in (0.0004, 0.003, 0.003, 0.02, 0.2, 3.0, 30.0):
        ctx.metrics.observe("detect", seconds, "door")
    ctx.metrics.observe("embed", 0.01, "door")
    ctx.metrics.observe("persist", 0.002)
    ctx.metrics.incr("faces", 3, "door")
    ctx.pipeline = Cameras()
    return ctx


def families(ctx: ServiceContext) -> dict:
    body, content_type = render(ctx)
    assert content_type.startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(body.decode("utf-8"))}


def test_metrics_parse_with_expected_names_units_and_labels(ctx: ServiceContext) -> None:
    telemetry = Telemetry(ctx, persist=False)
    ctx.telemetry = telemetry
    telemetry.sample()
    fams = families(ctx)
    expected = {
        "facepro_stage_latency_seconds": "histogram",
        "facepro_stage_latency_p95_seconds": "gauge",
        "facepro_camera_frames_processed": "counter",
        "facepro_camera_frames_dropped": "counter",
        "facepro_camera_reconnects": "counter",
        "facepro_camera_processed_frames_per_second": "gauge",
        "facepro_camera_online": "gauge",
        "facepro_process_resident_memory_bytes": "gauge",
        "facepro_process_cpu_ratio": "gauge",
        "facepro_system_memory_used_ratio": "gauge",
        "facepro_data_disk_free_bytes": "gauge",
        "facepro_uptime_seconds": "gauge",
        "facepro_gpu_available": "gauge",
    }
    for name, kind in expected.items():
        assert name in fams, name
        assert fams[name].type == kind, name
    for fam in fams.values():
        full = fam.name + ("_total" if fam.type == "counter" else "")
        assert full.endswith(UNIT_SUFFIXES) or full in UNITLESS, full
        for sample in fam.samples:
            assert set(sample.labels) <= {"camera", "stage", "le"}, sample

    by_camera = {s.labels["camera"]: s.value for s in fams["facepro_camera_frames_processed"].samples}
    assert by_camera == {"door": 400.0, "yard": 10.0}
    online = {s.labels["camera"]: s.value for s in fams["facepro_camera_online"].samples}
    assert online == {"door": 1.0, "yard": 0.0}
    reconnects = {s.labels["camera"]: s.value for s in fams["facepro_camera_reconnects"].samples}
    assert reconnects == {"door": 1.0, "yard": 7.0}
    faces = {s.labels["camera"]: s.value for s in fams["facepro_camera_faces"].samples}
    assert faces["door"] == 3.0


def test_latency_histogram_is_cumulative_and_matches_observations(ctx: ServiceContext) -> None:
    fams = families(ctx)  # no telemetry component: rendered from the bare metrics
    samples = [s for s in fams["facepro_stage_latency_seconds"].samples
               if s.labels.get("stage") == "detect" and s.labels.get("camera") == "door"]
    buckets = [(float(s.labels["le"]), s.value) for s in samples if s.name.endswith("_bucket")]
    count = next(s.value for s in samples if s.name.endswith("_count"))
    total = next(s.value for s in samples if s.name.endswith("_sum"))
    assert count == 7 and total == pytest.approx(0.0004 + 0.003 * 2 + 0.02 + 0.2 + 3.0 + 30.0)
    values = [v for _, v in buckets]
    assert values == sorted(values) and buckets[-1] == (float("inf"), 7.0)
    as_dict = dict(buckets)
    assert as_dict[0.0005] == 1 and as_dict[0.005] == 3 and as_dict[0.025] == 4 and as_dict[10.0] == 6
    persist = [s for s in fams["facepro_stage_latency_seconds"].samples if s.labels.get("stage") == "persist"]
    assert persist and all(s.labels["camera"] == "" for s in persist)


def test_render_leaves_the_global_registry_alone(ctx: ServiceContext) -> None:
    before = set(REGISTRY._names_to_collectors)
    render(ctx)
    render(ctx)
    assert set(REGISTRY._names_to_collectors) == before
    assert not any(name.startswith("facepro_") for name in REGISTRY._names_to_collectors)


def test_no_person_names_in_labels(ctx: ServiceContext) -> None:
    ctx.metrics.incr("events", 1, "door")
    ctx.metrics.set("last_person", "Lin-Manuel Miranda", "door")  # a gauge some part might set
    telemetry = Telemetry(ctx, persist=False)
    ctx.telemetry = telemetry
    telemetry.sample()
    body = render(ctx)[0].decode()
    assert "Miranda" not in body
    label_values = set(re.findall(r'(?:camera|stage)="([^"]*)"', body))
    assert label_values <= {"door", "yard", "", "detect", "embed", "persist"}


def test_gpu_figures_exported_with_units_when_a_source_reports(ctx: ServiceContext) -> None:
    def nvml_reading() -> dict:
        return {"available": True, "source": "nvml", "name": "Test GPU", "utilization_percent": 37.0,
                "memory_used_bytes": 3 << 30, "memory_total_bytes": 16 << 30, "temperature_c": 54.0,
                "power_w": 61.5}

    telemetry = Telemetry(ctx, gpu_probes=[nvml_reading], persist=False)
    ctx.telemetry = telemetry
    telemetry.sample()
    fams = families(ctx)
    value = {name: fams[name].samples[0].value for name in (
        "facepro_gpu_available", "facepro_gpu_utilization_ratio", "facepro_gpu_memory_used_bytes",
        "facepro_gpu_memory_total_bytes", "facepro_gpu_temperature_celsius", "facepro_gpu_power_watts")}
    assert value == {"facepro_gpu_available": 1.0, "facepro_gpu_utilization_ratio": 0.37,
                     "facepro_gpu_memory_used_bytes": float(3 << 30), "facepro_gpu_memory_total_bytes": float(16 << 30),
                     "facepro_gpu_temperature_celsius": 54.0, "facepro_gpu_power_watts": 61.5}
    assert telemetry.history(60)["gpu_percent"][-1][1] == 37.0
