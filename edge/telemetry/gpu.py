"""GPU figures: Jetson (sysfs, then tegrastats; jtop first only where jetson-stats was installed on
purpose) and NVIDIA discrete GPUs (NVML).

Every source is optional and imported lazily: jetson-stats exists only on Jetson images,
nvidia-ml-py only with the ``gpu`` extra. A source that is absent or fails says why; when no
source works the result is ``{"available": False, "source": None, "reason": ...}``, never
zeros, so a chart or an alert cannot mistake "no GPU" for "idle GPU".

Figures, when present: ``utilization_percent``, ``memory_used_bytes``,
``memory_total_bytes``, ``temperature_c``, ``temperatures_c`` (sensor -> celsius),
``power_w``, ``name``.
"""
from __future__ import annotations

import importlib.util
import logging
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class GpuUnavailable(Exception):
    """A source is not present on this machine (as opposed to one that failed)."""


Probe = Callable[[], dict[str, Any]]


# -- NVML (discrete NVIDIA GPUs) ----------------------------------------------------------

class NvmlProbe:
    """Keeps NVML initialised between samples (nvmlInit is the expensive part)."""

    name = "nvml"

    def __init__(self, index: int = 0) -> None:
        self.index = index
        self._nvml: Any = None
        self._handle: Any = None

    def _init(self) -> None:
        try:
            import pynvml  # nvidia-ml-py
        except ImportError as exc:
            raise GpuUnavailable("nvidia-ml-py (pynvml) is not installed") from exc
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise GpuUnavailable(f"NVML init failed: {exc}") from exc
        try:
            if pynvml.nvmlDeviceGetCount() <= self.index:
                pynvml.nvmlShutdown()
                raise GpuUnavailable("NVML reports no GPU")
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
        except pynvml.NVMLError as exc:
            pynvml.nvmlShutdown()
            raise GpuUnavailable(f"NVML device query failed: {exc}") from exc
        self._nvml = pynvml

    def __call__(self) -> dict[str, Any]:
        if self._nvml is None:
            self._init()
        nvml, handle = self._nvml, self._handle
        result: dict[str, Any] = {"available": True, "source": "nvml"}
        try:
            name = nvml.nvmlDeviceGetName(handle)
            result["name"] = name.decode() if isinstance(name, bytes) else str(name)
            util = nvml.nvmlDeviceGetUtilizationRates(handle)
            result["utilization_percent"] = float(util.gpu)
            mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            result["memory_used_bytes"] = int(mem.used)
            result["memory_total_bytes"] = int(mem.total)
            result["temperature_c"] = float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
        except nvml.NVMLError:
            self.close()  # driver reloaded or GPU lost: re-initialise next time
            raise
        try:
            result["power_w"] = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
        except nvml.NVMLError:
            pass  # some boards do not report power; leave the figure out rather than 0
        return result

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
        self._nvml = self._handle = None


# -- Jetson: jtop --------------------------------------------------------------------------

class JtopProbe:
    """jetson-stats' client; needs the jtop service (``/run/jtop.sock``) to be running."""

    name = "jtop"

    def __init__(self) -> None:
        self._jetson: Any = None

    def __call__(self) -> dict[str, Any]:
        if self._jetson is None:
            try:
                from jtop import jtop  # jetson-stats
            except ImportError as exc:
                raise GpuUnavailable("jetson-stats (jtop) is not installed") from exc
            jetson = jtop()
            try:
                jetson.start()
            except Exception as exc:  # JtopException when the service is not running
                raise GpuUnavailable(f"jtop service not reachable: {exc}") from exc
            self._jetson = jetson
        try:
            return parse_jtop(self._jetson.stats, getattr(self._jetson, "memory", None))
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self._jetson is not None:
            try:
                self._jetson.close()
            except Exception:
                pass
        self._jetson = None


def parse_jtop(stats: dict[str, Any], memory: Any = None) -> dict[str, Any]:
    """jtop's ``stats`` dict: GPU load in percent, 'Temp X' in C, 'Power X' in mW."""
    if not stats or "GPU" not in stats:
        raise GpuUnavailable("jtop reports no GPU figure")
    result: dict[str, Any] = {"available": True, "source": "jtop",
                              "utilization_percent": float(stats["GPU"])}
    temps = {key[5:].lower(): float(v) for key, v in stats.items()
             if key.startswith("Temp ") and isinstance(v, (int, float)) and -40 < v < 150}
    if temps:
        result["temperatures_c"] = temps
        gpu_temp = next((v for k, v in temps.items() if "gpu" in k), None)
        result["temperature_c"] = gpu_temp if gpu_temp is not None else max(temps.values())
    if isinstance(stats.get("Power TOT"), (int, float)):
        result["power_w"] = float(stats["Power TOT"]) / 1000.0
    ram = (memory or {}).get("RAM") if isinstance(memory, dict) else None
    if isinstance(ram, dict) and "tot" in ram and "used" in ram:  # kB; shared with the GPU
        result["memory_total_bytes"] = int(ram["tot"]) * 1024
        result["memory_used_bytes"] = int(ram["used"]) * 1024
    return result


# -- Jetson: sysfs -------------------------------------------------------------------------

GPU_LOAD_FILES = ("devices/gpu.0/load", "devices/platform/gpu.0/load", "devices/platform/17000000.gpu/load",
                  "devices/platform/17000000.ga10b/load", "devices/platform/57000000.gpu/load")


class SysfsProbe:
    """Tegra GPU load (per mille) and thermal zones straight from sysfs; no service needed."""

    name = "sysfs"

    def __init__(self, root: Path | str = "/sys") -> None:
        self.root = Path(root)

    def __call__(self) -> dict[str, Any]:
        load_file = next((self.root / rel for rel in GPU_LOAD_FILES if (self.root / rel).is_file()), None)
        if load_file is None:
            raise GpuUnavailable(f"no Tegra GPU load file under {self.root}/devices")
        load = int(load_file.read_text().strip())
        result: dict[str, Any] = {"available": True, "source": "sysfs",
                                  "utilization_percent": load / 10.0}
        temps = thermal_zones(self.root)
        if temps:
            result["temperatures_c"] = temps
            gpu_temp = next((v for k, v in temps.items() if "gpu" in k.lower()), None)
            result["temperature_c"] = gpu_temp if gpu_temp is not None else max(temps.values())
        return result

    def close(self) -> None:
        pass


def thermal_zones(root: Path | str = "/sys") -> dict[str, float]:
    """``thermal_zone*/type`` -> temperature in C (millidegrees in the files)."""
    temps: dict[str, float] = {}
    for zone in sorted(Path(root, "class", "thermal").glob("thermal_zone*")):
        try:
            kind = (zone / "type").read_text().strip()
            milli = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        if -40_000 < milli < 150_000:  # Tegra reports -256000 for an offline zone
            temps[kind] = milli / 1000.0
    return temps


# -- Jetson: tegrastats --------------------------------------------------------------------

TEGRA_GPU_RE = re.compile(r"GR3D_FREQ (\d+)%")
TEGRA_TEMP_RE = re.compile(r"(\w+)@(-?[\d.]+)C")
TEGRA_RAM_RE = re.compile(r"RAM (\d+)/(\d+)MB")
TEGRA_POWER_RE = re.compile(r"(VDD_IN|POM_5V_IN|VIN_SYS_5V0) (\d+)mW")


def parse_tegrastats(line: str) -> dict[str, Any]:
    gpu = TEGRA_GPU_RE.search(line)
    if gpu is None:
        raise GpuUnavailable("tegrastats line has no GR3D_FREQ figure")
    result: dict[str, Any] = {"available": True, "source": "tegrastats",
                              "utilization_percent": float(gpu.group(1))}
    temps = {name.lower(): float(v) for name, v in TEGRA_TEMP_RE.findall(line) if -40 < float(v) < 150}
    if temps:
        result["temperatures_c"] = temps
        result["temperature_c"] = temps.get("gpu", max(temps.values()))
    if ram := TEGRA_RAM_RE.search(line):
        result["memory_used_bytes"] = int(ram.group(1)) * 1024 * 1024
        result["memory_total_bytes"] = int(ram.group(2)) * 1024 * 1024
    if power := TEGRA_POWER_RE.search(line):
        result["power_w"] = int(power.group(2)) / 1000.0
    return result


class TegrastatsProbe:
    """Runs ``tegrastats`` for one line. Costly (a process start), so cached for ``min_interval_s``."""

    name = "tegrastats"

    def __init__(self, min_interval_s: float = 10.0, timeout_s: float = 3.0) -> None:
        self.min_interval_s = min_interval_s
        self.timeout_s = timeout_s
        self._cached: tuple[float, dict[str, Any]] | None = None

    def __call__(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._cached and now - self._cached[0] < self.min_interval_s:
            return dict(self._cached[1])
        exe = shutil.which("tegrastats")
        if exe is None:
            raise GpuUnavailable("tegrastats is not on PATH")
        proc = subprocess.Popen([exe, "--interval", "100"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        try:
            timer = threading.Timer(self.timeout_s, proc.kill)
            timer.start()
            line = proc.stdout.readline() if proc.stdout else ""
            timer.cancel()
        finally:
            proc.kill()
            proc.wait()
        result = parse_tegrastats(line)
        self._cached = (now, result)
        return dict(result)

    def close(self) -> None:
        pass


# -- the chain -----------------------------------------------------------------------------

def default_probes() -> list[Probe]:
    """Jetson sources first (cheap sysfs before a tegrastats process), then NVML. jetson-stats is
    AGPL-3.0 and an explicit opt-in (``install.sh --with-jtop``): jtop leads only where it is installed."""
    probes: list[Probe] = [SysfsProbe(), TegrastatsProbe(), NvmlProbe()]
    if importlib.util.find_spec("jtop") is not None:
        probes.insert(0, JtopProbe())
    return probes


class GpuMonitor:
    """Tries each source in order and remembers the first that works.

    A source that is absent is not asked again for ``retry_s`` (an NVML init attempt or a
    process start every second would cost more than the rest of the sampling together).
    """

    def __init__(self, probes: Sequence[Probe] | None = None, retry_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.probes = list(probes) if probes is not None else default_probes()
        self.retry_s = retry_s
        self.clock = clock
        self._working: Probe | None = None
        self._absent: dict[int, tuple[float, str]] = {}  # id(probe) -> (retry at, reason)

    def read(self) -> dict[str, Any]:
        reasons: list[str] = []
        now = self.clock()
        order = ([self._working] if self._working else []) + [p for p in self.probes if p is not self._working]
        for probe in order:
            name = getattr(probe, "name", getattr(probe, "__name__", "probe"))
            absent = self._absent.get(id(probe))
            if absent and now < absent[0]:
                reasons.append(absent[1])
                continue
            try:
                result = dict(probe())
            except GpuUnavailable as exc:
                reason = f"{name}: {exc}"
                self._absent[id(probe)] = (now + self.retry_s, reason)
                reasons.append(reason)
                continue
            except Exception as exc:  # a source that breaks must not break telemetry
                if probe is self._working:
                    log.warning("GPU source %s failed: %s", name, exc)
                    self._working = None
                reasons.append(f"{name}: failed: {type(exc).__name__}: {exc}")
                continue
            result.setdefault("available", True)
            result.setdefault("source", name)
            self._working = probe
            return result
        return {"available": False, "source": None, "reason": "; ".join(reasons) or "no GPU source configured"}

    def close(self) -> None:
        for probe in self.probes:
            close = getattr(probe, "close", None)
            if close:
                try:
                    close()
                except Exception:
                    pass


def probe_gpu(probes: Sequence[Probe] | None = None) -> dict[str, Any]:
    """One reading from the first GPU source that works (for ``facepro doctor``); never raises."""
    monitor = GpuMonitor(probes)
    try:
        return monitor.read()
    finally:
        monitor.close()
