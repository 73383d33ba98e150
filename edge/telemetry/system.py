"""Process and system figures through psutil: memory, CPU, load, temperatures, disks."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)

MOUNT_KINDS = ("usb", "mounted")  # backup target types whose path must be a mount point


class SystemProbe:
    """Holds the psutil handles whose CPU percentages are measured between calls."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.boot_time = psutil.boot_time()
        # The first cpu_percent call only primes the counters; it returns 0.
        self.process.cpu_percent(None)
        psutil.cpu_percent(None, percpu=True)

    def process_figures(self) -> dict[str, Any]:
        proc = self.process
        with proc.oneshot():
            mem = proc.memory_info()
            figures: dict[str, Any] = {
                "pid": proc.pid,
                "rss_bytes": int(mem.rss),
                "cpu_percent": float(proc.cpu_percent(None)),
                "threads": int(proc.num_threads()),
            }
            try:
                figures["open_files"] = int(proc.num_fds())  # every open descriptor (files, sockets)
            except (AttributeError, psutil.Error):
                figures["open_files"] = len(proc.open_files())
        return figures

    def system_figures(self) -> dict[str, Any]:
        vm = psutil.virtual_memory()
        per_core = [float(v) for v in psutil.cpu_percent(None, percpu=True)]
        figures: dict[str, Any] = {
            "memory_percent": float(vm.percent),
            "memory_total_bytes": int(vm.total),
            "memory_available_bytes": int(vm.available),
            "cpu_percent": sum(per_core) / len(per_core) if per_core else 0.0,
            "cpu_percent_per_core": per_core,
            "cpu_count": len(per_core),
            "uptime_s": time.time() - self.boot_time,
        }
        try:
            figures["load"] = [round(v, 2) for v in os.getloadavg()]
        except OSError:
            figures["load"] = None
        figures["temperatures_c"] = temperatures()
        return figures


def temperatures() -> dict[str, float]:
    """psutil sensors as ``chip/label`` -> celsius (empty where the machine exposes none)."""
    try:
        sensors = psutil.sensors_temperatures()
    except (AttributeError, OSError) as exc:
        log.debug("temperature sensors unreadable: %s", exc)
        return {}
    temps: dict[str, float] = {}
    for chip, entries in sensors.items():
        for i, entry in enumerate(entries):
            label = entry.label or (str(i) if len(entries) > 1 else "")
            if entry.current is not None and -40 < entry.current < 150:
                temps[f"{chip}/{label}" if label else chip] = float(entry.current)
    return temps


def disk_figures(paths: Iterable[tuple[str, Any, str | Path | None]]) -> list[dict[str, Any]]:
    """Free space for each (name, kind, path). A missing path is reported, not guessed."""
    disks: list[dict[str, Any]] = []
    for name, kind, path in paths:
        entry: dict[str, Any] = {"name": name, "kind": kind, "path": str(path) if path else None}
        if not path:
            entry.update(ok=False, error="no local path")
        elif not os.path.isdir(path):
            entry.update(ok=False, error="path not found")
        elif kind in MOUNT_KINDS and not os.path.ismount(path):
            # an unplugged drive leaves an empty directory on the root filesystem: its free
            # space is not the drive's
            entry.update(ok=False, mounted=False, error="not mounted")
        else:
            try:
                usage = psutil.disk_usage(str(path))
            except OSError as exc:
                entry.update(ok=False, error=exc.strerror or str(exc))
            else:
                entry.update(ok=True, free_bytes=int(usage.free), total_bytes=int(usage.total))
                if kind in MOUNT_KINDS:
                    entry["mounted"] = True
        disks.append(entry)
    return disks
