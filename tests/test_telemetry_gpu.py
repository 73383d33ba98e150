"""GPU figures: unavailable (never zero) without a GPU; failing sources never stop telemetry."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.config import load_settings
from edge.context import ServiceContext
from edge.telemetry import gpu
from edge.telemetry.component import Telemetry
from edge.telemetry.prometheus import render

FIGURES = ("utilization_percent", "memory_used_bytes", "memory_total_bytes", "temperature_c", "power_w")


def nvidia_present() -> bool:
    return Path("/dev/nvidiactl").exists() or Path("/sys/devices/gpu.0").exists()


@pytest.fixture
def ctx(write_settings) -> ServiceContext:
    settings = load_settings(write_settings({"telemetry": {"history_retention_days": 0}}), env={})
    return ServiceContext(settings=settings, device_id="test-device")


@pytest.mark.skipif(nvidia_present(), reason="this machine has an NVIDIA/Tegra GPU (see scripts/check_nvml.py)")
def test_no_gpu_reports_unavailable_with_reasons_not_zeros() -> None:
    result = gpu.probe_gpu()
    assert result["available"] is False and result["source"] is None
    for name in ("sysfs", "tegrastats", "nvml"):
        assert f"{name}:" in result["reason"]
    assert not any(key in result for key in FIGURES)


def test_jtop_is_asked_only_where_jetson_stats_was_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """jetson-stats is AGPL-3.0 and opt-in: sysfs and tegrastats serve a Jetson without it."""
    names = [probe.name for probe in gpu.default_probes()]  # type: ignore[attr-defined]
    assert names == ["sysfs", "tegrastats", "nvml"]
    real_find_spec = gpu.importlib.util.find_spec
    monkeypatch.setattr(gpu.importlib.util, "find_spec",
                        lambda name, *a: object() if name == "jtop" else real_find_spec(name, *a))
    assert [probe.name for probe in gpu.default_probes()][0] == "jtop"  # type: ignore[attr-defined]


@pytest.mark.skipif(nvidia_present(), reason="this machine has an NVIDIA/Tegra GPU")
def test_no_gpu_in_snapshot_and_metrics(ctx: ServiceContext) -> None:
    telemetry = Telemetry(ctx, persist=False)
    snap = telemetry.sample()
    assert snap["gpu"]["available"] is False and snap["gpu"]["reason"]
    assert "gpu_percent" not in telemetry.history(600)
    ctx.telemetry = telemetry
    text = render(ctx)[0].decode()
    assert "facepro_gpu_available 0.0" in text
    assert "facepro_gpu_utilization_ratio" not in text and "facepro_gpu_temperature_celsius" not in text


class RaisingNvml:
    """Stands in for pynvml misbehaving (a driver/library mismatch): every call raises."""
    name = "nvml"

    def __call__(self) -> dict:
        raise RuntimeError("NVML_ERROR_LIB_RM_VERSION_MISMATCH")


class BrokenJtop:
    name = "jtop"

    def __call__(self) -> dict:
        raise ConnectionResetError("jtop socket closed")


class Absent:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self) -> dict:
        raise gpu.GpuUnavailable("not installed")


def test_failing_gpu_sources_leave_the_rest_of_telemetry_working(ctx: ServiceContext) -> None:
    telemetry = Telemetry(ctx, gpu_probes=[BrokenJtop(), Absent("sysfs"), RaisingNvml()], persist=False)
    ctx.metrics.observe("detect", 0.05, "door")
    ctx.metrics.incr("frames_processed", 10, "door")
    for i in range(3):
        snap = telemetry.sample(now=1000.0 + i)
    assert snap["gpu"] == {"available": False, "source": None, "reason": snap["gpu"]["reason"]}
    assert "jtop socket closed" in snap["gpu"]["reason"] and "RM_VERSION_MISMATCH" in snap["gpu"]["reason"]
    assert snap["process"]["rss_bytes"] > 0 and snap["system"]["memory_total_bytes"] > 0
    assert snap["stages"]["detect"]["count"] == 1
    assert snap["cameras"][0]["name"] == "door" and snap["cameras"][0]["frames_processed"] == 10
    assert snap["errors"] == {}  # a failing GPU source is a GPU reason, not a telemetry error


def test_a_probe_that_breaks_the_monitor_itself_is_contained(ctx: ServiceContext) -> None:
    telemetry = Telemetry(ctx, persist=False)

    def explode() -> dict:
        raise MemoryError("simulated")

    telemetry.gpu.read = explode  # even the chain failing as a whole
    snap = telemetry.sample()
    assert snap["gpu"]["available"] is False
    assert "gpu" in snap["errors"] and "simulated" in snap["errors"]["gpu"]
    assert snap["system"]["memory_percent"] > 0


def test_working_source_is_used_and_a_later_failure_falls_back() -> None:
    calls = {"nvml": 0}

    class FlakyNvml:
        name = "nvml"

        def __call__(self) -> dict:
            calls["nvml"] += 1
            if calls["nvml"] > 2:
                raise RuntimeError("GPU is lost")
            return {"available": True, "utilization_percent": 37.0, "memory_used_bytes": 1 << 30,
                    "memory_total_bytes": 8 << 30, "temperature_c": 51.0, "power_w": 42.5}

    monitor = gpu.GpuMonitor([Absent("jtop"), FlakyNvml()], clock=lambda: 0.0)
    assert monitor.read()["source"] == "nvml"
    assert monitor.read()["utilization_percent"] == 37.0
    lost = monitor.read()
    assert lost["available"] is False and "GPU is lost" in lost["reason"]


def test_absent_sources_are_not_retried_every_sample() -> None:
    tries = {"n": 0}

    def absent() -> dict:
        tries["n"] += 1
        raise gpu.GpuUnavailable("no library")

    now = [0.0]
    monitor = gpu.GpuMonitor([absent], retry_s=60, clock=lambda: now[0])
    for second in range(120):
        now[0] = float(second)
        assert monitor.read()["reason"] == "absent: no library"
    assert tries["n"] == 2


def test_sysfs_source_reads_tegra_files(tmp_path: Path) -> None:
    (tmp_path / "devices" / "gpu.0").mkdir(parents=True)
    (tmp_path / "devices" / "gpu.0" / "load").write_text("523\n")
    for i, (kind, milli) in enumerate([("CPU-therm", "41500"), ("GPU-therm", "39000"), ("PMIC-Die", "-256000")]):
        zone = tmp_path / "class" / "thermal" / f"thermal_zone{i}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(milli + "\n")
    result = gpu.SysfsProbe(tmp_path)()
    assert result["source"] == "sysfs" and result["utilization_percent"] == pytest.approx(52.3)
    assert result["temperature_c"] == 39.0
    assert result["temperatures_c"] == {"CPU-therm": 41.5, "GPU-therm": 39.0}  # the offline zone is left out


def test_tegrastats_line_parsing() -> None:
    line = ("RAM 2450/7764MB (lfb 1x4MB) SWAP 0/3882MB (cached 0MB) CPU [12%@1510,8%@1510,off,off] "
            "EMC_FREQ 0% GR3D_FREQ 61% CPU@44.5C SOC2@42.1C GPU@43.2C tj@45.5C "
            "VDD_IN 5101mW/5101mW VDD_CPU_GPU_CV 1035mW/1035mW")
    result = gpu.parse_tegrastats(line)
    assert result["utilization_percent"] == 61.0
    assert result["memory_used_bytes"] == 2450 * 1048576 and result["memory_total_bytes"] == 7764 * 1048576
    assert result["temperature_c"] == 43.2 and result["power_w"] == pytest.approx(5.101)
    with pytest.raises(gpu.GpuUnavailable):
        gpu.parse_tegrastats("")


def test_jtop_stats_parsing() -> None:
    stats = {"time": None, "uptime": None, "CPU1": 12, "RAM": 0.31, "GPU": 47.0, "Temp CPU": 44.1,
             "Temp GPU": 42.5, "Temp PMIC": -256, "Power TOT": 6210, "jetson_clocks": "OFF"}
    memory = {"RAM": {"tot": 7_950_000, "used": 2_460_000, "shared": 120_000}}
    result = gpu.parse_jtop(stats, memory)
    assert result == {"available": True, "source": "jtop", "utilization_percent": 47.0,
                      "temperatures_c": {"cpu": 44.1, "gpu": 42.5}, "temperature_c": 42.5,
                      "power_w": pytest.approx(6.21), "memory_total_bytes": 7_950_000 * 1024,
                      "memory_used_bytes": 2_460_000 * 1024}


def load_check_nvml():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "check_nvml.py"
    spec = importlib.util.spec_from_file_location("check_nvml", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


def test_check_nvml_plausibility_rules() -> None:
    check, _ = load_check_nvml()
    good = {"utilization_percent": 12.0, "memory_used_bytes": 1 << 30, "memory_total_bytes": 80 << 30,
            "temperature_c": 41.0, "power_w": 71.3}
    assert check.problems_of(good) == []
    bad = {"utilization_percent": 140.0, "memory_used_bytes": 90 << 30, "memory_total_bytes": 80 << 30,
           "temperature_c": 0.0}
    found = check.problems_of(bad)
    assert len(found) == 4 and any("power_w" in p for p in found)


@pytest.mark.skipif(nvidia_present(), reason="this machine has an NVIDIA GPU: run scripts/check_nvml.py itself")
def test_check_nvml_says_unavailable_without_a_gpu() -> None:
    import subprocess
    import sys

    _, path = load_check_nvml()
    proc = subprocess.run([sys.executable, str(path), "--samples", "1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    report = json.loads(proc.stdout)
    assert report["available"] is False and report["ok"] is False and report["reason"]
