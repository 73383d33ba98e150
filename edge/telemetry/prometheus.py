"""``/metrics`` in the Prometheus text format, from the telemetry snapshot and the metrics.

A custom collector in a registry made per call: nothing is registered in prometheus_client's
global default registry, so several service instances (tests) never collide. Names carry
their unit (``_seconds``, ``_bytes``, ``_celsius``, ``_ratio``, ``_watts``, ``_total``);
labels are only ``camera`` and ``stage`` (never a person's name). Figures that are unknown
(no GPU, no sensor, a part not running) are left out rather than exported as zero.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as CONTENT_TYPE

from edge.metrics import CAMERA_COUNTERS, Metrics

PREFIX = "facepro"

# Figures of the rate cap and motion gate (edge.pipeline.gate), left out where a camera has none.
CAMERA_RATE_GAUGES = (
    ("fps_decoded", "camera_decoded_frames_per_second", "Frames converted into a frame buffer per second."),
    ("fps_detected", "camera_detected_frames_per_second", "Frames the face detector ran on per second."),
    ("detect_share", "camera_detected_frames_ratio", "Share of the captured frames that reached the detector."),
    ("motion", "camera_motion", "1 while the camera's motion detector sees motion (gated cameras only)."),
    ("motion_fraction", "camera_motion_ratio", "Share of the unmasked picture that changed in the last sample."),
    ("detect_fps", "camera_detect_limit_frames_per_second", "The most frames per second the detector sees from the camera."),
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    return None


class SnapshotCollector:
    def __init__(self, snapshot: dict[str, Any], metrics: Metrics) -> None:
        self.snapshot = snapshot
        self.metrics = metrics

    def _gauge(self, name: str, doc: str, value: Any) -> Iterator[Metric]:
        number = _number(value)
        if number is not None:
            yield GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=number)

    def collect(self) -> Iterator[Metric]:
        snap, p = self.snapshot, PREFIX
        yield from self._gauge("uptime_seconds", "Seconds since the service started.", snap.get("uptime_s"))

        # stage latency: cumulative histograms (since start) plus the rolling-window quantiles
        hist = HistogramMetricFamily(f"{p}_stage_latency_seconds", "Pipeline stage latency.",
                                     labels=["stage", "camera"])
        for (stage, camera), h in sorted(self.metrics.histograms().items()):
            buckets = [("+Inf" if b == float("inf") else repr(float(b)), float(n)) for b, n in h["buckets"]]
            hist.add_metric([stage, camera], buckets, h["sum_s"])
        yield hist
        stages = snap.get("stages") or {}
        for quantile in ("p50", "p95", "p99", "max"):
            family = GaugeMetricFamily(
                f"{p}_stage_latency_{quantile}_seconds",
                f"Stage latency {quantile} over the rolling window of recent observations.", labels=["stage"])
            for stage, stats in stages.items():
                if stats.get("window"):
                    family.add_metric([stage], float(stats[f"{quantile}_s"]))
            yield family

        # cameras
        cameras = snap.get("cameras") or []
        for counter in CAMERA_COUNTERS:
            counters = CounterMetricFamily(f"{p}_camera_{counter}", f"Camera {counter.replace('_', ' ')} since start.",
                                          labels=["camera"])
            for cam in cameras:
                counters.add_metric([cam["name"]], float(cam.get(counter) or 0))
            yield counters
        for key, name, doc in (("fps_capture", "camera_capture_frames_per_second", "Frames captured per second."),
                               ("fps_processed", "camera_processed_frames_per_second", "Frames processed per second."),
                               ("online", "camera_online", "1 when the camera delivers frames, 0 when offline."),
                               *CAMERA_RATE_GAUGES):
            family = GaugeMetricFamily(f"{p}_{name}", doc, labels=["camera"])
            for cam in cameras:
                number = _number(cam.get(key))
                if number is not None:
                    family.add_metric([cam["name"]], number)
            yield family

        # process and system
        proc, system = snap.get("process") or {}, snap.get("system") or {}
        yield from self._gauge("process_resident_memory_bytes", "Resident memory of the service.", proc.get("rss_bytes"))
        cpu = _number(proc.get("cpu_percent"))
        yield from self._gauge("process_cpu_ratio", "CPU used by the service (1.0 = one core).",
                               cpu / 100 if cpu is not None else None)
        yield from self._gauge("process_threads", "Threads of the service.", proc.get("threads"))
        yield from self._gauge("process_open_fds", "Open file descriptors of the service.", proc.get("open_files"))
        mem = _number(system.get("memory_percent"))
        yield from self._gauge("system_memory_used_ratio", "Memory in use.", mem / 100 if mem is not None else None)
        yield from self._gauge("system_memory_available_bytes", "Memory available.", system.get("memory_available_bytes"))
        syscpu = _number(system.get("cpu_percent"))
        yield from self._gauge("system_cpu_used_ratio", "CPU in use, all cores averaged.",
                               syscpu / 100 if syscpu is not None else None)
        load = system.get("load") or [None]
        yield from self._gauge("system_load1", "One-minute load average.", load[0])
        temps = system.get("temperatures_c") or {}
        yield from self._gauge("system_temperature_max_celsius", "Hottest temperature sensor.",
                               max(temps.values()) if temps else None)
        yield from self._gauge("system_uptime_seconds", "Seconds since the machine booted.", system.get("uptime_s"))
        disks = snap.get("disks") or []
        data: dict[str, Any] = next((d for d in disks if d["name"] == "data"), {})
        yield from self._gauge("data_disk_free_bytes", "Free space where the data directory lives.",
                               data.get("free_bytes"))
        targets = [d["free_bytes"] for d in disks if d["name"] != "data" and d.get("free_bytes") is not None]
        yield from self._gauge("backup_target_min_free_bytes", "Least free space among reachable local backup targets.",
                               min(targets) if targets else None)

        # GPU: only real readings
        gpu = snap.get("gpu") or {}
        yield GaugeMetricFamily(f"{p}_gpu_available", "1 when a GPU source reports figures.",
                                value=1.0 if gpu.get("available") else 0.0)
        if gpu.get("available"):
            util = _number(gpu.get("utilization_percent"))
            yield from self._gauge("gpu_utilization_ratio", "GPU utilisation.", util / 100 if util is not None else None)
            yield from self._gauge("gpu_memory_used_bytes", "GPU memory in use.", gpu.get("memory_used_bytes"))
            yield from self._gauge("gpu_memory_total_bytes", "GPU memory in total.", gpu.get("memory_total_bytes"))
            yield from self._gauge("gpu_temperature_celsius", "GPU temperature.", gpu.get("temperature_c"))
            yield from self._gauge("gpu_power_watts", "GPU (or board) power draw.", gpu.get("power_w"))

        # links to the other parts
        mqtt = snap.get("mqtt")
        if isinstance(mqtt, dict) and "connected" in mqtt:
            yield from self._gauge("mqtt_connected", "1 while connected to the MQTT broker.", mqtt["connected"])
        yield GaugeMetricFamily(f"{p}_alerts_active", "Alerts currently raised.",
                                value=float(len(snap.get("alerts") or [])))


def render(ctx: Any) -> tuple[bytes, str]:
    """The ``/metrics`` body and its content type. Uses the telemetry's latest snapshot, or
    the bare metrics when the telemetry component is not running."""
    telemetry = getattr(ctx, "telemetry", None)
    snapshot: dict[str, Any]
    if telemetry is not None:
        snapshot = telemetry.snapshot()
    else:
        metrics: Metrics = ctx.metrics
        snapshot = {"stages": metrics.stage_stats(), "gpu": {"available": False}}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot, ctx.metrics))
    return generate_latest(registry), CONTENT_TYPE
