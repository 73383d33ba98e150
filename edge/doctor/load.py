"""Doctor check: can this device carry the configured cameras at their configured rates?

Times the detector here, at each camera's input size, and feeds the cameras' probed sizes and
rates to :func:`edge.pipeline.capacity.estimate` (its docstring says how the estimate works).
"""
from __future__ import annotations

import os
from typing import Any

from edge.config import Settings
from edge.doctor.check import INFO, PASS, WARN, Check

FIX = ("lower cameras[].detect_fps (or pipeline.detect_fps), keep motion gating on (pipeline.motion.enabled), "
       "lower det_max_side, or move cameras to a second device")


def check_camera_load(settings: Settings, probes: dict[str, dict[str, Any]]) -> Check:
    """``probes``: each enabled camera's probe result (ok, width, height, fps) by name."""
    from edge.pipeline.capacity import ASSUMED_FPS, CameraLoad, estimate, time_detector
    from edge.pipeline.gate import camera_gate_settings
    from edge.pipeline.pack import load_model_pack

    cameras = [c for c in settings["cameras"] if c.get("enabled", True) and (probes.get(c["name"]) or {}).get("ok")]
    if not cameras:
        return Check("camera load", INFO, "no camera could be probed: nothing to estimate")
    pack = load_model_pack(settings.models_dir, providers=settings["pipeline.providers"],
                           threads=settings["pipeline.intra_op_threads"],
                           det_max_side=settings["pipeline.det_max_side"], max_faces=settings["pipeline.max_faces"],
                           det_threshold=settings["recognition.det_threshold"],
                           cache_dir=settings.data_dir / "cache" / "tensorrt")
    timed: dict[tuple[int, int, int | None], float] = {}
    loads: list[CameraLoad] = []
    assumed: list[str] = []
    for camera in cameras:
        probe = probes[camera["name"]]
        width, height = int(probe["width"]), int(probe["height"])
        key = (width, height, camera.get("det_max_side"))
        if key not in timed:
            timed[key] = time_detector(pack.detector, width, height, camera.get("det_max_side"))
        fps = probe.get("fps")
        if not fps:
            assumed.append(camera["name"])
        gate = camera_gate_settings(camera, settings["pipeline"])
        loads.append(CameraLoad(camera["name"], width, height, float(fps or ASSUMED_FPS), gate["detect_fps"],
                                gate["motion"], gate["idle_check_s"], timed[key]))
    result = estimate(loads, os.cpu_count() or 1)
    det = ", ".join(f"{w}x{h} {ms:.0f} ms" for (w, h, _), ms in timed.items())
    detail = (f"{result['cameras']} camera(s); detector {det} per frame; at rest about "
              f"{100 * result['cpu_cores_rest']:.0f} % of one core, with all in motion about "
              f"{100 * result['cpu_cores_motion']:.0f} % of one core of {result['cores']} and the worker "
              f"{100 * result['worker_busy_motion']:.0f} % busy")
    if assumed:
        detail += f" (frame rate unknown, {ASSUMED_FPS:g} fps assumed: {', '.join(assumed)})"
    if not result["carried"]:
        return Check("camera load", WARN, "; ".join(result["problems"]) + f" — {detail}", FIX)
    return Check("camera load", PASS, detail)
