#!/usr/bin/env python3
"""Read NVML figures on a machine with an NVIDIA GPU and check that they are plausible.

    .venv/bin/python scripts/check_nvml.py [--samples 3]

Reads through the same code the service uses (``edge.telemetry.gpu.NvmlProbe``) and, as a
cross-check, straight from pynvml. Plausible: utilisation 0-100 %, memory used <= total,
temperature 10-110 C, power > 0 W. Prints JSON; exit 0 when plausible, 1 when a figure is
implausible or missing, 2 when NVML or the GPU is not available at all.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.telemetry.gpu import GpuUnavailable, NvmlProbe


def problems_of(reading: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    util = reading.get("utilization_percent")
    if not isinstance(util, (int, float)) or not 0 <= util <= 100:
        problems.append(f"utilization_percent {util!r} not in 0..100")
    used, total = reading.get("memory_used_bytes"), reading.get("memory_total_bytes")
    if not isinstance(total, int) or total <= 0:
        problems.append(f"memory_total_bytes {total!r} not positive")
    elif not isinstance(used, int) or not 0 <= used <= total:
        problems.append(f"memory_used_bytes {used!r} not in 0..{total}")
    temp = reading.get("temperature_c")
    if not isinstance(temp, (int, float)) or not 10 <= temp <= 110:
        problems.append(f"temperature_c {temp!r} not in 10..110")
    power = reading.get("power_w")
    if not isinstance(power, (int, float)) or power <= 0:
        problems.append(f"power_w {power!r} not above 0")
    return problems


def direct_reading() -> dict[str, Any]:
    import pynvml

    pynvml.nvmlInit()
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
        return {"driver": str(pynvml.nvmlSystemGetDriverVersion()),
                "utilization_percent": float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                "memory_used_bytes": int(mem.used), "memory_total_bytes": int(mem.total),
                "temperature_c": float(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)),
                "power_w": pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0}
    finally:
        pynvml.nvmlShutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3, help="readings through the service's probe (default 3)")
    args = parser.parse_args()
    result: dict[str, Any] = {"check": "nvml", "readings": [], "problems": []}
    probe = NvmlProbe()
    try:
        for i in range(args.samples):
            if i:
                time.sleep(0.5)
            result["readings"].append(probe())
        result["direct"] = direct_reading()
    except GpuUnavailable as exc:
        result.update(ok=False, available=False, reason=str(exc))
        print(json.dumps(result, indent=2))
        return 2
    except Exception as exc:
        result.update(ok=False, available=True, reason=f"{type(exc).__name__}: {exc}")
        print(json.dumps(result, indent=2))
        return 1
    finally:
        probe.close()
    for i, reading in enumerate(result["readings"]):
        result["problems"] += [f"probe reading {i}: {p}" for p in problems_of(reading)]
    result["problems"] += [f"direct reading: {p}" for p in problems_of(result["direct"])]
    if result["readings"] and result["direct"]["memory_total_bytes"] != result["readings"][0]["memory_total_bytes"]:
        result["problems"].append("memory_total_bytes differs between the service's probe and pynvml")
    result["available"] = True
    result["ok"] = not result["problems"]
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
